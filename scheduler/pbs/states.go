package pbs

import (
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// State is one PBS job state letter with the Ferry status it maps to. The tables are exported so
// the documentation can be generated from the code that uses them.
type State struct {
	Code    string           // the job_state letter as qstat prints it ("Q")
	Meaning string           // what the scheduler documents and, where it is a choice, why it maps so
	Status  scheduler.Status // Ferry's view of the state
	Source  string           // where the meaning is documented
}

const (
	sourcePro    = "openpbs/openpbs doc/man1/qstat.1B (job states); PBS Pro Reference Guide, job_state"
	sourceTorque = "Torque qstat(1B) (Torque 2.x-6.x admin guide, commands/qstat)"
)

// ProStates lists every job state PBS Professional / OpenPBS documents, with Ferry's mapping.
//
// Choices worth knowing:
//   - E is running: the job has ended and PBS is cleaning up (stage-out, epilogue); its outcome is
//     not known yet. F follows.
//   - F is completed: the exit code decides success (Exit_status, or the task's .exitcode, which
//     Ferry prefers). PBS sets substate 91 for a deleted job and 93 for a failed one; those are
//     reported as cancelled and failed. A negative Exit_status is PBS's own verdict: -29
//     (JOB_EXEC_KILL_WALLTIME, the job ran past its walltime) is timeout, any other (PBS could not
//     run the job, or killed it on another limit) failed.
//   - X (a finished subjob) is completed like F; B (an array with running subjobs) is running.
//     Ferry submits no arrays; both are mapped so a pasted array listing parses.
//   - H, S and U are held: the job will not progress until someone releases or resumes it (U, a
//     cycle-harvesting job suspended by keyboard activity, resumes when the workstation is idle).
//   - W (waiting for its -a start time, or 30 minutes after a failed stage-in), T (in transit) and M
//     (moved to another server, where it continues under the same id) are pending: they progress
//     without anyone acting.
var ProStates = []State{
	{"Q", "queued, eligible to run or be routed", scheduler.StatusPending, sourcePro},
	{"W", "waiting for its submitter-assigned start time (-a), or delayed after a failed stage-in", scheduler.StatusPending, sourcePro},
	{"T", "being moved to a new location", scheduler.StatusPending, sourcePro},
	{"M", "moved to another server (peer scheduling); qstat with the full id follows it there", scheduler.StatusPending, sourcePro},
	{"H", "held (user, operator, system or dependency hold); needs qrls", scheduler.StatusHeld, sourcePro},
	{"S", "suspended; needs a resume", scheduler.StatusHeld, sourcePro},
	{"U", "cycle-harvesting job suspended by keyboard activity; resumes when the workstation is idle", scheduler.StatusHeld, sourcePro},
	{"R", "running", scheduler.StatusRunning, sourcePro},
	{"B", "array job with at least one subjob running (begun)", scheduler.StatusRunning, sourcePro},
	{"E", "exiting after having run: PBS is cleaning up and the outcome is not known yet", scheduler.StatusRunning, sourcePro},
	{"F", "finished (history, qstat -x): completed, failed or deleted; Exit_status and substate tell which", scheduler.StatusCompleted, sourcePro},
	{"X", "subjob finished or deleted (expired)", scheduler.StatusCompleted, sourcePro},
}

// TorqueStates lists every job state Torque documents, with Ferry's mapping. C is completed and
// the exit code decides, as for PBS Pro's F; Torque's own negative exit_status codes (the job could
// not run) are failed, and -11 (JOB_EXEC_OVERLIMIT_WT, walltime exceeded) is timeout.
var TorqueStates = []State{
	{"Q", "queued, eligible to run or routed", scheduler.StatusPending, sourceTorque},
	{"W", "waiting for its execution time (-a) to be reached", scheduler.StatusPending, sourceTorque},
	{"T", "being moved to a new location", scheduler.StatusPending, sourceTorque},
	{"H", "held; needs qrls", scheduler.StatusHeld, sourceTorque},
	{"S", "suspended (Unicos only); needs a resume", scheduler.StatusHeld, sourceTorque},
	{"R", "running", scheduler.StatusRunning, sourceTorque},
	{"E", "exiting after having run; the outcome is not known yet", scheduler.StatusRunning, sourceTorque},
	{"C", "completed after having run (kept for keep_completed seconds); exit_status tells how", scheduler.StatusCompleted, sourceTorque},
}

// stateByCode maps a letter of either table to its status. The two tables never disagree on a
// letter they share, so the text and table parsers, which cannot tell PBS Pro from Torque output,
// use the union.
var stateByCode = func() map[string]scheduler.Status {
	m := map[string]scheduler.Status{}
	for _, tbl := range [][]State{ProStates, TorqueStates} {
		for _, s := range tbl {
			m[s.Code] = s.Status
		}
	}
	return m
}()

// StateStatus maps a PBS Pro or Torque job_state letter to a Ferry status, before any refinement by
// exit status (see ProStates). An undocumented letter is StatusUnknown, which Ferry treats as
// still active.
func StateStatus(code string) scheduler.Status {
	if st, ok := stateByCode[strings.TrimSpace(code)]; ok {
		return st
	}
	return scheduler.StatusUnknown
}

// PBS Pro job substates that tell how a finished (F) job ended.
const (
	substateTerminated = "91" // deleted
	substateFailed     = "93"
)

// Negative exit statuses that say why PBS ended a job itself.
const (
	// execKillWalltime is PBS Pro's JOB_EXEC_KILL_WALLTIME: the job ran past its walltime. The
	// other JOB_EXEC_KILL_* limits (-24 ncpus burst, -25 ncpus sum, -26 vmem, -27 mem, -28 cput)
	// are failures.
	execKillWalltime = -29
	// torqueOverlimitWalltime is Torque's JOB_EXEC_OVERLIMIT_WT. The same number is
	// JOB_EXEC_BADRESRT (bad restart) in PBS Pro, so it is read only for Torque's C.
	torqueOverlimitWalltime = -11
)

// refine adjusts the status of a finished job by what PBS says about how it ended: substate (PBS
// Pro) and the exit status. code is nil when the output has no exit status.
func refine(raw string, st scheduler.Status, substate string, code *int) scheduler.Status {
	switch raw {
	case "F":
		if substate == substateTerminated {
			return scheduler.StatusCancelled
		}
		if code != nil && *code == execKillWalltime {
			return scheduler.StatusTimeout // whatever the substate: sites report 92 and 93 with it
		}
		if substate == substateFailed {
			return scheduler.StatusFailed
		}
		if code != nil && *code < 0 {
			return scheduler.StatusFailed // PBS could not run the job (JOB_EXEC_FAIL*, hook rejection) or killed it on another limit
		}
	case "C":
		if code != nil && *code == torqueOverlimitWalltime {
			return scheduler.StatusTimeout
		}
		if code != nil && *code < 0 {
			return scheduler.StatusFailed // Torque could not run the job or killed it on a limit
		}
	}
	return st
}
