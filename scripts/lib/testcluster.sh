# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this
# testcluster.sh: what scripts/cluster-up, cluster-down and cluster-status share: the names and
# paths of the test cluster, and the helpers that find, start and stop its daemons by pid file.
# It is sourced, never run. Everything here must be safe to call when the thing it looks at is absent.
#
# The cluster is one Debian 12 machine with no systemd: an OpenSSH login node on 127.0.0.1:2222,
# Linux users with a shared group and a setgid work dir, a single-node Slurm with accounting
# (munged, mariadbd, slurmdbd, slurmctld, slurmd), a single-node Grid Engine (sge_qmaster,
# sge_execd), Slurm's Torque wrappers in their own directory, and the PBS Pro and LSF emulators
# (scripts/emulators), every daemon started by hand.

STATE_DIR=/var/lib/ferry-testcluster
KEY_DIR=$STATE_DIR/keys
CLUSTER_JSON=$STATE_DIR/cluster.json
LOCK_FILE=/run/lock/ferry-testcluster.lock

SSH_HOST=127.0.0.1
SSH_PORT=2222
SSHD_CONFIG=$STATE_DIR/sshd_config
SSHD_HOST_KEY=$STATE_DIR/ssh_host_ed25519_key
SSHD_PID_FILE=$STATE_DIR/sshd.pid
SSHD_LOG=$STATE_DIR/sshd.log

SHARED_GROUP=ferryshare
SHARED_GID=2900
WORK_PARENT=/srv/ferry
WORK_DIR=$WORK_PARENT/work

# The test users: name uid key-type passphrase shared(yes/no). The login shell is chosen by
# user_shell below because tcsh's path is only known once the package is installed.
# john.smith has a dotted name, as accounts from Active Directory or LDAP often do.
TEST_USERS=(alice bob carol dave john.smith)
declare -A USER_UID=([alice]=2901 [bob]=2902 [carol]=2903 [dave]=2904 [john.smith]=2905)
declare -A USER_KEY_TYPE=([alice]=ed25519 [bob]=ed25519 [carol]=rsa4096 [dave]=ed25519 [john.smith]=ed25519)
declare -A USER_PASSPHRASE=([alice]='' [bob]='bob-test-passphrase' [carol]='' [dave]='' [john.smith]='')
declare -A USER_SHARED=([alice]=yes [bob]=yes [carol]=yes [dave]=no [john.smith]=yes)

CLUSTER_NAME=ferrytest
SLURM_ACCOUNT=ferry
SLURM_CONF=/etc/slurm/slurm.conf
SLURMDBD_CONF=/etc/slurm/slurmdbd.conf
SLURM_RUN_DIR=/run/slurm
SLURM_LOG_DIR=/var/log/slurm
SLURMCTLD_STATE_DIR=/var/spool/slurmctld
SLURMD_SPOOL_DIR=/var/spool/slurmd
SLURMCTLD_PID_FILE=$SLURM_RUN_DIR/slurmctld.pid
SLURMD_PID_FILE=$SLURM_RUN_DIR/slurmd.pid
SLURMDBD_PID_FILE=$SLURM_RUN_DIR/slurmdbd.pid
# MIN_JOB_AGE: seconds a finished job stays visible to squeue/scontrol (see slurm.conf comment).
MIN_JOB_AGE=10

MUNGE_PID_FILE=/run/munge/munged.pid
MYSQL_RUN_DIR=/run/mysqld
MYSQL_PID_FILE=$MYSQL_RUN_DIR/mysqld.pid
MYSQL_DATA_DIR=/var/lib/mysql
MYSQL_LOG=/var/log/mysql/error.log
SLURM_DB=slurm_acct_db
SLURM_DB_USER=slurm
# The database only listens on 127.0.0.1 of a throwaway test machine, so a fixed password is fine.
SLURM_DB_PASS=ferry-test-slurmdbd


# Grid Engine (Debian's gridengine-* 8.1.9). The client commands in /usr/bin are Debian wrapper
# scripts that set SGE_ROOT and SGE_CELL from /etc/default/gridengine, so they work in any
# non-interactive ssh session, bash or tcsh, without a profile.
SGE_ROOT=/var/lib/gridengine
SGE_CELL=default
SGE_COMMON=$SGE_ROOT/$SGE_CELL/common
SGE_QMASTER_SPOOL=/var/spool/gridengine/qmaster
SGE_EXECD_SPOOL=/var/spool/gridengine/execd
SGE_QMASTER_PID_FILE=$SGE_QMASTER_SPOOL/qmaster.pid
SGE_QUEUE=all.q
SGE_PE=smp
SGE_SLOTS=16
SGE_CONF_DIR=$STATE_DIR/sge
# Written into the qmaster's own spool after the configuration was applied, so a reinstalled
# Grid Engine (a fresh spool) is configured again.
SGE_APPLIED=$SGE_QMASTER_SPOOL/ferry-configured

# Slurm's Torque wrappers (package slurm-wlm-torque). The package Conflicts with gridengine-client
# (both ship /usr/bin/qsub, qstat, qdel), so it is never installed through dpkg: its .deb is
# unpacked and its commands copied into TORQUE_BIN, leaving /usr/bin to Grid Engine.
TORQUE_DIR=/opt/ferry-torque
TORQUE_BIN=$TORQUE_DIR/bin

# The PBS Pro and LSF emulators (scripts/emulators): test infrastructure, not real schedulers.
EMU_DIR=/opt/ferry-emulators
EMU_SPOOL=/var/spool/ferry-emulators
PBS_SERVER_NAME=ferrypbs
LSF_CLUSTER_NAME=ferrylsf
# LSF_CLEAN_PERIOD: seconds a finished job stays in bjobs before only bhist knows it (LSF's
# CLEAN_PERIOD, 3600 by default; short here so tests see the fallback, like Slurm's MinJobAge).
LSF_CLEAN_PERIOD=10

# sge_host prints the name Grid Engine knows this host by: "localhost" when 127.0.0.1
# reverse-resolves to localhost and the host calls itself something else (see host_aliases in
# cluster-up), else the short host name.
sge_host() {
	local rev
	rev=$(getent hosts 127.0.0.1 | awk '{print $2; exit}')
	if [[ -n $rev && $rev != "$(node_name)" ]]; then
		printf '%s\n' "$rev"
	else
		node_name
	fi
}

# sge_execd_pid_file prints the pid file of sge_execd (under its per-host spool dir).
sge_execd_pid_file() { printf '%s/%s/execd.pid\n' "$SGE_EXECD_SPOOL" "$(sge_host)"; }

# say prints a progress line. Everything goes to stderr so stdout stays free for callers.
say() { printf '%s: %s\n' "${PROG:-testcluster}" "$*" >&2; }

# die prints an error and exits 1. With a log file as the first argument (`die --log FILE msg`),
# it prints that log's tail first, which is where the reason for a daemon's failure is.
die() {
	if [[ ${1:-} == --log ]]; then
		local log=$2
		shift 2
		if [[ -r $log ]]; then
			printf '%s: --- last lines of %s ---\n' "${PROG:-testcluster}" "$log" >&2
			tail -n 30 "$log" >&2 || true
			printf '%s: ---\n' "${PROG:-testcluster}" >&2
		fi
	fi
	printf '%s: error: %s\n' "${PROG:-testcluster}" "$*" >&2
	exit 1
}

# take_lock serialises cluster-up/-down/-status runs (tests in parallel packages may all call
# cluster-up). Waits at most 15 minutes: a from-nothing install takes well under one.
take_lock() {
	exec 9>"$LOCK_FILE"
	flock -w 900 9 || die "another cluster-up/-down still holds $LOCK_FILE after 15 min"
}

# run_daemon CMD...: runs CMD (a daemon, or what starts one) with a clean environment, stdin from
# /dev/null and without the lock's fd. Some daemons (munged, mariadbd, slurmdbd) keep inherited fds
# open for life: with the lock fd they would hold the lock forever and the next run would hang.
# The caller's environment (a CI runner's, a developer's) must not leak into slurmd (and from there
# into jobs' prolog/epilog) or into the login node either.
run_daemon() {
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@" </dev/null 9>&-
}

# pid_alive PIDFILE COMM: prints the pid and succeeds when PIDFILE names a live process whose
# command name is COMM. A zombie counts as dead: PID 1 on these machines reaps orphans only every
# ~2 s, so a daemon that just exited still has a /proc entry for a while. Checking COMM guards
# against a stale pid file whose pid was reused.
pid_alive() {
	local file=$1 comm=$2 pid='' stat='' state name=''
	# `read`, not $(<file): in bash 5.2 a failed $(<file) ends the whole script even under `||`,
	# and a daemon that is exiting removes its pid file between any check and the read. `read`
	# fails on a last line without newline but still fills the variable, hence the -n tests.
	{ read -r pid <"$file"; } 2>/dev/null || [[ -n $pid ]] || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || [[ -n $stat ]] || return 1
	{ read -r name <"/proc/$pid/comm"; } 2>/dev/null || [[ -n $name ]] || return 1
	# Field 3 of /proc/PID/stat is the state; field 2 (comm in parentheses) may contain spaces.
	state=${stat##*) }
	state=${state%% *}
	[[ $state != Z && $state != X && $name == "$comm" ]] || return 1
	printf '%s\n' "$pid"
}

# stop_daemon NAME PIDFILE COMM TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL and wait
# up to 5 s more. Succeeds at once when the daemon is not running.
stop_daemon() {
	local name=$1 file=$2 comm=$3 timeout=$4 pid i
	if ! pid=$(pid_alive "$file" "$comm"); then
		return 0
	fi
	say "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		pid_alive "$file" "$comm" >/dev/null || return 0
		sleep 0.1
	done
	say "$name did not stop within ${timeout}s: sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_alive "$file" "$comm" >/dev/null || return 0
		sleep 0.1
	done
	die "$name (pid $pid) survived SIGKILL"
}

# wait_for [--daemon PIDFILE COMM] SECONDS DESCRIPTION LOG CMD...: runs CMD every 0.2 s until it
# succeeds; after SECONDS of wall time it dies with DESCRIPTION and the tail of LOG. With --daemon
# it dies as soon as that daemon is gone (after a 3 s grace for daemonising and writing its pid
# file) instead of waiting out the time. CMD must bound itself (`timeout`): a Slurm client whose
# daemon is down blocks ~20 s per call.
wait_for() {
	local pidfile='' comm=''
	if [[ $1 == --daemon ]]; then
		pidfile=$2 comm=$3
		shift 3
	fi
	local seconds=$1 what=$2 log=$3 start=$SECONDS
	shift 3
	while ((SECONDS - start < seconds)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if [[ -n $pidfile ]] && ((SECONDS - start >= 3)) && ! pid_alive "$pidfile" "$comm" >/dev/null; then
			die --log "$log" "$comm exited while waiting for $what"
		fi
		sleep 0.2
	done
	die --log "$log" "timed out after ${seconds}s waiting for $what"
}

# ensure_dir PATH MODE OWNER:GROUP creates the dir PATH (and its parents) if absent and sets its mode
# (as `stat -c %a` prints it: 755, 2750) and owner. Unlike `install -d`, it touches nothing that is
# already right, so a re-run changes no ctime.
ensure_dir() {
	[[ -d $1 ]] || mkdir -p "$1"
	ensure_attrs "$@"
}

# ensure_attrs PATH MODE OWNER:GROUP sets PATH's mode and owner where they differ. chown first: it
# clears setuid/setgid bits that the chmod then sets.
ensure_attrs() {
	[[ $(stat -c '%a %U:%G' "$1") == "$2 $3" ]] && return 0
	chown "$3" "$1"
	chmod "$2" "$1"
}

# mariadb_alive succeeds when the MariaDB server answers a query over the root unix socket.
mariadb_alive() { mariadb --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; }

# start_mariadb starts mariadbd by hand (no systemd, no init script) unless it is already running,
# and waits until it answers. Initialises the data dir if the package left none.
start_mariadb() {
	ensure_dir "$MYSQL_RUN_DIR" 755 mysql:mysql
	ensure_dir "$(dirname "$MYSQL_LOG")" 2750 mysql:adm
	if ! pid_alive "$MYSQL_PID_FILE" mariadbd >/dev/null; then
		if [[ ! -d $MYSQL_DATA_DIR/mysql ]]; then
			say "initialising the MariaDB data dir"
			mariadb-install-db --user=mysql --datadir="$MYSQL_DATA_DIR" --skip-test-db \
				>"$STATE_DIR/mariadb-install.log" 2>&1 ||
				die --log "$STATE_DIR/mariadb-install.log" "mariadb-install-db failed"
		fi
		say "starting mariadbd"
		# mariadbd does not daemonise: setsid -f forks it into its own session and returns, and its
		# stdio goes to /dev/null so that a caller reading our output through a pipe is not kept
		# waiting for the pipe to close. (Not `cmd &`: that leaves a bash subshell behind as its
		# parent, holding the lock fd.)
		# innodb_lock_wait_timeout=900 is what slurmdbd asks for. (Its other warning at start, on
		# innodb_buffer_pool_size, is harmless for a test database.)
		run_daemon setsid -f /usr/sbin/mariadbd --user=mysql --pid-file="$MYSQL_PID_FILE" \
			--log-error="$MYSQL_LOG" --bind-address=127.0.0.1 --innodb-lock-wait-timeout=900 \
			>/dev/null 2>&1
	fi
	wait_for --daemon "$MYSQL_PID_FILE" mariadbd 60 "mariadbd to answer on its unix socket" "$MYSQL_LOG" mariadb_alive
}

# user_shell NAME prints the login shell the test user NAME must have.
user_shell() {
	if [[ $1 == carol ]]; then
		tcsh_path
	else
		printf '/bin/bash\n'
	fi
}

# tcsh_path prints where tcsh is installed (/usr/bin/tcsh on Debian 12).
tcsh_path() {
	local p
	for p in /usr/bin/tcsh /bin/tcsh; do
		if [[ -x $p ]]; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	command -v tcsh || die "tcsh is not installed"
}

# node_name prints the Slurm node name: the short host name.
node_name() { hostname -s; }

# node_state prints the long Slurm state of this node (idle, mixed, allocated, down*, drained, ...).
node_state() { timeout 10 sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n1; }
