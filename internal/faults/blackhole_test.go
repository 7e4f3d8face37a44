package faults_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/netproxy"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

// TestNetworkBlackHole puts a proxy between the agent and the login node and makes it a black hole
// (connections stay open, nothing gets through) while jobs run. The dead connections must be
// detected within pool.keepalive_interval + pool.keepalive_timeout; callers without any deadline
// of their own get errors within a bound instead of hanging; statuses go stale, not failed; a
// cancel that could not reach the node does not cancel; once the network heals everything resumes
// and each task ends exactly once with its own exit code; and when the agent is closed, no
// goroutine is left behind.
//
// Not parallel: it counts the process's goroutines.
func TestNetworkBlackHole(t *testing.T) {
	c := testcluster.Require(t)
	const (
		interval    = time.Second
		timeout     = time.Second
		dialTimeout = 3 * time.Second
		// slack absorbs the keepalive ticker's phase and a loaded machine running -race.
		slack = 3 * time.Second
	)
	settle()
	before := runtime.NumGoroutine()

	proxy, err := netproxy.Start(sshdAddr(c), 0)
	require.NoError(t, err)
	cfg := baseConfig(t, c, "127.0.0.1", proxy.Addr().Port)
	cfg.Pool.KeepaliveInterval = config.Duration{Duration: interval}
	cfg.Pool.KeepaliveTimeout = config.Duration{Duration: timeout}
	cfg.Pool.DialTimeout = config.Duration{Duration: dialTimeout}
	cfg.Poll.CommandTimeout = config.Duration{Duration: 5 * time.Second}
	cfg.Poll.SubmitTimeout = config.Duration{Duration: 5 * time.Second}
	a := newAgent(t, cfg, nil)
	closed := false
	defer func() {
		if !closed {
			a.Close()
		}
		proxy.Close()
	}()
	since := time.Now()
	var tasks []*task
	defer func() {
		if t.Failed() {
			scancelTokens(since, tasks)
		}
	}()
	for i, u := range users {
		tk := exitTask(t, u, "hole", 20, i+1)
		j, err := a.Submit(context.Background(), tk.req)
		require.NoError(t, err)
		tk.id = j.ID
		tasks = append(tasks, tk)
	}
	local := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(local, []byte("payload\n"), 0o644))
	stage := plugin.StageRequest{Identity: "local", User: "alice", Files: []plugin.StageFile{{Local: local, Remote: "faults-hole-" + runID + "/in.txt"}}}
	_, err = a.StageIn(context.Background(), stage)
	require.NoError(t, err)
	require.NotZero(t, conns(a), "connections are up before the black hole")

	proxy.Blackhole(true)
	holed := time.Now()
	evicted := make(chan time.Duration, 1)
	go func() {
		for conns(a) > 0 && time.Since(holed) < time.Minute {
			time.Sleep(20 * time.Millisecond)
		}
		evicted <- time.Since(holed)
	}()

	// Callers with no deadline of their own get an error, within a bound.
	bound := interval + timeout + dialTimeout + slack
	start := time.Now()
	_, err = a.StageIn(context.Background(), stage)
	require.Error(t, err, "stage in through a black hole")
	require.Less(t, time.Since(start), bound, "stage in hung: %v", err)
	t.Logf("stage in failed after %s: %v", time.Since(start).Round(time.Millisecond), err)

	start = time.Now()
	res, err := a.Cancel(context.Background(), []string{tasks[0].id})
	require.NoError(t, err)
	require.NotEmpty(t, res[0].Error, "a cancel that cannot reach the node must say so")
	require.Less(t, time.Since(start), bound+dialTimeout, "cancel hung")
	t.Logf("cancel failed after %s: %s", time.Since(start).Round(time.Millisecond), res[0].Error)

	late := exitTask(t, "bob", "late", 0, 0)
	tasks = append(tasks, late)
	start = time.Now()
	_, err = a.Submit(context.Background(), late.req)
	require.Error(t, err)
	require.ErrorIs(t, err, plugin.ErrUnavailable, "retryable")
	require.Less(t, time.Since(start), bound, "submit hung")

	// Detection: every dead connection evicted within keepalive interval + timeout.
	took := <-evicted
	t.Logf("dead connections evicted %s after the black hole", took.Round(time.Millisecond))
	require.Less(t, took, interval+timeout+slack, "dead connections not evicted in time: %+v", a.PoolStats())
	requireStale(t, a, tasks[:len(users)], 15*time.Second)
	time.Sleep(time.Until(holed.Add(8 * time.Second)))

	proxy.Blackhole(false)
	j, _ := submitRetrying(t, a, late.req, time.Minute)
	late.id = j.ID
	got := waitDone(t, a, ids(tasks), 3*time.Minute)
	checkFinal(t, got, tasks)
	requireExactlyOnce(t, a, since, tasks)
	_, err = a.StageIn(context.Background(), stage)
	require.NoError(t, err, "staging works again")
	_ = os.RemoveAll(filepath.Join(c.WorkDir, "faults-hole-"+runID))

	require.NoError(t, a.Close())
	closed = true
	proxy.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		settle()
		n := runtime.NumGoroutine()
		if n <= before+2 {
			t.Logf("goroutines: %d before, %d after", before, n)
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutine leak: %d before, %d after closing the agent:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	}
}

// settle gives exiting goroutines a moment to finish.
func settle() {
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
}

// sshdAddr is the address of the cluster's sshd.
func sshdAddr(c *testcluster.Cluster) string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// conns counts the agent's open SSH connections.
func conns(a *agent.Agent) int {
	n := 0
	for _, st := range a.PoolStats() {
		n += st.Conns
	}
	return n
}
