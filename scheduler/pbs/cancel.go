package pbs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// gone reports whether a qstat or qdel complaint says the job has already ended: the server no
// longer knows it ("Unknown Job Id", PBSE_UNKJOBID), it is in history ("Job has finished"), or it
// is past the point where it can be deleted ("Request invalid for state of job", Torque's
// "Invalid state for job - COMPLETE").
func gone(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "unknown job id") ||
		strings.Contains(m, "has finished") ||
		strings.Contains(m, "invalid for state of job") ||
		strings.Contains(m, "invalid state for job")
}

// denied reports whether a complaint is a permission refusal (PBSE_PERM "Unauthorized Request").
func denied(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "unauthorized request") || strings.Contains(m, "permission denied") ||
		strings.Contains(m, "not owner")
}

// qdelJobID finds the job a refusal of Slurm's Torque wrapper names: "qdel: Kill job error on job
// id 221: Access/permission denied".
var qdelJobID = regexp.MustCompile(`job id ([^\s:]+)`)

// refusedJob returns the job a qdel refusal names: after "job id" (Slurm's Torque wrappers), else
// the last word (PBS Pro and Torque: "qdel: Unauthorized Request  12.srv").
func refusedJob(msg string) string {
	if m := qdelJobID.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return lastWord(msg)
}

// lastWord returns the last blank-separated word of s: qstat and qdel name the job there.
func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// CheckCancel interprets qdel's result for ids.
//
//   - Exit 0 is success.
//   - "Unknown Job Id", "Job has finished" and "Request invalid for state of job" mean the job is
//     gone or going: not an error, cancelling is idempotent.
//   - "Unauthorized Request" or "permission denied" is an error wrapping scheduler.ErrPermission
//     that names the job ids (Slurm's Torque wrappers: "qdel: Kill job error on job id N:
//     Access/permission denied").
//   - Torque only: a non-zero exit of at most one per id with no word from qdel at all is not an
//     error. Slurm's Torque wrappers say nothing about an id that is unknown or already finished
//     and exit with the number of ids they could not cancel; real Torque always names the job.
//   - Any other non-zero exit is a *scheduler.CommandError carrying qdel's stderr; when it comes
//     with a permission refusal both are returned, joined.
//
// Lines that do not start with "qdel:" (a login shell's noise) are ignored.
func (c *core) CheckCancel(ids []scheduler.JobID, r scheduler.Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	var refused []string
	other, recognised, mentioned := false, false, false
	for _, l := range adapter.SplitLines(append(append([]byte{}, r.Stderr...), r.Stdout...)) {
		l = strings.TrimSpace(l)
		if strings.Contains(strings.ToLower(l), "qdel") {
			mentioned = true // also "bash: qdel: command not found", which is no verdict
		}
		if !strings.HasPrefix(l, "qdel:") {
			continue
		}
		switch {
		case gone(l):
			recognised = true
		case denied(l):
			recognised = true
			refused = append(refused, refusedJob(l))
		default:
			other = true
		}
	}
	cmdErr := func() error { return scheduler.NewCommandError(c.CancelCommand(ids), r) }
	if len(refused) > 0 {
		perr := fmt.Errorf("qdel: permission denied for job %s: %w", strings.Join(refused, ", "), scheduler.ErrPermission)
		if other {
			return errors.Join(perr, cmdErr())
		}
		return perr
	}
	if recognised && !other {
		return nil
	}
	if c.flavor == flavorTorque && !mentioned && r.ExitCode <= len(ids) && r.ExitCode < 126 {
		return nil // Slurm's Torque wrappers: the ids were unknown or had already finished
	}
	return cmdErr()
}

// CheckStatus interprets the result of StatusCommand or AccountingCommand before its stdout is
// parsed; it is the proposed scheduler.StatusChecker ability (the agent does not call it yet).
// qstat exits non-zero (153, PBSE_UNKJOBID) when the server no longer knows one of the ids, and
// 35 when a finished job is asked about without -x, yet prints every job it does know on stdout.
// CheckStatus returns nil for exit 0 and for a non-zero exit whose every qstat complaint is such an
// "Unknown Job Id" or "Job has finished" line: stdout is then complete for the jobs that exist and
// the others have left the queue. A server that refuses -x for lack of history gives ErrNoHistory.
// Anything else (no connection to the server, a bad option) is a *scheduler.CommandError. Lines
// that do not start with "qstat:" are ignored.
func (c *core) CheckStatus(ids []scheduler.JobID, r scheduler.Result) error {
	recognised, other := false, false
	for _, l := range adapter.SplitLines(r.Stderr) {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "qstat:") {
			continue
		}
		switch low := strings.ToLower(l); {
		case strings.Contains(low, "job_history_enable") || strings.Contains(low, "history not set"):
			return ErrNoHistory
		case gone(l):
			recognised = true
		default:
			other = true
		}
	}
	if r.ExitCode == 0 || (recognised && !other) {
		return nil
	}
	return scheduler.NewCommandError(scheduler.Command{Argv: []string{c.prog("qstat")}}, r)
}
