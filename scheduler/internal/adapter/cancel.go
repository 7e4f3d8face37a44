package adapter

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// CancelTally is what the lines of a cancel command's output said, as an adapter's CheckCancel
// sorts them. The zero value is a tally of no lines.
type CancelTally struct {
	// Refused holds the job each permission refusal names, "" for one that names none.
	Refused []string
	// Recognised is set when a line says a job is cancelled, being cancelled, or already gone.
	Recognised bool
	// Other is set when a line says anything else.
	Other bool
}

// Verdict returns what a cancel command's result means, given the tally t of its output; prog
// names the command in the permission error ("bkill", "qdel") and cmd is the command that ran,
// for a *scheduler.CommandError.
//
//   - A permission refusal is an error wrapping scheduler.ErrPermission that names the refused
//     jobs, whatever the exit code. When the command also exited non-zero and said something
//     else, the *scheduler.CommandError is joined to it.
//   - Otherwise exit 0 is success, and so is a non-zero exit with a recognised line and no other:
//     cancelling a job that is gone is not an error.
//   - Anything else is a *scheduler.CommandError carrying the command's output.
func (t CancelTally) Verdict(prog string, cmd scheduler.Command, r scheduler.Result) error {
	if len(t.Refused) > 0 {
		perr := fmt.Errorf("%s: permission denied for job %s: %w", prog, strings.Join(t.Refused, ", "), scheduler.ErrPermission)
		if t.Other && r.ExitCode != 0 {
			return errors.Join(perr, scheduler.NewCommandError(cmd, r))
		}
		return perr
	}
	if r.ExitCode == 0 || (t.Recognised && !t.Other) {
		return nil
	}
	return scheduler.NewCommandError(cmd, r)
}
