package lsf

import (
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// State is one LSF job status with the Ferry status it maps to. The table is exported so the
// documentation can be generated from the code that uses it.
type State struct {
	Code    string           // the status as bjobs prints it ("PEND")
	Meaning string           // what LSF documents and, where it is a choice, why it maps so
	Status  scheduler.Status // Ferry's view of the state
	Source  string           // where the meaning is documented
}

const (
	sourceTerms = `IBM Spectrum LSF 10.1 "LSF terms and concepts - Job states"; bjobs(1) JOB STATUS`
	sourceSum   = "IBM Spectrum LSF 10.1 bjobs -sum"
)

// States lists every job status LSF documents, with Ferry's mapping.
//
// Choices worth knowing:
//   - EXIT is failed, refined by the exit reason when the output has one: TERM_RUNLIMIT and
//     TERM_DEADLINE are timeout; TERM_OWNER, TERM_ADMIN, TERM_FORCE_OWNER, TERM_FORCE_ADMIN and
//     TERM_PREEMPT are cancelled (see ExitReasonStatus).
//   - DONE is completed, and so are POST_DONE and POST_ERR: they report the post-execution
//     processing of a job that had already ended; its own outcome is in the exit code.
//   - ZOMBI is failed: the job was killed while its host was unreachable (or requeued, which Ferry
//     does not ask for) and can only end as EXIT.
//   - PSUSP, USUSP and SSUSP are held. SSUSP (suspended by LSF for load or a closed run window)
//     resumes by itself; the reason says so.
//   - UNKWN is running: mbatchd lost contact with the execution host, where the job may well still
//     run; contact may come back.
//   - PROV is running: the job is dispatched to a host that is powering up (like Slurm's
//     CONFIGURING). WAIT (a chunk job member waiting to run) and FWD_PEND (forwarded to another
//     cluster, pending there) are pending.
var States = []State{
	{"PEND", "waiting in a queue to be scheduled and dispatched", scheduler.StatusPending, sourceTerms},
	{"WAIT", "member of a chunk job waiting to run", scheduler.StatusPending, sourceTerms},
	{"FWD_PEND", "forwarded to a remote cluster and pending there", scheduler.StatusPending, sourceSum},
	{"PSUSP", "suspended by its owner or an administrator while pending; needs bresume", scheduler.StatusHeld, sourceTerms},
	{"USUSP", "suspended by its owner or an administrator after dispatch; needs bresume", scheduler.StatusHeld, sourceTerms},
	{"SSUSP", "suspended by LSF after dispatch (load thresholds, closed run window); resumes by itself", scheduler.StatusHeld, sourceTerms},
	{"PROV", "dispatched to a power-saved host that is waking up", scheduler.StatusRunning, sourceTerms},
	{"RUN", "dispatched to a host and running", scheduler.StatusRunning, sourceTerms},
	{"UNKWN", "mbatchd lost contact with the sbatchd on the job's host; the job may still run", scheduler.StatusRunning, sourceTerms},
	{"DONE", "finished normally with exit value 0", scheduler.StatusCompleted, sourceTerms},
	{"POST_DONE", "post-execution processing finished without errors (the job had ended before)", scheduler.StatusCompleted, sourceTerms},
	{"POST_ERR", "post-execution processing finished with errors (the job had ended before)", scheduler.StatusCompleted, sourceTerms},
	{"EXIT", "finished with a non-zero exit value, or was killed (bkill, a limit, preemption)", scheduler.StatusFailed, sourceTerms},
	{"ZOMBI", "killed while its host was unreachable; becomes EXIT when the host returns", scheduler.StatusFailed, sourceTerms},
}

var stateByCode = func() map[string]scheduler.Status {
	m := make(map[string]scheduler.Status, len(States))
	for _, s := range States {
		m[s.Code] = s.Status
	}
	return m
}()

// StateStatus maps an LSF job status to a Ferry status. An undocumented status is StatusUnknown,
// which Ferry treats as still active.
func StateStatus(code string) scheduler.Status {
	if st, ok := stateByCode[strings.TrimSpace(code)]; ok {
		return st
	}
	return scheduler.StatusUnknown
}

// ExitReasonStatus refines the status of an EXIT job by its exit reason ("TERM_RUNLIMIT: job
// killed after reaching LSF run time limit", or just the TERM_ code): timeout for the run limit and
// the termination deadline, cancelled for a kill by the owner or an administrator and for
// preemption, and st itself otherwise.
func ExitReasonStatus(st scheduler.Status, reason string) scheduler.Status {
	code, _, _ := strings.Cut(strings.TrimSpace(reason), ":")
	switch strings.TrimSpace(code) {
	case "TERM_RUNLIMIT", "TERM_DEADLINE":
		return scheduler.StatusTimeout
	case "TERM_OWNER", "TERM_ADMIN", "TERM_FORCE_OWNER", "TERM_FORCE_ADMIN", "TERM_PREEMPT":
		return scheduler.StatusCancelled
	}
	low := strings.ToLower(reason)
	switch {
	case strings.Contains(low, "run time limit") || strings.Contains(low, "runlimit"):
		return scheduler.StatusTimeout
	case strings.Contains(low, "killed by owner") || strings.Contains(low, "killed by lsf administrator"):
		return scheduler.StatusCancelled
	}
	return st
}

// stateReason explains states whose cause the output does not give.
func stateReason(code string) string {
	switch code {
	case "SSUSP":
		return "suspended by LSF (load or run window); resumes by itself"
	case "USUSP", "PSUSP":
		return "suspended by the owner or an administrator (bresume resumes it)"
	case "UNKWN":
		return "LSF lost contact with the execution host"
	}
	return ""
}

// settle fills in what a job's status implies: the reason for a state LSF explains by its name and
// the refinement of EXIT by the exit reason.
func settle(js *scheduler.JobState) {
	if js.Raw == "EXIT" && js.Reason != "" {
		js.Status = ExitReasonStatus(js.Status, js.Reason)
	}
	if js.Reason == "" {
		js.Reason = stateReason(js.Raw)
	}
}
