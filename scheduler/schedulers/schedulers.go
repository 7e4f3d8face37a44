// Package schedulers maps a scheduler kind named in the configuration to its adapter.
package schedulers

import (
	"fmt"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/slurm"
)

// New returns the adapter for kind, tuned by the poll settings.
func New(kind string, poll config.Poll) (scheduler.Scheduler, error) {
	switch kind {
	case "slurm":
		return slurm.New(slurm.Options{SignalLead: poll.SignalLead.Duration}), nil
	default:
		return nil, fmt.Errorf("scheduler %q is not supported yet (supported: slurm)", kind)
	}
}
