package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/lease"
	"github.com/ferryhpc/ferry/internal/netproxy"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
)

// Two agents on one PostgreSQL database and the local cluster: the identity's work is leased to
// one of them, and the other takes it over when the holder dies or loses the database.

const (
	failoverTTL   = 10 * time.Second
	failoverRenew = 2 * time.Second
)

func newKEK(t *testing.T) string {
	var b [32]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b[:])
}

// sharedStoreTOML is the [store] section of an agent named name on dsn (after [poll] keys).
func sharedStoreTOML(dsn, name string) string {
	return fmt.Sprintf(`submit_timeout = "15s"
[store]
backend = "postgres"
dsn = %q
[store.lease]
name = %q
address = "%s.ferry.test:7443"
ttl = %q
renew = %q
`, dsn, name, name, failoverTTL.String(), failoverRenew.String())
}

// holderOf returns the agent holding identity's lease now ("" if none).
func holderOf(t *testing.T, pool *pgxpool.Pool, identity string) string {
	rows, err := lease.All(context.Background(), pool)
	require.NoError(t, err)
	for _, h := range rows {
		if h.Identity == identity && time.Until(h.Expires) > 0 {
			return h.Name
		}
	}
	return ""
}

// TestFailoverHolderSIGKILLed: 3 users x 100 jobs submitted through a launcher that knows both
// agents; the agent holding the identity is SIGKILLed while submits are in flight. The other takes
// the identity over within 30 s, resumes polling from the store, settles the submits the dead
// agent left in flight by their tokens, and reports every exit code: no job lost, none run twice
// (counted at Slurm). Then both agents are killed and started again at once, with jobs running:
// one of them takes the identity and finishes them.
func TestFailoverHolderSIGKILLed(t *testing.T) {
	c := testcluster.Require(t)
	dsn := testcluster.PostgresDB(t)
	t.Parallel()
	bin := buildFerry(t)
	kek := newKEK(t)
	db, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer db.Close()

	mk := func(name string) *agentProc {
		cfg, state := agentConfigFile(t, c, sharedStoreTOML(dsn, name))
		logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		require.NoError(t, err)
		t.Cleanup(func() { logf.Close() })
		return &agentProc{t: t, bin: bin, config: cfg, state: state, log: logf, env: []string{"FERRY_KEK=" + kek}}
	}
	a, b := mk("a"), mk("b")
	a.start()
	defer a.stop()
	require.Eventually(t, func() bool { return holderOf(t, db, "local") == "a" }, 30*time.Second, 100*time.Millisecond)
	b.start()
	defer b.stop()

	since := time.Now()
	var all []*task
	defer func() {
		if t.Failed() {
			scancelTokens(since, all)
			for _, p := range []*agentProc{a, b} {
				out, _ := os.ReadFile(p.log.Name())
				t.Logf("agent log %s:\n%s", p.log.Name(), tail(out, 40))
			}
		}
	}()
	for i := 0; i < 100; i++ {
		for k, u := range users {
			all = append(all, exitTask(t, u, fmt.Sprintf("fo%d", i), 1+(i+k)%3, (i+k)%4))
		}
	}
	// The launcher knows both agents (plugin.AttachAny), as a workflow launcher configured with
	// a list of agent addresses does.
	l, err := plugin.AttachAny([]string{filepath.Join(a.state, "agent.json"), filepath.Join(b.state, "agent.json")}, nil)
	require.NoError(t, err)
	defer l.Close()
	submit := func(tk *task, within time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		j, err := l.Submit(ctx, tk.req)
		if err == nil {
			tk.id = j.ID
		}
		return err
	}
	var submitted atomic.Int32
	work := make(chan *task)
	errs := make(chan error, len(all))
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tk := range work {
				err := submit(tk, 4*time.Minute)
				submitted.Add(1)
				errs <- err
			}
		}()
	}
	go func() {
		for _, tk := range all {
			work <- tk
		}
		close(work)
	}()
	require.Eventually(t, func() bool { return submitted.Load() >= int32(len(all)/2) }, 4*time.Minute, 20*time.Millisecond)
	a.sigkill()
	killed := time.Now()
	atKill := submitted.Load()
	require.Eventually(t, func() bool { return holderOf(t, db, "local") == "b" }, 45*time.Second, 50*time.Millisecond, "b never took the identity over")
	takeover := time.Since(killed)
	t.Logf("takeover: agent b holds the identity %s after agent a was SIGKILLed (%d of %d submits done then; lease ttl %s, renew %s)",
		takeover.Round(100*time.Millisecond), atKill, len(all), failoverTTL, failoverRenew)
	require.LessOrEqual(t, takeover, 30*time.Second, "takeover within 30 s")

	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	svc := plugin.Service(l)
	waitScheduled(t, svc, all, 2*time.Minute)
	got := waitDone(t, svc, ids(all), 6*time.Minute)
	checkFinal(t, got, all)
	requireExactlyOnce(t, svc, since, all)
	t.Logf("%d jobs: every one ran once at Slurm and reported its exit code, through agent b", len(all))
	if out, err := os.ReadFile(b.log.Name()); err == nil {
		if m := regexp.MustCompile(`"jobs":(\d+),"active":(\d+),"unsettled":(\d+)`).FindSubmatch(out); m != nil {
			t.Logf("agent b inherited %s jobs: %s active, %s submits in flight when a died (settled by token)", m[1], m[2], m[3])
		}
	}

	// Both agents die and start again at once while jobs run.
	var more []*task
	for i := 0; i < 10; i++ {
		more = append(more, exitTask(t, users[i%3], fmt.Sprintf("both%d", i), 20, i%4))
	}
	all = append(all, more...)
	for _, tk := range more {
		require.NoError(t, submit(tk, time.Minute))
	}
	b.sigkill()
	var sw sync.WaitGroup
	for _, p := range []*agentProc{a, b} {
		sw.Add(1)
		go func() { defer sw.Done(); p.start() }()
	}
	sw.Wait()
	require.Eventually(t, func() bool { return holderOf(t, db, "local") != "" }, 45*time.Second, 100*time.Millisecond)
	// Either agent answers: the holder from memory, the other from the store.
	got = waitDone(t, a.svc(), ids(more), 4*time.Minute)
	checkFinal(t, got, more)
	got = waitDone(t, b.svc(), ids(more), time.Minute)
	checkFinal(t, got, more)
	requireExactlyOnce(t, a.svc(), since, all)
}

// TestPartitionedAgentStopsActing: agent a reaches PostgreSQL through a proxy that becomes a
// black hole mid-run. Its lease runs out and it stops acting for the identity: it issues no
// command to the login node after that, refuses submits saying where to go, and agent b takes
// the identity over and finishes a's jobs with their exit codes.
func TestPartitionedAgentStopsActing(t *testing.T) {
	c := testcluster.Require(t)
	dsn := testcluster.PostgresDB(t)
	t.Parallel()
	px, err := netproxy.Start(testcluster.PostgresHostPort(t), 0)
	require.NoError(t, err)
	defer px.Close()
	pcfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	viaProxy := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=3", pcfg.ConnConfig.User, pcfg.ConnConfig.Password,
		px.Addr().Port, pcfg.ConnConfig.Database)
	kekFile := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, os.WriteFile(kekFile, []byte(newKEK(t)+"\n"), 0o600))

	sharedCfg := func(name, dsn, kekFile string) config.Config {
		cfg := baseConfig(t, c, c.Host, c.Port)
		cfg.Agent.KEKFile = kekFile
		cfg.Poll.SubmitTimeout = config.Duration{Duration: 15 * time.Second}
		cfg.Store = config.Store{Backend: "postgres", DSN: dsn, Lease: config.Lease{Name: name, Address: name + ".ferry.test:7443",
			TTL: config.Duration{Duration: failoverTTL}, Renew: config.Duration{Duration: failoverRenew}}}
		require.NoError(t, cfg.Validate())
		return cfg
	}
	mk := func(name, dsn string) *agent.Agent { return newAgent(t, sharedCfg(name, dsn, kekFile), nil) }
	db, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer db.Close()
	a := mk("a", viaProxy)
	defer a.Close()
	require.Eventually(t, func() bool { return holderOf(t, db, "local") == "a" }, 30*time.Second, 100*time.Millisecond)
	b := mk("b", dsn)
	defer b.Close()
	otherKEK := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, os.WriteFile(otherKEK, []byte(newKEK(t)+"\n"), 0o600))
	_, err = agent.New(sharedCfg("d", dsn, otherKEK), zerolog.Nop(), schedulers.New)
	require.ErrorContains(t, err, "opens none of the 3 credentials in the shared store", "an agent with another KEK is refused at start")

	since := time.Now()
	var tasks []*task
	for i := 0; i < 6; i++ {
		tasks = append(tasks, exitTask(t, users[i%3], fmt.Sprintf("part%d", i), 25, i%4))
	}
	defer func() {
		if t.Failed() {
			scancelTokens(since, tasks)
		}
	}()
	for _, tk := range tasks {
		j, err := a.Submit(context.Background(), tk.req)
		require.NoError(t, err)
		tk.id = j.ID
	}
	px.Blackhole(true)
	cut := time.Now()
	require.Eventually(t, func() bool { return holderOf(t, db, "local") == "b" }, 45*time.Second, 50*time.Millisecond)
	t.Logf("b took the identity over %s after a lost the database", time.Since(cut).Round(100*time.Millisecond))
	countA := func() int {
		n := 0
		for _, m := range a.CommandCounts() {
			for _, v := range m {
				n += v
			}
		}
		return n
	}
	before := countA()
	_, err = a.Submit(context.Background(), exitTask(t, "alice", "refused", 0, 0).req)
	require.ErrorIs(t, err, plugin.ErrUnavailable)
	require.ErrorContains(t, err, "not worked by this agent, which cannot reach the shared store", "the partitioned agent says why it refuses")
	late := exitTask(t, "alice", "late", 0, 0)
	j, err := b.Submit(context.Background(), late.req)
	require.NoError(t, err, "the new holder takes submits")
	late.id = j.ID
	tasks = append(tasks, late)
	c3 := mk("c", dsn)
	defer c3.Close()
	require.Eventually(t, func() bool {
		_, err = c3.Submit(context.Background(), exitTask(t, "alice", "misdirected", 0, 0).req)
		return err != nil && strings.Contains(err.Error(), "worked by agent b at b.ferry.test:7443")
	}, 2*failoverRenew+time.Second, 100*time.Millisecond, "an agent that does not hold the identity says where to go: %v", err)
	time.Sleep(3 * time.Second) // several of a's poll intervals
	require.Equal(t, before, countA(), "the agent without its lease ran no command on the login node")

	got := waitDone(t, b, ids(tasks), 3*time.Minute)
	checkFinal(t, got, tasks)
	requireExactlyOnce(t, b, since, tasks)
	px.Blackhole(false)
}
