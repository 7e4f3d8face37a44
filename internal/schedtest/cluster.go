// Package schedtest runs Ferry's scheduler adapters end to end against every scheduler of the
// local test cluster (scripts/cluster-up): real Grid Engine, Slurm's real Torque wrappers, and
// the PBS Pro and LSF emulators (scripts/emulators). The adapters' commands run over the SSH pool
// as the test users, through their login shells (bash and tcsh), exactly as the agent runs them.
// The tests skip, saying why, when the cluster or one of its schedulers is absent.
package schedtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"

	"github.com/ferryhpc/ferry/internal/testcluster"
)

// Scheduler is one entry of cluster.json's "schedulers" object: where a scheduler's commands are
// on the login node and what environment they need.
type Scheduler struct {
	// Path is the directory holding the scheduler's commands (qsub, bjobs...). The adapters get it
	// as their Options.CommandDir and run their commands by absolute path from it, because more
	// than one scheduler names its commands qsub/qstat.
	Path string `json:"path"`
	// Env is environment the commands need, passed as `env K=V ... cmd` (none of the test
	// cluster's schedulers strictly needs any: Debian's Grid Engine wrappers set SGE_ROOT).
	Env map[string]string `json:"env"`
	// Emulated says the commands are scripts/emulators, not the real scheduler.
	Emulated bool `json:"emulated"`
	// BackedBy names the scheduler behind wrapper commands ("slurm" for Slurm's Torque wrappers).
	BackedBy string `json:"backed_by"`
	// Queue is the queue (partition) jobs go to by default.
	Queue string `json:"queue"`
	// CleanPeriodSeconds (LSF) is how long bjobs keeps a finished job.
	CleanPeriodSeconds int `json:"clean_period_seconds"`
	// MinJobAgeSeconds (Slurm, Torque wrappers) is how long squeue/qstat keep a finished job.
	MinJobAgeSeconds int `json:"min_job_age_seconds"`
	// History (PBS Pro) says the server keeps finished jobs for qstat -x.
	History bool `json:"history"`
}

// Schedulers reads the "schedulers" object of the test cluster's description (the file
// testcluster.Path names), which testcluster.Cluster does not carry.
func Schedulers() (map[string]Scheduler, error) {
	b, err := os.ReadFile(testcluster.Path())
	if err != nil {
		return nil, err
	}
	var doc struct {
		Schedulers map[string]Scheduler `json:"schedulers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", testcluster.Path(), err)
	}
	return doc.Schedulers, nil
}

// Command returns argv with s.Env prepended through env(1): ["/usr/bin/qsub", "-terse", f]
// becomes ["env", "SGE_CELL=default", "SGE_ROOT=/var/lib/gridengine", "/usr/bin/qsub", "-terse",
// f]. The program is kept as given: the adapters name it by full path themselves (CommandDir),
// and so must a test that builds a command of its own (Prog). Environment entries are sorted so
// the command line is deterministic.
func (s Scheduler) Command(argv []string) []string {
	if len(argv) == 0 || len(s.Env) == 0 {
		return argv
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(argv)+len(s.Env)+1)
	out = append(out, "env")
	for _, k := range keys {
		out = append(out, k+"="+s.Env[k])
	}
	return append(out, argv...)
}

// Prog returns the full path of the scheduler's command name, for commands a test builds itself.
func (s Scheduler) Prog(name string) string {
	if s.Path == "" {
		return name
	}
	return path.Join(s.Path, name)
}
