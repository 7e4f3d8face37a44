package sge

import (
	"regexp"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// qdelJob finds the job a qdel message is about: `job "123"`, `job 123`.
var qdelJob = regexp.MustCompile(`job "?([0-9][0-9.:,-]*)"?`)

// CheckCancel interprets qdel's result for ids. Grid Engine's qdel prints its verdicts, refusals
// included, on stdout as often as on stderr, so both are read.
//
//   - "has registered the job N for deletion", "has deleted job N" and "job N is already in
//     deletion" are success; "denied: job "N" does not exist" means the job is gone: not an
//     error, cancelling is idempotent.
//   - "you do not have the necessary privileges" (or "permission denied") is an error wrapping
//     scheduler.ErrPermission that names the job ids, whatever the exit code.
//   - Any other non-zero exit is a *scheduler.CommandError carrying qdel's output; when it comes
//     with a permission refusal both are returned, joined.
func (s *SGE) CheckCancel(ids []scheduler.JobID, r scheduler.Result) error {
	var tally adapter.CancelTally
	for _, l := range adapter.SplitLines(append(append([]byte{}, r.Stdout...), r.Stderr...)) {
		l = strings.TrimSpace(l)
		low := strings.ToLower(l)
		switch {
		case l == "":
		case strings.Contains(low, "necessary privileges") || strings.Contains(low, "permission denied"):
			job := ""
			if m := qdelJob.FindStringSubmatch(l); m != nil {
				job = m[1]
			}
			tally.Refused = append(tally.Refused, job)
		case strings.Contains(low, "does not exist"), strings.Contains(low, "already in deletion"),
			strings.Contains(low, "registered the job"), strings.Contains(low, "has deleted job"):
			tally.Recognised = true
		default:
			tally.Other = true
		}
	}
	return tally.Verdict("qdel", s.CancelCommand(ids), r)
}

// CheckStatus interprets the result of StatusCommand or AccountingCommand before its stdout is
// parsed; it is the proposed scheduler.StatusChecker ability (the agent does not call it yet).
// Neither query names ids, so neither fails because a job is gone: exit 0 is nil and any other
// exit is a *scheduler.CommandError (qmaster unreachable, accounting file unreadable).
func (s *SGE) CheckStatus(ids []scheduler.JobID, r scheduler.Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	return scheduler.NewCommandError(scheduler.Command{Argv: []string{s.prog("qstat")}}, r)
}
