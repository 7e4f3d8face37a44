// Package slurm is Ferry's adapter for the Slurm workload manager. It builds the sbatch, squeue,
// sacct and scancel commands (argv, never shell strings) and parses what they print; it runs
// nothing itself.
//
// What it sends:
//
//	submit   sbatch --parsable .command.run                      (cwd = the task directory)
//	status   env SLURM_TIME_FORMAT=%s squeue --noheader --states=all --user=USER --format=...
//	account  env SLURM_TIME_FORMAT=%s sacct --noheader --parsable2 --allocations --user=USER --jobs=ID,...
//	cancel   scancel -- ID...
//	lookup   squeue --noheader --states=all --user=USER --format=%i|%k  (find a job by its token)
//
// Status and accounting are one query per user, never per job (the Slurm man pages ask tools not to
// call squeue or sacct in loops). Both put the job name last so that a '|' in a name cannot shift
// columns, and both force SLURM_TIME_FORMAT to epoch seconds so the times do not depend on the
// login node's time zone or on a SLURM_TIME_FORMAT the user set in their shell profile.
//
// The package also parses the human formats administrators paste (ParseSqueueTable,
// ParseSacctParsable, ParseSacctTable, ParseScontrolShowJob) and headerless sacct output whose
// --format is known (ParseSacctColumns).
package slurm

import (
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
)

// DefaultSignalLead is how long before the time limit Slurm sends USR2 to the batch shell when
// Options.SignalLead is zero.
const DefaultSignalLead = 30 * time.Second

// maxSignalLead is the largest lead sbatch --signal accepts (sig_time is 0-65535 seconds).
const maxSignalLead = 65535 * time.Second

// Options configure the adapter.
type Options struct {
	// SignalLead is how long before the time limit Slurm sends USR2 to the wrapper, which then
	// stops the task and records exit code 140 so a job killed on its limit still leaves an exit
	// code. Rendered as --signal B:USR2@<seconds>, rounded up to whole seconds. Default 30s; a
	// negative value leaves --signal out. Slurm sends the signal up to 60 s earlier than asked (its
	// event loop runs once a minute), so raise it only if tasks need longer to clean up; values
	// above 65535s are refused by Render.
	SignalLead time.Duration
}

// Slurm implements scheduler.Scheduler and scheduler.Accounting. It holds no state besides its
// options and is safe for concurrent use.
type Slurm struct {
	signalLead time.Duration
}

var (
	_ scheduler.Scheduler   = (*Slurm)(nil)
	_ scheduler.Accounting  = (*Slurm)(nil)
	_ scheduler.TokenLookup = (*Slurm)(nil)
)

// New returns a Slurm adapter with opts, defaults filled in.
func New(opts Options) *Slurm {
	lead := opts.SignalLead
	if lead == 0 {
		lead = DefaultSignalLead
	}
	return &Slurm{signalLead: lead}
}

// Kind returns "slurm".
func (s *Slurm) Kind() string { return "slurm" }

// SubmitCommand returns sbatch --parsable .command.run, run in spec.Dir. --parsable makes sbatch
// print "ID" or "ID;CLUSTER" instead of a sentence; ParseSubmit reads either.
func (s *Slurm) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	return scheduler.Command{
		Argv: []string{"sbatch", "--parsable", scheduler.RunFile},
		Dir:  spec.Dir,
	}
}

// squeueFormat is the squeue --format Ferry issues; ParseStatus reads exactly this. The job name
// (%j) is last: it is the only free-text field, so ParseStatus splits off the first eight fields and
// keeps the rest, '|' included, as the name.
const squeueFormat = "%i|%t|%r|%P|%u|%V|%S|%e|%j"

// squeueFields is the number of '|'-separated fields in squeueFormat.
const squeueFields = 9

// timeFormatEnv makes squeue and sacct print times as epoch seconds: independent of the login
// node's time zone and of any SLURM_TIME_FORMAT in the user's profile. "env" keeps the command a
// plain argv that every login shell (sh, bash, tcsh) runs the same way.
var timeFormatEnv = []string{"env", "SLURM_TIME_FORMAT=%s"}

// StatusCommand returns the one squeue call that lists all of user's jobs, finished ones included
// (--states=all; Slurm keeps finished jobs for MinJobAge, 300 s by default). ids are not put on the
// command line: squeue fails on an id it has already forgotten, and the agent ignores jobs it does
// not track.
func (s *Slurm) StatusCommand(user string, ids []scheduler.JobID) scheduler.Command {
	argv := append([]string{}, timeFormatEnv...)
	argv = append(argv, "squeue", "--noheader", "--states=all", "--user="+user, "--format="+squeueFormat)
	return scheduler.Command{Argv: argv}
}

// sacctFormat is the sacct --format Ferry issues; ParseAccounting reads exactly this. JobName is
// last for the same reason as in squeueFormat.
var sacctFormat = []string{"JobID", "State", "ExitCode", "Reason", "Partition", "User", "Submit", "Start", "End", "JobName"}

// AccountingCommand returns the one sacct call that reports ids from the accounting database, for
// jobs squeue no longer lists. --user and --jobs select together (jobs of that user with those ids),
// so a wrong id cannot report another user's job; --allocations leaves the steps out. With --jobs
// and no --starttime, sacct searches from the epoch, not just today (sacct(1), -S). ids must not be
// empty: the agent asks only about jobs squeue no longer lists.
func (s *Slurm) AccountingCommand(user string, ids []scheduler.JobID) scheduler.Command {
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = string(id)
	}
	argv := append([]string{}, timeFormatEnv...)
	argv = append(argv, "sacct", "--noheader", "--parsable2", "--allocations",
		"--user="+user, "--jobs="+strings.Join(list, ","),
		"--format="+strings.Join(sacctFormat, ","))
	return scheduler.Command{Argv: argv}
}

// CancelCommand returns scancel -- ID..., one call for all ids. "--" ends the options, so an id that
// starts with '-' can never be read as an option (scancel --user=x would cancel all of x's jobs).
func (s *Slurm) CancelCommand(ids []scheduler.JobID) scheduler.Command {
	argv := make([]string, 0, len(ids)+2)
	argv = append(argv, "scancel", "--")
	for _, id := range ids {
		argv = append(argv, string(id))
	}
	return scheduler.Command{Argv: argv}
}

// ClassifyFailure reads a failed sbatch. "Unable to contact slurm controller" (sbatch has already
// retried for its MessageTimeout) and refused connections created no job; "Socket timed out on
// send/recv operation" and "Zero Bytes were transmitted or received" mean the controller got the
// request and its answer was lost, so the job may exist (the established executor resubmits on
// these, which is how it duplicates jobs).
func (s *Slurm) ClassifyFailure(r scheduler.Result) scheduler.Failure {
	return scheduler.Classify(r, slurmUnavailable, slurmAmbiguous)
}

var (
	slurmUnavailable = []string{
		"unable to contact slurm controller",
		"connection refused",
		"slurm temporarily unable to accept job",
		"resource temporarily unavailable",
	}
	slurmAmbiguous = []string{
		"socket timed out on send/recv operation",
		"zero bytes were transmitted or received",
	}
)
