package schedtest

import (
	"context"
	"fmt"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// Runner runs an adapter's commands as one user over an SSH pool, the way the agent's runner does
// (argv joined by scheduler.CommandLine, the one quoting function), after Scheduler.Command has
// put the scheduler's environment in front. The commands name their programs by full path
// already: the adapters are built with the scheduler's directory as their CommandDir. It
// implements scheduler.Runner.
type Runner struct {
	Pool  *sshpool.Pool
	Sched Scheduler
}

var _ scheduler.Runner = (*Runner)(nil)

// Run runs c. A non-zero exit is a Result; an error means the command could not be run or its
// outcome is unknown.
func (r *Runner) Run(ctx context.Context, c scheduler.Command) (scheduler.Result, error) {
	c.Argv = r.Sched.Command(c.Argv)
	line, err := scheduler.CommandLine(c)
	if err != nil {
		return scheduler.Result{}, fmt.Errorf("command line for %q: %w", c.Argv, err)
	}
	res, err := r.Pool.Exec(ctx, line, c.Stdin)
	return scheduler.Result{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, err
}
