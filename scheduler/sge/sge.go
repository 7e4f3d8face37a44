// Package sge is Ferry's adapter for Grid Engine (Sun/Oracle Grid Engine, Son of Grid Engine,
// Univa/Altair Grid Engine; Kind "sge"). It builds the qsub, qstat, qacct and qdel commands (argv,
// never shell strings) and parses what they print; it runs nothing itself.
//
// What it sends:
//
//	submit   qsub -terse .command.run                   (cwd = the task directory)
//	status   qstat -xml -u USER
//	account  qacct -o USER -d DAYS -j
//	cancel   qdel ID...
//
// Status is one query per user and poll. Grid Engine forgets a job the moment it ends, so every
// finished job is found through qacct, which reads the accounting file: -j without an id lists
// every job of the owner that started in the last Options.AccountingDays days, one record per job
// (and per array task and re-run), and exits 0 even when none matches, unlike qacct -j ID, which
// fails for a job that never ran (deleted while pending).
//
// Cancelled and killed jobs: qdel and the h_rt limit kill with SIGKILL (unless the queue's
// terminate_method or Options.Notify says otherwise), so the wrapper leaves no .exitcode. qstat
// shows such a job as "dr" (cancelled) at most briefly; qacct of Grid Engine 8.1.9 then records
// "failed 100 : assumedly after job" (37 for h_rt) with exit_status 137 and no deleted_by, which
// ParseQacct reports as failed (timeout for h_rt): a final status. Accounting cannot tell a
// cancel from another kill; the agent, which knows it asked for the cancel, reports it as such.
//
// Every command is named by its bare name (found on the login shell's PATH) unless
// Options.CommandDir gives the directory Grid Engine's commands are installed in.
//
// The package also parses the plain qstat table (ParseQstatTable).
package sge

import (
	"path"
	"strconv"

	"github.com/ferryhpc/ferry/scheduler"
)

// Defaults for the zero Options.
const (
	DefaultParallelEnv    = "smp"
	DefaultAccountingDays = 7
)

// Options configure the adapter. The zero value is ready to use.
type Options struct {
	// ParallelEnv is the parallel environment a multi-CPU task asks for (#$ -pe ENV CPUS). Default
	// "smp"; sites name it differently ("threaded", "shm", "openmp": qconf -spl lists them). A wrong
	// name makes qsub refuse every multi-CPU task with "no suitable queues".
	ParallelEnv string
	// MemoryResources are the complex names that carry a task's memory, each rendered as
	// -l NAME=<MemoryMB / CPUs>M: Grid Engine counts memory per slot and multiplies it by the
	// slots of a parallel job. Default ["h_vmem"], the usual consumable that is also enforced as a
	// limit. Sites that schedule on mem_free, or limit with h_rss, list those instead (or as
	// well). A nil list means the default; an empty, non-nil one leaves memory out.
	MemoryResources []string
	// AccountOption is the qsub option that carries Resources.Account: "-A" (default: the
	// account string recorded in accounting) or "-P" (the project, which share-tree policies and
	// access lists use). Render fails on any other value.
	AccountOption string
	// Notify adds #$ -notify: Grid Engine then sends SIGUSR2 before SIGKILL, which the wrapper
	// records as exit code 140, so a job killed by qdel or its h_rt limit still leaves an
	// .exitcode. Default false, because -notify also sends SIGUSR1 before a suspend (qmod -sj, a
	// subordinate or alarmed queue) and the wrapper does not trap USR1: sh then terminates, and
	// Grid Engine ends the job with it. Enable it where jobs are never suspended.
	Notify bool
	// AccountingDays bounds the accounting query to jobs started in the last N days. Default 7.
	// Raise it when tasks run longer than that: an older job is not found and Ferry falls back to
	// the task's .exitcode alone. qacct reads the whole accounting file either way.
	AccountingDays int
	// CommandDir is the absolute directory holding Grid Engine's qsub, qstat, qacct and qdel
	// ("/opt/sge/bin/lx-amd64"); every command is then run by its full path. Default empty: the
	// commands are found on the user's login PATH. Set it when the login node has several
	// schedulers' commands installed side by side (PBS and Torque also name theirs qsub/qstat/qdel)
	// or when the users' PATH does not reach them (Grid Engine's bin directory is usually added by
	// a settings.sh that non-interactive shells may not read).
	CommandDir string
}

// SGE implements scheduler.Scheduler and scheduler.Accounting. It holds no state besides its
// options and is safe for concurrent use.
type SGE struct {
	pe      string
	mem     []string
	account string
	notify  bool
	days    int
	cmdDir  string
}

var (
	_ scheduler.Scheduler  = (*SGE)(nil)
	_ scheduler.Accounting = (*SGE)(nil)
)

// New returns a Grid Engine adapter with opts, defaults filled in.
func New(opts Options) *SGE {
	s := &SGE{pe: opts.ParallelEnv, account: opts.AccountOption, notify: opts.Notify, days: opts.AccountingDays, cmdDir: opts.CommandDir}
	if s.pe == "" {
		s.pe = DefaultParallelEnv
	}
	if opts.MemoryResources == nil {
		s.mem = []string{"h_vmem"}
	} else {
		s.mem = append([]string{}, opts.MemoryResources...)
	}
	if s.account == "" {
		s.account = "-A"
	}
	if s.days <= 0 {
		s.days = DefaultAccountingDays
	}
	return s
}

// Kind returns "sge".
func (s *SGE) Kind() string { return "sge" }

// SubmitCommand returns qsub -terse .command.run, run in spec.Dir. -terse makes qsub print the bare
// job id; ParseSubmit also reads the sentence qsub prints without it.
func (s *SGE) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	return scheduler.Command{Argv: []string{s.prog("qsub"), "-terse", scheduler.RunFile}, Dir: spec.Dir}
}

// StatusCommand returns qstat -xml -u USER: all of user's pending, running and suspended jobs, in
// XML because the plain table cuts names and queues. ids are not needed: qstat lists the owner's
// jobs and the agent ignores the ones it does not track.
func (s *SGE) StatusCommand(user string, ids []scheduler.JobID) scheduler.Command {
	return scheduler.Command{Argv: []string{s.prog("qstat"), "-xml", "-u", user}}
}

// AccountingCommand returns qacct -o USER -d DAYS -j: every accounting record of user's jobs
// started in the last Options.AccountingDays days (see the package comment for why not -j ID).
func (s *SGE) AccountingCommand(user string, ids []scheduler.JobID) scheduler.Command {
	return scheduler.Command{Argv: []string{s.prog("qacct"), "-o", user, "-d", strconv.Itoa(s.days), "-j"}}
}

// CancelCommand returns qdel ID..., one call for all ids. Every id ParseSubmit returns is a
// number, so none can be read as an option.
func (s *SGE) CancelCommand(ids []scheduler.JobID) scheduler.Command {
	argv := []string{s.prog("qdel")}
	for _, id := range ids {
		argv = append(argv, string(id))
	}
	return scheduler.Command{Argv: argv}
}

// prog returns the command name to run: name itself, or name in Options.CommandDir.
func (s *SGE) prog(name string) string {
	if s.cmdDir == "" {
		return name
	}
	return path.Join(s.cmdDir, name)
}

// ClassifyFailure reads a failed qsub. "unable to send message to qmaster" and "unable to contact
// qmaster" (with commlib's "Connection refused") created no job; "failed receiving gdi request
// response" means qmaster got the request and its answer was lost, so the job may exist.
func (s *SGE) ClassifyFailure(r scheduler.Result) scheduler.Failure {
	return scheduler.Classify(r, sgeUnavailable, sgeAmbiguous)
}

var (
	sgeUnavailable = []string{
		"unable to send message to qmaster",
		"unable to contact qmaster",
		"commlib error",
		"connection refused",
	}
	sgeAmbiguous = []string{
		"failed receiving gdi request response",
		"timed out",
	}
)
