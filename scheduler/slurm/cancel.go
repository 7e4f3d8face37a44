package slurm

import (
	"regexp"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// scancelError matches scancel's per-job complaint: "scancel: error: Kill job error on job id 15:
// Access/permission denied" (also "job step id 15.0").
var scancelError = regexp.MustCompile(`Kill job error on job (?:step )?id (\S+): (.+)$`)

// CheckCancel interprets scancel's result for ids.
//
//   - Exit 0 is success. (Slurm 22.05 exits 0 and prints nothing for an id that is unknown or has
//     already finished; older versions print one of the messages below and exit 1.)
//   - "Invalid job id specified" and "Job/step already completing or completed" mean the job is
//     gone or going: not an error, cancelling is idempotent.
//   - "Access/permission denied" is an error wrapping scheduler.ErrPermission that names the job
//     ids (Slurm 22.05 exits 210 for it).
//   - Any other non-zero exit is a *scheduler.CommandError carrying scancel's stderr; when it comes
//     with a permission denial both are returned, joined.
//
// Lines on stderr that are not scancel errors (a login shell's noise) are ignored.
func (s *Slurm) CheckCancel(ids []scheduler.JobID, r scheduler.Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	var tally adapter.CancelTally
	for _, l := range adapter.SplitLines(r.Stderr) {
		if m := scancelError.FindStringSubmatch(l); m != nil {
			msg := strings.TrimSpace(m[2])
			switch {
			case strings.Contains(msg, "Invalid job id specified"),
				strings.Contains(msg, "already completing or completed"):
				tally.Recognised = true
			case strings.Contains(msg, "Access/permission denied"):
				tally.Refused = append(tally.Refused, m[1])
			default:
				tally.Other = true
			}
			continue
		}
		if strings.Contains(l, "error:") {
			tally.Other = true
		}
	}
	return tally.Verdict("scancel", s.CancelCommand(ids), r)
}
