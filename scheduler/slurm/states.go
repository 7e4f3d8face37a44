package slurm

import (
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// State is one Slurm job state as squeue, sacct and scontrol print it, with the Ferry status it maps
// to. The table is exported so the documentation can be generated from the code that uses it.
type State struct {
	Code    string           // compact code, as squeue %t prints it ("PD")
	Name    string           // long name, as squeue %T, sacct and scontrol print it ("PENDING")
	Status  scheduler.Status // Ferry's view of the state
	Meaning string           // what the state means and, where it is a choice, why it maps as it does
}

// States lists every job state Slurm documents (squeue(1) "JOB STATE CODES", job_state_codes.html)
// with Ferry's mapping. Base states are listed with the flags that Slurm reports instead of them.
//
// Choices worth knowing:
//   - CG, SO, SI, RS and CF are active: the job still holds (or is getting) its allocation and may
//     still run code; a CG job can even go back to the queue (scontrol requeuehold passes through CG).
//   - RQ and RF are pending: a requeued job returns to the queue and runs again without anyone acting.
//   - S, ST, RH, RD and SE are held: the job keeps its place but will not progress until someone acts
//     (resume, release, a new reservation).
//   - PR is cancelled: Ferry submits with --no-requeue, so a preempted job does not come back; the
//     contract files preemption without requeue under cancelled.
//   - DL is timeout: the job ended on its --deadline, a time limit by another name.
//   - RV is cancelled: in a federation the revoked copy on this cluster will never run here. Ferry
//     does not drive federations; an unexpected RV is final rather than polled forever.
var States = []State{
	{"PD", "PENDING", scheduler.StatusPending, "awaiting resource allocation (held jobs are PD too; the reason says JobHeldUser/JobHeldAdmin)"},
	{"RQ", "REQUEUED", scheduler.StatusPending, "completing job is being requeued; it returns to the queue by itself"},
	{"RF", "REQUEUE_FED", scheduler.StatusPending, "job is being requeued by a federation; it returns to the queue by itself"},
	{"CF", "CONFIGURING", scheduler.StatusRunning, "allocated, waiting for the nodes to become ready (booting)"},
	{"R", "RUNNING", scheduler.StatusRunning, "has an allocation and runs"},
	{"CG", "COMPLETING", scheduler.StatusRunning, "in the process of completing; processes may still be active, and a requeue may follow"},
	{"SO", "STAGE_OUT", scheduler.StatusRunning, "staging out files (burst buffer) after its processes ended; still holds resources"},
	{"SI", "SIGNALING", scheduler.StatusRunning, "being signalled"},
	{"RS", "RESIZING", scheduler.StatusRunning, "about to change size"},
	{"S", "SUSPENDED", scheduler.StatusHeld, "allocation kept, execution suspended and CPUs released; needs a resume"},
	{"ST", "STOPPED", scheduler.StatusHeld, "allocation kept, execution stopped with SIGSTOP; needs a SIGCONT"},
	{"RH", "REQUEUE_HOLD", scheduler.StatusHeld, "held job is being requeued; needs a release"},
	{"RD", "RESV_DEL_HOLD", scheduler.StatusHeld, "held because its reservation was deleted; needs a release"},
	{"SE", "SPECIAL_EXIT", scheduler.StatusHeld, "requeued in the special-exit state (set by EpilogSlurmctld or scontrol); needs a release"},
	{"CD", "COMPLETED", scheduler.StatusCompleted, "all processes on all nodes ended with exit code zero"},
	{"F", "FAILED", scheduler.StatusFailed, "ended with a non-zero exit code or another failure"},
	{"NF", "NODE_FAIL", scheduler.StatusFailed, "ended because an allocated node failed"},
	{"BF", "BOOT_FAIL", scheduler.StatusFailed, "ended by a launch failure, typically hardware (node or block failed to boot)"},
	{"OOM", "OUT_OF_MEMORY", scheduler.StatusFailed, "ended by running out of memory"},
	{"CA", "CANCELLED", scheduler.StatusCancelled, "cancelled by the user or an administrator"},
	{"PR", "PREEMPTED", scheduler.StatusCancelled, "ended by preemption; with --no-requeue it does not come back"},
	{"RV", "REVOKED", scheduler.StatusCancelled, "federation sibling removed because another cluster started the job"},
	{"TO", "TIMEOUT", scheduler.StatusTimeout, "ended on its time limit"},
	{"DL", "DEADLINE", scheduler.StatusTimeout, "ended on its deadline (--deadline)"},
}

// stateByKey maps compact codes and long names to statuses; built once from States.
var stateByKey = func() map[string]scheduler.Status {
	m := make(map[string]scheduler.Status, 2*len(States))
	for _, s := range States {
		m[s.Code] = s.Status
		m[s.Name] = s.Status
	}
	return m
}()

// StateStatus maps a Slurm state, compact ("PD") or long ("PENDING"), to a Ferry status. It accepts
// the decorations Slurm adds: "CANCELLED by 1000" (sacct names the canceller) and a trailing "+" (a
// fixed-width column cut the word short: "OUT_OF_ME+"). A state Slurm does not document, including
// squeue's "?", is StatusUnknown, which Ferry treats as still active.
func StateStatus(raw string) scheduler.Status {
	_, st := normalizeState(raw)
	return st
}

// normalizeState returns the state word without decorations and its status. A truncated long name
// ("OUT_OF_ME+") is completed when exactly one documented name starts with the remaining text.
func normalizeState(raw string) (string, scheduler.Status) {
	s := strings.TrimSpace(raw)
	if i := strings.IndexFunc(s, isBlankRune); i >= 0 {
		s = s[:i] // "CANCELLED by 1000" -> "CANCELLED"
	}
	if s == "" {
		return "", scheduler.StatusUnknown
	}
	key := strings.ToUpper(s)
	if st, ok := stateByKey[key]; ok {
		return s, st
	}
	if strings.HasSuffix(key, "+") {
		s = s[:len(s)-1]
		key = key[:len(key)-1]
		if st, ok := stateByKey[key]; ok {
			return s, st
		}
		if name, ok := resolveTruncated(key); ok {
			return name, stateByKey[name]
		}
		return s, scheduler.StatusUnknown
	}
	return s, scheduler.StatusUnknown
}

func isBlankRune(r rune) bool { return r == ' ' || r == '\t' }

// resolveTruncated finds the one long state name that starts with prefix.
func resolveTruncated(prefix string) (string, bool) {
	if prefix == "" {
		return "", false
	}
	found := ""
	for _, s := range States {
		if strings.HasPrefix(s.Name, prefix) {
			if found != "" {
				return "", false
			}
			found = s.Name
		}
	}
	return found, found != ""
}
