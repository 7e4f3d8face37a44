// Package schedulers maps a scheduler kind named in the configuration to its adapter.
package schedulers

import (
	"fmt"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/lsf"
	"github.com/ferryhpc/ferry/scheduler/pbs"
	"github.com/ferryhpc/ferry/scheduler/sge"
	"github.com/ferryhpc/ferry/scheduler/slurm"
)

// New returns the adapter for kind, tuned by the poll settings.
func New(kind string, poll config.Poll) (scheduler.Scheduler, error) {
	switch kind {
	case "slurm":
		return slurm.New(slurm.Options{SignalLead: poll.SignalLead.Duration}), nil
	case "pbspro":
		return pbs.NewPro(pbs.Options{}), nil
	case "torque":
		return pbs.NewTorque(pbs.Options{}), nil
	case "lsf":
		return lsf.New(lsf.Options{}), nil
	case "sge":
		return sge.New(sge.Options{}), nil
	default:
		return nil, fmt.Errorf("unknown scheduler %q (supported: slurm, pbspro, torque, lsf, sge)", kind)
	}
}
