package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

var (
	buildOnce sync.Once
	binDir    string // where buildFerry builds; removed by TestMain
	ferryBin  string
	buildErr  error
)

// TestMain removes the ferry binary buildFerry built, once every test is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildFerry compiles cmd/ferry once per test binary.
func buildFerry(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ferry-faults-bin-")
		if buildErr == nil {
			ferryBin, buildErr = testcluster.BuildFerry(binDir)
		}
	})
	require.NoError(t, buildErr)
	return ferryBin
}

// agentConfigFile writes a `ferry agent` configuration for the cluster's sshd (CLI socket and
// metrics off, so agents of parallel tests do not collide) and returns its path and state dir.
func agentConfigFile(t *testing.T, c *testcluster.Cluster, extra string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	text := fmt.Sprintf(`[agent]
state_dir = %q
socket = ""
log_level = "info"
[poll]
interval = "1s"
max_interval = "3s"
exit_code_grace = "5s"
%s
`, state, extra) + c.IdentityTOML(t, dir, "alice", "bob", "carol")
	path := filepath.Join(dir, "ferry.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	_, err := config.Load(path)
	require.NoError(t, err)
	return path, state
}

// agentProc is a `ferry agent` subprocess and the launcher's connection to it.
type agentProc struct {
	t      *testing.T
	bin    string
	config string
	state  string
	log    *os.File
	env    []string // added to the agent's environment

	mu     sync.Mutex // guards cmd, client
	cmd    *exec.Cmd
	client *plugin.Client
}

// start starts `ferry agent` and attaches to it through its reattach file.
func (p *agentProc) start() {
	p.t.Helper()
	reattach := filepath.Join(p.state, "agent.json")
	cmd := exec.Command(p.bin, "agent", "--config", p.config)
	cmd.Stderr = p.log
	if p.env != nil {
		cmd.Env = append(os.Environ(), p.env...)
	}
	require.NoError(p.t, cmd.Start())
	var cl *plugin.Client
	require.Eventually(p.t, func() bool {
		var err error
		cl, err = plugin.Attach(reattach, hclog.NewNullLogger())
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "agent did not come up; log %s", p.log.Name())
	p.mu.Lock()
	p.cmd, p.client = cmd, cl
	p.mu.Unlock()
}

// svc returns the launcher's current connection (nil while the agent is down).
func (p *agentProc) svc() plugin.Service {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil
	}
	return p.client.Service()
}

// sigkill kills the agent with SIGKILL: no shutdown code runs.
func (p *agentProc) sigkill() {
	p.mu.Lock()
	cmd, cl := p.cmd, p.client
	p.cmd, p.client = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if cl != nil {
		cl.Close()
	}
}

// stop stops the agent cleanly (SIGTERM).
func (p *agentProc) stop() {
	p.mu.Lock()
	cmd, cl := p.cmd, p.client
	p.cmd, p.client = nil, nil
	p.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}

// relaunch submits tk through whatever agent is up, retrying retryable errors (and the agent
// being down) with the same token until it succeeds, as a launcher that reattaches would.
func relaunch(p *agentProc, tk *task, within time.Duration, errs chan<- error) {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		svc := p.svc()
		if svc == nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		j, err := svc.Submit(ctx, tk.req)
		cancel()
		if err == nil {
			tk.id = j.ID
			errs <- nil
			return
		}
		last = err
		if !retryable(err) {
			errs <- fmt.Errorf("submit %s: not retryable: %w", tk.req.Token, err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	errs <- fmt.Errorf("submit %s: still failing after %s: %w", tk.req.Token, within, last)
}

// TestAgentSIGKILLedMidRun runs `ferry agent` as a subprocess, SIGKILLs it while jobs run and
// while a launcher's submits are in flight, keeps it down for 30 s (long enough for some jobs to
// end and leave squeue, so only accounting knows them), and starts it again on the same state
// dir. The restarted agent re-attaches to every job from its store; jobs that ended meanwhile get
// their final states and exit codes; the launcher's retried submits return the job the first
// attempt created or submit it once; nothing is lost or duplicated.
func TestAgentSIGKILLedMidRun(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfgPath, state := agentConfigFile(t, c, "")
	logf, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	require.NoError(t, err)
	defer logf.Close()
	p := &agentProc{t: t, bin: buildFerry(t), config: cfgPath, state: state, log: logf}
	p.start()
	defer p.stop()
	since := time.Now()
	var all []*task
	defer func() {
		if t.Failed() {
			scancelTokens(since, all)
			b, _ := os.ReadFile(logf.Name())
			t.Logf("agent log:\n%s", tail(b, 60))
		}
	}()

	// Jobs that end while the agent is down, and jobs running across the restart.
	var before []*task
	for i, u := range users {
		before = append(before, exitTask(t, u, "ends-while-down", 3, i+1), exitTask(t, u, "across", 45, (i+2)%4))
	}
	all = append(all, before...)
	for _, tk := range before {
		j, err := p.svc().Submit(context.Background(), tk.req)
		require.NoError(t, err)
		tk.id = j.ID
	}
	// A burst of submits in flight when the agent dies.
	var burst []*task
	for i := 0; i < 12; i++ {
		burst = append(burst, exitTask(t, users[i%3], "burst", 2, i%5))
	}
	all = append(all, burst...)
	errs := make(chan error, len(burst))
	for _, tk := range burst {
		go relaunch(p, tk, 3*time.Minute, errs)
	}
	time.Sleep(700 * time.Millisecond)
	p.sigkill()
	down := time.Now()
	time.Sleep(30 * time.Second)
	p.start()
	t.Logf("agent restarted after %s", time.Since(down).Round(time.Millisecond))
	for range burst {
		require.NoError(t, <-errs)
	}
	svc := p.svc()
	waitScheduled(t, svc, all, time.Minute)
	got := waitDone(t, svc, ids(all), 3*time.Minute)
	checkFinal(t, got, all)
	requireExactlyOnce(t, svc, since, all)
}

// TestRestartAfterInterruptedSubmitLeftQueue is the worst case of an agent dying mid-submit: sbatch
// accepted the job, the agent died before hearing its id, and it restarts only after the job has
// ended and left squeue (MinJobAge). The restarted agent must settle the interrupted submit by
// its token without submitting the task a second time, and report the job's real end.
//
// The state at the moment of death is taken by copying the agent's state dir while the submit
// waits for sbatch's reply (the submit command holds it back), which is what SIGKILL would leave.
func TestRestartAfterInterruptedSubmitLeftQueue(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	f := &faultySlurm{submit: lostReply}
	cfg := baseConfig(t, c, c.Host, c.Port)
	cfg.Poll.SubmitTimeout = config.Duration{Duration: time.Minute}
	a := newAgent(t, cfg, f.factory())
	since := time.Now()
	tk := exitTask(t, "alice", "interrupted", 0, 3)
	defer func() {
		if t.Failed() {
			scancelTokens(since, []*task{tk})
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.Submit(ctx, tk.req)
	}()
	var sid string
	require.Eventually(t, func() bool {
		found, err := slurmJobs(since, []string{tk.req.Token})
		if err != nil || len(found[tk.req.Token]) == 0 {
			return false
		}
		sid = keys(found[tk.req.Token])[0]
		return true
	}, time.Minute, 200*time.Millisecond, "sbatch never ran")
	snap := t.TempDir()
	copyDir(t, cfg.Agent.StateDir, snap)
	cancel()
	<-done
	require.NoError(t, a.Close())

	// Wait until squeue has forgotten the job: only accounting knows it now.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := slurmCmd(30*time.Second, "squeue", "--noheader", "--states=all", "--jobs="+sid, "--format=%i")
		if strings.TrimSpace(string(out)) == "" {
			break
		}
		require.True(t, time.Now().Before(deadline), "job %s still in squeue", sid)
		time.Sleep(2 * time.Second)
	}
	cfg.Agent.StateDir = snap
	b := newAgent(t, cfg, nil)
	defer b.Close()
	jobs, err := b.ListJobs(context.Background(), plugin.ListRequest{})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	tk.id = jobs[0].ID
	waitScheduled(t, b, []*task{tk}, time.Minute)
	got := waitDone(t, b, []string{tk.id}, 2*time.Minute)
	requireExactlyOnce(t, b, since, []*task{tk})
	checkFinal(t, got, []*task{tk})
}

// copyDir copies the regular files of src into dst (the agent's state dir is flat).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		require.NoError(t, err)
		_, err = io.Copy(out, in)
		require.NoError(t, err)
		in.Close()
		require.NoError(t, out.Close())
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
