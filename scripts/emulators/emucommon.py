# EMULATOR support code, for Ferry's tests only: NOT a batch scheduler. It is the part the PBS Pro
# emulator (pbspro.py) and the LSF emulator (lsf.py) share: their site settings, the spool dir
# where every job is one JSON file, the flock-protected job id counter, and the supervisor that
# runs a job for real, detached, as the user who submitted it (the emulated commands are invoked
# over ssh as that user), enforcing its time limit and carrying out cancels.
#
# Spool layout (SPOOL is /var/spool/ferry-emulators/<scheduler>, mode 1777 like /tmp):
#   SPOOL/seq          the last job number, mode 0666; read-increment-write under flock
#   SPOOL/<N>.json     job N, owned by its user, mode 0644 (everyone may list everyone's jobs),
#                      replaced atomically (temp file + rename) by the user's own processes only
#   SPOOL/<N>.script   the job script as submitted (real schedulers copy it too)
#   SPOOL/<N>.out      LSF only: the job's spooled stdout until it is written to the -o file
#
# A job's supervisor is a double-forked, re-executed process of the submitting command
# ("python3 MODULE ferry-emulator-supervisor ..."): its own session, stdio on /dev/null, every
# inherited fd closed (so the ssh session of qsub/bsub ends at once).
# It waits queue_delay seconds (state queued), starts the job in a new session (process group =
# job id for signals), polls it every 0.1 s, and on exit records the exit status and kills what
# is left of the job's process group, as a real execution daemon does. A cancel is a SIGTERM to
# the supervisor (only the job's owner can send it); the scheduler module decides which signals
# the job then gets. Python 3 standard library only (Debian's python3), no threads.

import errno
import fcntl
import json
import os
import pwd
import grp
import signal
import socket
import stat
import sys
import time

EMU_ROOT = "/opt/ferry-emulators"
SPOOL_ROOT = "/var/spool/ferry-emulators"

# Job phases, shared by both emulators; each maps them to its own state codes.
QUEUED, HELD, RUNNING, EXITING, FINISHED = "queued", "held", "running", "exiting", "finished"


def die(prog, msg, code):
    """Print "prog: msg" on stderr and exit with code, the way the real commands report errors."""
    sys.stderr.write("%s: %s\n" % (prog, msg) if prog else msg + "\n")
    sys.exit(code)


def load_conf(kind, defaults):
    """Return the emulator's site settings: defaults updated from EMU_ROOT/<kind>/emulator.conf
    (KEY=VALUE lines, '#' comments), which scripts/cluster-up writes. FERRY_EMULATOR_ROOT and
    FERRY_EMULATOR_SPOOL relocate the install and the spool (the selftest uses them)."""
    conf = dict(defaults)
    root = os.environ.get("FERRY_EMULATOR_ROOT", EMU_ROOT)
    try:
        with open(os.path.join(root, kind, "emulator.conf")) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#") or "=" not in line:
                    continue
                k, v = line.split("=", 1)
                conf[k.strip()] = v.strip()
    except FileNotFoundError:
        pass
    if not conf.get("host"):
        conf["host"] = socket.gethostname().split(".")[0]
    conf["spool"] = os.path.join(os.environ.get("FERRY_EMULATOR_SPOOL", SPOOL_ROOT), kind)
    return conf


class Spool:
    """The job store of one emulator."""

    def __init__(self, path):
        self.path = path
        if not os.path.isdir(path):
            raise SystemExit("emulator spool %s is missing: run scripts/cluster-up as root" % path)

    def next_id(self):
        """Return a new job number: the counter file incremented under an exclusive flock."""
        p = os.path.join(self.path, "seq")
        fd = os.open(p, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 64).decode().strip()
            n = int(raw or "0") + 1
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, ("%d\n" % n).encode())
            return n
        finally:
            os.close(fd)

    def job_path(self, seq, suffix="json"):
        return os.path.join(self.path, "%d.%s" % (seq, suffix))

    def save(self, job):
        """Write job atomically (temp file in the spool, then rename over the old one)."""
        final = self.job_path(job["seq"])
        tmp = "%s.tmp.%d" % (final, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(job, f, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)  # the umask must not hide jobs from other users' qstat/bjobs
        os.rename(tmp, final)

    def load(self, seq):
        """Return job seq, or None when it does not exist (or is being created)."""
        try:
            with open(self.job_path(seq)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def all(self):
        """Return every job, oldest first."""
        jobs = []
        for name in os.listdir(self.path):
            if not name.endswith(".json"):
                continue
            head = name[: -len(".json")]
            if not head.isdigit():
                continue
            j = self.load(int(head))
            if j is not None:
                jobs.append(j)
        jobs.sort(key=lambda j: j["seq"])
        return jobs


def prune(spool, max_age):
    """Remove the calling user's finished jobs that ended more than max_age seconds ago (the
    spool is sticky: nobody can remove another user's files). Submitting commands call it, so
    the spool of a long-lived test cluster does not grow without bound."""
    now = time.time()
    me = os.getuid()
    for j in spool.all():
        if j.get("uid") != me or j.get("phase") != FINISHED:
            continue
        if now - (j.get("end_time") or now) <= max_age:
            continue
        for suffix in ("json", "script", "out", "supervisor-error"):
            try:
                os.unlink(spool.job_path(j["seq"], suffix))
            except OSError:
                pass


def user_info():
    """Return (name, uid, gid, group name, home, login shell) of the calling user."""
    pw = pwd.getpwuid(os.getuid())
    try:
        gname = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        gname = str(pw.pw_gid)
    return pw.pw_name, pw.pw_uid, pw.pw_gid, gname, pw.pw_dir, pw.pw_shell or "/bin/sh"


def ctime(t):
    """Format epoch t like ctime(3) without the newline: "Thu Jun 19 21:27:51 2025"."""
    return time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(t))


def parse_duration(s):
    """Parse [[HH:]MM:]SS[.frac] into seconds; raise ValueError on anything else."""
    parts = s.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
        raise ValueError(s)
    total = 0.0
    for p in parts:
        total = total * 60 + float(p)
    if total < 0:
        raise ValueError(s)
    return total


def hhmmss(secs):
    secs = int(secs)
    return "%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)


def supervisor_alive(job):
    """Report whether the job's supervisor process still runs (checked by its command line)."""
    pid = job.get("supervisor_pid")
    if not pid:
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read()
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X") and b"ferry-emulator-supervisor" in cmd


def signal_group(pgid, sig):
    """Send sig to process group pgid, ignoring a group that is already gone."""
    if not pgid:
        return
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass


class Policy:
    """What one emulated scheduler does at each step of a job's life. The scheduler modules
    subclass it; every hook gets the supervisor (for .job, .save(), .kill())."""

    kill_delay = 10.0  # seconds between the first signal of a kill and SIGKILL

    def popen_args(self, sup):
        """Return (argv, cwd, env, stdout_path, stderr_path or None to join, append)."""
        raise NotImplementedError

    def on_start(self, sup):
        pass

    def on_tick(self, sup, now):
        """Called every 0.1 s while the job runs: enforce limits here."""

    def on_cancel(self, sup, before_start):
        """The owner cancelled the job."""

    def on_end(self, sup, status, rusage):
        """The job's top process ended with wait status; record the outcome."""


class Supervisor:
    def __init__(self, spool, job, policy):
        self.spool = spool
        self.job = job
        self.policy = policy
        self.cancel = False
        self.pgid = None
        self.kill_at = None  # when to send SIGKILL after a first kill signal

    def save(self):
        self.spool.save(self.job)

    def _on_term(self, signum, frame):
        self.cancel = True

    def kill(self, signals, reason):
        """Start killing the job: send each of signals to its process group now and SIGKILL after
        the policy's kill_delay. reason is kept in the job ("deleted", "walltime")."""
        if self.kill_at is not None:
            return
        self.job["end_reason"] = reason
        for s in signals:
            signal_group(self.pgid, s)
        self.kill_at = time.time() + float(self.policy.kill_delay)

    def run(self):
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        job = self.job
        start_at = job["submit_time"] + float(job.get("queue_delay", 0))
        while job["phase"] in (QUEUED, HELD):
            if self.cancel:
                self.policy.on_cancel(self, True)
                job["phase"] = FINISHED
                job["end_time"] = time.time()
                job.setdefault("end_reason", "deleted")
                self.save()
                return
            if job["phase"] == QUEUED and time.time() >= start_at:
                break
            time.sleep(0.05)
        argv, cwd, env, out, err, append = self.policy.popen_args(self)
        # O_APPEND even for a fresh file: the scheduler appends its own messages ("job killed:
        # walltime ...") while the job writes, and neither may overwrite the other.
        def open_out(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if not append and stat.S_ISREG(os.fstat(fd).st_mode):
                os.ftruncate(fd, 0)  # not /dev/null and the like, which cannot be truncated
            return fd

        try:
            ofd = open_out(out)
            efd = ofd if err is None else open_out(err)
        except OSError as e:
            job["phase"] = FINISHED
            job["start_time"] = job["end_time"] = time.time()
            job["end_reason"] = "failed-start"
            job["start_error"] = "cannot open output file %s: %s" % (out if err is None else err, e.strerror)
            self.policy.on_end(self, None, None)
            self.save()
            return
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                os.chdir(cwd)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(ofd, 1)
                os.dup2(efd, 2)
                os.closerange(3, 65536)
                os.execve(argv[0], argv, env)
            except OSError as e:
                os.write(2, ("%s: %s\n" % (argv[0], e.strerror)).encode())
                os._exit(127 if e.errno == errno.ENOENT else 126)
            os._exit(127)
        os.close(ofd)
        if efd != ofd:
            os.close(efd)
        self.pgid = pid
        job["job_pid"] = pid
        job["phase"] = RUNNING
        job["start_time"] = time.time()
        self.policy.on_start(self)
        self.save()
        status = rusage = None
        while True:
            try:
                wpid, status, rusage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                status = 0
                break
            if wpid == pid:
                break
            now = time.time()
            if self.cancel and self.kill_at is None:
                self.cancel = False
                self.policy.on_cancel(self, False)
                self.save()
            if self.kill_at is None:
                self.policy.on_tick(self, now)
            elif now >= self.kill_at:
                signal_group(self.pgid, signal.SIGKILL)
                self.kill_at = float("inf")
            time.sleep(0.1)
        # The job's top process is gone: whatever it left in its process group goes too, as the
        # execution daemon of a real scheduler kills the rest of a job's session.
        signal_group(self.pgid, signal.SIGKILL)
        job["end_time"] = time.time()
        job["phase"] = FINISHED
        if os.WIFEXITED(status):
            job["exit_code"] = os.WEXITSTATUS(status)
            job["signal"] = None
        elif os.WIFSIGNALED(status):
            job["exit_code"] = None
            job["signal"] = os.WTERMSIG(status)
        if rusage is not None:
            job["cpu_seconds"] = rusage.ru_utime + rusage.ru_stime
            job["maxrss_kb"] = rusage.ru_maxrss
        job.setdefault("end_reason", "normal")
        self.policy.on_end(self, status, rusage)
        self.save()


def finalize_orphan(spool, job, policy_end):
    """Record a job whose supervisor is gone (killed by cluster-down, machine restarted) as
    finished, so that it does not stay queued or running forever. policy_end(job) fills in the
    scheduler's view of such an end."""
    job["phase"] = FINISHED
    job["end_time"] = job.get("end_time") or time.time()
    job.setdefault("end_reason", "deleted")
    policy_end(job)
    spool.save(job)


def supervisor_argv_marker():
    """The marker put into argv of supervisors (see run_as_supervisor)."""
    return "ferry-emulator-supervisor"


def run_as_supervisor(spool, job, policy_name, module_file):
    """Start the job's supervisor as a separate process whose command line carries a marker, so
    supervisor_alive and cluster-down recognise it: python3 MODULE ferry-emulator-supervisor
    SPOOL SEQ. Double-forked and detached; returns once the supervisor has recorded its pid."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        # Wait (bounded) until the supervisor has recorded itself, so that a qdel/bkill right
        # after the submit finds it.
        deadline = time.time() + 10
        while time.time() < deadline:
            j = spool.load(job["seq"])
            if j is not None and j.get("supervisor_pid"):
                break
            time.sleep(0.01)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, 65536)
        os.execv(
            sys.executable,
            [sys.executable, "-sE", module_file, supervisor_argv_marker(), policy_name, spool.path, str(job["seq"])],
        )
    finally:
        os._exit(127)


def supervisor_main(argv, policies):
    """Entry point of a supervisor process started by run_as_supervisor: argv is
    [marker, policy name, spool path, seq]."""
    _, name, spool_path, seq = argv[:4]
    spool = Spool(spool_path)
    job = spool.load(int(seq))
    if job is None:
        return
    try:
        job["supervisor_pid"] = os.getpid()
        spool.save(job)
        Supervisor(spool, job, policies[name]()).run()
    except BaseException:
        import traceback

        try:
            with open(spool.job_path(int(seq), "supervisor-error"), "w") as f:
                traceback.print_exc(file=f)
        except Exception:
            pass
        raise
