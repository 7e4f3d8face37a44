package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/lease"
	"github.com/ferryhpc/ferry/internal/netproxy"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/internal/testcluster"
)

const (
	ttl   = 3 * time.Second
	renew = 1 * time.Second
)

// agent is one lease manager with a record of what it was told, as an agent would act on it.
type agent struct {
	m      *lease.Manager
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acquired map[string]time.Time
	tokens   map[string]int64
	lost     map[string]time.Time
}

func start(t *testing.T, pool *pgxpool.Pool, name string, ids ...string) *agent {
	t.Helper()
	a := &agent{acquired: map[string]time.Time{}, lost: map[string]time.Time{}, tokens: map[string]int64{}, done: make(chan struct{})}
	m, err := lease.New(pool, lease.Options{Name: name, Address: name + ".example.org:7443", TTL: ttl, Renew: renew,
		Identities: func() []string { return ids },
		OnAcquire: func(id string, token int64) error {
			a.mu.Lock()
			a.acquired[id], a.tokens[id] = time.Now(), token
			delete(a.lost, id)
			a.mu.Unlock()
			return nil
		},
		OnLose: func(id string) {
			a.mu.Lock()
			a.lost[id] = time.Now()
			a.mu.Unlock()
		},
	}, zerolog.Nop())
	require.NoError(t, err)
	a.m = m
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { m.Run(ctx); close(a.done) }()
	t.Cleanup(a.stop)
	return a
}

func (a *agent) stop() {
	a.cancel()
	<-a.done
}

func (a *agent) acquiredAt(id string) (time.Time, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acquired[id], a.tokens[id]
}

func (a *agent) lostAt(id string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lost[id]
}

// db opens a fresh database with the store's schema (the leases table) and returns a pool on it.
func db(t *testing.T) (string, *store.Postgres) {
	dsn := testcluster.PostgresDB(t)
	st, err := store.OpenPostgres(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return dsn, st
}

func pool(t *testing.T, dsn string) *pgxpool.Pool {
	p, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// TestOneHolderAndCleanHandover: of two agents one holds each identity; the other is told where
// to go; a clean stop hands over at once with a larger token.
func TestOneHolderAndCleanHandover(t *testing.T) {
	dsn, _ := db(t)
	a := start(t, pool(t, dsn), "a", "hpc", "gpu")
	require.Eventually(t, func() bool { return len(a.m.HeldNames()) == 2 }, 5*time.Second, 50*time.Millisecond)
	b := start(t, pool(t, dsn), "b", "hpc", "gpu")
	time.Sleep(2 * renew)
	require.Empty(t, b.m.HeldNames(), "a held lease is not taken")
	w, ok := b.m.Where("hpc")
	require.True(t, ok)
	require.Equal(t, "a", w.Name)
	require.Equal(t, "a.example.org:7443", w.Address, "the other agent says where to go")
	_, tokA := a.acquiredAt("hpc")

	stopped := time.Now()
	a.stop()
	require.NotZero(t, a.lostAt("hpc"), "a stopping agent stops acting first")
	require.Eventually(t, func() bool { return len(b.m.HeldNames()) == 2 }, ttl, 20*time.Millisecond,
		"a released lease is taken at the next period, not after the ttl")
	at, tokB := b.acquiredAt("hpc")
	require.Greater(t, tokB, tokA, "every holding has a larger token than the one before")
	t.Logf("clean handover in %s", at.Sub(stopped).Round(time.Millisecond))
}

// TestCrashedHolderIsTakenOverAndFenced: an agent that stops renewing without releasing (its
// database connection gone, as when its host dies) is taken over after the ttl, and its writes
// under the old token are refused while the new holder's pass.
func TestCrashedHolderIsTakenOverAndFenced(t *testing.T) {
	dsn, _ := db(t)
	pa := pool(t, dsn)
	a := start(t, pa, "a", "hpc")
	require.Eventually(t, func() bool { _, ok := a.m.Held("hpc"); return ok }, 5*time.Second, 20*time.Millisecond)

	staleStore, err := store.OpenPostgres(context.Background(), dsn)
	require.NoError(t, err)
	defer staleStore.Close()
	staleStore.SetFence(a.m.Fence)
	require.NoError(t, staleStore.Put(store.Job{ID: "j1", Identity: "hpc", User: "alice", Status: "pending"}), "the holder writes")

	b := start(t, pool(t, dsn), "b", "hpc")
	pa.Close() // a's database is gone: no renewal, no release
	crashed := time.Now()
	require.Eventually(t, func() bool { _, ok := b.m.Held("hpc"); return ok }, ttl+3*renew, 20*time.Millisecond)
	at, _ := b.acquiredAt("hpc")
	took := at.Sub(crashed)
	require.LessOrEqual(t, took, ttl+2*renew, "taken over within ttl + renew (+ a period of slack)")
	require.NotZero(t, a.lostAt("hpc"), "the crashed holder stopped acting")
	require.True(t, a.lostAt("hpc").Before(at), "it stopped before the new holder started")
	t.Logf("takeover %s after the holder lost its database (ttl %s, renew %s)", took.Round(time.Millisecond), ttl, renew)

	// A write fenced by the old holding fails even if the old holder still thought it held it.
	fakeOld := func(string) (string, int64, bool) { return "a", 1, true }
	staleStore.SetFence(fakeOld)
	err = staleStore.Put(store.Job{ID: "j1", Identity: "hpc", User: "alice", Status: "completed"})
	require.ErrorIs(t, err, store.ErrFenced)
	fresh, err := store.OpenPostgres(context.Background(), dsn)
	require.NoError(t, err)
	defer fresh.Close()
	j, err := fresh.Get("j1")
	require.NoError(t, err)
	require.Equal(t, "pending", j.Status, "the refused write changed nothing")
	fresh.SetFence(b.m.Fence)
	require.NoError(t, fresh.Put(store.Job{ID: "j1", Identity: "hpc", User: "alice", Status: "completed"}), "the new holder writes")
}

// TestPartitionedHolderStopsBeforeTakeover: the holder reaches PostgreSQL through a proxy that
// turns into a black hole (connections open, nothing answers). It must stop acting, by its own
// clock, before the other agent may start.
func TestPartitionedHolderStopsBeforeTakeover(t *testing.T) {
	dsn, _ := db(t)
	direct := testcluster.PostgresHostPort(t)
	px, err := netproxy.Start(direct, 0)
	require.NoError(t, err)
	defer px.Close()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(px.Addr().Port)
	pa, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pa.Close()

	a := start(t, pa, "a", "hpc")
	require.Eventually(t, func() bool { _, ok := a.m.Held("hpc"); return ok }, 5*time.Second, 20*time.Millisecond)
	b := start(t, pool(t, dsn), "b", "hpc")

	px.Blackhole(true)
	cut := time.Now()
	var stoppedActing time.Time
	require.Eventually(t, func() bool {
		if _, ok := a.m.Held("hpc"); !ok && stoppedActing.IsZero() {
			stoppedActing = time.Now()
		}
		_, ok := b.m.Held("hpc")
		return ok
	}, ttl+4*renew, 5*time.Millisecond)
	bAt, _ := b.acquiredAt("hpc")
	require.False(t, stoppedActing.IsZero())
	require.True(t, stoppedActing.Before(bAt), "the partitioned holder stopped acting (%s after the cut) before the other started (%s after)",
		stoppedActing.Sub(cut), bAt.Sub(cut))
	require.Eventually(t, func() bool { return !a.lostAt("hpc").IsZero() }, 2*renew, 10*time.Millisecond, "and was told to stop its work")
	t.Logf("partition: holder stopped %s after the cut, the other took over %s after it", stoppedActing.Sub(cut).Round(time.Millisecond), bAt.Sub(cut).Round(time.Millisecond))

	// Healed, the old holder finds the lease taken and does not take it back.
	px.Blackhole(false)
	time.Sleep(3 * renew)
	_, ok := a.m.Held("hpc")
	require.False(t, ok)
	_, ok = b.m.Held("hpc")
	require.True(t, ok)
}

// TestBothRestartedAtOnce: two agents starting together never both hold an identity.
func TestBothRestartedAtOnce(t *testing.T) {
	dsn, _ := db(t)
	ids := []string{"i1", "i2", "i3", "i4", "i5", "i6"}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		agents := make([]*agent, 2)
		for i, name := range []string{"a", "b"} {
			wg.Add(1)
			go func() { defer wg.Done(); agents[i] = start(t, pool(t, dsn), name, ids...) }()
		}
		wg.Wait()
		require.Eventually(t, func() bool { return len(agents[0].m.HeldNames())+len(agents[1].m.HeldNames()) == len(ids) }, ttl+3*renew, 20*time.Millisecond)
		for _, id := range ids {
			_, a := agents[0].m.Held(id)
			_, b := agents[1].m.Held(id)
			require.False(t, a && b, "identity %s held twice", id)
		}
		rows, err := lease.All(context.Background(), pool(t, dsn))
		require.NoError(t, err)
		require.Len(t, rows, len(ids))
		agents[0].stop()
		agents[1].stop()
	}
}

func TestOptions(t *testing.T) {
	_, err := lease.New(nil, lease.Options{Name: "a", TTL: time.Second, Renew: time.Second}, zerolog.Nop())
	require.Error(t, err)
	_, err = lease.New(nil, lease.Options{TTL: 10 * time.Second, Renew: time.Second}, zerolog.Nop())
	require.Error(t, err)
	require.False(t, errors.Is(err, store.ErrFenced))
}

// TestAcquireFailureGivesTheLeaseBack: an agent that cannot start working an identity it just
// took (OnAcquire fails) releases it at once, and takes it again next period.
func TestAcquireFailureGivesTheLeaseBack(t *testing.T) {
	dsn, _ := db(t)
	var calls, losses int
	var mu sync.Mutex
	m, err := lease.New(pool(t, dsn), lease.Options{Name: "a", TTL: ttl, Renew: renew,
		Identities: func() []string { return []string{"hpc"} },
		OnAcquire: func(string, int64) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return errors.New("cannot load its jobs")
			}
			return nil
		},
		OnLose: func(string) { mu.Lock(); losses++; mu.Unlock() },
	}, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { _, ok := m.Held("hpc"); return ok }, ttl, 20*time.Millisecond, "taken again after the failed start")
	mu.Lock()
	require.Equal(t, 2, calls)
	require.Equal(t, 1, losses, "the failed start was told to stop")
	mu.Unlock()
	rows, err := lease.All(context.Background(), pool(t, dsn))
	require.NoError(t, err)
	require.Equal(t, int64(2), rows[0].Token, "released and taken again: a new holding")
	require.Less(t, time.Since(rows[0].Expires), time.Duration(0))
}
