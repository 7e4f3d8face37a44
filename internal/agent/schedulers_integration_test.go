package agent_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/schedtest"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

// TestEveryScheduler runs the core end-to-end promises through the agent on real Grid Engine, the
// Torque wrappers and the PBS Pro and LSF emulators: jobs as each user (bash and tcsh), files owned
// by that user with the shared group, exit codes, cancel, and an agent restart mid-run.
func TestEveryScheduler(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	scheds, err := schedtest.Schedulers()
	if err != nil {
		t.Skipf("cluster.json has no scheduler list (%v): run make cluster-up", err)
	}
	kinds := []string{"sge", "torque", "pbspro", "lsf", "moab"}
	for _, kind := range kinds {
		s, ok := scheds[kind]
		if !ok {
			t.Errorf("test cluster lacks %s", kind)
			continue
		}
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			state := t.TempDir()
			cfg := testConfig(t, c, state)
			local := cfg.Identities[0]
			local.Scheduler = kind
			local.SchedulerCommandDir = s.Path
			local.PBSHistory = kind == "pbspro" && s.History
			cfg.Identities = []config.Identity{local}
			a := newAgent(t, cfg)
			ok0 := submit(t, a, "alice", "ok", whoScript, plugin.Resources{})
			bad := submit(t, a, "carol", "bad", "exit 3\n", plugin.Resources{})
			long := submit(t, a, "bob", "long", "sleep 300\n", plugin.Resources{})
			deadline := time.Now().Add(2 * time.Minute)
			for {
				js, err := a.Status(t.Context(), []string{long.ID})
				require.NoError(t, err)
				if js[0].Status == "running" {
					break
				}
				require.True(t, time.Now().Before(deadline), "%s: long job never ran: %+v", kind, js[0])
				time.Sleep(300 * time.Millisecond)
			}
			res, err := a.Cancel(t.Context(), []string{long.ID})
			require.NoError(t, err)
			require.Equal(t, "", res[0].Error)
			// Restart mid-run: the new agent re-attaches from the store.
			require.NoError(t, a.Close())
			b := newAgent(t, cfg)
			defer b.Close()
			got := wait(t, b, []string{ok0.ID, bad.ID, long.ID}, 4*time.Minute)
			summary := func() string {
				var out []string
				for _, j := range got {
					out = append(out, fmt.Sprintf("%s:%s/%s/%v/%s", j.Name, j.Status, j.State, j.ExitCode, j.Error))
				}
				sort.Strings(out)
				return fmt.Sprint(out)
			}
			require.Equal(t, "completed", got[ok0.ID].Status, summary())
			require.Equal(t, 0, *got[ok0.ID].ExitCode)
			require.Equal(t, "alice\nin-shared-group", remote(t, c, "alice", "cat "+got[ok0.ID].Dir+"/who.txt"))
			require.Equal(t, "alice:"+c.Group+" 664", remote(t, c, "alice", "stat -c '%U:%G %a' "+got[ok0.ID].Dir+"/product.txt"))
			require.Equal(t, "failed", got[bad.ID].Status, summary())
			require.Equal(t, 3, *got[bad.ID].ExitCode)
			require.Equal(t, "cancelled", got[long.ID].Status, summary())
		})
	}
}

// TestDottedUsername runs a job as john.smith, a real Linux user with a dotted name (as Active
// Directory and LDAP accounts often are), on every scheduler of the test cluster: it runs as that
// user, in the shared group, and what it writes is that user's and the group's.
func TestDottedUsername(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	scheds, err := schedtest.Schedulers()
	if err != nil {
		t.Skipf("cluster.json has no scheduler list (%v): run make cluster-up", err)
	}
	for _, kind := range []string{"slurm", "sge", "torque", "pbspro", "lsf", "moab"} {
		s, ok := scheds[kind]
		if !ok {
			t.Errorf("test cluster lacks %s", kind)
			continue
		}
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, c, t.TempDir())
			local := cfg.Identities[0]
			local.Scheduler = kind
			if kind != "slurm" {
				local.SchedulerCommandDir = s.Path
			}
			local.PBSHistory = kind == "pbspro" && s.History
			local.Credentials = []config.Credential{{User: "john.smith", KeyFile: c.User(t, "john.smith").Key}}
			cfg.Identities = []config.Identity{local}
			require.NoError(t, cfg.Validate())
			a := newAgent(t, cfg)
			defer a.Close()
			j := submit(t, a, "john.smith", "dotted", whoScript, plugin.Resources{})
			got := wait(t, a, []string{j.ID}, 3*time.Minute)[j.ID]
			require.Equal(t, "completed", got.Status, "%+v", got)
			require.Equal(t, "john.smith\nin-shared-group", remote(t, c, "john.smith", "cat "+got.Dir+"/who.txt"))
			require.Equal(t, "john.smith:"+c.Group+" 664", remote(t, c, "john.smith", "stat -c '%U:%G %a' "+got.Dir+"/product.txt"))
		})
	}
}
