// Package scheduler holds the contract between Ferry's agent and the batch schedulers it drives
// (Slurm, PBS Pro, Torque, LSF, Grid Engine): commands are argv (never shell strings), parsers are
// pure functions, and remote execution is reached through the small Runner interface that the SSH
// pool satisfies without this package importing it.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Command is one remote command: an argv, optional bytes for its stdin, and an optional working
// directory (absolute, on the login node) the command runs in.
type Command struct {
	Argv  []string
	Stdin []byte
	Dir   string
}

// Result is what a finished remote command produced. A non-zero exit is a Result, not an error.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Runner runs one command on the login node as one user. It returns an error only when the command
// could not be run or its outcome is unknown (connection lost, context cancelled); whether the
// command itself ran must then be treated as unknown.
type Runner interface {
	Run(ctx context.Context, c Command) (Result, error)
}

// JobID is the scheduler's own id for a job, exactly as the scheduler prints it.
type JobID string

// Status is Ferry's scheduler-independent view of a job's state.
type Status string

// Ferry statuses. Pending, Held and Running are active; the rest are final.
const (
	StatusPending   Status = "pending"   // queued, waiting for resources
	StatusHeld      Status = "held"      // held or suspended; will not progress without action
	StatusRunning   Status = "running"   // has an allocation (includes completing/configuring)
	StatusCompleted Status = "completed" // ended; the exit code says whether the task succeeded
	StatusFailed    Status = "failed"    // ended by failure (non-zero exit, node failure, OOM, launch failure)
	StatusCancelled Status = "cancelled" // ended by a user or admin cancel, or preemption without requeue
	StatusTimeout   Status = "timeout"   // ended on its time limit or deadline
	StatusUnknown   Status = "unknown"   // the scheduler printed a state Ferry does not know
)

// Active reports whether a job in status s may still change.
func (s Status) Active() bool {
	return s == StatusPending || s == StatusHeld || s == StatusRunning || s == StatusUnknown
}

// Final reports whether s is a final status.
func (s Status) Final() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled || s == StatusTimeout
}

// JobState is one job as a status or accounting query reports it.
type JobState struct {
	ID        JobID
	Raw       string // the scheduler's own state code or word, decorations removed ("CANCELLED by 5" -> "CANCELLED")
	Status    Status
	Reason    string // why it waits or why it ended, as the scheduler says ("Resources", "Priority"); empty if none
	Queue     string
	User      string
	Name      string
	Submitted time.Time
	Started   time.Time
	Ended     time.Time
	// ExitCode is the exit code the scheduler's accounting reports, when it reports one; Ferry
	// prefers the task's own .exitcode file.
	ExitCode *int
	Signal   int // signal that ended the job, if the scheduler says so
}

// Resources is what a task asks the scheduler for. Zero values mean "the scheduler's default".
type Resources struct {
	CPUs     int
	MemoryMB int64
	Time     time.Duration
	Queue    string
	Account  string
	// Extra are scheduler options passed through verbatim as directives, one option per element
	// (for example "--qos=long" or "-l gres=gpu:1").
	Extra []string
}

// JobSpec is everything needed to render and submit one task.
type JobSpec struct {
	// Name is the task's name; adapters sanitise it for their scheduler's rules.
	Name string
	// Dir is the absolute path of the task directory on the login node; the batch script, the task
	// script and the .exitcode/.command.* files live there and submission runs with it as cwd.
	Dir string
	// Token is the launcher-supplied idempotency token recorded with the job (comment or name).
	Token string
	// Env is extra environment for the task, exported by the wrapper before the task runs.
	Env       map[string]string
	Resources Resources
}

// Files Ferry keeps in each task directory.
const (
	RunFile      = ".command.run"   // the batch script with directives and the wrapper
	TaskFile     = ".command.sh"    // the task itself, as the launcher gave it
	BeginFile    = ".command.begin" // touched by the wrapper when the task starts
	ExitCodeFile = ".exitcode"      // the task's exit code, written by the wrapper even when killed
	OutFile      = ".command.out"   // the task's stdout
	ErrFile      = ".command.err"   // the task's stderr
	LogFile      = ".command.log"   // the scheduler's own stdout/stderr for the job
)

// Scheduler is one scheduler's adapter: it builds commands and parses what they print. It never runs
// anything itself; the agent runs the commands through a Runner as the right user.
type Scheduler interface {
	// Kind is the adapter's name: "slurm", "pbspro", "torque", "lsf", "sge".
	Kind() string
	// Render returns the batch script (directives plus the wrapper that runs TaskFile and writes
	// ExitCodeFile) for spec. It fails on a spec that cannot be expressed safely.
	Render(spec JobSpec) ([]byte, error)
	// SubmitCommand returns the command that submits the rendered RunFile in spec.Dir.
	SubmitCommand(spec JobSpec) Command
	// ParseSubmit extracts the job id from a successful submit command's stdout.
	ParseSubmit(stdout []byte) (JobID, error)
	// StatusCommand returns the one command that reports the state of user's jobs.
	StatusCommand(user string, ids []JobID) Command
	// ParseStatus parses StatusCommand's stdout.
	ParseStatus(stdout []byte) ([]JobState, error)
	// CancelCommand returns the one command that cancels ids.
	CancelCommand(ids []JobID) Command
	// CheckCancel interprets a cancel command's result: an id that had already finished is not an
	// error; permission denied is.
	CheckCancel(ids []JobID, r Result) error
}

// Accounting is the optional ability to ask about jobs the live status query no longer knows.
type Accounting interface {
	AccountingCommand(user string, ids []JobID) Command
	ParseAccounting(stdout []byte) ([]JobState, error)
}

// Sentinel errors.
var (
	// ErrParse means the scheduler's output could not be understood.
	ErrParse = errors.New("unparseable scheduler output")
	// ErrSubmitRejected means the scheduler refused the submission (bad partition, bad resources).
	ErrSubmitRejected = errors.New("scheduler rejected the submission")
	// ErrPermission means the scheduler refused an operation for lack of permission.
	ErrPermission = errors.New("scheduler denied permission")
)

// CommandError is a remote command that exited non-zero.
type CommandError struct {
	Argv     []string
	ExitCode int
	Stderr   string // bounded to MaxStderr bytes
}

// MaxStderr bounds the stderr kept in a CommandError.
const MaxStderr = 2048

// NewCommandError builds a CommandError from a command and its result, bounding stderr (or stdout,
// when stderr is empty: some schedulers print refusals to stdout).
func NewCommandError(c Command, r Result) *CommandError {
	msg := r.Stderr
	if len(msg) == 0 {
		msg = r.Stdout
	}
	if len(msg) > MaxStderr {
		msg = msg[:MaxStderr]
	}
	return &CommandError{Argv: c.Argv, ExitCode: r.ExitCode, Stderr: string(msg)}
}

func (e *CommandError) Error() string {
	name := ""
	if len(e.Argv) > 0 {
		name = e.Argv[0]
	}
	return fmt.Sprintf("%s exited %d: %s", name, e.ExitCode, trimSpace(e.Stderr))
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// TokenLookup is the optional ability to find a user's job by the Ferry token it was submitted with
// (JobSpec.Token, recorded by the adapter in the job's comment or name). The agent uses it when a
// submit's outcome is unknown (the connection dropped after the scheduler may have accepted it), so
// the job is adopted rather than submitted twice.
type TokenLookup interface {
	// LookupCommand returns the one command listing user's jobs with their tokens.
	LookupCommand(user string) Command
	// ParseLookup returns the id of the job carrying token, and whether there is one.
	ParseLookup(stdout []byte, token string) (JobID, bool, error)
}

// LookupChecker is the optional ability to judge a lookup command's result, for schedulers whose
// listing exits non-zero when the user has no job at all (bjobs) or when a job left between two
// calls of the lookup (qstat of an id qselect had just listed). CheckLookup returns nil when
// stdout is to be parsed (an empty stdout then means no job carries the token) and an error when
// the lookup really failed: a failed lookup is never "not found", which would lead to a second
// submit. Without it, any non-zero exit is an error.
type LookupChecker interface {
	CheckLookup(r Result) error
}

// StatusChecker is the optional ability to judge a status or accounting command's result. Some
// schedulers (qstat, bjobs, bhist) exit non-zero when one of several ids is unknown while stdout
// still lists every job they know; CheckStatus returns nil when stdout is to be parsed anyway, and
// an error when the query really failed. Without it, any non-zero exit is an error.
type StatusChecker interface {
	CheckStatus(ids []JobID, r Result) error
}
