package faults_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// lostReply makes sbatch succeed and its reply never arrive in time: the submit command runs the
// real sbatch, then sleeps far past poll.submit_timeout, so the agent gives up on the command
// after the job exists.
func lostReply(_ scheduler.JobSpec, real scheduler.Command) scheduler.Command {
	return scheduler.Command{Argv: []string{"sh", "-c", `"$@"; sleep 30`, "sh", real.Argv[0], real.Argv[1], real.Argv[2]}, Dir: real.Dir}
}

// TestAmbiguousSubmitAdoptedByToken injects the ambiguous submit: sbatch accepts the job but its
// reply is lost (the command outlives poll.submit_timeout). The agent must find the job by its
// token (squeue comment) instead of submitting again: exactly one Slurm job, the right id, the
// right final state; a retried Submit with the same token returns the same job.
func TestAmbiguousSubmitAdoptedByToken(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	f := &faultySlurm{submit: lostReply}
	cfg := baseConfig(t, c, c.Host, c.Port)
	cfg.Poll.SubmitTimeout = config.Duration{Duration: 3 * time.Second}
	a := newAgent(t, cfg, f.factory())
	defer a.Close()
	since := time.Now()
	tasks := []*task{exitTask(t, "alice", "lost-ok", 0, 0), exitTask(t, "carol", "lost-fail", 2, 6)}
	defer func() {
		if t.Failed() {
			scancelTokens(since, tasks)
		}
	}()
	for _, tk := range tasks {
		start := time.Now()
		j, err := a.Submit(context.Background(), tk.req)
		require.NoError(t, err, "the job exists: the agent must adopt it, not fail")
		require.NotEmpty(t, j.SchedulerID)
		require.Less(t, time.Since(start), 20*time.Second, "the lost reply must not be waited for")
		tk.id = j.ID
		again, err := a.Submit(context.Background(), tk.req)
		require.NoError(t, err)
		require.Equal(t, j.ID, again.ID)
		require.Equal(t, j.SchedulerID, again.SchedulerID)
	}
	got := waitDone(t, a, ids(tasks), 3*time.Minute)
	checkFinal(t, got, tasks)
	requireExactlyOnce(t, a, since, tasks)
	for _, u := range []string{"alice", "carol"} {
		n := a.CommandCounts()[sshpool.Key{Identity: "local", User: u}]
		require.Equal(t, 1, n["sh"], "%s: one submit command, never a second sbatch", u)
		// The lookup is squeue, or a /bin/sh running squeue then sacct (submits here are one at a
		// time, so no batch of submits runs a /bin/sh).
		require.GreaterOrEqual(t, n["squeue"]+n["/bin/sh"], 1, "%s: the token lookup ran", u)
	}
}

// TestAmbiguousSubmitRetriedAfterOutage is the ambiguous submit when the login node stays
// unreachable for a while: the reply is lost and the token lookups fail too, so the agent cannot
// know whether the job exists. Submit must fail with a retryable error; the launcher's retry with
// the same token, once the node answers again, must settle it (adopt the job that exists) and
// return it with its scheduler id, and the job must end right. Never a second job, never a job
// left unsubmitted.
func TestAmbiguousSubmitRetriedAfterOutage(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	f := &faultySlurm{submit: lostReply, lookup: func(string, scheduler.Command) scheduler.Command {
		return failingCommand("login-node-unreachable")
	}}
	cfg := baseConfig(t, c, c.Host, c.Port)
	cfg.Poll.SubmitTimeout = config.Duration{Duration: 3 * time.Second}
	a := newAgent(t, cfg, f.factory())
	defer a.Close()
	since := time.Now()
	tk := exitTask(t, "bob", "outage", 0, 4)
	defer func() {
		if t.Failed() {
			scancelTokens(since, []*task{tk})
		}
	}()
	_, err := a.Submit(context.Background(), tk.req)
	require.Error(t, err)
	require.ErrorIs(t, err, plugin.ErrUnavailable, "an unknown outcome must be retryable")
	require.ErrorContains(t, err, "outcome unknown")

	// The node answers again; the launcher retries with the same token.
	f.set(func(f *faultySlurm) { f.lookup = nil })
	j, _ := submitRetrying(t, a, tk.req, time.Minute)
	tk.id = j.ID
	deadline := time.Now().Add(time.Minute)
	for j.SchedulerID == "" {
		require.True(t, time.Now().Before(deadline),
			"the retried submit returned a job that is neither submitted nor adopted, and nothing will ever settle it (lost): %+v", j)
		time.Sleep(500 * time.Millisecond)
		js, err := a.Status(context.Background(), []string{j.ID})
		require.NoError(t, err)
		require.Len(t, js, 1)
		j = js[0]
	}
	got := waitDone(t, a, []string{tk.id}, 2*time.Minute)
	checkFinal(t, got, []*task{tk})
	requireExactlyOnce(t, a, since, []*task{tk})
	require.Equal(t, 1, a.CommandCounts()[sshpool.Key{Identity: "local", User: "bob"}]["sh"], "sbatch ran once")
}

// TestSubmitWhileControllerUnreachable makes sbatch (and only sbatch) unable to reach slurmctld,
// as when the controller is down or restarting, without stopping the shared controller: the
// submit command points SLURM_CONF at a copy of slurm.conf with a dead port. sbatch then fails
// with "Unable to contact slurm controller": the job certainly does not exist, so Submit must fail
// with a retryable error (plugin.ErrUnavailable), not as an invalid request a launcher would give
// up on; and the retry, once the controller answers, submits it exactly once.
func TestSubmitWhileControllerUnreachable(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	conf, err := os.ReadFile("/etc/slurm/slurm.conf")
	if err != nil {
		t.Skipf("no /etc/slurm/slurm.conf to copy: %v", err)
	}
	// Not t.TempDir: its parent is 0700, and the users must read the file.
	dir, err := os.MkdirTemp("", "ferry-faults-conf-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bogus := filepath.Join(dir, "slurm.conf")
	lines := strings.Split(string(conf), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "SlurmctldPort=") || strings.HasPrefix(l, "SlurmctldHost=") {
			lines[i] = "#" + l
		}
	}
	lines = append(lines, "SlurmctldHost=vm(127.0.0.1)", "SlurmctldPort=9")
	require.NoError(t, os.WriteFile(bogus, []byte(strings.Join(lines, "\n")), 0o644))

	f := &faultySlurm{submit: func(_ scheduler.JobSpec, real scheduler.Command) scheduler.Command {
		return scheduler.Command{Argv: append([]string{"env", "SLURM_CONF=" + bogus}, real.Argv...), Dir: real.Dir}
	}}
	a := newAgent(t, baseConfig(t, c, c.Host, c.Port), f.factory())
	defer a.Close()
	since := time.Now()
	tk := exitTask(t, "alice", "noctld", 0, 0)
	_, err = a.Submit(context.Background(), tk.req)
	require.Error(t, err)
	require.ErrorContains(t, err, "Unable to contact slurm controller")
	require.False(t, errors.Is(err, plugin.ErrInvalidArgument),
		"a controller that cannot be reached is not an invalid request: a launcher would drop the task (lost): %v", err)
	require.ErrorIs(t, err, plugin.ErrUnavailable)

	f.set(func(f *faultySlurm) { f.submit = nil })
	j, _ := submitRetrying(t, a, tk.req, time.Minute)
	tk.id = j.ID
	checkFinal(t, waitDone(t, a, []string{j.ID}, 2*time.Minute), []*task{tk})
	requireExactlyOnce(t, a, since, []*task{tk})
}

// TestConcurrentSubmitsWithOneToken sends five Submit calls with one token at once, as a launcher
// whose first call timed out on its side while the agent still worked on it, and which retried
// (more than once). They must all end with the same job, submitted exactly once.
func TestConcurrentSubmitsWithOneToken(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, baseConfig(t, c, c.Host, c.Port), nil)
	defer a.Close()
	since := time.Now()
	tk := exitTask(t, "carol", "same-token", 0, 5)
	defer func() {
		if t.Failed() {
			scancelTokens(since, []*task{tk})
		}
	}()
	copies := make([]*task, 5)
	var l launch
	for i := range copies {
		cp := *tk
		copies[i] = &cp
		l.submit(a, copies[i], time.Minute)
	}
	require.NoError(t, l.wait())
	for _, cp := range copies {
		require.Equal(t, copies[0].id, cp.id, "every call with the token returns the same job")
	}
	tk.id = copies[0].id
	waitScheduled(t, a, []*task{tk}, time.Minute)
	checkFinal(t, waitDone(t, a, []string{tk.id}, 2*time.Minute), []*task{tk})
	requireExactlyOnce(t, a, since, []*task{tk})
}
