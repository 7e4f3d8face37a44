// Package lsf is Ferry's adapter for IBM Spectrum LSF (Kind "lsf"). It builds the bsub, bjobs,
// bhist and bkill commands (argv, never shell strings) and parses what they print; it runs nothing
// itself.
//
// What it sends:
//
//	submit   bsub, with the rendered script on stdin            (cwd = the task directory)
//	status   bjobs -a -noheader -o "jobid stat ... job_name delimiter='|'" ID...
//	account  bhist -a -l -n N ID...
//	cancel   bkill ID...
//
// bsub only reads #BSUB directives from a script it gets on stdin (given as a file, the script is
// just a command to run), so SubmitCommand renders the script itself and puts it in Command.Stdin;
// see SubmitCommand for why that is safe and for the contract change that would make it simpler.
//
// Status is one query per user and poll, restricted to that user's tracked jobs by naming them;
// -a keeps finished jobs listed (as DONE or EXIT) for the cluster's CLEAN_PERIOD, one hour by
// default. After that bjobs says "Job <N> is not found" and exits non-zero; CheckStatus tells that
// from a real failure. bhist reads the event log files and still knows such jobs.
//
// Every command is named by its bare name (found on the login shell's PATH) unless
// Options.CommandDir gives the directory LSF's commands are installed in.
//
// The package also parses the formats people paste: the default bjobs table with -w and -W
// (ParseBjobsTable), bjobs -l (ParseBjobsLong), bjobs -json (ParseBjobsJSON) and headerless
// bjobs -o output whose field list is known (ParseBjobsColumns).
package lsf

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
)

// Defaults for the zero Options.
const (
	DefaultMemoryUnit    = "MB"
	DefaultAccountOption = "-P"
	DefaultWarningLead   = time.Minute
	DefaultEventFiles    = 5
)

// Options configure the adapter. The zero value is ready to use.
type Options struct {
	// MemoryUnit is the unit LSF reads memory numbers in: the cluster's LSF_UNIT_FOR_LIMITS
	// (lsf.conf), one of KB, MB, GB, TB. Default MB, the setting of LSF 10 installations; LSF 9
	// without the setting reads KB, and then every -M would be a thousand times too small. It
	// applies to -M and, as LSF 9.1.1+ does, to mem in select[] and rusage[].
	MemoryUnit string
	// PerJobMemLimit says the cluster sets LSB_JOB_MEMLIMIT=Y, making -M a limit for the whole
	// job. Default false: -M is a per-process limit, so a multi-CPU task gets MemoryMB divided by
	// its CPUs (Nextflow's default too).
	PerJobMemLimit bool
	// PerTaskReserve says the cluster sets RESOURCE_RESERVE_PER_TASK=Y, making rusage[mem] a
	// reservation per task (slot): the reservation is then MemoryMB divided by CPUs. Default false:
	// rusage[mem] is the job's total.
	PerTaskReserve bool
	// AccountOption is the bsub option that carries Resources.Account: "-P" (default: the project,
	// which LSF accounting, bacct -P and most allocation schemes charge) or "-G" (the fairshare
	// user group, which Nextflow uses; the user must belong to it). Render fails on any other value.
	AccountOption string
	// WarningLead is how long before the run limit LSF sends USR2 to the job (bsub -wa USR2 -wt),
	// so the wrapper records exit code 140 and Ferry reports a timeout. Rounded up to whole
	// minutes, LSF's unit. Default one minute; a negative value leaves -wa/-wt out.
	WarningLead time.Duration
	// EventFiles is how many LSF event log files bhist searches for the accounting query (bhist
	// -n): the current lsb.events and the N-1 before it. LSF switches files every MAX_JOB_NUM
	// (default 1000) finished jobs, so busy clusters need more. Default 5; 0 in the options means
	// the default, and bhist's own "all files" is not offered because it can take minutes.
	EventFiles int
	// CommandDir is the absolute directory holding LSF's bsub, bjobs, bhist and bkill
	// ("/opt/lsf/10.1/linux3.10-glibc2.17-x86_64/bin"); every command is then run by its full
	// path. Default empty: the commands are found on the user's login PATH. Set it when the users'
	// PATH does not reach them (LSF's profile.lsf is often sourced only by interactive shells) or
	// when several LSF versions are installed side by side.
	CommandDir string
}

// LSF implements scheduler.Scheduler and scheduler.Accounting. It holds no state besides its
// options and is safe for concurrent use.
type LSF struct {
	unit        string
	perJobLimit bool
	perTaskRes  bool
	account     string
	warningLead time.Duration
	eventFiles  int
	cmdDir      string
}

var (
	_ scheduler.Scheduler  = (*LSF)(nil)
	_ scheduler.Accounting = (*LSF)(nil)
)

// New returns an LSF adapter with opts, defaults filled in.
func New(opts Options) *LSF {
	l := &LSF{
		unit: strings.ToUpper(opts.MemoryUnit), perJobLimit: opts.PerJobMemLimit, perTaskRes: opts.PerTaskReserve,
		account: opts.AccountOption, warningLead: opts.WarningLead, eventFiles: opts.EventFiles,
		cmdDir: opts.CommandDir,
	}
	if l.unit == "" {
		l.unit = DefaultMemoryUnit
	}
	if l.account == "" {
		l.account = DefaultAccountOption
	}
	if l.warningLead == 0 {
		l.warningLead = DefaultWarningLead
	}
	if l.eventFiles <= 0 {
		l.eventFiles = DefaultEventFiles
	}
	return l
}

// Kind returns "lsf".
func (l *LSF) Kind() string { return "lsf" }

// statusFields is the bjobs -o field list Ferry issues; ParseStatus reads exactly this. The job
// name is last: it is the only free text that may hold the delimiter, so ParseStatus splits off
// the first ten fields and keeps the rest, '|' included, as the name.
var statusFields = []string{"jobid", "stat", "queue", "user", "exit_code", "exit_reason", "pend_reason", "submit_time", "start_time", "finish_time", "job_name"}

// StatusCommand returns bjobs -a -noheader -o "<statusFields> delimiter='|'" ID...: one call for
// all of user's tracked jobs, finished ones included for CLEAN_PERIOD. user is not needed: the ids
// select the jobs.
func (l *LSF) StatusCommand(user string, ids []scheduler.JobID) scheduler.Command {
	argv := []string{l.prog("bjobs"), "-a", "-noheader", "-o", strings.Join(statusFields, " ") + " delimiter='|'"}
	return scheduler.Command{Argv: appendIDs(argv, ids)}
}

// AccountingCommand returns bhist -a -l -n N ID...: the event history of jobs bjobs has forgotten,
// from the last Options.EventFiles event log files.
func (l *LSF) AccountingCommand(user string, ids []scheduler.JobID) scheduler.Command {
	argv := []string{l.prog("bhist"), "-a", "-l", "-n", strconv.Itoa(l.eventFiles)}
	return scheduler.Command{Argv: appendIDs(argv, ids)}
}

// CancelCommand returns bkill ID..., one call for all ids. Every id ParseSubmit returns starts with
// a digit, so none can be read as an option.
func (l *LSF) CancelCommand(ids []scheduler.JobID) scheduler.Command {
	return scheduler.Command{Argv: appendIDs([]string{l.prog("bkill")}, ids)}
}

// prog returns the command name to run: name itself, or name in Options.CommandDir.
func (l *LSF) prog(name string) string {
	if l.cmdDir == "" {
		return name
	}
	return path.Join(l.cmdDir, name)
}

func appendIDs(argv []string, ids []scheduler.JobID) []string {
	for _, id := range ids {
		argv = append(argv, string(id))
	}
	return argv
}

// ClassifyFailure reads a failed bsub. "LSF is down", "LIM is down" and a batch daemon that does
// not respond (bsub gives up after its own retries) created no job; a timed-out request may have.
func (l *LSF) ClassifyFailure(r scheduler.Result) scheduler.Failure {
	return scheduler.Classify(r, lsfUnavailable, lsfAmbiguous)
}

var (
	lsfUnavailable = []string{
		"lsf is down",
		"lim is down",
		"batch system daemon not responding",
		"cannot connect to lsf",
		"connection refused",
	}
	lsfAmbiguous = []string{
		"timed out",
		"timeout",
	}
)
