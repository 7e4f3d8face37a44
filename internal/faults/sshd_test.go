package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// privateSSHD is an sshd of the test's own, on a free port, with the cluster's configuration
// (same host key, users and limits), which the test may kill and restart without disturbing any
// other test.
type privateSSHD struct {
	t    *testing.T
	port int
	conf string
	log  string

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

// startSSHD writes a copy of the cluster's sshd_config for a free port and starts sshd on it. It
// is killed when the test ends.
func startSSHD(t *testing.T, c *testcluster.Cluster) *privateSSHD {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base, err := os.ReadFile(c.SSHDConfig)
	require.NoError(t, err)
	var conf []string
	for _, line := range strings.Split(string(base), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "Port" || f[0] == "PidFile") {
			continue
		}
		conf = append(conf, line)
	}
	conf = append(conf, fmt.Sprintf("Port %d", port), "PidFile "+filepath.Join(dir, "sshd.pid"))
	s := &privateSSHD{t: t, port: port, conf: filepath.Join(dir, "sshd_config"), log: filepath.Join(dir, "sshd.log")}
	require.NoError(t, os.WriteFile(s.conf, []byte(strings.Join(conf, "\n")+"\n"), 0o644))
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start starts sshd in the foreground (-D) and waits until it accepts connections.
func (s *privateSSHD) start() {
	s.t.Helper()
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-f", s.conf, "-E", s.log)
	require.NoError(s.t, cmd.Start())
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	require.Eventually(s.t, func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "private sshd on port %d did not start", s.port)
}

// kill SIGKILLs sshd and every process it started (the per-connection sshd processes and the
// users' commands under them), as a crash or reboot of the login node's sshd would, and waits
// until the port refuses connections.
func (s *privateSSHD) kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	for _, pid := range append(descendants(cmd.Process.Pid), cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// descendants returns the pids of every process below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Field 4 is the parent pid; field 2 (the command in parentheses) may hold spaces.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, ch := range children[p] {
			out = append(out, ch)
			queue = append(queue, ch)
		}
	}
	return out
}

// slowReply makes sbatch's reply arrive a second after the job was accepted, so that a fault
// landing mid-submit is likely to hit the window where the job exists but the agent has not heard.
func slowReply(_ scheduler.JobSpec, real scheduler.Command) scheduler.Command {
	return scheduler.Command{Argv: []string{"sh", "-c", `out=$("$@") || exit $?; sleep 1; echo "$out"`, "sh",
		real.Argv[0], real.Argv[1], real.Argv[2]}, Dir: real.Dir}
}

// launch runs submitRetrying's loop for each task in its own goroutine, the way a launcher
// submits a workflow's tasks at once; wait returns the first error.
type launch struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
	seen int // retryable errors on the way
}

// submit submits tk in its own goroutine (see do).
func (l *launch) submit(svc plugin.Service, tk *task, within time.Duration) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.do(svc, tk, within)
	}()
}

// do submits tk, retrying retryable errors with the same token every second for up to within, and
// records the outcome.
func (l *launch) do(svc plugin.Service, tk *task, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		j, err := svc.Submit(ctx, tk.req)
		cancel()
		l.mu.Lock()
		switch {
		case err == nil:
			tk.id = j.ID
			l.mu.Unlock()
			return
		case !retryable(err):
			l.errs = append(l.errs, fmt.Errorf("submit %s: not retryable: %w", tk.req.Token, err))
			l.mu.Unlock()
			return
		case time.Now().After(deadline):
			l.errs = append(l.errs, fmt.Errorf("submit %s: still failing after %s: %w", tk.req.Token, within, err))
			l.mu.Unlock()
			return
		}
		l.seen++
		l.mu.Unlock()
		time.Sleep(time.Second)
	}
}

func (l *launch) wait() error {
	l.wg.Wait()
	return errors.Join(l.errs...)
}

// waitScheduled waits until every task's job has a scheduler id: a job returned without one must
// get it (its submit settles), or it would never run or never be tracked.
func waitScheduled(t *testing.T, svc plugin.Service, tasks []*task, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		js, err := svc.Status(context.Background(), ids(tasks))
		require.NoError(t, err)
		var unsettled []string
		for _, j := range js {
			if j.SchedulerID == "" {
				unsettled = append(unsettled, fmt.Sprintf("%s(status=%q err=%q)", j.Token, j.Status, j.Error))
			}
		}
		require.Len(t, js, len(tasks), "the agent lost jobs")
		if len(unsettled) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs were returned to the launcher but never submitted nor adopted, and nothing will settle them (lost): %v",
				len(unsettled), unsettled)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestSSHDKilledMidRun kills the login node's sshd (a private one: every sshd process and the
// commands under it) while jobs run and while a workflow's submits are in flight, keeps it down
// for 10 s, then starts it again. Submits made during the outage fail with a retryable error; the
// launcher's retries with the same tokens succeed once sshd is back; the agent's pools reconnect
// and its statuses go stale but never failed meanwhile. Every task runs exactly once and ends
// with its own state and exit code.
func TestSSHDKilledMidRun(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	sshd := startSSHD(t, c)
	f := &faultySlurm{submit: slowReply}
	cfg := baseConfig(t, c, "127.0.0.1", sshd.port)
	cfg.Pool.KeepaliveInterval = config.Duration{Duration: 2 * time.Second}
	cfg.Pool.KeepaliveTimeout = config.Duration{Duration: 2 * time.Second}
	cfg.Pool.DialTimeout = config.Duration{Duration: 3 * time.Second}
	a := newAgent(t, cfg, f.factory())
	defer a.Close()
	since := time.Now()
	var all []*task
	defer func() {
		if t.Failed() {
			scancelTokens(since, all)
		}
	}()

	// Jobs running across the outage.
	var running []*task
	for i, u := range []string{"alice", "bob", "carol", "alice", "bob", "carol"} {
		running = append(running, exitTask(t, u, "across", 25, i%3))
	}
	all = append(all, running...)
	for _, tk := range running {
		j, err := a.Submit(context.Background(), tk.req)
		require.NoError(t, err)
		tk.id = j.ID
	}

	// A workflow's burst of submits, killed in the middle.
	var burst []*task
	for i := 0; i < 12; i++ {
		burst = append(burst, exitTask(t, users[i%3], "burst", 2, (i+1)%4))
	}
	all = append(all, burst...)
	var l launch
	before := submitsRun(a)
	for _, tk := range burst {
		l.submit(a, tk, 3*time.Minute)
	}
	require.Eventually(t, func() bool { return submitsRun(a)-before >= 4 }, time.Minute, 20*time.Millisecond)
	sshd.kill()
	down := time.Now()
	t.Logf("sshd killed with %d of the burst's submit commands started", submitsRun(a)-before)

	// During the outage: a submit fails at once with a retryable error...
	extra := exitTask(t, "carol", "during", 0, 5)
	all = append(all, extra)
	start := time.Now()
	_, err := a.Submit(context.Background(), extra.req)
	require.Error(t, err)
	require.ErrorIs(t, err, plugin.ErrUnavailable, "a login node that is down is a retryable condition")
	require.Less(t, time.Since(start), 15*time.Second, "bounded by the dial timeout")
	// ... and the running jobs' statuses go stale, never failed.
	requireStale(t, a, running, 10*time.Second)
	time.Sleep(time.Until(down.Add(10 * time.Second)))
	sshd.start()
	t.Logf("sshd restarted after %s", time.Since(down).Round(time.Millisecond))

	l.submit(a, extra, 3*time.Minute)
	require.NoError(t, l.wait())
	t.Logf("%d retryable submit errors during the outage", l.seen)
	waitScheduled(t, a, all, time.Minute)
	got := waitDone(t, a, ids(all), 4*time.Minute)
	checkFinal(t, got, all)
	requireExactlyOnce(t, a, since, all)
	for _, st := range a.PoolStats() {
		require.GreaterOrEqual(t, st.Dials, int64(2), "%s reconnected", st.Key)
	}
}

// submitsRun counts the submit commands the agent has started, all users together.
func submitsRun(a interface {
	CommandCounts() map[sshpool.Key]map[string]int
}) int {
	n := 0
	for _, m := range a.CommandCounts() {
		n += m["sh"] + m["sbatch"]
	}
	return n
}

// requireStale waits until every task's job carries an error (its state is stale) and checks that
// none ended or failed meanwhile: a state that cannot be read is never a failure.
func requireStale(t *testing.T, svc plugin.Service, tasks []*task, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		js, err := svc.Status(context.Background(), ids(tasks))
		require.NoError(t, err)
		stale := 0
		for _, j := range js {
			require.False(t, j.Done, "a job must not end while its state cannot be read: %+v", j)
			require.NotEqual(t, "failed", j.Status, "%+v", j)
			if j.Error != "" {
				stale++
			}
		}
		if stale == len(tasks) {
			return
		}
		require.True(t, time.Now().Before(deadline), "statuses did not go stale within %s: %+v", within, js)
		time.Sleep(200 * time.Millisecond)
	}
}
