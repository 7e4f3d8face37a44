# EMULATOR of the Moab Workload Manager's user commands (msub, showq, checkjob, mjobctl,
# canceljob) for Ferry's tests: NOT Moab. Installed by scripts/cluster-up as
# /opt/ferry-emulators/moab/bin/{msub,showq,checkjob,mjobctl,canceljob}, next to the resource
# manager's qselect and qstat (links to the PBS Pro emulator's). Moab is a scheduler that runs
# jobs through a resource manager (Torque or PBS); here the resource manager is the PBS Pro
# emulator (pbspro.py): msub submits through its qsub, so the job runs for real as the caller,
# and Moab's job id is the resource manager's job number ("12" for "12.ferrypbs").
#
# Formats: no capture of real Moab output was available to this project. What these commands
# print follows Adaptive Computing's Moab documentation (showq --xml, checkjob --xml, msub,
# mjobctl), not a capture; scheduler/moab's parser tests name each sample's origin.
#   msub SCRIPT              a blank line, then the job id                       ("\n12\n")
#   showq --xml -w user=U    <Data><Object>queue</Object><cluster .../><queue option="active">
#                            <job .../>...</queue><queue option="eligible">...<queue
#                            option="blocked">...</Data>, every attribute of a job on its <job>
#   checkjob --xml ID        <Data><job JobID= State= CompletionCode= .../></Data>; an unknown
#                            id: "ERROR:  cannot locate job 'ID'" on stderr, exit 1
#   mjobctl -c ID            "job 'ID' cancelled"; an ended job: "ERROR:  job 'ID' has already
#                            completed", exit 1; another user's: "ERROR:  user 'U' is not
#                            authorized to cancel job 'ID'", exit 1
# States: Idle (queued), UserHold (held), Running, Completed, Removed (cancelled); a job killed on
# its walltime is Removed with CompletionCode -11, as Moab on Torque reports it (JOB_EXEC_OVERLIMIT_WT).

import io
import os
import sys
import time
from xml.sax.saxutils import quoteattr

import emucommon as emu
import pbspro


def conf():
    return pbspro.conf()


def by_seq(jobs, raw):
    raw = raw[len("Moab."):] if raw.startswith("Moab.") else raw
    if not raw.isdigit():
        return None
    for j in jobs:
        if j["seq"] == int(raw):
            return j
    return None


def state(j):
    if j["phase"] == emu.FINISHED:
        return "Removed" if j.get("end_reason") in ("deleted", "walltime") else "Completed"
    return {"queued": "Idle", "held": "UserHold", "running": "Running", "exiting": "Running"}[j["phase"]]


def completion_code(j):
    if j["phase"] != emu.FINISHED:
        return None
    if j.get("end_reason") == "walltime":
        return -11
    st = j.get("exit_status")
    return st if st is not None and st >= 0 else None


def job_xml(j, now):
    a = [
        ("JobID", str(j["seq"])),
        ("JobName", j["name"]),
        ("AName", j["name"]),
        ("State", state(j)),
        ("User", j["owner"]),
        ("Group", j["group"]),
        ("Class", j["queue"]),
        ("DRMJID", j["id"]),
        ("SubmissionTime", "%d" % j["submit_time"]),
        ("StartTime", "%d" % (j.get("start_time") or 0)),
    ]
    if j.get("walltime"):
        a.append(("ReqAWDuration", "%d" % j["walltime"]))
    if j["phase"] == emu.FINISHED:
        a.append(("CompletionTime", "%d" % (j.get("end_time") or now)))
        code = completion_code(j)
        if code is not None:
            a.append(("CompletionCode", str(code)))
    if j["phase"] == emu.HELD:
        a.append(("HoldReason", "User"))
    return "<job %s></job>" % " ".join("%s=%s" % (k, quoteattr(v)) for k, v in a)


def msub(argv):
    # msub reads #PBS (and #MSUB) directives; the resource manager's qsub does the rest.
    argv = list(argv)
    os.environ["FERRY_EMULATOR_MSUB"] = "1"
    real = sys.stdout
    buf = io.StringIO()
    sys.stdout = buf
    try:
        rc = pbspro.qsub(argv)
    finally:
        sys.stdout = real
    if rc != 0:
        return rc
    jobid = buf.getvalue().strip()
    sys.stdout.write("\n%s\n" % jobid.split(".")[0])
    return 0


def showq(argv):
    user = None
    xml = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--xml":
            xml = True
        elif a == "-w" and i + 1 < len(argv):
            i += 1
            k, _, v = argv[i].partition("=")
            if k != "user":
                sys.stderr.write("showq: the Ferry Moab emulator filters by -w user= only\n")
                return 1
            user = v
        else:
            sys.stderr.write("showq: option %s is not supported by the Ferry Moab emulator (test infrastructure)\n" % a)
            return 1
        i += 1
    if not xml:
        sys.stderr.write("showq: the Ferry Moab emulator prints only --xml\n")
        return 1
    c = conf()
    spool = emu.Spool(c["spool"])
    jobs = spool.all()
    pbspro.refresh_orphans(spool, jobs)
    now = time.time()
    queues = {"active": [], "eligible": [], "blocked": []}
    for j in jobs:
        if user and j["owner"] != user or j["phase"] == emu.FINISHED:
            continue
        q = {"running": "active", "exiting": "active", "queued": "eligible", "held": "blocked"}[j["phase"]]
        queues[q].append(job_xml(j, now))
    out = ['<Data><Object>queue</Object><cluster LocalActiveNodes="1" LocalIdleNodes="0" LocalUpNodes="1" time="%d"></cluster>' % now]
    for q in ("active", "eligible", "blocked"):
        out.append('<queue count="%d" option="%s">%s</queue>' % (len(queues[q]), q, "".join(queues[q])))
    out.append("</Data>\n")
    sys.stdout.write("".join(out))
    return 0


def checkjob(argv):
    ids = [a for a in argv if not a.startswith("-")]
    if "--xml" not in argv or len(ids) != 1:
        sys.stderr.write("usage (Ferry Moab emulator): checkjob --xml JOBID\n")
        return 1
    c = conf()
    spool = emu.Spool(c["spool"])
    jobs = spool.all()
    pbspro.refresh_orphans(spool, jobs)
    j = by_seq(jobs, ids[0])
    if j is None:
        sys.stderr.write("ERROR:  cannot locate job '%s'\n" % ids[0])
        return 1
    sys.stdout.write("<Data>%s</Data>\n" % job_xml(j, time.time()))
    return 0


def mjobctl(argv):
    if len(argv) != 2 or argv[0] != "-c":
        sys.stderr.write("usage (Ferry Moab emulator): mjobctl -c JOBID\n")
        return 1
    return cancel(argv[1])


def canceljob(argv):
    rc = 0
    for a in argv:
        rc = cancel(a) or rc
    return rc


def cancel(raw):
    c = conf()
    spool = emu.Spool(c["spool"])
    jobs = spool.all()
    pbspro.refresh_orphans(spool, jobs)
    j = by_seq(jobs, raw)
    if j is None:
        sys.stderr.write("ERROR:  cannot locate job '%s'\n" % raw)
        return 1
    if j["uid"] != os.getuid():
        sys.stderr.write("ERROR:  user '%s' is not authorized to cancel job '%s'\n" % (emu.user_info()[0], raw))
        return 1
    if j["phase"] == emu.FINISHED:
        sys.stderr.write("ERROR:  job '%s' has already completed\n" % raw)
        return 1
    # The resource manager deletes it, as Moab asks it to.
    real, buf = sys.stderr, io.StringIO()
    sys.stderr = buf
    try:
        rc = pbspro.qdel([j["id"]])
    finally:
        sys.stderr = real
    if rc != 0:
        sys.stderr.write("ERROR:  cannot cancel job '%s': %s" % (raw, buf.getvalue()))
        return 1
    sys.stdout.write("job '%s' cancelled\n" % raw)
    return 0


COMMANDS = {"msub": msub, "showq": showq, "checkjob": checkjob, "mjobctl": mjobctl, "canceljob": canceljob}


def main(name, argv):
    return COMMANDS[name](argv)
