// Package moab is Ferry's adapter for the Moab workload manager (Kind "moab") on a Torque or PBS
// resource manager, its usual deployment. It builds the msub, showq, checkjob and mjobctl commands
// (argv, never shell strings) and parses what they print; it runs nothing itself.
//
// What it sends:
//
//	submit   msub .command.run                          (cwd = the task directory)
//	status   showq --xml -w user=USER
//	account  checkjob --xml ID, for each id showq no longer lists (one /bin/sh for all)
//	cancel   mjobctl -c ID, for each id                 (one /bin/sh for all)
//	lookup   qselect -u USER, then qstat -f -1 ID...    (the resource manager's; see LookupCommand)
//
// Status is one showq per user and poll. showq lists a job while it is active, eligible or
// blocked; once it has ended, checkjob --xml still reports it (with its completion code) for
// Moab's job purge time, and the agent asks only about the ids showq no longer lists.
//
// The batch script is the Torque adapter's (#PBS directives, which msub reads like its own
// #MSUB ones), so resources, the job name, the token and the wrapper behave exactly as on Torque;
// the wrapper records MOAB_JOBID, Moab's id of the job, in .command.begin.
//
// Formats: no real Moab output was available to this project. The XML and message formats parsed
// here follow Adaptive Computing's Moab documentation (showq --xml, checkjob --xml, mjobctl) and are
// what the test cluster's Moab emulator (scripts/emulators/moab.py) prints; the parser tests run on
// outputs documented there, marked as such in testdata/MANIFEST.tsv, until real captures are added.
package moab

import (
	"path"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/pbs"
)

// Options configure the adapter. The zero value is ready to use.
type Options struct {
	// CommandDir is the absolute directory holding Moab's msub, showq, checkjob and mjobctl and
	// the resource manager's qselect and qstat; every command is then run by its full path.
	// Default empty: the commands are found on the user's login PATH.
	CommandDir string
	// MaxNameLen is the longest job name rendered; default that of pbs.Options (15).
	MaxNameLen int
}

// Moab implements scheduler.Scheduler, Accounting, StatusChecker, TokenLookup and LookupChecker.
// It holds no state besides its options and is safe for concurrent use.
type Moab struct {
	tq     *pbs.Torque
	cmdDir string
}

var (
	_ scheduler.Scheduler         = (*Moab)(nil)
	_ scheduler.Accounting        = (*Moab)(nil)
	_ scheduler.StatusChecker     = (*Moab)(nil)
	_ scheduler.TokenLookup       = (*Moab)(nil)
	_ scheduler.LookupChecker     = (*Moab)(nil)
	_ scheduler.FailureClassifier = (*Moab)(nil)
)

// jobIDVar is the variable Moab gives a batch job its Moab id in.
const jobIDVar = "MOAB_JOBID"

// New returns a Moab adapter with opts.
func New(opts Options) *Moab {
	return &Moab{
		tq:     pbs.NewTorque(pbs.Options{CommandDir: opts.CommandDir, MaxNameLen: opts.MaxNameLen, JobIDVar: jobIDVar}),
		cmdDir: opts.CommandDir,
	}
}

// Kind returns "moab".
func (m *Moab) Kind() string { return "moab" }

// Render returns the Torque batch script for spec (see pbs.Torque's Render): msub reads #PBS
// directives.
func (m *Moab) Render(spec scheduler.JobSpec) ([]byte, error) { return m.tq.Render(spec) }

// SubmitCommand returns msub .command.run, run in spec.Dir.
func (m *Moab) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	return scheduler.Command{Argv: []string{m.prog("msub"), scheduler.RunFile}, Dir: spec.Dir}
}

// StatusCommand returns showq --xml -w user=USER: every active, eligible and blocked job of user's.
func (m *Moab) StatusCommand(user string, ids []scheduler.JobID) scheduler.Command {
	return scheduler.Command{Argv: []string{m.prog("showq"), "--xml", "-w", "user=" + user}}
}

// eachScript runs "$1" with the options in $2 (split on blanks: fixed options, never user input)
// once per remaining argument, and exits with the last failure's status; every id is asked even
// when one fails. One line: the agent runs it through the user's login shell, which may be tcsh.
const eachScript = `c=$1; o=$2; shift 2; rc=0; for id; do "$c" $o "$id" || rc=$?; done; exit $rc`

// AccountingCommand returns the one command that runs checkjob --xml for each id (checkjob takes
// one job).
func (m *Moab) AccountingCommand(user string, ids []scheduler.JobID) scheduler.Command {
	return m.each("checkjob", "--xml", ids)
}

// CancelCommand returns the one command that runs mjobctl -c for each id. Every id ParseSubmit
// returns starts with a digit or "Moab.", so none can be read as an option.
func (m *Moab) CancelCommand(ids []scheduler.JobID) scheduler.Command {
	return m.each("mjobctl", "-c", ids)
}

func (m *Moab) each(prog, opts string, ids []scheduler.JobID) scheduler.Command {
	argv := []string{"/bin/sh", "-c", eachScript, "ferry-" + prog, m.prog(prog), opts}
	for _, id := range ids {
		argv = append(argv, string(id))
	}
	return scheduler.Command{Argv: argv}
}

// LookupCommand returns the resource manager's listing of user's jobs with their variables
// (qselect, then qstat -f -1), where Render's #PBS -v FERRY_TOKEN=TOKEN shows: Moab's own listings
// do not show a job's variables. It finds the job where Moab's id is the resource manager's job
// number, the usual Moab-on-Torque setup; elsewhere the lookup finds nothing and the agent, before
// it submits again, still checks the task dir (see the agent's ambiguous-submit settling).
func (m *Moab) LookupCommand(user string) scheduler.Command { return m.tq.LookupCommand(user) }

// ParseLookup finds the job carrying token in qstat -f output and returns its Moab id: the
// resource manager's job number ("123.server" -> "123").
func (m *Moab) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	id, ok, err := m.tq.ParseLookup(stdout, token)
	if !ok || err != nil {
		return id, ok, err
	}
	n, _, _ := strings.Cut(string(id), ".")
	return scheduler.JobID(n), true, nil
}

// CheckLookup accepts what the Torque adapter accepts (qstat of a job that ended meanwhile).
func (m *Moab) CheckLookup(r scheduler.Result) error { return m.tq.CheckLookup(r) }

// ClassifyFailure reads a failed msub: "cannot connect to server" and "unable to connect" (Moab
// is not answering) created no job; a timeout may have.
func (m *Moab) ClassifyFailure(r scheduler.Result) scheduler.Failure {
	return scheduler.Classify(r, moabUnavailable, moabAmbiguous)
}

var (
	moabUnavailable = []string{"cannot connect to server", "unable to connect", "connection refused", "server is not responding"}
	moabAmbiguous   = []string{"timed out", "timeout", "end of file"}
)

// prog returns the command name to run: name itself, or name in Options.CommandDir.
func (m *Moab) prog(name string) string {
	if m.cmdDir == "" {
		return name
	}
	return path.Join(m.cmdDir, name)
}
