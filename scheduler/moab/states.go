package moab

import (
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// State is one Moab job state with the Ferry status it maps to. The table is exported so the
// documentation can be generated from the code that uses it.
type State struct {
	Code    string           // the State attribute as showq --xml and checkjob --xml print it
	Meaning string           // what Moab documents and, where it is a choice, why it maps so
	Status  scheduler.Status // Ferry's view of the state
	Source  string           // where the meaning is documented
}

const source = "Moab Workload Manager Administrator Guide, Job States (showq, checkjob)"

// States lists the job states Moab documents, with Ferry's mapping. Completed is completed and the
// completion code decides (the task's .exitcode, which Ferry prefers, or checkjob's
// CompletionCode); a negative completion code is the resource manager's own verdict (Torque's -11,
// walltime exceeded, is timeout; any other failed). Removed is cancelled: Moab removes a job that
// was cancelled, or that ran past its wallclock limit, which the completion code then tells.
var States = []State{
	{"Idle", "eligible, waiting for resources", scheduler.StatusPending, source},
	{"Starting", "being started by the resource manager", scheduler.StatusPending, source},
	{"Staging", "staging its input data", scheduler.StatusPending, source},
	{"Migrated", "migrated to another peer, where it continues", scheduler.StatusPending, source},
	{"NotQueued", "not queued (blocked by a policy or a missing resource); progresses when the block ends", scheduler.StatusPending, source},
	{"Blocked", "blocked by a policy or a dependency", scheduler.StatusPending, source},
	{"Deferred", "deferred after a failed start; held until the defer time passes or an admin releases it", scheduler.StatusHeld, source},
	{"Hold", "held (any hold); needs a release", scheduler.StatusHeld, source},
	{"UserHold", "held by its owner; needs mjobctl -u", scheduler.StatusHeld, source},
	{"SystemHold", "held by an administrator", scheduler.StatusHeld, source},
	{"BatchHold", "held by Moab after repeated failed starts", scheduler.StatusHeld, source},
	{"Suspended", "suspended; needs a resume", scheduler.StatusHeld, source},
	{"Running", "running", scheduler.StatusRunning, source},
	{"Completed", "ended; the completion code says how", scheduler.StatusCompleted, source},
	{"Removed", "cancelled, or removed on a limit", scheduler.StatusCancelled, source},
	{"Vacated", "ended by the system before it completed (node failure, preemption)", scheduler.StatusFailed, source},
}

var stateMap = func() map[string]scheduler.Status {
	m := make(map[string]scheduler.Status, len(States))
	for _, s := range States {
		m[strings.ToLower(s.Code)] = s.Status
	}
	return m
}()

// StateStatus returns the Ferry status of a Moab state, case ignored; an undocumented state is
// StatusUnknown.
func StateStatus(code string) scheduler.Status {
	if st, ok := stateMap[strings.ToLower(strings.TrimSpace(code))]; ok {
		return st
	}
	return scheduler.StatusUnknown
}
