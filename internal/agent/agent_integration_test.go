package agent_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
	"github.com/ferryhpc/ferry/sshpool"
)

// testConfig builds an agent configuration for the test cluster: identity "local" with alice,
// bob (passphrase from a file), carol (tcsh) and "mallory" (a real user whose credential holds
// someone else's key); identity "badhostkey" pinning the wrong host key; identity "down" on a
// closed port.
func testConfig(t *testing.T, c *testcluster.Cluster, stateDir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Agent.StateDir = stateDir
	cfg.Poll.Interval = config.Duration{Duration: time.Second}
	cfg.Poll.ExitCodeGrace = config.Duration{Duration: 5 * time.Second}
	cfg.Pool.DialTimeout = config.Duration{Duration: 20 * time.Second} // generous: a loaded 2-core machine
	passFile := filepath.Join(t.TempDir(), "bob.pass")
	require.NoError(t, os.WriteFile(passFile, []byte(c.User(t, "bob").Passphrase+"\n"), 0o600))
	creds := []config.Credential{
		{User: "alice", KeyFile: c.User(t, "alice").Key},
		{User: "bob", KeyFile: c.User(t, "bob").Key, PassphraseFile: passFile},
		{User: "carol", KeyFile: c.User(t, "carol").Key},
		{User: "dave", KeyFile: c.User(t, "alice").Key}, // wrong key for dave
	}
	base := config.Identity{Name: "local", Scheduler: "slurm", Host: c.Host, Port: c.Port, KnownHosts: c.KnownHosts,
		WorkDir: c.WorkDir, Group: c.Group, Credentials: creds}
	bad := base
	bad.Name = "badhostkey"
	bad.KnownHosts = fmt.Sprintf("[%s]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9CD+DAwJHkhFqPdSkZjeh51XaBF8CiHVGcg3+5lpXX", c.Host, c.Port)
	down := base
	down.Name = "down"
	down.Port = 1
	cfg.Identities = []config.Identity{base, bad, down}
	require.NoError(t, cfg.Validate())
	return cfg
}

func newAgent(t *testing.T, cfg config.Config) *agent.Agent {
	t.Helper()
	a, err := agent.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), schedulers.New)
	require.NoError(t, err)
	return a
}

// wait polls the agent's cache (no remote call) until every job is done or the deadline passes.
func wait(t *testing.T, a plugin.Service, ids []string, within time.Duration) map[string]plugin.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		jobs, err := a.Status(context.Background(), ids)
		require.NoError(t, err)
		out := map[string]plugin.Job{}
		done := 0
		for _, j := range jobs {
			out[j.ID] = j
			if j.Done {
				done++
			}
		}
		if done == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs not finished within %s: %+v", within, jobs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func submit(t *testing.T, a plugin.Service, user, name, script string, res plugin.Resources) plugin.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := a.Submit(ctx, plugin.SubmitRequest{Identity: "local", User: user, Name: name, Script: []byte(script), Resources: res,
		Token: fmt.Sprintf("%s-%s-%d", user, name, time.Now().UnixNano())})
	require.NoError(t, err)
	require.NotEmpty(t, j.SchedulerID)
	return j
}

func remote(t *testing.T, c *testcluster.Cluster, user, line string) string {
	t.Helper()
	m := sshpool.NewManager(sshpool.Options{}, zerolog.Nop())
	defer m.Close()
	p, err := m.Pool(sshpool.Key{Identity: "t", User: user}, c.Target(t, user))
	require.NoError(t, err)
	res, err := p.Exec(context.Background(), line, nil)
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, "%s: %s", line, res.Stderr)
	return strings.TrimSpace(string(res.Stdout))
}

const whoScript = `id -un > who.txt
id -Gn | tr ' ' '\n' | grep -qx ferryshare && echo in-shared-group >> who.txt
echo "made by $(id -un)" > product.txt
`

// TestJobsRunAsEachUser proves the core promise: each user's job runs under their own uid (the
// scheduler's user column and id inside the job), and its files are owned by that user with the
// shared group, group-writable, so another member can modify them. carol's login shell is tcsh.
func TestJobsRunAsEachUser(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, testConfig(t, c, t.TempDir()))
	defer a.Close()
	users := []string{"alice", "bob", "carol"}
	var ids []string
	jobs := map[string]plugin.Job{}
	for _, u := range users {
		j := submit(t, a, u, "who-"+u, whoScript, plugin.Resources{})
		ids = append(ids, j.ID)
		jobs[u] = j
	}
	done := wait(t, a, ids, 2*time.Minute)
	for _, u := range users {
		j := done[jobs[u].ID]
		require.Equal(t, "completed", j.Status, "%s: %+v", u, j)
		require.NotNil(t, j.ExitCode)
		require.Equal(t, 0, *j.ExitCode)
		require.Equal(t, u, j.Owner, "scheduler's user column")
		require.Equal(t, u+"\nin-shared-group", remote(t, c, u, "cat "+j.Dir+"/who.txt"), "id inside the job")
		require.Equal(t, u+":"+c.Group+" 664", remote(t, c, u, "stat -c '%U:%G %a' "+j.Dir+"/product.txt"))
		require.Equal(t, u+":"+c.Group, remote(t, c, u, "stat -c '%U:%G' "+j.Dir+"/.command.sh"))
	}
	// Another member can modify alice's product.
	remote(t, c, "bob", "echo edited-by-bob >> "+done[jobs["alice"].ID].Dir+"/product.txt")
	require.Contains(t, remote(t, c, "alice", "cat "+done[jobs["alice"].ID].Dir+"/product.txt"), "edited-by-bob")
}

func TestExitCodes(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfg := testConfig(t, c, t.TempDir())
	// The time-limit job's 140 comes from Slurm's USR2 warning or, when a busy slurmctld sends it
	// late or not at all (CI saw both), from the wrapper's own "TERM at the limit" check.
	a := newAgent(t, cfg)
	defer a.Close()
	ok := submit(t, a, "alice", "ok", "exit 0\n", plugin.Resources{})
	bad := submit(t, a, "carol", "bad", "exit 3\n", plugin.Resources{})
	long := submit(t, a, "bob", "cancel-me", "sleep 300\n", plugin.Resources{})
	limit := submit(t, a, "alice", "time-limit", "sleep 600\n", plugin.Resources{Time: time.Minute})
	// Cancel once it runs, so the wrapper's TERM handler records the code.
	deadline := time.Now().Add(time.Minute)
	for {
		js, err := a.Status(context.Background(), []string{long.ID})
		require.NoError(t, err)
		if js[0].Status == "running" {
			break
		}
		require.True(t, time.Now().Before(deadline), "job never started: %+v", js[0])
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the wrapper reach its wait
	res, err := a.Cancel(context.Background(), []string{long.ID})
	require.NoError(t, err)
	require.Equal(t, "", res[0].Error)

	got := wait(t, a, []string{ok.ID, bad.ID, long.ID, limit.ID}, 3*time.Minute)
	check := func(j plugin.Job, status string, code int) {
		t.Helper()
		g := got[j.ID]
		require.Equal(t, status, g.Status, "%+v", g)
		require.NotNil(t, g.ExitCode, "%+v", g)
		require.Equal(t, code, *g.ExitCode, "%+v", g)
	}
	check(ok, "completed", 0)
	check(bad, "failed", 3)
	check(long, "cancelled", 143)
	check(limit, "timeout", 140)
	// Cancelling a finished job is not an error.
	res, err = a.Cancel(context.Background(), []string{ok.ID})
	require.NoError(t, err)
	require.Equal(t, "", res[0].Error)
}

// TestRestartAndMinJobAge stops the agent while jobs run, waits until a finished job has left
// squeue (MinJobAge), restarts the agent on the same store and checks every job gets its final
// state and exit code.
func TestRestartAndMinJobAge(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	state := t.TempDir()
	cfg := testConfig(t, c, state)
	a := newAgent(t, cfg)
	quick := submit(t, a, "alice", "quick", "exit 5\n", plugin.Resources{})
	slow := submit(t, a, "bob", "slow", "sleep 45; exit 0\n", plugin.Resources{})
	require.NoError(t, a.Close())

	// Wait until squeue no longer knows the quick job (MinJobAge plus the purge period).
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out := remote(t, c, "alice", "squeue -h -t all -j "+quick.SchedulerID+" -o %i 2>/dev/null || true")
		if out == "" {
			break
		}
		require.True(t, time.Now().Before(deadline), "job %s still in squeue", quick.SchedulerID)
		time.Sleep(2 * time.Second)
	}
	b := newAgent(t, cfg)
	defer b.Close()
	got := wait(t, b, []string{quick.ID, slow.ID}, 3*time.Minute)
	require.Equal(t, "failed", got[quick.ID].Status)
	require.Equal(t, 5, *got[quick.ID].ExitCode)
	require.Equal(t, "completed", got[slow.ID].Status)
	require.Equal(t, 0, *got[slow.ID].ExitCode)
	counts := b.CommandCounts()[sshpool.Key{Identity: "local", User: "alice"}]
	require.GreaterOrEqual(t, counts["sacct"], 1, "the quick job was only known to accounting")
}

// TestOneStatusQueryPerUserPerInterval counts the remote commands: whatever the number of jobs,
// each user costs one squeue per poll interval.
func TestOneStatusQueryPerUserPerInterval(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfg := testConfig(t, c, t.TempDir())
	cfg.Poll.Interval = config.Duration{Duration: 2 * time.Second}
	a := newAgent(t, cfg)
	defer a.Close()
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, u := range []string{"alice", "bob"} {
		for i := 0; i < 12; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j := submit(t, a, u, fmt.Sprintf("n%d", i), "sleep 8\n", plugin.Resources{})
				mu.Lock()
				ids = append(ids, j.ID)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	wait(t, a, ids, 3*time.Minute)
	elapsed := time.Since(start)
	for _, u := range []string{"alice", "bob"} {
		n := a.CommandCounts()[sshpool.Key{Identity: "local", User: u}]
		maxPolls := int(elapsed/(2*time.Second)) + 1
		require.LessOrEqual(t, n["squeue"], maxPolls, "%s: %d squeue in %s", u, n["squeue"], elapsed)
		require.GreaterOrEqual(t, n["squeue"], 3)
		require.Equal(t, 12, n["sbatch"])
	}
	// The same counts reach Prometheus, with latencies and pool gauges.
	rec := httptest.NewRecorder()
	a.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	// The 12 submits went out batched in a few /bin/sh execs.
	require.Contains(t, body, fmt.Sprintf(`ferry_scheduler_commands_total{identity="local",outcome="ok",program="/bin/sh",user="alice"} %d`,
		a.CommandCounts()[sshpool.Key{Identity: "local", User: "alice"}]["/bin/sh"]))
	require.Contains(t, body, `ferry_scheduler_commands_total{identity="local",outcome="ok",program="squeue",user="alice"}`)
	require.Contains(t, body, `ferry_command_duration_seconds_bucket{program="squeue"`)
	require.Contains(t, body, `ferry_pool_connections{identity="local",user="bob"}`)
	require.Contains(t, body, `ferry_jobs{status="completed"} 24`)
	require.Greater(t, a.CommandsLastMinute()[sshpool.Key{Identity: "local", User: "alice"}], 2)

	// Nothing more is run once no job is active.
	before := a.CommandCounts()
	time.Sleep(5 * time.Second)
	require.Equal(t, before, a.CommandCounts())
}

func TestBadInputKeepsServingOthers(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, testConfig(t, c, t.TempDir()))
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := func(identity, user string) plugin.SubmitRequest {
		return plugin.SubmitRequest{Identity: identity, User: user, Name: "x", Script: []byte("true\n")}
	}
	cases := []struct {
		name string
		req  plugin.SubmitRequest
		kind error
		msg  []string
	}{
		{"wrong key", req("local", "dave"), plugin.ErrUnavailable, []string{`identity "local" user "dave"`, "authentication refused"}},
		{"host key mismatch", req("badhostkey", "alice"), plugin.ErrUnavailable, []string{`identity "badhostkey" user "alice"`, "host key mismatch"}},
		{"unreachable", req("down", "alice"), plugin.ErrUnavailable, []string{`identity "down" user "alice"`, "unreachable"}},
		{"unknown identity", req("nosuch", "alice"), plugin.ErrNotFound, []string{`identity "nosuch"`}},
		{"missing credentials", req("local", "erin"), plugin.ErrFailedPrecondition, []string{`user "erin"`, "missing credentials"}},
		{"invalid partition", func() plugin.SubmitRequest {
			r := req("local", "alice")
			r.Resources.Queue = "nosuch"
			return r
		}(), plugin.ErrInvalidArgument, []string{`"alice"`, `identity "local"`, "Invalid partition name specified"}},
		{"path outside work dir", func() plugin.SubmitRequest {
			r := req("local", "alice")
			r.Dir = "../../etc"
			return r
		}(), plugin.ErrInvalidArgument, []string{`identity "local" user "alice"`, "outside the work directory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Submit(ctx, tc.req)
			require.ErrorIs(t, err, tc.kind)
			for _, m := range tc.msg {
				require.Contains(t, err.Error(), m)
			}
		})
	}
	// The agent still serves everyone else.
	j := submit(t, a, "alice", "after-errors", "exit 0\n", plugin.Resources{})
	got := wait(t, a, []string{j.ID}, time.Minute)
	require.Equal(t, 0, *got[j.ID].ExitCode)
}

func TestSubmitTokenIsIdempotent(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, testConfig(t, c, t.TempDir()))
	defer a.Close()
	r := plugin.SubmitRequest{Identity: "local", User: "alice", Name: "once", Script: []byte("exit 0\n"), Token: fmt.Sprintf("tok-%d", time.Now().UnixNano())}
	j1, err := a.Submit(context.Background(), r)
	require.NoError(t, err)
	j2, err := a.Submit(context.Background(), r)
	require.NoError(t, err)
	require.Equal(t, j1.ID, j2.ID)
	require.Equal(t, j1.SchedulerID, j2.SchedulerID)
	require.Equal(t, 1, a.CommandCounts()[sshpool.Key{Identity: "local", User: "alice"}]["sbatch"])
}

// TestSubmitBurstIsBatched: a burst of one user's submits reaches the login node in a few remote
// execs, each job keeping its own id and outcome.
func TestSubmitBurstIsBatched(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfg := testConfig(t, c, t.TempDir())
	cfg.Poll.SubmitBatchWindow = config.Duration{Duration: 300 * time.Millisecond}
	a := newAgent(t, cfg)
	defer a.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := map[string]int{}
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := submit(t, a, "carol", fmt.Sprintf("burst%d", i), fmt.Sprintf("exit %d\n", i), plugin.Resources{})
			mu.Lock()
			jobs[j.ID] = i
			mu.Unlock()
		}()
	}
	wg.Wait()
	var ids []string
	sched := map[string]bool{}
	for id := range jobs {
		ids = append(ids, id)
	}
	got := wait(t, a, ids, 2*time.Minute)
	for id, want := range jobs {
		require.Equal(t, want, *got[id].ExitCode, "job %s", id)
		require.False(t, sched[got[id].SchedulerID], "duplicate scheduler id %s", got[id].SchedulerID)
		sched[got[id].SchedulerID] = true
	}
	n := a.CommandCounts()[sshpool.Key{Identity: "local", User: "carol"}]
	require.Equal(t, 10, n["sbatch"])
	require.LessOrEqual(t, n["/bin/sh"], 4, "10 submits should need a few batches: %v", n)
	require.GreaterOrEqual(t, n["/bin/sh"], 1)
}
