# EMULATOR of Altair PBS Professional / OpenPBS commands (qsub, qstat, qdel, qselect) for Ferry's
# tests: NOT PBS. Installed by scripts/cluster-up as /opt/ferry-emulators/pbspro/bin/{qsub,qstat,
# qdel,qselect};
# each of those small files runs main() here with its own name. It accepts the command lines
# Ferry's pbs adapter sends (and the usual ones people type), keeps each job as a JSON file in
# /var/spool/ferry-emulators/pbspro, and runs the job for real as the calling user (see
# emucommon.py). It emulates one server, "ferrypbs" (emulator.conf: server=), with job history
# enabled (job_history_enable = True), so finished jobs stay visible to qstat -x in state F for
# job_history_duration (emulator.conf; two weeks by default, as in PBS Pro).
#
# Output reproduced byte for byte from real PBS Pro / OpenPBS captures in /work/shared/fixtures:
#   qsub                       "<seq>.<server>\n"                       pbs-qsub-1.txt
#   qstat -f -F json [-x]      timestamp/pbs_version/pbs_server/Jobs, 4-space indent,
#                              "key":value, numbers unquoted, nested Resource_List,
#                              resources_used and Variable_List          pbspro-qstat-json-1/-3/-5
#   qstat -f [-x]              "Job Id: ID", 4-space "name = value", values wrapped at column 79
#                              with TAB continuation lines, comma lists broken between items,
#                              a blank line after each job              pbspro-qstat-f-1.txt
#   qstat [ID...]              the default table                        pbspro-qstat-7/-9.txt
#   qstat -u USER / -a / -n / -s   the alternate table                  pbspro-qstat-1.txt
#   qselect [-x] [-u USER]     one full job id a line, nothing when none matches (qselect(1B);
#                              no fixture)
# The attribute order is OpenPBS's (as in those captures). Attributes of finished jobs that no
# fixture shows (obittime, Exit_status, Stageout_status, history_timestamp) follow the OpenPBS
# order as documented, not a capture.
#
# Semantics (real PBS Pro's, as documented): qsub reads #PBS directives up to the first command
# line (command-line options win; of competing directives the first wins); the job runs in the
# user's HOME with the -S shell (else the login shell); -o/-e/-j oe as in PBS; walltime is
# enforced by SIGTERM, then SIGKILL after kill_delay (10 s), Exit_status -29
# (JOB_EXEC_KILL_WALLTIME) and "=>> PBS: job killed: walltime N exceeded limit M" on stderr;
# qdel sends SIGTERM, then SIGKILL after kill_delay, and the job ends F with substate 91;
# Exit_status is the job's exit code, or 256+signal when a signal ended it. Errors and exit codes:
# "qstat: Unknown Job Id ID" (153), "qstat: ID Job has finished, use -x or -H to obtain historical
# job information" (35), "qdel: Unauthorized Request  ID" (159), "qdel: Unknown Job Id ID" (153),
# "qdel: Job has finished ID" (35), "qsub: Unknown queue" (170), "qsub: illegal -N value" (2).
# Not emulated (refused with a message naming the emulator): job arrays (-J), interactive jobs
# (-I), -W block=true, -a start times, and qstat's queue/server views (-Q, -B).

import json
import os
import shlex
import signal
import sys
import time

import emucommon as emu

KIND = "pbspro"
PBS_VERSION = "23.06.06"
DEFAULTS = {
    "server": "ferrypbs",
    "queues": "workq",
    "default_queue": "workq",
    "kill_delay": "10",
    "queue_delay": "0.5",
    "job_history_duration": "1209600",
}

# PBS error numbers, as qsub/qstat/qdel exit with them (pbs_errno modulo 256).
E_UNKJOBID = 153  # PBSE_UNKJOBID 15001
E_PERM = 159  # PBSE_PERM 15007
E_UNKQUE = 170  # PBSE_UNKQUE 15018
E_HISTJOB = 35  # PBSE_HISTJOBID 15139

SUBSTATE = {"queued": 10, "held": 20, "running": 42, "exiting": 51, "finished": 92, "deleted": 91, "failed": 93}
JOB_EXEC_KILL_WALLTIME = -29


def conf():
    return emu.load_conf(KIND, DEFAULTS)


# ---------------------------------------------------------------------------------------------
# qsub

# Options that take a value, and flags, of PBS Pro's qsub.
QSUB_VALUE = set("aAcCeJjklmMNoPpqrSuvWG")
QSUB_FLAG = set("hIVXzf")


class Usage(Exception):
    pass


def parse_opts(args, value_opts, flag_opts):
    """getopt-style parsing: returns ([(opt, value)], operands). Stops at the first operand."""
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            c = a[j]
            if c in flag_opts:
                out.append((c, None))
                j += 1
                continue
            if c in value_opts:
                if j + 1 < len(a):
                    out.append((c, a[j + 1 :]))
                else:
                    i += 1
                    if i >= len(args):
                        raise Usage("option requires an argument -- '%s'" % c)
                    out.append((c, args[i]))
                break
            raise Usage("invalid option -- '%s'" % c)
        i += 1
    return out, args[i:]


QSUB_USAGE = """usage: qsub [-a date_time] [-A account_string] [-c interval]
	[-C directive_prefix] [-e path] [-f ] [-h ] [-I [-X]] [-j oe|eo] [-J X-Y[:Z]]
	[-k keep] [-l resource_list] [-m mail_options] [-M user_list]
	[-N jobname] [-o path] [-p priority] [-P project] [-q queue] [-r y|n]
	[-R o|e|oe] [-S path] [-u user_list] [-W otherattributes=value...]
	[-S path] [-u user_list] [-W otherattributes=value...]
	[-v variable_list] [-V ] [-z] [script | -- command [arg1 ...]]
       qsub --version
"""


def directives(script, prefix):
    """Return the option words of the script's directives: lines starting with prefix ("#PBS")
    before the first line that is neither blank nor a comment."""
    words = []
    for line in script.splitlines():
        s = line.strip()
        if s == "":
            continue
        if s.startswith(prefix):
            rest = s[len(prefix) :]
            if rest and not rest[0].isspace():
                continue
            try:
                words.extend(shlex.split(rest, comments=False))
            except ValueError:
                words.extend(rest.split())
            continue
        if s.startswith("#"):
            continue
        break
    return words


def merge_resources(res, spec, first_wins):
    for item in spec.split(","):
        if "=" not in item:
            raise ValueError(item)
        k, v = item.split("=", 1)
        if first_wins and k in res:
            continue
        res[k] = v


def qsub(argv):
    c = conf()
    try:
        cmd_opts, operands = parse_opts(argv, QSUB_VALUE, QSUB_FLAG)
    except Usage as e:
        sys.stderr.write("qsub: %s\n%s" % (e, QSUB_USAGE))
        return 2
    if len(operands) > 1:
        sys.stderr.write(QSUB_USAGE)
        return 2
    cwd = os.getcwd()
    if operands:
        path = operands[0]
        try:
            with open(path, "rb") as f:
                script = f.read().decode("utf-8", "surrogateescape")
        except OSError as e:
            sys.stderr.write("qsub: script file:: %s\n" % e.strerror)
            return 2
        default_name = os.path.basename(path)
        script_arg = path
    else:
        script = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        default_name = "STDIN"
        script_arg = None
    prefix = "#PBS"
    for o, v in cmd_opts:
        if o == "C":
            prefix = v
    try:
        dir_opts, extra = parse_opts(directives(script, prefix), QSUB_VALUE, QSUB_FLAG)
    except Usage as e:
        sys.stderr.write("qsub: directive error: %s\n" % e)
        return 2
    # Directives first (the first of competing directives wins), then the command line (wins).
    attrs, res, variables = {}, {}, []
    hold = False
    export_all = False
    try:
        for source, opts in (("directive", dir_opts), ("command", cmd_opts)):
            for o, v in opts:
                first_wins = source == "directive"
                if o in "IJ" or (o == "W" and "block" in v.lower()) or o == "a":
                    sys.stderr.write(
                        "qsub: option -%s is not supported by the Ferry PBS Pro emulator (test infrastructure)\n" % o
                    )
                    return 2
                if o == "l":
                    merge_resources(res, v, first_wins)
                elif o == "v":
                    variables.extend(x for x in v.split(",") if x)
                elif o == "V":
                    export_all = True
                elif o == "h":
                    hold = True
                elif o in "hzfX":
                    pass
                else:
                    if first_wins and o in attrs:
                        continue
                    attrs[o] = v
    except ValueError:
        sys.stderr.write("qsub: illegal -l value\n" + QSUB_USAGE)
        return 2

    name = attrs.get("N", default_name)
    if not name or len(name) > 236 or not name[0].isalpha() or any(ch in name for ch in "/\\@:*? \t\n"):
        sys.stderr.write("qsub: illegal -N value\n" + QSUB_USAGE)
        return 2
    queue = attrs.get("q", c["default_queue"]).split("@")[0] or c["default_queue"]
    if queue not in c["queues"].split():
        sys.stderr.write("qsub: Unknown queue\n")
        return E_UNKQUE
    walltime = None
    if "walltime" in res:
        try:
            walltime = emu.parse_duration(res["walltime"])
        except ValueError:
            sys.stderr.write("qsub: Illegal attribute or resource value Resource_List.walltime\n")
            return 188
        res["walltime"] = emu.hhmmss(walltime)
    join = attrs.get("j", "n")
    if join not in ("n", "oe", "eo"):
        sys.stderr.write("qsub: illegal -j value\n" + QSUB_USAGE)
        return 2
    rerun = attrs.get("r", "y")
    if rerun not in ("y", "n"):
        sys.stderr.write("qsub: illegal -r value\n" + QSUB_USAGE)
        return 2

    user, uid, gid, group, home, login_shell = emu.user_info()
    spool = emu.Spool(c["spool"])
    seq = spool.next_id()
    jobid = "%d.%s" % (seq, c["server"])
    host = c["host"]

    def out_path(opt, suffix):
        p = attrs.get(opt)
        if p is None:
            p = os.path.join(cwd, "%s.%s%d" % (name, suffix, seq))
        else:
            if ":" in p:
                p = p.split(":", 1)[1]
            if not p.startswith("/"):
                p = os.path.join(cwd, p)
            if os.path.isdir(p):
                p = os.path.join(p, "%s.%s%d" % (name, suffix, seq))
        return p

    ncpus = "1"
    select = res.get("select")
    if select:
        for part in select.split(":")[1:]:
            if part.startswith("ncpus="):
                ncpus = part.split("=", 1)[1]
    elif "ncpus" in res:
        ncpus = res["ncpus"]
    resources = {"ncpus": int(ncpus) if ncpus.isdigit() else ncpus, "nodect": 1, "place": res.get("place", "pack")}
    resources["select"] = select or "1:ncpus=%s" % ncpus
    for k, v in res.items():
        if k not in ("select", "place", "ncpus"):
            resources[k] = v
    env = os.environ
    vlist = [("PBS_O_HOME", env.get("HOME", home))]
    if env.get("LANG"):
        vlist.append(("PBS_O_LANG", env["LANG"]))
    vlist.append(("PBS_O_LOGNAME", env.get("LOGNAME", user)))
    vlist.append(("PBS_O_PATH", env.get("PATH", "/usr/bin:/bin")))
    if env.get("MAIL"):
        vlist.append(("PBS_O_MAIL", env["MAIL"]))
    vlist.append(("PBS_O_SHELL", env.get("SHELL", login_shell)))
    vlist.append(("PBS_O_WORKDIR", cwd))
    vlist.append(("PBS_O_SYSTEM", os.uname().sysname))
    if export_all:
        for k in sorted(env):
            if not k.startswith("PBS_O_"):
                vlist.append((k, env[k]))
    for item in variables:
        if "=" in item:
            k, v = item.split("=", 1)
        else:
            k, v = item, env.get(item, "")
        vlist = [(a, b) for a, b in vlist if a != k] + [(k, v)]
    vlist.append(("PBS_O_QUEUE", queue))
    vlist.append(("PBS_O_HOST", host))

    now = time.time()
    script_file = spool.job_path(seq, "script")
    fd = os.open(script_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(script)
    submit_args = " ".join(shlex.quote(a) for a in argv) if argv else ""
    job = {
        "seq": seq,
        "id": jobid,
        "kind": KIND,
        "owner": user,
        "uid": uid,
        "gid": gid,
        "group": group,
        "home": home,
        "name": name,
        "queue": queue,
        "phase": emu.HELD if hold else emu.QUEUED,
        "submit_time": now,
        "queue_delay": float(c["queue_delay"]),
        "start_time": None,
        "end_time": None,
        "exit_code": None,
        "signal": None,
        "walltime": walltime,
        "cwd": cwd,
        "shell": attrs.get("S", "").split(",")[0].split("@")[0] or login_shell,
        "shell_path_list": attrs.get("S"),
        "script_file": script_file,
        "stdout": out_path("o", "o"),
        "stderr": out_path("e", "e"),
        "join": join,
        "keep": attrs.get("k", "n"),
        "mail_points": attrs.get("m", "a"),
        "rerunable": "True" if rerun == "y" else "False",
        "account": attrs.get("A"),
        "project": attrs.get("P", "_pbs_project_default"),
        "resources": resources,
        "moab": os.environ.get("FERRY_EMULATOR_MSUB") == "1",
        "variables": vlist,
        "submit_args": submit_args,
        "submit_host": host,
        "server": c["server"],
        "exec_host": host,
        "kill_delay": float(c["kill_delay"]),
        "hold_types": "u" if hold else "n",
    }
    spool.save(job)
    emu.run_as_supervisor(spool, job, KIND, os.path.abspath(__file__))
    sys.stdout.write(jobid + "\n")
    sys.stdout.flush()
    # Finished jobs leave the history after job_history_duration (two weeks by default).
    emu.prune(spool, float(c["job_history_duration"]))
    return 0


class ProPolicy(emu.Policy):
    """How PBS Pro's MoM runs and ends a job."""

    def popen_args(self, sup):
        j = sup.job
        self.kill_delay = j.get("kill_delay", 10)
        env = {
            "HOME": j["home"],
            "LOGNAME": j["owner"],
            "USER": j["owner"],
            "SHELL": j["shell"],
            "PATH": "/bin:/usr/bin",
            "PBS_JOBNAME": j["name"],
            "PBS_JOBID": j["id"],
            # Set only for jobs submitted through the Moab emulator's msub (moab.py), which
            # schedules this emulator's jobs as Moab does a PBS resource manager's.
            **({"MOAB_JOBID": str(j["seq"])} if j.get("moab") else {}),
            "PBS_QUEUE": j["queue"],
            "PBS_ENVIRONMENT": "PBS_BATCH",
            "PBS_JOBDIR": j["home"],
            "PBS_NODENUM": "0",
            "PBS_TASKNUM": "1",
            "ENVIRONMENT": "BATCH",
            "TMPDIR": "/tmp",
        }
        for k, v in j["variables"]:
            env[k] = v
        out, err = j["stdout"], j["stderr"]
        if j["join"] == "oe":
            err = None
        elif j["join"] == "eo":
            out, err = err, None
        # The job script runs with the -S shell (else the user's login shell), in HOME.
        return [j["shell"], j["script_file"]], j["home"], env, out, err, False

    def on_tick(self, sup, now):
        j = sup.job
        wall = j.get("walltime")
        if wall is not None and now - j["start_time"] > wall:
            used = int(now - j["start_time"])
            path = j["stderr"] if j["join"] == "n" else (j["stdout"] if j["join"] == "oe" else j["stderr"])
            try:
                with open(path, "a") as f:
                    f.write("=>> PBS: job killed: walltime %d exceeded limit %d\n" % (used, int(wall)))
            except OSError:
                pass
            sup.kill([signal.SIGTERM], "walltime")

    def on_cancel(self, sup, before_start):
        sup.job["end_reason"] = "deleted"
        if not before_start:
            sup.job["phase"] = emu.EXITING
            sup.kill([signal.SIGTERM], "deleted")

    def on_end(self, sup, status, rusage):
        finish_pbs(sup.job)


def finish_pbs(j):
    """Fill in Exit_status and substate of a finished job."""
    reason = j.get("end_reason", "normal")
    if reason == "walltime":
        j["exit_status"] = JOB_EXEC_KILL_WALLTIME
    elif reason == "failed-start":
        j["exit_status"] = -1  # JOB_EXEC_FAIL1
    elif j.get("start_time") is None:
        j["exit_status"] = None  # deleted before it ran: no exit status
    elif j.get("signal"):
        j["exit_status"] = 256 + j["signal"]
    else:
        j["exit_status"] = j.get("exit_code")
    if reason == "deleted":
        j["substate"] = SUBSTATE["deleted"]
    elif reason == "failed-start":
        j["substate"] = SUBSTATE["failed"]
    else:
        j["substate"] = SUBSTATE["finished"]


POLICIES = {KIND: ProPolicy}


# ---------------------------------------------------------------------------------------------
# qstat / qdel: turning a job into PBS attributes


def state_letter(j):
    return {"queued": "Q", "held": "H", "running": "R", "exiting": "E", "finished": "F"}[j["phase"]]


def substate(j):
    if j["phase"] == emu.FINISHED:
        return j.get("substate", SUBSTATE["finished"])
    return SUBSTATE[j["phase"]]


def attributes(j, now):
    """Return the job's attributes in OpenPBS order as (name, value) pairs; a value is a str, an
    int, or a list of (name, value) pairs for Resource_List, resources_used and Variable_List."""
    host = j["exec_host"]
    ran = j.get("start_time") is not None
    a = [("Job_Name", j["name"]), ("Job_Owner", "%s@%s" % (j["owner"], j["submit_host"]))]
    if ran:
        end = j.get("end_time") or now
        used = [
            ("cpupercent", 0),
            ("cput", emu.hhmmss(j.get("cpu_seconds", 0))),
            ("mem", "%dkb" % j.get("maxrss_kb", 0)),
            ("ncpus", j["resources"].get("ncpus", 1)),
            ("vmem", "%dkb" % j.get("maxrss_kb", 0)),
            ("walltime", emu.hhmmss(end - j["start_time"])),
        ]
        a.append(("resources_used", used))
    a += [("job_state", state_letter(j)), ("queue", j["queue"]), ("server", j["server"])]
    if j.get("account"):
        a.append(("Account_Name", j["account"]))
    a += [("Checkpoint", "u"), ("ctime", emu.ctime(j["submit_time"]))]
    a.append(("Error_Path", "%s:%s" % (j["submit_host"], j["stderr"])))
    if ran:
        a.append(("exec_host", "%s/0" % host))
        a.append(("exec_vnode", "(%s:ncpus=%s)" % (host, j["resources"].get("ncpus", 1))))
    a += [
        ("Hold_Types", j.get("hold_types", "n")),
        ("Join_Path", j["join"]),
        ("Keep_Files", j["keep"]),
        ("Mail_Points", j["mail_points"]),
        ("mtime", emu.ctime(j.get("mtime") or max(t for t in (j["submit_time"], j.get("start_time"), j.get("end_time")) if t))),
        ("Output_Path", "%s:%s" % (j["submit_host"], j["stdout"])),
        ("Priority", 0),
        ("qtime", emu.ctime(j["submit_time"])),
        ("Rerunable", j["rerunable"]),
        ("Resource_List", sorted(j["resources"].items())),
    ]
    if ran:
        a.append(("stime", emu.ctime(j["start_time"])))
        if j["phase"] == emu.FINISHED:
            a.append(("obittime", emu.ctime(j["end_time"])))
        a.append(("session_id", j.get("job_pid", 0)))
    if j.get("shell_path_list"):
        a.append(("Shell_Path_List", j["shell_path_list"]))
    if ran:
        a.append(("jobdir", j["home"]))
    a.append(("substate", substate(j)))
    a.append(("Variable_List", j["variables"]))
    comment = None
    if ran:
        at = time.strftime("%a %b %d at %H:%M", time.localtime(j["start_time"]))
        comment = "Job run at %s on (%s:ncpus=%s)" % (at, host, j["resources"].get("ncpus", 1))
        if j["phase"] == emu.FINISHED:
            comment += " and terminated" if j.get("end_reason") == "deleted" else " and finished"
    elif j["phase"] == emu.FINISHED:
        comment = "Job deleted"
    elif j["phase"] == emu.HELD:
        comment = "Not Running: Job held by user"
    if comment:
        a.append(("comment", comment))
    a.append(("etime", emu.ctime(j["submit_time"])))
    if ran:
        a.append(("run_count", 1))
    if j["phase"] == emu.FINISHED:
        if ran:
            a.append(("Stageout_status", 1))
        if j.get("exit_status") is not None:
            a.append(("Exit_status", j["exit_status"]))
    a.append(("Submit_arguments", j["submit_args"]))
    if j["phase"] == emu.FINISHED:
        a.append(("history_timestamp", int(j["end_time"])))
    a.append(("project", j["project"]))
    a.append(("Submit_Host", j["submit_host"]))
    return a


def json_value(v):
    """qstat's JSON rendering of a value: numbers (and all-digit strings) bare, else a string."""
    if isinstance(v, bool):
        return json.dumps(str(v))
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if s.isdigit():
        return s
    return json.dumps(s, ensure_ascii=False)


def render_json(jobs, server, now):
    out = ["{", '    "timestamp":%d,' % int(now), '    "pbs_version":"%s",' % PBS_VERSION]
    if not jobs:
        out.append('    "pbs_server":"%s"' % server)
        out.append("}")
        return "\n".join(out) + "\n"
    out.append('    "pbs_server":"%s",' % server)
    out.append('    "Jobs":{')
    for ji, j in enumerate(jobs):
        out.append('        "%s":{' % j["id"])
        attrs = attributes(j, now)
        for ai, (k, v) in enumerate(attrs):
            comma = "," if ai < len(attrs) - 1 else ""
            if isinstance(v, list):
                out.append('            "%s":{' % k)
                for ni, (nk, nv) in enumerate(v):
                    ncomma = "," if ni < len(v) - 1 else ""
                    out.append('                "%s":%s%s' % (nk, json_value(nv), ncomma))
                out.append("            }" + comma)
            else:
                out.append('            "%s":%s%s' % (k, json_value(v), comma))
        out.append("        }" + ("," if ji < len(jobs) - 1 else ""))
    out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


LINESIZE = 78


def wrap_attr(name, value, wide):
    """One attribute of qstat -f, wrapped as qstat does it: the value is printed item by item
    (items are separated by commas); an item that does not fit on the current line starts a new
    TAB-indented one, and an item longer than a line is cut every LINESIZE columns."""
    head = "    %s = " % name
    if wide:
        return head + value + "\n"
    out = [head]
    start = len(name) + 7
    first = True
    items = [i for i in value.split(",") if i != ""] if value else [""]
    for n, item in enumerate(items):
        if len(item) + start < LINESIZE:
            out.append(item)
            start += len(item)
        else:
            if not first:
                out.append("\n\t")
                start = 9
            for ch in item:
                out.append(ch)
                start += 1
                if start > LINESIZE:
                    start = 8
                    out.append("\n\t")
        first = False
        if n < len(items) - 1:
            out.append(",")
    return "".join(out) + "\n"


def render_full(jobs, now, wide):
    out = []
    for j in jobs:
        out.append("Job Id: %s\n" % j["id"])
        for k, v in attributes(j, now):
            if k == "Variable_List":
                out.append(wrap_attr(k, ",".join("%s=%s" % tuple(kv) for kv in v), wide))
            elif isinstance(v, list):
                for nk, nv in v:
                    out.append(wrap_attr("%s.%s" % (k, nk), str(nv), wide))
            else:
                out.append(wrap_attr(k, str(v), wide))
        out.append("\n")
    return "".join(out)


def render_table(jobs, now):
    out = [
        "Job id            Name             User              Time Use S Queue\n",
        "----------------  ---------------- ----------------  -------- - -----\n",
    ]
    for j in jobs:
        used = "0"
        if j.get("start_time"):
            used = emu.hhmmss(j.get("cpu_seconds", 0))
        out.append("%-17s %-16.16s %-17.17s %8s %s %s\n" % (j["id"], j["name"], j["owner"], used, state_letter(j), j["queue"]))
    return "".join(out)


def render_alternate(jobs, server, now):
    out = [
        "\n",
        "%s:\n" % server,
        "                                                            Req'd  Req'd   Elap\n",
        "Job ID          Username Queue    Jobname    SessID NDS TSK Memory Time  S Time\n",
        "--------------- -------- -------- ---------- ------ --- --- ------ ----- - -----\n",
    ]
    for j in jobs:
        wall = j.get("walltime")
        req_time = "%02d:%02d" % (int(wall) // 3600, int(wall) // 60 % 60) if wall else "--"
        mem = j["resources"].get("mem", "--")
        sess = str(j.get("job_pid", "--")) if j["phase"] in (emu.RUNNING, emu.EXITING) else "--"
        elap = "--"
        if j.get("start_time") and j["phase"] != emu.FINISHED:
            e = int(now - j["start_time"])
            elap = "%02d:%02d" % (e // 3600, e // 60 % 60)
        out.append(
            "%-15.15s %-8.8s %-8.8s %-10.10s %6.6s %3s %3s %6.6s %5.5s %s %5.5s\n"
            % (j["id"], j["owner"], j["queue"], j["name"], sess, 1, j["resources"].get("ncpus", 1), mem, req_time, state_letter(j), elap)
        )
    return "".join(out)


def refresh_orphans(spool, jobs):
    """Jobs whose supervisor died (cluster-down, a reboot) are recorded as deleted."""
    for j in jobs:
        if j["phase"] != emu.FINISHED and j.get("supervisor_pid") and not emu.supervisor_alive(j):
            if j["uid"] == os.getuid():
                emu.finalize_orphan(spool, j, finish_pbs)
            else:
                j["phase"] = emu.FINISHED
                j["end_time"] = j.get("end_time") or time.time()
                j["end_reason"] = "deleted"
                finish_pbs(j)


def resolve(ids, server, jobs):
    """Map each id ("12", "12.ferrypbs") to a job; returns [(given id, job or None)]."""
    by_seq = {j["seq"]: j for j in jobs}
    out = []
    for raw in ids:
        seq_s, _, srv = raw.partition(".")
        j = None
        if seq_s.isdigit() and (srv in ("", server) or srv.startswith(server + ".")):
            j = by_seq.get(int(seq_s))
        out.append((raw if "." in raw else "%s.%s" % (raw, server), j))
    return out


def qstat(argv):
    c = conf()
    server = c["server"]
    try:
        opts, ids = parse_opts(argv, set("Fu"), set("fxHEwainrsTtp1GMJBQ"))
    except Usage as e:
        sys.stderr.write("qstat: %s\nusage: qstat [-f [-F json|dsv]] [-x] [-H] [-u user] [job_identifier...]\n" % e)
        return 2
    flags = {o for o, _ in opts}
    values = {o: v for o, v in opts if v is not None}
    fmt = values.get("F", "")
    if fmt and fmt not in ("json",):
        sys.stderr.write("qstat: the Ferry PBS Pro emulator prints only -F json\n")
        return 2
    if "B" in flags or "Q" in flags:
        sys.stderr.write("qstat: -B and -Q are not supported by the Ferry PBS Pro emulator (test infrastructure)\n")
        return 2
    history = "x" in flags or "H" in flags
    spool = emu.Spool(c["spool"])
    now = time.time()
    jobs = spool.all()
    refresh_orphans(spool, jobs)
    rc = 0
    shown = []
    if ids:
        for given, j in resolve(ids, server, jobs):
            if j is None:
                sys.stderr.write("qstat: Unknown Job Id %s\n" % given)
                rc = E_UNKJOBID
            elif j["phase"] == emu.FINISHED and not history:
                sys.stderr.write(
                    "qstat: %s Job has finished, use -x or -H to obtain historical job information\n" % j["id"]
                )
                rc = E_HISTJOB
            elif "H" in flags and j["phase"] != emu.FINISHED:
                continue
            else:
                shown.append(j)
    else:
        users = values.get("u")
        for j in jobs:
            if users and j["owner"] not in users.split(","):
                continue
            if j["phase"] == emu.FINISHED and not history:
                continue
            if "H" in flags and j["phase"] != emu.FINISHED:
                continue
            if "i" in flags and j["phase"] not in (emu.QUEUED, emu.HELD):
                continue
            if "r" in flags and j["phase"] not in (emu.RUNNING, emu.EXITING):
                continue
            shown.append(j)
    if "f" in flags:
        if fmt == "json":
            sys.stdout.write(render_json(shown, server, now))
        else:
            sys.stdout.write(render_full(shown, now, "w" in flags))
    elif shown:
        if "u" in values or flags & set("ans"):
            sys.stdout.write(render_alternate(shown, server, now))
        else:
            sys.stdout.write(render_table(shown, now))
    return rc


def qdel(argv):
    c = conf()
    server = c["server"]
    try:
        opts, ids = parse_opts(argv, set("W"), set("x"))
    except Usage as e:
        sys.stderr.write("qdel: %s\nusage: qdel [-W force|suppress_email=X] [-x] job_identifier...\n" % e)
        return 2
    if not ids:
        sys.stderr.write("usage: qdel [-W force|suppress_email=X] [-x] job_identifier...\n")
        return 2
    spool = emu.Spool(c["spool"])
    jobs = spool.all()
    refresh_orphans(spool, jobs)
    me = os.getuid()
    rc = 0
    for given, j in resolve(ids, server, jobs):
        if j is None:
            sys.stderr.write("qdel: Unknown Job Id %s\n" % given)
            rc = E_UNKJOBID
            continue
        if j["uid"] != me:
            sys.stderr.write("qdel: Unauthorized Request  %s\n" % j["id"])
            rc = E_PERM
            continue
        if j["phase"] == emu.FINISHED:
            sys.stderr.write("qdel: Job has finished %s\n" % j["id"])
            rc = E_HISTJOB
            continue
        if emu.supervisor_alive(j):
            try:
                os.kill(j["supervisor_pid"], signal.SIGTERM)
            except ProcessLookupError:
                emu.finalize_orphan(spool, j, finish_pbs)
        else:
            emu.finalize_orphan(spool, j, finish_pbs)
    return rc


def qselect(argv):
    """qselect [-x] [-u user_list] [-s states]: the ids of the jobs that match, one per line, in
    full (N.server), as qselect(1B) prints them; no output (exit 0) when none matches. Finished
    jobs are selected only with -x (job history)."""
    c = conf()
    try:
        opts, rest = parse_opts(argv, set("us"), set("xH"))
    except Usage as e:
        sys.stderr.write("qselect: %s\nusage: qselect [-x] [-u user_list] [-s states]\n" % e)
        return 2
    if rest:
        sys.stderr.write("qselect: the Ferry PBS Pro emulator selects by -u, -s and -x only\n")
        return 2
    flags = {o for o, _ in opts}
    values = {o: v for o, v in opts if v is not None}
    users = values.get("u")
    states = values.get("s")
    spool = emu.Spool(c["spool"])
    jobs = spool.all()
    refresh_orphans(spool, jobs)
    for j in jobs:
        if users and j["owner"] not in users.split(","):
            continue
        if j["phase"] == emu.FINISHED and "x" not in flags:
            continue
        if states and state_letter(j) not in states:
            continue
        sys.stdout.write(j["id"] + "\n")
    return 0


COMMANDS = {"qsub": qsub, "qstat": qstat, "qdel": qdel, "qselect": qselect}


def main(name, argv):
    if argv[:1] == [emu.supervisor_argv_marker()]:
        emu.supervisor_main(argv, POLICIES)
        return 0
    if argv == ["--version"]:
        sys.stdout.write("pbs_version = %s\n" % PBS_VERSION)
        return 0
    return COMMANDS[name](argv)


if __name__ == "__main__":
    # Run as a supervisor: python3 pbspro.py ferry-emulator-supervisor POLICY SPOOL SEQ
    sys.exit(main(None, sys.argv[1:]))
