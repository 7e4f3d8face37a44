// Package pbs is Ferry's adapter for the PBS family: PBS Professional / OpenPBS (Kind "pbspro") and
// Torque (Kind "torque"). It builds the qsub, qstat and qdel commands (argv, never shell strings)
// and parses what they print; it runs nothing itself.
//
// What it sends:
//
//	submit   qsub -N NAME .command.run                         (PBS Pro; cwd = the task directory)
//	         qsub -N NAME -o DIR/.command.log -j oe .command.run (Torque)
//	status   qstat -E -f -F json [-x] ID...                    (PBS Pro; -x with Options.History)
//	         qstat -f -1 ID...                                 (Torque)
//	account  qstat -x -E -f -F json ID...                      (PBS Pro only, see below)
//	cancel   qdel ID...
//
// Status is one query per user and poll, restricted to that user's jobs by naming them: PBS has no
// full-format query by owner (qstat -u switches to a table whose job ids are cut to 15-30
// characters, and a cut id matches nothing). -E makes PBS Pro send all ids in one request, which
// the server answers with every job it knows and no error unless it knows none of them.
//
// Finished jobs: PBS Pro keeps them only when the server has job_history_enable = True (default
// False; then for job_history_duration, two weeks by default) and shows them only with -x; on a
// server without history, qstat -x answers nothing at all. Options.History must therefore match
// the server. Torque keeps completed jobs in state C for keep_completed seconds (server default 300
// in Torque 6, 0 in older releases); its qstat -x means XML output, not history.
//
// Slurm's Torque wrappers (the qsub/qstat/qdel of slurm-wlm-torque, which sites migrating from
// Torque install) are driven as Torque, with three differences the adapter allows for: qstat -f
// indents with TABs (ParseQstatFull reads both), every ended job shows C with no exit_status (so
// the job is completed and the task's .exitcode gives the verdict), and qsub ignores #PBS -o/-j
// (so SubmitCommand repeats them on the command line). Their qdel is silent about unknown and
// finished ids (CheckCancel).
//
// An id the server no longer knows makes qstat exit non-zero (153) while it still prints every job
// it does know; CheckStatus tells such a result from a real failure (see its comment).
//
// Every command is named by its bare name (found on the login shell's PATH) unless
// Options.CommandDir gives the directory the scheduler's commands are installed in.
//
// The package also parses the formats people paste: qstat -f text (ParseQstatFull), the default
// and alternate qstat tables (ParseQstatTable) and qstat -f -F json (ParseQstatJSON).
package pbs

import (
	"path"

	"github.com/ferryhpc/ferry/scheduler"
)

// DefaultMaxNameLen is the longest job name Ferry renders when Options.MaxNameLen is zero: older
// PBS and Torque servers refuse names over 15 characters.
const DefaultMaxNameLen = 15

// Options configure both adapters. The zero value is ready to use.
type Options struct {
	// History says the PBS Pro server keeps job history (qmgr: job_history_enable = True). Then the
	// status query adds -x and finished jobs are reported in state F with their Exit_status until
	// job_history_duration (two weeks by default) has passed. Leave it false (the default, and PBS
	// Pro's default) when the server keeps no history: qstat -x on such a server prints no job at
	// all, and the status query then fails with an error that names this option. Torque ignores it.
	History bool
	// AccountOption is the qsub option that carries Resources.Account: "-A" (default: the
	// Account_Name attribute, in both PBS Pro and Torque) or "-P" (PBS Pro only: the project, which
	// PBS Pro 13+ uses for limits and accounting; Nextflow's choice). Torque refuses "-P" because
	// there it means "run as another user". Render fails on any other value.
	AccountOption string
	// MaxNameLen is the longest job name rendered (-N and the qsub -N argument). Default 15, the
	// limit of older servers; PBS Pro accepts up to 236, so raise it there if names get cut.
	MaxNameLen int
	// CommandDir is the absolute directory holding this scheduler's qsub, qstat and qdel
	// ("/opt/pbs/bin"); every command is then run by its full path. Default empty: the commands
	// are found on the user's login PATH. Set it when the login node has several schedulers'
	// commands installed side by side (Slurm's Torque wrappers, Grid Engine and PBS all name
	// theirs qsub/qstat/qdel) or when the users' PATH does not reach them.
	CommandDir string
	// JobIDVar is the variable the batch job's environment gives the job's id in, which the
	// wrapper records in .command.begin (scheduler.RenderWrapper). Default PBS_JOBID; Moab on a
	// PBS resource manager gives its own id in MOAB_JOBID.
	JobIDVar string
}

// flavor says which PBS the adapter drives.
type flavor int

const (
	flavorPro flavor = iota
	flavorTorque
)

// core holds what both adapters share. It holds no state besides its options and is safe for
// concurrent use.
type core struct {
	flavor  flavor
	history bool
	account string
	maxName int
	cmdDir  string
	idVar   string
}

func newCore(f flavor, opts Options) core {
	c := core{flavor: f, history: opts.History, account: opts.AccountOption, maxName: opts.MaxNameLen, cmdDir: opts.CommandDir}
	if c.account == "" {
		c.account = "-A"
	}
	if c.maxName <= 0 {
		c.maxName = DefaultMaxNameLen
	}
	c.idVar = opts.JobIDVar
	if c.idVar == "" {
		c.idVar = jobIDVar
	}
	return c
}

// Pro is the PBS Professional / OpenPBS adapter. It implements scheduler.Scheduler and
// scheduler.Accounting.
type Pro struct{ core }

// Torque is the Torque adapter. It implements scheduler.Scheduler only: Torque has no history of
// finished jobs that a user can query (qstat forgets a job keep_completed seconds after it ends,
// and tracejob reads server logs that login nodes rarely have), so an accounting query could only
// repeat the status query for ids qstat has already forgotten, and fail.
type Torque struct{ core }

var (
	_ scheduler.Scheduler  = (*Pro)(nil)
	_ scheduler.Accounting = (*Pro)(nil)
	_ scheduler.Scheduler  = (*Torque)(nil)
)

// NewPro returns a PBS Professional / OpenPBS adapter with opts, defaults filled in.
func NewPro(opts Options) *Pro { return &Pro{newCore(flavorPro, opts)} }

// NewTorque returns a Torque adapter with opts, defaults filled in.
func NewTorque(opts Options) *Torque { return &Torque{newCore(flavorTorque, opts)} }

// Kind returns "pbspro".
func (p *Pro) Kind() string { return "pbspro" }

// Kind returns "torque".
func (t *Torque) Kind() string { return "torque" }

// SubmitCommand returns qsub -N NAME .command.run, run in spec.Dir (PBS Pro), or for Torque
// qsub -N NAME -o DIR/.command.log -j oe .command.run. The name is also a directive in the script;
// it is repeated on the command line because some PBS versions derive a default job name from the
// script's file name and refuse one that starts with a dot before they read the directives
// (Nextflow does the same). NAME is the sanitised name, so it is a plain word.
//
// Torque also gets the output options on the command line because Slurm's Torque wrappers (the
// qsub that sites migrating from Torque to Slurm install) ignore #PBS -o and -j and would write
// the job's output to NAME.oID in the task directory; on real Torque they repeat the directives
// (command-line options win over directives, and the values are the same). Those wrappers paste
// the -o value into a shell command line unquoted, which is why Render refuses a Torque task
// directory holding anything but [A-Za-z0-9/._,=+@-]. SubmitCommand itself cannot fail: for a
// directory Render would refuse (the agent renders first) the command carries an argument with a
// NUL byte and the reason, which scheduler.CommandLine refuses, so nothing runs.
func (c *core) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	argv := []string{c.prog("qsub"), "-N", c.jobName(spec.Name)}
	if c.flavor == flavorTorque {
		if err := c.checkDir(spec.Dir); err != nil {
			argv = append(argv, "\x00ferry: "+err.Error())
		}
		argv = append(argv, "-o", logPath(spec.Dir), "-j", "oe")
	}
	return scheduler.Command{Argv: append(argv, scheduler.RunFile), Dir: spec.Dir}
}

// prog returns the command name to run: name itself, or name in Options.CommandDir.
func (c *core) prog(name string) string {
	if c.cmdDir == "" {
		return name
	}
	return path.Join(c.cmdDir, name)
}

// StatusCommand returns qstat -E -f -F json ID... (with -x when Options.History is set): one call
// for all of user's tracked jobs, in full JSON format. user is not needed: the ids select the jobs,
// and PBS shows a user only jobs they may see.
func (p *Pro) StatusCommand(user string, ids []scheduler.JobID) scheduler.Command {
	argv := []string{p.prog("qstat"), "-E", "-f", "-F", "json"}
	if p.history {
		argv = append(argv, "-x")
	}
	return scheduler.Command{Argv: appendIDs(argv, ids)}
}

// AccountingCommand returns qstat -x -E -f -F json ID...: the server's job history. The agent asks
// it about jobs the status query no longer lists. With Options.History set the status query
// already includes history, so this only helps with ids that were not in it; without history it
// prints no job (the server refuses -x), which is harmless: those jobs are simply gone.
func (p *Pro) AccountingCommand(user string, ids []scheduler.JobID) scheduler.Command {
	argv := []string{p.prog("qstat"), "-x", "-E", "-f", "-F", "json"}
	return scheduler.Command{Argv: appendIDs(argv, ids)}
}

// StatusCommand returns qstat -f -1 ID...: one call for all of user's tracked jobs, one line per
// attribute (-1 stops Torque from wrapping long values). Completed jobs stay listed in state C for
// the server's keep_completed seconds.
func (t *Torque) StatusCommand(user string, ids []scheduler.JobID) scheduler.Command {
	return scheduler.Command{Argv: appendIDs([]string{t.prog("qstat"), "-f", "-1"}, ids)}
}

// CancelCommand returns qdel ID..., one call for all ids. Every id ParseSubmit returns starts with
// a digit, so none can be read as an option.
func (c *core) CancelCommand(ids []scheduler.JobID) scheduler.Command {
	return scheduler.Command{Argv: appendIDs([]string{c.prog("qdel")}, ids)}
}

func appendIDs(argv []string, ids []scheduler.JobID) []string {
	for _, id := range ids {
		argv = append(argv, string(id))
	}
	return argv
}

// ClassifyFailure reads a failed qsub. "cannot connect to server" (PBS Pro and Torque, with
// errno 111 or 15010-range codes) and refused connections created no job; "Request timed out" and
// "End of File" (the server closed the connection after reading the request) may have. Torque
// here is often Slurm's Torque wrappers, whose qsub runs sbatch: Slurm's messages count too.
func (c *core) ClassifyFailure(r scheduler.Result) scheduler.Failure {
	return scheduler.Classify(r, pbsUnavailable, pbsAmbiguous)
}

var (
	pbsUnavailable = []string{
		"cannot connect to server",
		"cannot connect to specified server",
		"pbs_iff: cannot connect",
		"connection refused",
		"unable to contact slurm controller",
	}
	pbsAmbiguous = []string{
		"request timed out",
		"end of file",
		"socket timed out on send/recv operation",
		"zero bytes were transmitted or received",
	}
)
