package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
	"github.com/ferryhpc/ferry/scheduler/slurm"
	"github.com/ferryhpc/ferry/sshpool"
)

// exclusiveEnv turns on the tests that disturb every other test on the shared cluster.
const exclusiveEnv = "FERRY_FAULTS_EXCLUSIVE"

// exclusive skips t unless FERRY_FAULTS_EXCLUSIVE=1: it stops a shared daemon or floods the shared
// Slurm, so it must run alone.
func exclusive(t *testing.T, what string) {
	t.Helper()
	if os.Getenv(exclusiveEnv) != "1" {
		t.Skipf("%s disturbs every other test on the shared cluster: run it alone with "+
			"%s=1 go test -count=1 -race ./internal/faults/ (the Makefile does, after the rest of the suite)", what, exclusiveEnv)
	}
}

// users are the test cluster's members used by the fault tests: bash, bash with an encrypted
// key, and tcsh.
var users = []string{"alice", "bob", "carol"}

// runID makes this test binary's tokens unique across runs and machines sharing a Slurm.
var runID = strconv.FormatInt(time.Now().UnixNano()%1e12, 36)

var tokenSeq atomic.Int64

// newToken returns a fresh token that is also a valid Slurm job name (no ':'), so a job can be
// found by name in accounting even before Slurm records its comment.
func newToken(t *testing.T, what string) string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("fx-%s-%s-%s-%d", runID, strings.Trim(name, "-"), what, tokenSeq.Add(1))
}

// knownHostsAt rewrites the cluster's pinned host key for host:port (a private sshd or a proxy in
// front of the real one presents the same host key).
func knownHostsAt(t *testing.T, c *testcluster.Cluster, host string, port int) string {
	t.Helper()
	f := strings.Fields(c.KnownHosts)
	require.GreaterOrEqual(t, len(f), 3, "known_hosts %q", c.KnownHosts)
	return fmt.Sprintf("[%s]:%d %s %s", host, port, f[1], f[2])
}

// baseConfig is an agent configuration with one identity "local" on host:port (the cluster's
// sshd, a private one, or a proxy) with credentials for alice, bob (passphrase file) and carol
// (tcsh), a one-second poll and short timeouts. The CLI socket is off.
func baseConfig(t *testing.T, c *testcluster.Cluster, host string, port int) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Agent.StateDir = t.TempDir()
	cfg.Agent.Socket = ""
	cfg.Poll.Interval = config.Duration{Duration: time.Second}
	cfg.Poll.MaxInterval = config.Duration{Duration: 3 * time.Second}
	cfg.Poll.ExitCodeGrace = config.Duration{Duration: 5 * time.Second}
	cfg.Poll.CommandTimeout = config.Duration{Duration: 30 * time.Second}
	cfg.Poll.SubmitTimeout = config.Duration{Duration: 30 * time.Second}
	cfg.Pool.DialTimeout = config.Duration{Duration: 5 * time.Second}
	passFile := filepath.Join(t.TempDir(), "bob.pass")
	require.NoError(t, os.WriteFile(passFile, []byte(c.User(t, "bob").Passphrase+"\n"), 0o600))
	cfg.Identities = []config.Identity{{
		Name: "local", Scheduler: "slurm", Host: host, Port: port, KnownHosts: knownHostsAt(t, c, host, port),
		WorkDir: c.WorkDir, Group: c.Group,
		Credentials: []config.Credential{
			{User: "alice", KeyFile: c.User(t, "alice").Key},
			{User: "bob", KeyFile: c.User(t, "bob").Key, PassphraseFile: passFile},
			{User: "carol", KeyFile: c.User(t, "carol").Key},
		},
	}}
	require.NoError(t, cfg.Validate())
	return cfg
}

// newAgent starts an in-process agent on cfg; factory nil means the real adapters.
func newAgent(t *testing.T, cfg config.Config, factory agent.SchedulerFactory) *agent.Agent {
	t.Helper()
	if factory == nil {
		factory = schedulers.New
	}
	a, err := agent.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), factory)
	require.NoError(t, err)
	return a
}

// task is one task of a fault test and what it must end with.
type task struct {
	req    plugin.SubmitRequest
	status string // final Ferry status expected
	code   int    // exit code expected
	id     string // Ferry id once submitted
}

// newTask returns a task for user running script, named by its token so Slurm's accounting can
// count it by job name.
func newTask(t *testing.T, user, what, script, status string, code int) *task {
	tok := newToken(t, what)
	return &task{
		req:    plugin.SubmitRequest{Identity: "local", User: user, Token: tok, Name: tok, Script: []byte(script)},
		status: status, code: code,
	}
}

// exitTask is a task that sleeps then exits with code.
func exitTask(t *testing.T, user, what string, sleep, code int) *task {
	status := "completed"
	if code != 0 {
		status = "failed"
	}
	script := fmt.Sprintf("exit %d\n", code)
	if sleep > 0 {
		script = fmt.Sprintf("sleep %d\nexit %d\n", sleep, code)
	}
	return newTask(t, user, what, script, status, code)
}

// retryable reports whether a launcher should retry a Submit that failed with err (with the same
// token): the agent said it is unavailable, or the call itself timed out or was cut.
func retryable(err error) bool {
	return errors.Is(err, plugin.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// submitRetrying is what a launcher does: Submit, and on a retryable error submit again with the
// same token, every second, until it succeeds or within passes. Any other error fails the test.
// It returns the job and the errors seen on the way.
func submitRetrying(t *testing.T, svc plugin.Service, req plugin.SubmitRequest, within time.Duration) (plugin.Job, []error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var seen []error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		j, err := svc.Submit(ctx, req)
		cancel()
		if err == nil {
			return j, seen
		}
		seen = append(seen, err)
		if !retryable(err) {
			t.Fatalf("submit %q: a launcher would give up on this error (not retryable): %v", req.Token, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("submit %q still failing after %s: %v", req.Token, within, errors.Join(seen...))
		}
		time.Sleep(time.Second)
	}
}

// waitDone polls the agent's cache until every job is done, and returns them by id.
func waitDone(t *testing.T, svc plugin.Service, ids []string, within time.Duration) map[string]plugin.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		jobs, err := svc.Status(context.Background(), ids)
		require.NoError(t, err)
		out := map[string]plugin.Job{}
		var pending []string
		for _, j := range jobs {
			out[j.ID] = j
			if !j.Done {
				pending = append(pending, fmt.Sprintf("%s(%s status=%q sched=%q reason=%q err=%q)", j.ID, j.Token, j.Status, j.SchedulerID, j.Reason, j.Error))
			}
		}
		if len(out) != len(ids) {
			var missing []string
			for _, id := range ids {
				if _, ok := out[id]; !ok {
					missing = append(missing, id)
				}
			}
			t.Fatalf("the agent lost jobs: %v", missing)
		}
		if len(pending) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs not done within %s: %s", len(pending), within, strings.Join(pending, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkFinal checks every task's final status and exit code.
func checkFinal(t *testing.T, got map[string]plugin.Job, tasks []*task) {
	t.Helper()
	for _, tk := range tasks {
		j := got[tk.id]
		require.Equal(t, tk.status, j.Status, "task %s: %+v", tk.req.Token, j)
		require.NotNil(t, j.ExitCode, "task %s: %+v", tk.req.Token, j)
		require.Equal(t, tk.code, *j.ExitCode, "task %s: %+v", tk.req.Token, j)
	}
}

// ids returns the tasks' Ferry ids.
func ids(tasks []*task) []string {
	out := make([]string, len(tasks))
	for i, tk := range tasks {
		out[i] = tk.id
	}
	return out
}

// slurmCmd runs a Slurm client command locally (the tests run as root on the login node), bounded
// by timeout: a client whose controller is down blocks ~20 s per call.
func slurmCmd(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("%s: %w: %s", name, err, ee.Stderr)
		}
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// slurmJobs returns, for each token, the set of Slurm job ids carrying it: by comment
// "ferry:TOKEN" in squeue (which lists pending, running and recently ended jobs) and by job name
// in accounting since since (sacct records the name at submission, the comment only once the job
// starts). squeue failing (controller down) is ignored; sacct failing is an error.
func slurmJobs(since time.Time, tokens []string) (map[string]map[string]bool, error) {
	want := map[string]bool{}
	for _, tk := range tokens {
		want[tk] = true
	}
	found := map[string]map[string]bool{}
	add := func(id, tok string) {
		if id == "" || !want[tok] {
			return
		}
		if found[tok] == nil {
			found[tok] = map[string]bool{}
		}
		found[tok][id] = true
	}
	if out, err := slurmCmd(30*time.Second, "squeue", "--noheader", "--all", "--states=all", "--format=%i|%k|%j"); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.SplitN(strings.TrimSpace(line), "|", 3)
			if len(f) == 3 {
				add(f[0], strings.TrimPrefix(f[1], "ferry:"))
				add(f[0], f[2])
			}
		}
	}
	out, err := slurmCmd(60*time.Second, "sacct", "--noheader", "--parsable2", "--allocations", "--allusers",
		"--starttime="+since.Add(-time.Minute).Format("2006-01-02T15:04:05"), "--format=JobID,Comment,JobName")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(strings.TrimSpace(line), "|", 3)
		if len(f) == 3 {
			add(f[0], strings.TrimPrefix(f[1], "ferry:"))
			add(f[0], f[2])
		}
	}
	return found, nil
}

// requireExactlyOnce checks that each token has exactly one job in Slurm and exactly one in the
// agent, and that they are the same job. Accounting learns of a job a moment after sbatch
// returns, so a token not yet seen is looked up again for up to a minute; a duplicate fails at
// once.
func requireExactlyOnce(t *testing.T, svc plugin.Service, since time.Time, tasks []*task) {
	t.Helper()
	tokens := make([]string, len(tasks))
	for i, tk := range tasks {
		tokens[i] = tk.req.Token
	}
	var found map[string]map[string]bool
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		found, err = slurmJobs(since, tokens)
		require.NoError(t, err)
		var missing []string
		for _, tk := range tokens {
			require.LessOrEqual(t, len(found[tk]), 1, "token %s was submitted more than once: Slurm jobs %v", tk, keys(found[tk]))
			if len(found[tk]) == 0 {
				missing = append(missing, tk)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Slurm has no job for %d tokens (lost): %v", len(missing), missing)
		}
		time.Sleep(2 * time.Second)
	}
	all, err := svc.ListJobs(context.Background(), plugin.ListRequest{Identity: "local"})
	require.NoError(t, err)
	byToken := map[string][]plugin.Job{}
	for _, j := range all {
		byToken[j.Token] = append(byToken[j.Token], j)
	}
	for _, tk := range tasks {
		js := byToken[tk.req.Token]
		require.Len(t, js, 1, "token %s: the agent has %d jobs: %+v", tk.req.Token, len(js), js)
		require.Equal(t, tk.id, js[0].ID, "token %s", tk.req.Token)
		sid := keys(found[tk.req.Token])[0]
		require.Equal(t, sid, js[0].SchedulerID, "token %s: the agent tracks another job than the one Slurm ran", tk.req.Token)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// scancelTokens cancels, as root, every Slurm job of these tasks that is still active: cleanup
// for a failed test, so it leaves nothing running on the shared cluster.
func scancelTokens(since time.Time, tasks []*task) {
	tokens := make([]string, len(tasks))
	for i, tk := range tasks {
		tokens[i] = tk.req.Token
	}
	found, err := slurmJobs(since, tokens)
	if err != nil {
		return
	}
	var jids []string
	for _, set := range found {
		jids = append(jids, keys(set)...)
	}
	if len(jids) > 0 {
		_, _ = slurmCmd(30*time.Second, "scancel", append([]string{"--"}, jids...)...)
	}
}

// userPool returns an SSH pool as user on the cluster's own sshd (for the test's own remote
// checks, independent of the agent under test).
func userPool(t *testing.T, c *testcluster.Cluster, user string) *sshpool.Pool {
	t.Helper()
	return userPoolOpts(t, c, user, sshpool.Options{})
}

// userPoolOpts is userPool with pool options.
func userPoolOpts(t *testing.T, c *testcluster.Cluster, user string, opts sshpool.Options) *sshpool.Pool {
	t.Helper()
	m := sshpool.NewManager(opts, zerolog.Nop())
	t.Cleanup(m.Close)
	p, err := m.Pool(sshpool.Key{Identity: "faults-check", User: user}, c.Target(t, user))
	require.NoError(t, err)
	return p
}

// remote runs line as user through the cluster's sshd and returns its trimmed stdout; a non-zero
// exit fails the test.
func remote(t *testing.T, c *testcluster.Cluster, user, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := userPool(t, c, user).Exec(ctx, line, nil)
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, "%s: %s", line, res.Stderr)
	return strings.TrimSpace(string(res.Stdout))
}

// faultySlurm is the real Slurm adapter with hooks that inject faults into the commands it
// builds or the scripts it renders. Hooks may be changed while the agent runs.
type faultySlurm struct {
	*slurm.Slurm

	mu     sync.Mutex // guards the hooks
	submit func(spec scheduler.JobSpec, real scheduler.Command) scheduler.Command
	render func(spec scheduler.JobSpec, real []byte) ([]byte, error)
	lookup func(user string, real scheduler.Command) scheduler.Command
}

var (
	_ scheduler.Scheduler   = (*faultySlurm)(nil)
	_ scheduler.Accounting  = (*faultySlurm)(nil)
	_ scheduler.TokenLookup = (*faultySlurm)(nil)
)

func (f *faultySlurm) set(fn func(f *faultySlurm)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultySlurm) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	real := f.Slurm.SubmitCommand(spec)
	f.mu.Lock()
	h := f.submit
	f.mu.Unlock()
	if h == nil {
		return real
	}
	return h(spec, real)
}

func (f *faultySlurm) Render(spec scheduler.JobSpec) ([]byte, error) {
	real, err := f.Slurm.Render(spec)
	f.mu.Lock()
	h := f.render
	f.mu.Unlock()
	if err != nil || h == nil {
		return real, err
	}
	return h(spec, real)
}

func (f *faultySlurm) LookupCommand(user string) scheduler.Command {
	real := f.Slurm.LookupCommand(user)
	f.mu.Lock()
	h := f.lookup
	f.mu.Unlock()
	if h == nil {
		return real
	}
	return h(user, real)
}

// factory returns a SchedulerFactory that hands out f for Slurm identities.
func (f *faultySlurm) factory() agent.SchedulerFactory {
	return func(kind string, opts schedulers.Options) (scheduler.Scheduler, error) {
		if kind != "slurm" {
			return schedulers.New(kind, opts)
		}
		f.mu.Lock()
		if f.Slurm == nil {
			f.Slurm = slurm.New(slurm.Options{SignalLead: opts.SignalLead})
		}
		f.mu.Unlock()
		return f, nil
	}
}

// failingCommand is a remote command that fails (exit 2, naming what in its error message): an
// injected failure of the command it replaces. It runs ls, so that it is not counted as the submit
// command ("sh") in the agent's CommandCounts.
func failingCommand(what string) scheduler.Command {
	return scheduler.Command{Argv: []string{"ls", "/ferry-injected-fault/" + what}}
}
