package lsf

import (
	"regexp"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// lsfJob finds the job an LSF message is about: "Job <123>: ...", "Job <123> is not found".
var lsfJob = regexp.MustCompile(`^Job <([^>]*)>`)

// gone reports whether an LSF complaint says the job has already ended or is no longer known.
func gone(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "already finished") || strings.Contains(m, "is not found") ||
		strings.Contains(m, "no matching job found") || strings.Contains(m, "no job found") ||
		strings.Contains(m, "no unfinished job found")
}

// CheckCancel interprets bkill's result for ids.
//
//   - "Job <N> is being terminated" (or signaled) is success, and so are "Job has already
//     finished", "No matching job found" and "is not found": the job is gone, and cancelling is
//     idempotent.
//   - "User permission denied" (or "Not owner") is an error wrapping scheduler.ErrPermission that
//     names the job ids.
//   - Any other non-zero exit is a *scheduler.CommandError carrying bkill's output; when it comes
//     with a permission refusal both are returned, joined.
//
// bkill writes its verdicts to stdout and stderr; both are read.
func (l *LSF) CheckCancel(ids []scheduler.JobID, r scheduler.Result) error {
	var tally adapter.CancelTally
	for _, line := range adapter.SplitLines(append(append([]byte{}, r.Stdout...), r.Stderr...)) {
		t := strings.TrimSpace(line)
		low := strings.ToLower(t)
		switch {
		case t == "":
		case strings.Contains(low, "permission denied") || strings.Contains(low, "not owner"):
			job := ""
			if m := lsfJob.FindStringSubmatch(t); m != nil {
				job = m[1]
			}
			tally.Refused = append(tally.Refused, job)
		case gone(t), strings.Contains(low, "is being terminated"), strings.Contains(low, "is being signaled"):
			tally.Recognised = true
		default:
			tally.Other = true
		}
	}
	return tally.Verdict("bkill", l.CancelCommand(ids), r)
}

// CheckStatus interprets the result of StatusCommand or AccountingCommand before its stdout is
// parsed; it is the proposed scheduler.StatusChecker ability (the agent does not call it yet).
// bjobs and bhist exit non-zero when one of the ids is unknown ("Job <N> is not found", "No
// matching job found": bjobs after CLEAN_PERIOD, bhist beyond its event files), yet print every
// job they know on stdout. CheckStatus returns nil for exit 0 and for a non-zero exit whose every
// complaint is of that kind; anything else (mbatchd not responding, a bad option) is a
// *scheduler.CommandError.
func (l *LSF) CheckStatus(ids []scheduler.JobID, r scheduler.Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	recognised, other := false, false
	for _, line := range adapter.SplitLines(r.Stderr) {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, "LSF is processing"):
		case gone(t):
			recognised = true
		default:
			other = true
		}
	}
	if recognised && !other {
		return nil
	}
	return scheduler.NewCommandError(scheduler.Command{Argv: []string{l.prog("bjobs")}}, r)
}
