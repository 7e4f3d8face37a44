package faults_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

// clusterLib is scripts/lib/testcluster.sh: the pid files and the start and stop helpers of the
// test cluster's daemons, used here rather than copied.
func clusterLib(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	lib := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "lib", "testcluster.sh")
	_, err := os.Stat(lib)
	require.NoError(t, err)
	return lib
}

// clusterShell runs a bash snippet with the cluster library sourced.
func clusterShell(t *testing.T, snippet string) error {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -euo pipefail; PROG=faults; source \"$1\"; "+snippet, "bash", clusterLib(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("%s: %v\n%s", snippet, err, out)
	}
	return err
}

// stopSlurmctld stops the shared slurmctld and registers, before stopping it, a cleanup that
// starts it again and waits until sinfo answers, whatever happens to the test.
func stopSlurmctld(t *testing.T) (start func()) {
	t.Helper()
	started := false
	start = func() {
		if started {
			return
		}
		started = true
		require.NoError(t, clusterShell(t, `pid_alive "$SLURMCTLD_PID_FILE" slurmctld >/dev/null || run_daemon /usr/sbin/slurmctld
wait_for --daemon "$SLURMCTLD_PID_FILE" slurmctld 60 "slurmctld to answer" "$SLURM_LOG_DIR/slurmctld.log" timeout 10 scontrol ping`))
		require.Eventually(t, func() bool {
			_, err := slurmCmd(15*time.Second, "sinfo", "--noheader")
			return err == nil
		}, 2*time.Minute, time.Second, "sinfo does not answer after restarting slurmctld")
	}
	t.Cleanup(start)
	require.NoError(t, clusterShell(t, `stop_daemon slurmctld "$SLURMCTLD_PID_FILE" slurmctld 30`))
	return start
}

// TestSlurmctldStoppedFor60s stops the shared Slurm controller for 60 s while jobs run, some of
// them ending during the outage, and while a launcher submits. Statuses must go stale (Job.Error
// set), never failed or done; submits must fail cleanly with a retryable error and succeed, once,
// when the launcher retries after the controller is back; every job ends with its own state and
// exit code.
func TestSlurmctldStoppedFor60s(t *testing.T) {
	c := testcluster.Require(t)
	exclusive(t, "stopping the shared slurmctld")
	cfg := baseConfig(t, c, c.Host, c.Port)
	// A Slurm client whose controller is down blocks ~20 s per call: keep the agent's patience
	// shorter so that statuses go stale quickly.
	cfg.Poll.CommandTimeout = config.Duration{Duration: 10 * time.Second}
	a := newAgent(t, cfg, nil)
	defer a.Close()
	since := time.Now()
	var tasks []*task
	defer func() {
		if t.Failed() {
			scancelTokens(since, tasks)
		}
	}()
	for i, u := range []string{"alice", "bob", "carol", "alice", "bob", "carol"} {
		sleep := 20 // ends during the outage
		if i >= 3 {
			sleep = 90 // ends after it
		}
		tasks = append(tasks, exitTask(t, u, "ctld", sleep, i%4))
	}
	for _, tk := range tasks {
		j, err := a.Submit(context.Background(), tk.req)
		require.NoError(t, err)
		tk.id = j.ID
	}
	require.Eventually(t, func() bool {
		js, err := a.Status(context.Background(), ids(tasks))
		require.NoError(t, err)
		for _, j := range js {
			if j.Status != "running" {
				return false
			}
		}
		return true
	}, 2*time.Minute, 500*time.Millisecond, "jobs did not start")

	start := stopSlurmctld(t)
	down := time.Now()
	t.Log("slurmctld stopped")

	// A submit during the outage fails cleanly with a retryable error...
	during := exitTask(t, "bob", "during", 0, 2)
	tasks = append(tasks, during)
	_, err := a.Submit(context.Background(), during.req)
	require.Error(t, err)
	t.Logf("submit during the outage: %v", err)
	require.ErrorIs(t, err, plugin.ErrUnavailable, "a controller that is down is a retryable condition")
	// ... and statuses go stale, never failed, for the whole outage.
	requireStale(t, a, tasks[:6], 45*time.Second)
	var l launch
	l.submit(a, during, 3*time.Minute)
	for time.Since(down) < 60*time.Second {
		js, err := a.Status(context.Background(), ids(tasks[:6]))
		require.NoError(t, err)
		for _, j := range js {
			require.False(t, j.Done, "a job ended while the controller was down: %+v", j)
			require.NotEqual(t, "failed", j.Status, "%+v", j)
		}
		time.Sleep(time.Second)
	}
	start()
	t.Logf("slurmctld back after %s", time.Since(down).Round(time.Second))

	require.NoError(t, l.wait())
	t.Logf("%d retryable submit errors while the controller was down", l.seen)
	got := waitDone(t, a, ids(tasks), 4*time.Minute)
	checkFinal(t, got, tasks)
	for _, tk := range tasks {
		require.Empty(t, got[tk.id].Error, "%+v", got[tk.id])
	}
	requireExactlyOnce(t, a, since, tasks)
}
