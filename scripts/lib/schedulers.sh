# shellcheck shell=bash disable=SC2034 # SCHED_PACKAGES is used by cluster-up, which sources this
# schedulers.sh: the parts of scripts/cluster-up that bring up the schedulers beside Slurm:
#   - Grid Engine 8.1.9 (Debian packages; real): sge_qmaster + sge_execd started by hand, a queue
#     all.q with SGE_SLOTS slots, a parallel environment smp, 1 s scheduling and accounting flush;
#   - Slurm's Torque wrappers (real commands backed by Slurm) in TORQUE_BIN, apart from /usr/bin;
#   - the PBS Pro and LSF emulators of scripts/emulators (test infrastructure) in EMU_DIR.
# Sourced by cluster-up after lib/testcluster.sh; it uses cluster-up's write_file. Everything is
# idempotent: with all up and configured, these functions start and write nothing.

# SCHED_PACKAGES are the Debian packages this file needs (cluster-up installs them with its own).
# gridengine-* pull in bsd-mailx and an MTA (exim4, never started here); the three perl packages
# are what the Torque wrappers need, the wrappers themselves are unpacked (see ensure_torque).
SCHED_PACKAGES=(gridengine-master gridengine-exec gridengine-client libslurm-perl libslurmdb-perl
	libswitch-perl python3)

# preseed_gridengine answers the gridengine packages' debconf questions before they are installed:
# without shared/gridenginemaster the postinst leaves act_qmaster empty and no client works.
preseed_gridengine() {
	debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $(node_name)
EOF
}

# ensure_torque unpacks slurm-wlm-torque (the version matching the installed Slurm) into
# TORQUE_DIR and puts its commands in TORQUE_BIN. The package cannot be installed beside Grid
# Engine (it Conflicts with gridengine-client), and its scripts run ${FindBin::Bin}/sbatch (and
# salloc, srun), so TORQUE_BIN also holds links to Slurm's own commands.
ensure_torque() {
	local version have='' deb dir=$STATE_DIR/debs f
	version=$(dpkg-query -W -f='${Version}' slurm-client 2>/dev/null) || die "slurm-client is not installed"
	{ read -r have <"$TORQUE_DIR/VERSION"; } 2>/dev/null || true
	if [[ $have != "$version" || ! -x $TORQUE_BIN/qsub ]]; then
		say "unpacking Slurm's Torque wrappers $version into $TORQUE_DIR"
		ensure_dir "$dir" 755 root:root
		deb=$(compgen -G "$dir/slurm-wlm-torque_${version//:/%3a}_*.deb" | head -n1 || true)
		if [[ -z $deb ]]; then
			# apt-get download writes into the cwd; as root it warns that _apt cannot read the dir.
			# Package lists may be missing or stale when nothing else needed installing: update
			# them once and retry.
			if ! (cd "$dir" && apt-get -q download "slurm-wlm-torque=$version") >"$STATE_DIR/torque-download.log" 2>&1; then
				apt-get -o DPkg::Lock::Timeout=600 -q update >>"$STATE_DIR/torque-download.log" 2>&1 || true
				(cd "$dir" && apt-get -q download "slurm-wlm-torque=$version") >>"$STATE_DIR/torque-download.log" 2>&1 ||
					die --log "$STATE_DIR/torque-download.log" "cannot download slurm-wlm-torque=$version"
			fi
			deb=$(compgen -G "$dir/slurm-wlm-torque_*.deb" | head -n1 || true)
			[[ -n $deb ]] || die "apt-get download left no slurm-wlm-torque .deb in $dir"
		fi
		rm -rf "$TORQUE_DIR.new"
		mkdir -p "$TORQUE_DIR.new/root" "$TORQUE_DIR.new/bin"
		dpkg-deb -x "$deb" "$TORQUE_DIR.new/root" || die "cannot unpack $deb"
		for f in qsub qstat qdel qalter qhold qrls qrerun pbsnodes; do
			install -m 0755 "$TORQUE_DIR.new/root/usr/bin/$f" "$TORQUE_DIR.new/bin/$f"
		done
		for f in sbatch salloc srun; do
			ln -s "/usr/bin/$f" "$TORQUE_DIR.new/bin/$f"
		done
		printf '%s\n' "$version" >"$TORQUE_DIR.new/VERSION"
		rm -rf "$TORQUE_DIR"
		mv "$TORQUE_DIR.new" "$TORQUE_DIR"
		chmod 0755 "$TORQUE_DIR"
	fi
}

# write_sge_configs writes the Grid Engine configuration files cluster-up applies with qconf into
# SGE_CONF_DIR. It succeeds when it changed one of them. Every file is complete: qconf -A/-M
# refuse files with attributes missing.
write_sge_configs() {
	local host changed=1
	host=$(sge_host)
	ensure_dir "$SGE_CONF_DIR" 755 root:root
	if write_file "$SGE_CONF_DIR/exechost" 644 root:root <<EOF; then changed=0; fi
hostname $host
load_scaling NONE
complex_values NONE
user_lists NONE
xuser_lists NONE
projects NONE
xprojects NONE
usage_scaling NONE
report_variables NONE
EOF
	if write_file "$SGE_CONF_DIR/pe" 644 root:root <<EOF; then changed=0; fi
pe_name $SGE_PE
slots 999
user_lists NONE
xuser_lists NONE
start_proc_args NONE
stop_proc_args NONE
allocation_rule \$pe_slots
control_slaves FALSE
job_is_first_task TRUE
urgency_slots min
accounting_summary FALSE
qsort_args NONE
EOF
	# The queue: Grid Engine's defaults except the host, slots, the parallel environment, and
	# load_thresholds NONE (a 2-core test machine running a test suite has a load average above
	# the default np_load_avg=1.75, which would put the queue into alarm and stop scheduling).
	# terminate_method stays the default: qdel and h_rt kill the job with SIGKILL, as on most sites.
	if write_file "$SGE_CONF_DIR/queue" 644 root:root <<EOF; then changed=0; fi
qname $SGE_QUEUE
hostlist $host
seq_no 0
load_thresholds NONE
suspend_thresholds NONE
nsuspend 1
suspend_interval 00:05:00
priority 0
min_cpu_interval 00:05:00
processors UNDEFINED
qtype BATCH INTERACTIVE
ckpt_list NONE
pe_list $SGE_PE
rerun FALSE
slots $SGE_SLOTS
tmpdir /tmp
shell /bin/sh
prolog NONE
epilog NONE
shell_start_mode posix_compliant
starter_method NONE
suspend_method NONE
resume_method NONE
terminate_method NONE
notify 00:00:60
owner_list NONE
user_lists NONE
xuser_lists NONE
subordinate_list NONE
complex_values NONE
projects NONE
xprojects NONE
calendar NONE
initial_state default
s_rt INFINITY
h_rt INFINITY
s_cpu INFINITY
h_cpu INFINITY
s_fsize INFINITY
h_fsize INFINITY
s_data INFINITY
h_data INFINITY
s_stack INFINITY
h_stack INFINITY
s_core INFINITY
h_core INFINITY
s_rss INFINITY
h_rss INFINITY
s_vmem INFINITY
h_vmem INFINITY
EOF
	# The scheduler: a run every second and right after each submit and each job end (defaults
	# 15 s and never), no load adjustments (see load_thresholds above).
	if write_file "$SGE_CONF_DIR/sconf" 644 root:root <<EOF; then changed=0; fi
algorithm default
schedule_interval 0:0:1
maxujobs 0
queue_sort_method load
job_load_adjustments NONE
load_adjustment_decay_time 0:0:0
load_formula np_load_avg
schedd_job_info true
flush_submit_sec 1
flush_finish_sec 1
params none
reprioritize_interval 0:0:0
halftime 168
usage_weight_list cpu=1.000000,mem=0.000000,io=0.000000
compensation_factor 5.000000
weight_user 0.250000
weight_project 0.250000
weight_department 0.250000
weight_job 0.250000
weight_tickets_functional 0
weight_tickets_share 0
share_override_tickets TRUE
share_functional_shares TRUE
max_functional_jobs_to_schedule 200
report_pjob_tickets TRUE
max_pending_tasks_per_job 50
halflife_decay_list none
policy_hierarchy OFS
weight_ticket 0.500000
weight_waiting_time 0.278000
weight_deadline 3600000.000000
weight_urgency 0.500000
weight_priority 0.000000
max_reservation 0
default_duration INFINITY
EOF
	# The global configuration. qconf -Mconf takes the configuration's name from the file's name.
	# Changed from Debian's defaults: accounting_flush_time=00:00:00 and flush_time 1 s, so qacct
	# knows a job about a second after it ends (default: 15 s); mailer /bin/true (no MTA runs).
	# min_uid 1000 admits the test users (uids 2901-2904); no user_lists: every user may submit.
	if write_file "$SGE_CONF_DIR/global" 644 root:root <<EOF; then changed=0; fi
execd_spool_dir $SGE_EXECD_SPOOL
mailer /bin/true
xterm /usr/bin/xterm
load_sensor none
prolog none
epilog none
shell_start_mode posix_compliant
login_shells bash,sh,ksh,csh,tcsh
min_uid 1000
min_gid 1000
user_lists none
xuser_lists none
projects none
xprojects none
enforce_project false
enforce_user auto
load_report_time 00:00:40
max_unheard 00:05:00
reschedule_unknown 00:00:00
loglevel log_warning
administrator_mail root
set_token_cmd none
pag_cmd none
token_extend_time none
shepherd_cmd none
qmaster_params none
execd_params none
reporting_params accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00
finished_jobs 100
gid_range 65400-65500
qlogin_command builtin
qlogin_daemon builtin
rlogin_command builtin
rlogin_daemon builtin
rsh_command builtin
rsh_daemon builtin
max_aj_instances 2000
max_aj_tasks 75000
max_u_jobs 0
max_jobs 0
auto_user_oticket 0
auto_user_fshare 0
auto_user_default_project none
auto_user_delete_time 86400
delegated_file_staging false
reprioritize 0
jsv_url none
jsv_allowed_mod ac,h,i,e,o,j,M,N,p,w
EOF
	return "$changed"
}

# sge_qconf ARGS... runs qconf bounded, logging to SGE_CONF_DIR/qconf.log; dies with its output.
sge_qconf() {
	if ! timeout 30 qconf "$@" >>"$SGE_CONF_DIR/qconf.log" 2>&1; then
		die --log "$SGE_CONF_DIR/qconf.log" "qconf $* failed"
	fi
}

# apply_sge_configs loads the files of write_sge_configs into the running qmaster: -A for what
# does not exist yet, -M for what does. Then it records SGE_APPLIED.
apply_sge_configs() {
	local host list
	host=$(sge_host)
	say "configuring Grid Engine (queue $SGE_QUEUE, $SGE_SLOTS slots, pe $SGE_PE)"
	: >"$SGE_CONF_DIR/qconf.log"
	list=$(timeout 30 qconf -ss 2>/dev/null || true)
	grep -qxF "$host" <<<"$list" || sge_qconf -as "$host"
	list=$(timeout 30 qconf -sel 2>/dev/null || true)
	if grep -qxF "$host" <<<"$list"; then sge_qconf -Me "$SGE_CONF_DIR/exechost"; else sge_qconf -Ae "$SGE_CONF_DIR/exechost"; fi
	list=$(timeout 30 qconf -spl 2>/dev/null || true)
	if grep -qxF "$SGE_PE" <<<"$list"; then sge_qconf -Mp "$SGE_CONF_DIR/pe"; else sge_qconf -Ap "$SGE_CONF_DIR/pe"; fi
	list=$(timeout 30 qconf -sql 2>/dev/null || true)
	if grep -qxF "$SGE_QUEUE" <<<"$list"; then sge_qconf -Mq "$SGE_CONF_DIR/queue"; else sge_qconf -Aq "$SGE_CONF_DIR/queue"; fi
	sge_qconf -Msconf "$SGE_CONF_DIR/sconf"
	sge_qconf -Mconf "$SGE_CONF_DIR/global"
	date -u +%FT%TZ >"$SGE_APPLIED"
}

sge_qmaster_answers() { timeout 10 qconf -sh >/dev/null 2>&1; }

# sge_queue_ready succeeds when the queue instance on this host has no state flags: sge_execd has
# reported its load (until then it is "au", alarm/unknown) and nothing disabled it.
sge_queue_ready() {
	local line
	line=$(timeout 10 qstat -f -q "$SGE_QUEUE@$(sge_host)" 2>/dev/null | grep "^$SGE_QUEUE@") || return 1
	# queuename qtype resv/used/tot. load_avg arch [states]
	[[ $(awk '{print $6}' <<<"$line") == "" ]]
}

# ensure_gridengine configures and starts Grid Engine. host_aliases first: when 127.0.0.1
# reverse-resolves to "localhost" but the host calls itself something else, the qmaster sees its
# clients as "localhost", a host it does not know, and answers every qconf with "commlib error:
# access denied"; the alias makes both names one host.
ensure_gridengine() {
	local host node changed=no
	node=$(node_name)
	host=$(sge_host)
	[[ -d $SGE_COMMON ]] || die "$SGE_COMMON is missing: the gridengine packages were installed without configuration (debconf)"
	# sge_qmaster rewrites act_qmaster at start with the name it resolves itself to, the aliased one.
	write_file "$SGE_COMMON/act_qmaster" 644 sgeadmin:sgeadmin <<<"$host" && changed=yes
	if [[ $host != "$node" ]]; then
		write_file "$SGE_COMMON/host_aliases" 644 sgeadmin:sgeadmin <<<"$host $node" && changed=yes
	elif [[ -e $SGE_COMMON/host_aliases ]]; then
		rm -f "$SGE_COMMON/host_aliases"
		changed=yes
	fi
	if [[ $changed == yes ]]; then
		# Both daemons read these files only at start.
		stop_daemon sge_execd "$(sge_execd_pid_file)" sge_execd 30
		stop_daemon sge_qmaster "$SGE_QMASTER_PID_FILE" sge_qmaster 30
	fi
	ensure_dir /run/gridengine 755 sgeadmin:sgeadmin
	if ! pid_alive "$SGE_QMASTER_PID_FILE" sge_qmaster >/dev/null; then
		say "starting sge_qmaster"
		run_daemon /usr/sbin/sge_qmaster >/dev/null 2>&1 ||
			die --log "$SGE_QMASTER_SPOOL/messages" "sge_qmaster failed to start"
		wait_for --daemon "$SGE_QMASTER_PID_FILE" sge_qmaster 30 "sge_qmaster to answer qconf" \
			"$SGE_QMASTER_SPOOL/messages" sge_qmaster_answers
	fi
	if write_sge_configs || [[ ! -s $SGE_APPLIED ]]; then
		wait_for --daemon "$SGE_QMASTER_PID_FILE" sge_qmaster 30 "sge_qmaster to answer qconf" \
			"$SGE_QMASTER_SPOOL/messages" sge_qmaster_answers
		apply_sge_configs
	fi
	if ! pid_alive "$(sge_execd_pid_file)" sge_execd >/dev/null; then
		say "starting sge_execd"
		run_daemon /usr/sbin/sge_execd >/dev/null 2>&1 ||
			die --log "$SGE_EXECD_SPOOL/$host/messages" "sge_execd failed to start"
		wait_for --daemon "$(sge_execd_pid_file)" sge_execd 60 "queue $SGE_QUEUE@$host to leave state 'au' (sge_execd to report)" \
			"$SGE_EXECD_SPOOL/$host/messages" sge_queue_ready
	fi
}

# install_emulator_file SRC DEST MODE copies SRC to DEST when their content or mode differ.
install_emulator_file() {
	write_file "$2" "$3" root:root <"$1" || true
}

# ensure_emulators installs the PBS Pro and LSF emulators from scripts/emulators into EMU_DIR,
# their site settings, and their spool dirs (one world-writable, sticky dir per scheduler: every
# user's emulator commands keep their jobs there; the id counter is a 0666 file under flock).
ensure_emulators() {
	local src lib f kind
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../emulators" && pwd) || die "scripts/emulators is missing"
	lib=$EMU_DIR/lib
	ensure_dir "$EMU_DIR" 755 root:root
	ensure_dir "$lib" 755 root:root
	for f in emucommon.py pbspro.py lsf.py moab.py; do
		install_emulator_file "$src/$f" "$lib/$f" 644
	done
	for kind in pbspro lsf; do
		ensure_dir "$EMU_DIR/$kind" 755 root:root
		ensure_dir "$EMU_DIR/$kind/bin" 755 root:root
		ensure_dir "$EMU_SPOOL/$kind" 1777 root:root
		[[ -e $EMU_SPOOL/$kind/seq ]] || printf '0\n' >"$EMU_SPOOL/$kind/seq"
		ensure_attrs "$EMU_SPOOL/$kind/seq" 666 root:root
	done
	ensure_dir "$EMU_SPOOL" 755 root:root
	# Each command is a small executable file naming its emulator; they all run the same module.
	for f in qsub qstat qdel qselect; do
		install_emulator_file "$src/bin/pbspro-$f" "$EMU_DIR/pbspro/bin/$f" 755
	done
	for f in bsub bjobs bkill bhist; do
		install_emulator_file "$src/bin/lsf-$f" "$EMU_DIR/lsf/bin/$f" 755
	done
	# Moab schedules the PBS Pro emulator's jobs, as Moab does a resource manager's: its commands
	# sit next to the resource manager's qselect and qstat, as on a Moab/Torque login node.
	ensure_dir "$EMU_DIR/moab" 755 root:root
	ensure_dir "$EMU_DIR/moab/bin" 755 root:root
	for f in msub showq checkjob mjobctl canceljob; do
		install_emulator_file "$src/bin/moab-$f" "$EMU_DIR/moab/bin/$f" 755
	done
	for f in qselect qstat; do
		[[ -L $EMU_DIR/moab/bin/$f ]] || ln -sfn "$EMU_DIR/pbspro/bin/$f" "$EMU_DIR/moab/bin/$f"
	done
	write_file "$EMU_DIR/pbspro/emulator.conf" 644 root:root <<EOF || true
# Generated by ferry scripts/cluster-up: site settings of the PBS Pro emulator. Edits are overwritten.
server=$PBS_SERVER_NAME
host=$(node_name)
queues=workq
default_queue=workq
# kill_delay: seconds between the SIGTERM and the SIGKILL of qdel or a walltime kill (PBS default 10)
kill_delay=10
# queue_delay: seconds a new job stays in state Q before it runs
queue_delay=0.5
# job_history_duration: seconds qstat -x shows a finished job (PBS default two weeks)
job_history_duration=1209600
EOF
	write_file "$EMU_DIR/lsf/emulator.conf" 644 root:root <<EOF || true
# Generated by ferry scripts/cluster-up: site settings of the LSF emulator. Edits are overwritten.
cluster=$LSF_CLUSTER_NAME
host=$(node_name)
queues=normal short
default_queue=normal
# clean_period: seconds a finished job stays in bjobs (LSF's CLEAN_PERIOD, default 3600)
clean_period=$LSF_CLEAN_PERIOD
# terminate_interval: seconds between SIGINT+SIGTERM and SIGKILL of bkill or a run limit (JOB_TERMINATE_INTERVAL, default 10)
terminate_interval=10
# queue_delay: seconds a new job stays PEND before it runs
queue_delay=0.5
# history_seconds: how long bhist knows a finished job (LSF: as long as its event files last)
history_seconds=604800
# minute_seconds: EMULATOR-ONLY, not an LSF setting: in queue "short" a minute of -W/-wt lasts 3 s,
# so the run-limit test takes seconds instead of minutes; every other queue counts real minutes
minute_seconds=short:3
EOF
}

# schedulers_json prints cluster.json's "schedulers" object: for each scheduler whether it is
# real or emulated, the directory its commands are in (put it in front of PATH, or call the
# commands by absolute path), and the environment they need (none: the directories are enough).
schedulers_json() {
	cat <<EOF
  "schedulers": {
    "slurm": {"path": "/usr/bin", "env": {}, "emulated": false, "cluster": "$CLUSTER_NAME", "queue": "debug", "min_job_age_seconds": $MIN_JOB_AGE},
    "sge": {"path": "/usr/bin", "env": {"SGE_ROOT": "$SGE_ROOT", "SGE_CELL": "$SGE_CELL"}, "emulated": false, "queue": "$SGE_QUEUE", "parallel_env": "$SGE_PE", "kill": "SIGKILL"},
    "torque": {"path": "$TORQUE_BIN", "env": {}, "emulated": false, "backed_by": "slurm", "queue": "debug", "min_job_age_seconds": $MIN_JOB_AGE},
    "pbspro": {"path": "$EMU_DIR/pbspro/bin", "env": {}, "emulated": true, "server": "$PBS_SERVER_NAME", "queue": "workq", "history": true, "spool": "$EMU_SPOOL/pbspro"},
    "lsf": {"path": "$EMU_DIR/lsf/bin", "env": {}, "emulated": true, "cluster": "$LSF_CLUSTER_NAME", "queue": "normal", "clean_period_seconds": $LSF_CLEAN_PERIOD, "spool": "$EMU_SPOOL/lsf"},
    "moab": {"path": "$EMU_DIR/moab/bin", "env": {}, "emulated": true, "backed_by": "pbspro", "queue": "workq", "spool": "$EMU_SPOOL/pbspro"}
  },
EOF
}
