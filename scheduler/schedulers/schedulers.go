// Package schedulers maps a scheduler kind named in the configuration to its adapter.
package schedulers

import (
	"fmt"
	"path"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/lsf"
	"github.com/ferryhpc/ferry/scheduler/moab"
	"github.com/ferryhpc/ferry/scheduler/pbs"
	"github.com/ferryhpc/ferry/scheduler/sge"
	"github.com/ferryhpc/ferry/scheduler/slurm"
)

// Options are an adapter's settings: the agent-wide ones (SignalLead) and the per-identity ones that
// depend on the site. The zero value gives every adapter its defaults.
type Options struct {
	// SignalLead is how long before a job's time limit Slurm warns it (slurm.Options.SignalLead);
	// 0 takes the adapter's default. Only kind "slurm" reads it.
	SignalLead time.Duration
	// CommandDir is the absolute directory on the login node that holds the scheduler's commands
	// (qsub, qstat, bjobs...); the adapter then runs them by full path. Empty: the commands are
	// found on the user's login PATH. Sites that install several schedulers' commands side by
	// side (Slurm's Torque wrappers, Grid Engine and PBS all name theirs qsub/qstat/qdel) need it.
	// Not supported for Slurm yet: New refuses it there rather than ignore it.
	CommandDir string
	// PBSHistory says the PBS Pro server keeps job history (job_history_enable = True); see
	// pbs.Options.History. Only kind "pbspro" reads it.
	PBSHistory bool
}

// New returns the adapter for kind, tuned by opts. It fails on an unknown kind, a CommandDir that
// is not an absolute path a login shell can be given, and a CommandDir for a kind whose adapter
// cannot use one.
func New(kind string, opts Options) (scheduler.Scheduler, error) {
	if err := checkCommandDir(opts.CommandDir); err != nil {
		return nil, fmt.Errorf("scheduler %q: %w", kind, err)
	}
	switch kind {
	case "slurm":
		if opts.CommandDir != "" {
			return nil, fmt.Errorf("scheduler %q: command_dir is not supported for slurm yet; put Slurm's commands on the users' PATH", kind)
		}
		return slurm.New(slurm.Options{SignalLead: opts.SignalLead}), nil
	case "pbspro":
		return pbs.NewPro(pbs.Options{History: opts.PBSHistory, CommandDir: opts.CommandDir}), nil
	case "torque":
		return pbs.NewTorque(pbs.Options{CommandDir: opts.CommandDir}), nil
	case "lsf":
		return lsf.New(lsf.Options{CommandDir: opts.CommandDir}), nil
	case "sge":
		return sge.New(sge.Options{CommandDir: opts.CommandDir}), nil
	case "moab":
		return moab.New(moab.Options{CommandDir: opts.CommandDir}), nil
	default:
		return nil, fmt.Errorf("unknown scheduler %q (supported: slurm, pbspro, torque, lsf, sge, moab)", kind)
	}
}

// checkCommandDir accepts an empty dir or an absolute, clean path that scheduler.Quote can pass
// to every login shell.
func checkCommandDir(dir string) error {
	if dir == "" {
		return nil
	}
	if !path.IsAbs(dir) {
		return fmt.Errorf("command_dir %q is not an absolute path", dir)
	}
	if path.Clean(dir) != dir && path.Clean(dir)+"/" != dir {
		return fmt.Errorf("command_dir %q is not a clean path (write %q)", dir, path.Clean(dir))
	}
	if _, err := scheduler.Quote(dir); err != nil {
		return fmt.Errorf("command_dir cannot be passed to a login shell: %w", err)
	}
	return nil
}
