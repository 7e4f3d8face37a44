package sge

import (
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// State is one Grid Engine job state code with the Ferry status it maps to. The table is exported
// so the documentation can be generated from the code that uses it.
type State struct {
	Code    string           // the state as qstat prints it ("Eqw")
	Meaning string           // what the scheduler documents and, where it is a choice, why it maps so
	Status  scheduler.Status // Ferry's view of the state
	Source  string           // where the meaning is documented
}

const (
	sourceStatus = "sge_status(5), gridengine-common 8.1.9"
	sourceLetter = "qstat(1) state letters (d E h r R s S t T w q)"
	sourceField  = "seen in Univa Grid Engine output (Nextflow SgeExecutorTest); undocumented in sge_status(5)"
)

// States lists every state code Grid Engine documents (sge_status(5) and the single letters of
// qstat(1)), with Ferry's mapping. A code is a combination of letters, and StateStatus reads the
// letters, not the table, so any combination maps; the table is what the tests check that against.
//
// Choices worth knowing:
//   - E (error: Eqw, Ehqw, EhRqw) is held, not failed: the job stays queued and runs once the
//     error is cleared with qmod -cj. The reason says so.
//   - d (deletion: dr, dt, dRs...) is cancelled: someone deleted the job, and nothing but its end
//     can follow, though a job on an unreachable host can stay in dr for hours. Ferry then stops
//     polling it and waits for its .exitcode as for any other ended job.
//   - s, S and T (suspended by the user, by a subordinate queue, by a load alarm) are held, even
//     when combined with r or t; S and T resume by themselves when the queue does.
//   - h is held unless combined with r or t: "hr" is a running job with a hold on it (a hold only
//     affects jobs that have not started).
//   - r, t and R (restarted) are running; q and w are pending, also with R (Rq: re-queued).
//   - P and N appear in Univa Grid Engine output but not in sge_status(5); like Nextflow, Ferry
//     treats them as pending. z (zombie, qstat -s z: finished) is completed.
var States = []State{
	{"qw", "pending", scheduler.StatusPending, sourceStatus},
	{"q", "queued", scheduler.StatusPending, sourceLetter},
	{"w", "waiting", scheduler.StatusPending, sourceLetter},
	{"Rq", "pending, re-queued", scheduler.StatusPending, sourceStatus},
	{"P", "Univa: pending (preemption)", scheduler.StatusPending, sourceField},
	{"N", "Univa: pending", scheduler.StatusPending, sourceField},
	{"h", "hold", scheduler.StatusHeld, sourceLetter},
	{"hqw", "pending, user and/or system hold", scheduler.StatusHeld, sourceStatus},
	{"hRwq", "pending, hold, re-queue", scheduler.StatusHeld, sourceStatus},
	{"r", "running", scheduler.StatusRunning, sourceStatus},
	{"t", "transferring to the execution host", scheduler.StatusRunning, sourceStatus},
	{"R", "restarted (re-run)", scheduler.StatusRunning, sourceLetter},
	{"Rr", "running, re-submitted", scheduler.StatusRunning, sourceStatus},
	{"Rt", "transferring, re-submitted", scheduler.StatusRunning, sourceStatus},
	{"hr", "running with a hold applied (a hold only stops jobs that have not started)", scheduler.StatusRunning, sourceLetter},
	{"s", "job suspended (qmod -sj); needs qmod -usj", scheduler.StatusHeld, sourceStatus},
	{"ts", "transferring, job suspended", scheduler.StatusHeld, sourceStatus},
	{"S", "queue suspended (subordinate queue); resumes with the queue", scheduler.StatusHeld, sourceStatus},
	{"tS", "transferring, queue suspended", scheduler.StatusHeld, sourceStatus},
	{"T", "queue suspended by a load alarm (suspend threshold); resumes with the queue", scheduler.StatusHeld, sourceStatus},
	{"tT", "transferring, queue suspended by alarm", scheduler.StatusHeld, sourceStatus},
	{"Tr", "running in a queue suspended by alarm", scheduler.StatusHeld, sourceLetter},
	{"Rs", "suspended, re-submitted", scheduler.StatusHeld, sourceStatus},
	{"Rts", "transferring, suspended, re-submitted", scheduler.StatusHeld, sourceStatus},
	{"RS", "queue suspended, re-submitted", scheduler.StatusHeld, sourceStatus},
	{"RtS", "transferring, queue suspended, re-submitted", scheduler.StatusHeld, sourceStatus},
	{"RT", "queue suspended by alarm, re-submitted", scheduler.StatusHeld, sourceStatus},
	{"RtT", "transferring, queue suspended by alarm, re-submitted", scheduler.StatusHeld, sourceStatus},
	{"E", "error", scheduler.StatusHeld, sourceLetter},
	{"Eqw", "pending with error: will not run until qmod -cj clears it", scheduler.StatusHeld, sourceStatus},
	{"Ehqw", "pending with error and hold", scheduler.StatusHeld, sourceStatus},
	{"EhRqw", "pending with error, hold and re-queue", scheduler.StatusHeld, sourceStatus},
	{"dr", "running, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dt", "transferring, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dRr", "running, re-submitted, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dRt", "transferring, re-submitted, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"ds", "suspended, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dS", "queue suspended, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dT", "queue suspended by alarm, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dRs", "suspended, re-submitted, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dRS", "queue suspended, re-submitted, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"dRT", "queue suspended by alarm, re-submitted, being deleted", scheduler.StatusCancelled, sourceStatus},
	{"z", "zombie: finished (qstat -s z)", scheduler.StatusCompleted, sourceLetter},
}

// StateStatus maps a Grid Engine state code, any combination of the letters d E h r R s S t T w q
// (and Univa's P and N, and z), to a Ferry status, by precedence: E held, d cancelled, s/S/T held,
// r/t running, h held, q/w/P/N pending, R running, z completed. A code with any other letter is
// StatusUnknown, which Ferry treats as still active.
func StateStatus(code string) scheduler.Status {
	code = strings.TrimSpace(code)
	if code == "" || strings.Trim(code, "dEhrRsStTwqPNz") != "" {
		return scheduler.StatusUnknown
	}
	has := func(letters string) bool { return strings.ContainsAny(code, letters) }
	switch {
	case has("E"):
		return scheduler.StatusHeld
	case has("d"):
		return scheduler.StatusCancelled
	case has("sST"):
		return scheduler.StatusHeld
	case has("rt"):
		return scheduler.StatusRunning
	case has("h"):
		return scheduler.StatusHeld
	case has("qwPN"):
		return scheduler.StatusPending
	case has("R"):
		return scheduler.StatusRunning
	}
	return scheduler.StatusCompleted // only z left
}

// stateReason explains the states whose cause qstat does not print.
func stateReason(code string) string {
	switch {
	case strings.Contains(code, "E"):
		return "error state: the job will not run until the cause is fixed and qmod -cj clears it (qstat -j shows the error)"
	case strings.Contains(code, "d"):
		return "being deleted"
	case strings.Contains(code, "s"):
		return "suspended (qmod -usj resumes it)"
	case strings.Contains(code, "S"):
		return "queue suspended"
	case strings.Contains(code, "T"):
		return "queue suspended by a load alarm"
	case strings.Contains(code, "h") && !strings.ContainsAny(code, "rt"):
		return "on hold (qrls releases it)"
	}
	return ""
}
