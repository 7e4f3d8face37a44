# EMULATOR of IBM Spectrum LSF commands (bsub, bjobs, bkill, bhist) for Ferry's tests: NOT LSF.
# Installed by scripts/cluster-up as /opt/ferry-emulators/lsf/bin/{bsub,bjobs,bkill,bhist}; each
# of those small files runs main() here with its own name. It accepts the command lines Ferry's
# lsf adapter sends (and the usual ones people type), keeps each job as a JSON file in
# /var/spool/ferry-emulators/lsf, and runs the job for real as the calling user (see
# emucommon.py). One cluster "ferrylsf", queues normal (default) and short (emulator.conf).
#
# Output reproduced byte for byte from real LSF captures in /work/shared/fixtures:
#   bsub                          "Job <N> is submitted to queue <q>." / "... to default queue
#                                 <q>." and its newline                  lsf-bsub-3.txt
#   bjobs                         the default table: header "JOBID   USER    STAT  QUEUE
#                                 FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME", fields cut to
#                                 their width with a leading '*'        lsf-bjobs-3.txt
#   bjobs -w / -W                 the same, uncut; -W adds PROJ_NAME .. FINISH_TIME with
#                                 MM/DD-HH:MM:SS times                   lsf-bjobs-5/-7.txt
#   bjobs -o "... delimiter='|'" -noheader
#                                 '|'-joined values, "-" for empty, times "Feb  2 00:46" and
#                                 finish times with " L"                 lsf-bjobs-1.txt
#   bjobs -o "..." -json          {"COMMAND":"bjobs","JOBS":n,"RECORDS":[...]}, 2-space indent,
#                                 "KEY":"value", "" for empty            lsf-bjobs-json-1/-3.json
# Not from a capture (no fixture holds them), written from LSF's documentation: bhist -l (the
# event lines Ferry's adapter reads, wrapped at column 79 with a 21-space indent like bjobs -l in
# lsf-bjobs-9.txt), bhist's summary table, bkill's and bjobs' messages, the job report that LSF
# puts in front of the job's output in the -o file.
#
# Semantics (real LSF's, as documented): bsub reads the job script from stdin and its #BSUB
# directives up to the first command line (command-line options win); without -J the job name is
# the script's lines joined by ';'; the job runs in the submission directory with the
# submission environment; its output is spooled and written to the -o file (appended; -oo
# overwrites) after the job report when the job ends; without -e, stderr goes there too. -W
# [HH:]MM is the run limit: at the limit the job gets SIGINT and SIGTERM, then SIGKILL after
# terminate_interval (JOB_TERMINATE_INTERVAL, 10 s), ending EXIT with TERM_RUNLIMIT; -wa SIG -wt
# [HH:]MM sends SIG that long before. bkill does the same with TERM_OWNER. A finished job stays in
# bjobs for clean_period seconds (CLEAN_PERIOD; 10 on the test cluster), in bhist for ever.
# Not LSF: emulator.conf minute_seconds=QUEUE:SECONDS shortens the minutes of -W/-wt in one queue
# (the test cluster's "short" queue: 3 s a minute) so that run-limit tests take seconds.
# Errors: "Job <N> is not found" (bjobs, rc 255), "Job <N>: User permission denied", "Job <N>: Job
# has already finished", "Job <N>: No matching job found" (bkill, rc 255), "<q>: No such queue.
# Job not submitted." (bsub, rc 255). Not emulated (refused with a message naming the emulator):
# job arrays, interactive jobs (-I*), -K, bjobs -l.

import json
import os
import shlex
import signal
import sys
import time

import emucommon as emu

KIND = "lsf"
DEFAULTS = {
    "cluster": "ferrylsf",
    "queues": "normal short",
    "default_queue": "normal",
    "clean_period": "3600",
    "terminate_interval": "10",
    "queue_delay": "0.5",
    "history_seconds": "604800",
    "minute_seconds": "",
}


def conf():
    return emu.load_conf(KIND, DEFAULTS)


def minute_scale(c, queue):
    """EMULATOR-ONLY test knob, not LSF: emulator.conf minute_seconds=QUEUE:SECONDS[,...] makes a
    minute of -W and -wt last SECONDS in QUEUE, so a test of the run limit (which LSF counts in
    minutes) takes seconds. Every other queue counts real minutes."""
    for item in c.get("minute_seconds", "").split(","):
        q, _, secs = item.strip().partition(":")
        if q == queue and secs:
            return float(secs) / 60.0
    return 1.0


def lsf_time(t):
    """bjobs' time: "Feb  2 00:46"."""
    return time.strftime("%b %e %H:%M", time.localtime(t))


def event_time(t):
    """bhist's event time: "Sat Nov 28 23:52:20"."""
    return time.strftime("%a %b %e %H:%M:%S", time.localtime(t))


def wide_time(t):
    """bjobs -W's time: "03/31-19:24:57"."""
    return time.strftime("%m/%d-%H:%M:%S", time.localtime(t))


SIGNALS = {name: getattr(signal, "SIG" + name) for name in ("INT", "TERM", "KILL", "USR1", "USR2", "HUP", "QUIT", "STOP", "CONT")}


def parse_signal(s):
    s = s.strip().upper()
    if s.startswith("SIG"):
        s = s[3:]
    if s.isdigit():
        return int(s)
    if s in SIGNALS:
        return int(SIGNALS[s])
    raise ValueError(s)


def parse_minutes(s):
    """[hour:]minute -> seconds."""
    s = s.split("/")[0]
    parts = s.split(":")
    if len(parts) == 1:
        return int(parts[0]) * 60
    if len(parts) == 2:
        return (int(parts[0]) * 60 + int(parts[1])) * 60
    raise ValueError(s)


# ---------------------------------------------------------------------------------------------
# bsub

BSUB_VALUE = {
    "-J", "-o", "-oo", "-e", "-eo", "-q", "-n", "-R", "-W", "-wa", "-wt", "-M", "-P", "-G", "-Jd",
    "-cwd", "-E", "-Ep", "-app", "-L", "-m", "-sp", "-u", "-w", "-b", "-t", "-c", "-F", "-D", "-S",
    "-v", "-g", "-k", "-i", "-is", "-f", "-C", "-a", "-ext", "-env", "-We", "-rnc", "-U", "-Lp",
    "-sla", "-outdir", "-clusters", "-gpu", "-alloc_flags", "-smt", "-nnodes", "-jsm", "-stage",
}
BSUB_FLAG = {"-x", "-N", "-B", "-H", "-r", "-rn", "-hl", "-ar", "-tty", "-Zs", "-ul"}
BSUB_REFUSED = {"-K", "-I", "-Ip", "-Is", "-IS", "-ISp", "-ISs", "-IX"}
BSUB_USAGE = "Usage: bsub [options] command [arguments]\n"


class Usage(Exception):
    pass


def parse_bsub(words):
    """Return ([(opt, value)], command words)."""
    opts = []
    i = 0
    while i < len(words):
        w = words[i]
        if not w.startswith("-") or w == "-":
            break
        if w in BSUB_REFUSED:
            raise Usage("option %s is not supported by the Ferry LSF emulator (test infrastructure)" % w)
        if w in BSUB_FLAG:
            opts.append((w, None))
        elif w in BSUB_VALUE:
            if i + 1 >= len(words):
                raise Usage("option %s requires an argument" % w)
            opts.append((w, words[i + 1]))
            i += 1
        else:
            raise Usage("illegal option -- %s" % w.lstrip("-"))
        i += 1
    return opts, words[i:]


def bsub_directives(script):
    words = []
    for line in script.splitlines():
        s = line.strip()
        if s == "":
            continue
        if s.startswith("#BSUB"):
            rest = s[len("#BSUB") :]
            if rest and not rest[0].isspace():
                continue
            try:
                words.extend(shlex.split(rest, comments=True))
            except ValueError:
                words.extend(rest.split())
            continue
        if s.startswith("#"):
            continue
        break
    return words


def bsub(argv):
    c = conf()
    try:
        cmd_opts, command = parse_bsub(argv)
    except Usage as e:
        sys.stderr.write("bsub: %s\n%sJob not submitted.\n" % (e, BSUB_USAGE))
        return 255
    script = None
    if command:
        cmdline = " ".join(shlex.quote(w) if w != "" else "''" for w in command)
        text = cmdline
    else:
        script = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        text = ";".join(l for l in script.splitlines() if l.strip() != "")
    opts = {}
    if script is not None:
        try:
            dir_opts, _ = parse_bsub(bsub_directives(script))
        except Usage as e:
            sys.stderr.write("bsub: %s in a #BSUB line\nJob not submitted.\n" % e)
            return 255
        for o, v in dir_opts:
            opts[o] = v
    for o, v in cmd_opts:
        opts[o] = v
    if "-J" in opts and ("[" in opts["-J"] or "]" in opts["-J"]):
        sys.stderr.write("bsub: job arrays are not supported by the Ferry LSF emulator (test infrastructure)\nJob not submitted.\n")
        return 255
    queues = c["queues"].split()
    queue = opts.get("-q", "")
    default_queue = queue == ""
    if default_queue:
        queue = c["default_queue"]
    if queue not in queues:
        sys.stderr.write("%s: No such queue. Job not submitted.\n" % queue)
        return 255
    limit = warn_before = None
    warn_sig = None
    try:
        if "-W" in opts:
            limit = parse_minutes(opts["-W"])
        if "-wa" in opts:
            warn_sig = parse_signal(opts["-wa"])
        if "-wt" in opts:
            warn_before = parse_minutes(opts["-wt"])
    except ValueError:
        sys.stderr.write("%s: Bad argument for a time or signal option. Job not submitted.\n" % opts.get("-W", ""))
        return 255
    try:
        slots = int(opts.get("-n", "1").split(",")[-1])
    except ValueError:
        sys.stderr.write("%s: Bad argument for option -n. Job not submitted.\n" % opts["-n"])
        return 255

    user, uid, gid, group, home, login_shell = emu.user_info()
    spool = emu.Spool(c["spool"])
    seq = spool.next_id()
    jobid = str(seq)
    host = c["host"]
    cwd = opts.get("-cwd") or os.getcwd()
    if not cwd.startswith("/"):
        cwd = os.path.join(os.getcwd(), cwd)

    def path_opt(plain, overwrite):
        p, over = opts.get(overwrite), True
        if p is None:
            p, over = opts.get(plain), False
        if p is None:
            return None, False
        p = p.replace("%J", jobid).replace("%I", "0")
        if not p.startswith("/"):
            p = os.path.join(cwd, p)
        if os.path.isdir(p):
            p = os.path.join(p, "%s.out" % jobid)
        return p, over

    out, out_over = path_opt("-o", "-oo")
    err, err_over = path_opt("-e", "-eo")
    script_file = spool.job_path(seq, "script")
    fd = os.open(script_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(script if script is not None else text + "\n")
    env = dict(os.environ)
    now = time.time()
    job = {
        "seq": seq,
        "id": jobid,
        "kind": KIND,
        "owner": user,
        "uid": uid,
        "gid": gid,
        "group": group,
        "home": home,
        "name": opts.get("-J") or text,
        "description": opts.get("-Jd"),
        "command": text,
        "stdin_script": script is not None,
        "queue": queue,
        "default_queue": default_queue,
        "project": opts.get("-P", "default"),
        "user_group": opts.get("-G"),
        "phase": emu.HELD if "-H" in opts else emu.QUEUED,
        "submit_time": now,
        "queue_delay": float(c["queue_delay"]),
        "start_time": None,
        "end_time": None,
        "exit_code": None,
        "signal": None,
        "walltime": limit,
        "minute_scale": minute_scale(c, queue),
        "warn_signal": warn_sig,
        "warn_before": warn_before,
        "cwd": cwd,
        "script_file": script_file,
        "stdout": out,
        "stdout_overwrite": out_over,
        "stderr": err,
        "stderr_overwrite": err_over,
        "slots": slots,
        "resreq": opts.get("-R"),
        "memlimit": opts.get("-M"),
        "from_host": host,
        "exec_host": host,
        "cluster": c["cluster"],
        "kill_delay": float(c["terminate_interval"]),
        "env": env,
        "events": [],
    }
    spool.save(job)
    emu.run_as_supervisor(spool, job, KIND, os.path.abspath(__file__))
    if default_queue:
        sys.stdout.write("Job <%s> is submitted to default queue <%s>.\n" % (jobid, queue))
    else:
        sys.stdout.write("Job <%s> is submitted to queue <%s>.\n" % (jobid, queue))
    sys.stdout.flush()
    # bhist reads event files that LSF rotates; the emulator keeps history_seconds (a week).
    emu.prune(spool, float(c["history_seconds"]))
    return 0


class LSFPolicy(emu.Policy):
    """How LSF's sbatchd runs and ends a job."""

    def popen_args(self, sup):
        j = sup.job
        self.kill_delay = j.get("kill_delay", 10)
        self.warned = False
        env = dict(j["env"])
        env.update(
            {
                "LSB_JOBID": j["id"],
                "LSB_JOBNAME": j["name"],
                "LSB_QUEUE": j["queue"],
                "LSB_JOBINDEX": "0",
                "LSB_HOSTS": j["exec_host"],
                "LSB_MCPU_HOSTS": "%s %d" % (j["exec_host"], j["slots"]),
                "LSB_DJOB_NUMPROC": str(j["slots"]),
                "LSB_JOBFILENAME": j["script_file"],
                "LSB_SUB_HOST": j["from_host"],
                "LSB_EXEC_CLUSTER": j["cluster"],
                "LS_SUBCWD": j["cwd"],
                "LSFUSER": j["owner"],
            }
        )
        if j["stdout"]:
            env["LSB_OUTPUTFILE"] = j["stdout"]
        if j["stderr"]:
            env["LSB_ERRORFILE"] = j["stderr"]
        # Output is spooled and written to the -o file with the job report when the job ends.
        # The -e file, when given, is written directly (appended; -eo overwrites).
        out = emu_spool_out(j)
        err = j["stderr"] or None
        with open(j["script_file"], "rb") as f:
            first = f.read(2)
        if j["stdin_script"] and first == b"#!":
            argv = [j["script_file"]]
        elif j["stdin_script"]:
            argv = ["/bin/sh", j["script_file"]]
        else:
            argv = ["/bin/sh", "-c", j["command"]]
        j["events"].append([time.time(), "dispatched"])
        return argv, j["cwd"], env, out, err, bool(j["stderr"]) and not j["stderr_overwrite"]

    def on_start(self, sup):
        sup.job["events"].append([sup.job["start_time"], "running"])

    def on_tick(self, sup, now):
        j = sup.job
        limit = j.get("walltime")
        if limit is None:
            return
        scale = j.get("minute_scale", 1.0)  # emulator-only: a test queue's faster minutes
        limit *= scale
        ran = now - j["start_time"]
        if j.get("warn_signal") and j.get("warn_before") and not self.warned and ran >= limit - j["warn_before"] * scale:
            self.warned = True
            emu.signal_group(sup.pgid, j["warn_signal"])
        if ran >= limit:
            j["events"].append([now, "runlimit"])
            sup.kill([signal.SIGINT, signal.SIGTERM], "runlimit")

    def on_cancel(self, sup, before_start):
        j = sup.job
        j["events"].append([time.time(), "signal KILL"])
        j["end_reason"] = "owner"
        if not before_start:
            sup.kill([signal.SIGINT, signal.SIGTERM], "owner")

    def on_end(self, sup, status, rusage):
        j = sup.job
        finish_lsf(j)
        write_output(j)


def emu_spool_out(j):
    return j["script_file"][: -len(".script")] + ".out"


def finish_lsf(j):
    """Fill in the LSF status, exit code and exit reason of a finished job."""
    reason = j.get("end_reason", "normal")
    if j.get("signal"):
        j["lsf_exit"] = 128 + j["signal"]
    elif reason == "failed-start":
        j["lsf_exit"] = 1
    else:
        j["lsf_exit"] = j.get("exit_code")
    if reason == "owner":
        j["stat"], j["exit_reason"] = "EXIT", "TERM_OWNER: job killed by owner"
    elif reason == "runlimit":
        j["stat"], j["exit_reason"] = "EXIT", "TERM_RUNLIMIT: job killed after reaching LSF run time limit"
    elif reason == "deleted":
        j["stat"], j["exit_reason"] = "EXIT", "TERM_ADMIN: job killed by root or LSF administrator"
    elif j["lsf_exit"] == 0:
        j["stat"], j["exit_reason"] = "DONE", None
    else:
        j["stat"], j["exit_reason"] = "EXIT", None


def write_output(j):
    """Write the job report and the spooled output to the -o file, as LSF does at the job's end."""
    spooled = emu_spool_out(j)
    try:
        with open(spooled, "rb") as f:
            output = f.read()
    except OSError:
        output = b""
    if j.get("stdout"):
        cluster, host = j["cluster"], j["exec_host"]
        verdict = "Done" if j["stat"] == "DONE" else "Exited"
        lines = [
            "Sender: LSF System <lsfadmin@%s>" % host,
            "Subject: Job %s: <%s> in cluster <%s> %s" % (j["id"], j["name"], cluster, verdict),
            "",
            "Job <%s> was submitted from host <%s> by user <%s> in cluster <%s> at %s"
            % (j["name"], j["from_host"], j["owner"], cluster, emu.ctime(j["submit_time"])),
            "Job was executed on host(s) <%s>, in queue <%s>, as user <%s> in cluster <%s> at %s"
            % (host, j["queue"], j["owner"], cluster, emu.ctime(j["start_time"] or j["end_time"])),
            "<%s> was used as the home directory." % j["home"],
            "<%s> was used as the working directory." % j["cwd"],
            "Started at %s" % emu.ctime(j["start_time"] or j["end_time"]),
            "Terminated at %s" % emu.ctime(j["end_time"]),
            "Results reported at %s" % emu.ctime(j["end_time"]),
            "",
            "Your job looked like:",
            "",
            "------------------------------------------------------------",
            "# LSBATCH: User input",
        ]
        try:
            with open(j["script_file"], encoding="utf-8", errors="replace") as f:
                lines.append(f.read().rstrip("\n"))
        except OSError:
            pass
        lines.append("------------------------------------------------------------")
        lines.append("")
        if j["stat"] == "DONE":
            lines.append("Successfully completed.")
        else:
            lines.append("Exited with exit code %s." % j.get("lsf_exit"))
            if j.get("exit_reason"):
                lines.append("")
                lines.append(j["exit_reason"].split(":", 1)[1].strip().capitalize() + ".")
        lines += [
            "",
            "Resource usage summary:",
            "",
            "    CPU time :                                   %.2f sec." % j.get("cpu_seconds", 0.0),
            "    Max Memory :                                 %d MB" % (j.get("maxrss_kb", 0) // 1024),
            "    Run time :                                   %d sec." % int(j["end_time"] - (j["start_time"] or j["end_time"])),
            "",
            "The output (if any) follows:",
            "",
        ]
        report = ("\n".join(lines) + "\n").encode()
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if j.get("stdout_overwrite") else os.O_APPEND)
        try:
            fd = os.open(j["stdout"], flags, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(report + output)
        except OSError:
            pass
    try:
        os.unlink(spooled)
    except OSError:
        pass


POLICIES = {KIND: LSFPolicy}


# ---------------------------------------------------------------------------------------------
# bjobs


def refresh_orphans(spool, jobs):
    for j in jobs:
        if j["phase"] != emu.FINISHED and j.get("supervisor_pid") and not emu.supervisor_alive(j):
            j["end_reason"] = "deleted"
            if j["uid"] == os.getuid():
                emu.finalize_orphan(spool, j, finish_lsf)
            else:
                j["phase"] = emu.FINISHED
                j["end_time"] = j.get("end_time") or time.time()
                finish_lsf(j)


def stat(j):
    if j["phase"] == emu.FINISHED:
        return j.get("stat", "EXIT")
    return {"queued": "PEND", "held": "PSUSP", "running": "RUN", "exiting": "RUN"}[j["phase"]]


def started(j):
    return j.get("start_time") is not None


def field_values(j, now):
    """Every -o field of job j as bjobs prints it; None means empty ("-" or "")."""
    st = stat(j)
    fin = j["phase"] == emu.FINISHED
    run_secs = None
    if started(j):
        run_secs = int((j["end_time"] if fin else now) - j["start_time"])
    complete = None
    if run_secs is not None and j.get("walltime"):
        complete = "%.2f%%" % min(100.0, 100.0 * run_secs / j["walltime"])
    pend = None
    if st == "PEND":
        pend = "New job is waiting for scheduling"
    elif st == "PSUSP":
        pend = "The job was suspended by user while pending"
    return {
        "jobid": j["id"],
        "jobindex": "0",
        "stat": st,
        "user": j["owner"],
        "user_group": j.get("user_group"),
        "queue": j["queue"],
        "job_name": j["name"],
        "job_description": j.get("description"),
        "proj_name": j["project"],
        "application": None,
        "from_host": j["from_host"],
        "first_host": j["exec_host"] if started(j) else None,
        "exec_host": j["exec_host"] if started(j) else None,
        "nexec_host": "1" if started(j) else None,
        "submit_time": lsf_time(j["submit_time"]),
        "start_time": lsf_time(j["start_time"]) if started(j) else None,
        "finish_time": lsf_time(j["end_time"]) + " L" if fin and j.get("end_time") else None,
        "pend_reason": pend,
        "exit_code": str(j["lsf_exit"]) if fin and st == "EXIT" and j.get("lsf_exit") is not None else None,
        "exit_reason": j.get("exit_reason") if fin else None,
        "slots": str(j["slots"]) if started(j) else None,
        "nreq_slot": str(j["slots"]),
        "min_req_proc": str(j["slots"]),
        "max_req_proc": str(j["slots"]),
        "cpu_used": "%.1f second(s)" % j.get("cpu_seconds", 0.0) if started(j) else None,
        "run_time": "%d second(s)" % run_secs if run_secs is not None else None,
        "mem": "%d Mbytes" % (j.get("maxrss_kb", 0) // 1024) if fin and started(j) else None,
        "max_mem": "%d Mbytes" % (j.get("maxrss_kb", 0) // 1024) if fin and started(j) else None,
        "swap": None,
        "pids": str(j["job_pid"]) if started(j) and not fin and j.get("job_pid") else None,
        "nthreads": "1" if started(j) and not fin else None,
        "exec_home": j["home"] if started(j) else None,
        "exec_cwd": j["cwd"] if started(j) else None,
        "sub_cwd": j["cwd"],
        "output_file": j.get("stdout"),
        "error_file": j.get("stderr"),
        "input_file": None,
        "command": j["command"],
        "%complete": complete,
        "runtimelimit": "%.1f/%s" % (j["walltime"] / 60.0, j["exec_host"]) if j.get("walltime") else None,
        "warning_action": ("SIG" + signal.Signals(j["warn_signal"]).name[3:]) if j.get("warn_signal") else None,
        "action_warning_time": "%d" % (j["warn_before"] // 60) if j.get("warn_before") else None,
        "dependency": None,
        "memlimit": j.get("memlimit"),
    }


# -o field names: canonical name -> default width; aliases map to canonical names.
FIELD_WIDTH = {
    "jobid": 7, "jobindex": 8, "stat": 5, "user": 7, "user_group": 15, "queue": 10, "job_name": 10,
    "job_description": 17, "proj_name": 11, "application": 13, "from_host": 11, "first_host": 11,
    "exec_host": 11, "nexec_host": 10, "submit_time": 15, "start_time": 15, "finish_time": 16,
    "pend_reason": 11, "exit_code": 10, "exit_reason": 50, "slots": 5, "nreq_slot": 9,
    "min_req_proc": 12, "max_req_proc": 12, "cpu_used": 10, "run_time": 15, "mem": 15, "max_mem": 15,
    "swap": 15, "pids": 20, "nthreads": 10, "exec_home": 10, "exec_cwd": 10, "sub_cwd": 10,
    "output_file": 11, "error_file": 10, "input_file": 10, "command": 15, "%complete": 11,
    "runtimelimit": 12, "warning_action": 15, "action_warning_time": 19, "dependency": 15, "memlimit": 10,
}
FIELD_ALIAS = {
    "id": "jobid", "name": "job_name", "ugroup": "user_group", "description": "job_description",
    "proj": "proj_name", "project": "proj_name", "app": "application", "cmd": "command",
    "warn_act": "warning_action", "warn_time": "action_warning_time",
}


def parse_format(fmt):
    """Return ([(canonical field, width or None)], delimiter or None) for a bjobs -o string."""
    fields, delim = [], None
    for tok in shlex.split(fmt, posix=True) if "delimiter" in fmt else fmt.split():
        if tok.startswith("delimiter="):
            delim = tok[len("delimiter=") :]
            continue
        name, _, width = tok.partition(":")
        key = FIELD_ALIAS.get(name.lower(), name.lower())
        if key not in FIELD_WIDTH:
            raise ValueError(name)
        w = None
        if width:
            w = int(width.split(":")[0])
        fields.append((key, w))
    return fields, delim


def cut(value, width, wide):
    """bjobs' default table cuts a value longer than its column to '*' and its last width-1
    characters (lsf-bjobs-3.txt: "*l_cmd_bd)")."""
    if wide or len(value) <= width:
        return value
    return "*" + value[-(width - 1) :]


def render_default(jobs, now, wide, extra, noheader):
    out = []
    if not noheader:
        h = "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"
        if extra:
            h += "  PROJ_NAME CPU_USED MEM SWAP PIDS START_TIME FINISH_TIME"
        out.append(h + "\n")
    for j in jobs:
        f = field_values(j, now)
        exec_host = f["exec_host"] or ""
        submit = wide_time(j["submit_time"]) if extra else f["submit_time"]
        row = "%-7s %-7s %-5s %-10s %-11s %-11s %-10s %s" % (
            cut(f["jobid"], 7, wide),
            cut(f["user"], 7, wide),
            f["stat"],
            cut(f["queue"], 10, wide),
            cut(f["from_host"], 11, wide),
            cut(exec_host, 11, wide),
            cut(f["job_name"], 10, wide),
            submit,
        )
        if extra:
            cpu = j.get("cpu_seconds", 0.0)
            cpu_s = "%03d:%02d:%05.2f" % (int(cpu) // 3600, int(cpu) // 60 % 60, cpu % 60)
            row += " %-10s %-12s %-6s %-6s %-5s %-14s %s" % (
                f["proj_name"],
                cpu_s,
                j.get("maxrss_kb", 0) // 1024,
                0,
                f["pids"] or "-",
                wide_time(j["start_time"]) if started(j) else "-",
                wide_time(j["end_time"]) if j["phase"] == emu.FINISHED and j.get("end_time") else "-",
            )
        out.append(row + "\n")
    return "".join(out)


def render_format(jobs, now, fields, delim, noheader):
    out = []
    if delim is not None:
        if not noheader:
            out.append(delim.join(k.upper() for k, _ in fields) + "\n")
        for j in jobs:
            f = field_values(j, now)
            out.append(delim.join(f[k] if f[k] not in (None, "") else "-" for k, _ in fields) + "\n")
        return "".join(out)
    widths = [w or FIELD_WIDTH[k] for k, w in fields]
    if not noheader:
        out.append(" ".join("%-*s" % (w, k.upper()) for (k, _), w in zip(fields, widths)).rstrip() + "\n")
    for j in jobs:
        f = field_values(j, now)
        vals = [f[k] if f[k] not in (None, "") else "-" for k, _ in fields]
        out.append(" ".join("%-*s" % (w, v) for v, w in zip(vals, widths)).rstrip() + "\n")
    return "".join(out)


def render_json(jobs, now, fields, errors):
    recs = []
    for j in jobs:
        f = field_values(j, now)
        recs.append([(k.upper(), f[k] or "") for k, _ in fields])
    for e in errors:
        recs.append([("ERROR", e)])
    out = ["{", '  "COMMAND":"bjobs",', '  "JOBS":%d,' % len(jobs), '  "RECORDS":[']
    for ri, rec in enumerate(recs):
        out.append("    {")
        for fi, (k, v) in enumerate(rec):
            out.append('      "%s":%s%s' % (k, json.dumps(v, ensure_ascii=False), "," if fi < len(rec) - 1 else ""))
        out.append("    }" + ("," if ri < len(recs) - 1 else ""))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def visible(j, now, clean_period):
    """A finished job stays in bjobs for CLEAN_PERIOD seconds."""
    return j["phase"] != emu.FINISHED or now - (j.get("end_time") or now) < clean_period


def bjobs(argv):
    c = conf()
    clean = float(c["clean_period"])
    flags, values, ids = set(), {}, []
    i = 0
    value_opts = {"-o", "-u", "-q", "-J", "-m", "-P", "-G", "-g", "-app", "-sla", "-Jd"}
    flag_opts = {"-a", "-d", "-p", "-r", "-s", "-w", "-W", "-noheader", "-json", "-A", "-x", "-X"}
    while i < len(argv):
        a = argv[i]
        if a in value_opts:
            if i + 1 >= len(argv):
                sys.stderr.write("bjobs: option %s requires an argument\n" % a)
                return 255
            values[a] = argv[i + 1]
            i += 2
            continue
        if a in flag_opts:
            flags.add(a)
        elif a == "-l":
            sys.stderr.write("bjobs: -l is not supported by the Ferry LSF emulator (test infrastructure)\n")
            return 255
        elif a.startswith("-"):
            sys.stderr.write("bjobs: illegal option -- %s\nUsage: bjobs [-a] [-w | -W] [-noheader] [-o \"fields\"] [-json] [-u user|all] [jobId ...]\n" % a.lstrip("-"))
            return 255
        else:
            ids.append(a)
        i += 1
    fields = delim = None
    if "-o" in values:
        try:
            fields, delim = parse_format(values["-o"])
        except ValueError as e:
            sys.stderr.write("%s: Illegal field name\n" % e)
            return 255
    elif "-json" in flags:
        sys.stderr.write("bjobs: -json requires -o\n")
        return 255
    spool = emu.Spool(c["spool"])
    now = time.time()
    jobs = spool.all()
    refresh_orphans(spool, jobs)
    me = emu.user_info()[0]
    shown, errors = [], []
    if ids:
        by_id = {j["id"]: j for j in jobs}
        for raw in ids:
            j = by_id.get(raw)
            if j is None or not visible(j, now, clean):
                errors.append("Job <%s> is not found" % raw)
            else:
                shown.append(j)
    else:
        who = values.get("-u", me)
        for j in jobs:
            if who != "all" and j["owner"] != who:
                continue
            if not visible(j, now, clean):
                continue
            fin = j["phase"] == emu.FINISHED
            if "-d" in flags:
                if not fin:
                    continue
            elif "-a" not in flags and fin:
                continue
            if "-r" in flags and stat(j) != "RUN":
                continue
            if "-p" in flags and stat(j) not in ("PEND", "PSUSP"):
                continue
            if "-q" in values and j["queue"] != values["-q"]:
                continue
            shown.append(j)
    if "-json" in flags:
        sys.stdout.write(render_json(shown, now, fields, errors))
        return 255 if errors else 0
    if fields is not None:
        if shown:
            sys.stdout.write(render_format(shown, now, fields, delim, "-noheader" in flags))
    elif shown:
        sys.stdout.write(render_default(shown, now, "-w" in flags or "-W" in flags, "-W" in flags, "-noheader" in flags))
    for e in errors:
        sys.stderr.write(e + "\n")
    if not shown and not errors:
        if "-d" in flags:
            sys.stderr.write("No done job found\n")
        elif "-a" in flags:
            sys.stderr.write("No job found\n")
        else:
            sys.stderr.write("No unfinished job found\n")
        return 255
    return 255 if errors else 0


# ---------------------------------------------------------------------------------------------
# bkill


def bkill(argv):
    c = conf()
    sig = None
    ids = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-s":
            if i + 1 >= len(argv):
                sys.stderr.write("bkill: option -s requires an argument\n")
                return 255
            try:
                sig = parse_signal(argv[i + 1])
            except ValueError:
                sys.stderr.write("%s: Illegal signal value\n" % argv[i + 1])
                return 255
            i += 2
            continue
        if a in ("-r", "-d"):
            pass
        elif a.startswith("-"):
            sys.stderr.write("bkill: illegal option -- %s\nUsage: bkill [-s signal] jobId ...\n" % a.lstrip("-"))
            return 255
        else:
            ids.append(a)
        i += 1
    if not ids:
        sys.stderr.write("Usage: bkill [-s signal] jobId ...\n")
        return 255
    spool = emu.Spool(c["spool"])
    now = time.time()
    clean = float(c["clean_period"])
    jobs = spool.all()
    refresh_orphans(spool, jobs)
    by_id = {j["id"]: j for j in jobs}
    me = os.getuid()
    rc = 0
    for raw in ids:
        j = by_id.get(raw)
        if j is None or not visible(j, now, clean):
            sys.stderr.write("Job <%s>: No matching job found\n" % raw)
            rc = 255
            continue
        if j["uid"] != me:
            sys.stderr.write("Job <%s>: User permission denied\n" % raw)
            rc = 255
            continue
        if j["phase"] == emu.FINISHED:
            sys.stderr.write("Job <%s>: Job has already finished\n" % raw)
            rc = 255
            continue
        if sig is not None:
            if j["phase"] in (emu.RUNNING, emu.EXITING):
                emu.signal_group(j.get("job_pid"), sig)
            sys.stdout.write("Job <%s> is being signaled\n" % raw)
            continue
        if emu.supervisor_alive(j):
            try:
                os.kill(j["supervisor_pid"], signal.SIGTERM)
            except ProcessLookupError:
                j["end_reason"] = "owner"
                emu.finalize_orphan(spool, j, finish_lsf)
        else:
            j["end_reason"] = "owner"
            emu.finalize_orphan(spool, j, finish_lsf)
        sys.stdout.write("Job <%s> is being terminated\n" % raw)
    return rc


# ---------------------------------------------------------------------------------------------
# bhist

WRAP = 79


def wrap(line, indent):
    """Wrap a bhist -l line as LSF does: 79 columns, continuation lines indented."""
    if len(line) <= WRAP:
        return [line]
    out = [line[:WRAP]]
    rest = line[WRAP:]
    step = WRAP - indent
    while rest:
        out.append(" " * indent + rest[:step])
        rest = rest[step:]
    return out


def state_seconds(j, now):
    end = j.get("end_time") or now
    start = j.get("start_time")
    pend = (start or end) - j["submit_time"]
    run = (end - start) if start else 0
    psusp = 0
    if j["phase"] == emu.HELD:
        psusp, pend = pend, 0
    return [int(pend), int(psusp), int(run), 0, 0, 0]


def bhist_long(j, now):
    lines = [""]
    head = "Job <%s>, Job Name <%s>, User <%s>, Project <%s>, Command <%s>" % (j["id"], j["name"], j["owner"], j["project"], j["command"])
    lines += wrap(head, 21)
    sub = "%s: Submitted from host <%s>, to Queue <%s>, CWD <%s>" % (event_time(j["submit_time"]), j["from_host"], j["queue"], j["cwd"])
    if j.get("stdout"):
        sub += ", Output File%s <%s>" % (" (overwrite)" if j.get("stdout_overwrite") else "", j["stdout"])
    if j.get("stderr"):
        sub += ", Error File%s <%s>" % (" (overwrite)" if j.get("stderr_overwrite") else "", j["stderr"])
    if j.get("resreq"):
        sub += ", Requested Resources <%s>" % j["resreq"]
    lines += wrap(sub + ";", 21)
    if j.get("start_time"):
        t = event_time(j["start_time"])
        host = j["exec_host"]
        lines += wrap(
            "%s: Dispatched %d Task(s) on Host(s) <%s>, Allocated %d Slot(s) on Host(s) <%s>, Effective RES_REQ <select[type == local] order[r15s:pg] >;"
            % (t, j["slots"], host, j["slots"], host),
            21,
        )
        lines += wrap("%s: Starting (Pid %s);" % (t, j.get("job_pid", 0)), 21)
        lines += wrap(
            "%s: Running with execution home <%s>, Execution CWD <%s>, Execution Pid <%s>;" % (t, j["home"], j["cwd"], j.get("job_pid", 0)),
            21,
        )
    for at, what in j.get("events", []):
        if what == "signal KILL":
            lines += wrap("%s: Signal <KILL> requested by user or administrator <%s>;" % (event_time(at), j["owner"]), 21)
    if j["phase"] == emu.FINISHED:
        t = event_time(j["end_time"])
        cpu = "The CPU time used is %.1f seconds;" % j.get("cpu_seconds", 0.0)
        if j.get("stat") == "DONE":
            lines += wrap("%s: Done successfully. %s" % (t, cpu), 21)
            lines += wrap("%s: Completed <done>." % t, 21)
        else:
            if j.get("signal"):
                lines += wrap("%s: Exited by signal %d. %s" % (t, j["signal"], cpu), 21)
            elif j.get("lsf_exit") is not None and j.get("start_time"):
                lines += wrap("%s: Exited with exit code %d. %s" % (t, j["lsf_exit"], cpu), 21)
            if j.get("exit_reason"):
                lines += wrap("%s: Completed <exit>; %s." % (t, j["exit_reason"]), 21)
            else:
                lines += wrap("%s: Completed <exit>." % t, 21)
    lines.append("")
    secs = state_seconds(j, now)
    lines.append("Summary of time in seconds spent in various states by  %s" % event_time(j.get("end_time") or now))
    lines.append("  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL")
    lines.append("  " + "".join("%-9d" % s for s in secs + [sum(secs)]).rstrip())
    return lines


def bhist(argv):
    c = conf()
    flags, values, ids = set(), {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-n", "-u", "-q", "-J", "-m", "-P", "-S", "-C", "-D", "-T", "-f"):
            if i + 1 >= len(argv):
                sys.stderr.write("bhist: option %s requires an argument\n" % a)
                return 255
            values[a] = argv[i + 1]
            i += 2
            continue
        if a in ("-a", "-b", "-d", "-e", "-l", "-p", "-r", "-s", "-w", "-t"):
            flags.add(a)
        elif a.startswith("-"):
            sys.stderr.write("bhist: illegal option -- %s\nUsage: bhist [-a] [-l] [-n num_logfiles] [-u user|all] [jobId ...]\n" % a.lstrip("-"))
            return 255
        else:
            ids.append(a)
        i += 1
    spool = emu.Spool(c["spool"])
    now = time.time()
    jobs = spool.all()
    refresh_orphans(spool, jobs)
    me = emu.user_info()[0]
    shown, rc = [], 0
    if ids:
        by_id = {j["id"]: j for j in jobs}
        for raw in ids:
            if raw in by_id:
                shown.append(by_id[raw])
    else:
        who = values.get("-u", me)
        for j in jobs:
            if who != "all" and j["owner"] != who:
                continue
            fin = j["phase"] == emu.FINISHED
            if "-d" in flags and not fin:
                continue
            if "-a" not in flags and "-d" not in flags and fin:
                continue
            shown.append(j)
    if not shown:
        sys.stderr.write("No matching job found\n")
        return 255
    if "-l" in flags:
        blocks = ["\n".join(bhist_long(j, now)) for j in shown]
        sep = "\n" + "-" * 78 + "\n"
        sys.stdout.write(sep.join(blocks) + "\n")
    else:
        out = ["Summary of time in seconds spent in various states:\n",
               "JOBID   USER    JOB_NAME  PEND    PSUSP   RUN     USUSP   SSUSP   UNKWN   TOTAL\n"]
        for j in shown:
            secs = state_seconds(j, now)
            name = j["name"] if "-w" in flags else cut(j["name"], 9, False)
            out.append("%-7s %-7s %-9s " % (j["id"], cut(j["owner"], 7, "-w" in flags), name)
                       + " ".join("%-7d" % s for s in secs + [sum(secs)]).rstrip() + "\n")
        sys.stdout.write("".join(out))
    return rc


COMMANDS = {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "bhist": bhist}


def main(name, argv):
    if argv[:1] == [emu.supervisor_argv_marker()]:
        emu.supervisor_main(argv, POLICIES)
        return 0
    if argv == ["-V"]:
        sys.stderr.write("IBM Spectrum LSF 10.1.0.13 (Ferry emulator), Nov 28 2026\n")
        return 0
    return COMMANDS[name](argv)


if __name__ == "__main__":
    sys.exit(main(None, sys.argv[1:]))
