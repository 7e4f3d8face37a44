package sshpool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/netproxy"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

func newPool(t *testing.T, opts sshpool.Options, key sshpool.Key, tg sshpool.Target) (*sshpool.Manager, *sshpool.Pool) {
	t.Helper()
	m := sshpool.NewManager(opts, zerolog.Nop())
	t.Cleanup(m.Close)
	p, err := m.Pool(key, tg)
	require.NoError(t, err)
	return m, p
}

func run(t *testing.T, p *sshpool.Pool, argv ...string) sshpool.Result {
	t.Helper()
	line, err := scheduler.CommandLine(scheduler.Command{Argv: argv})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.Exec(ctx, line, nil)
	require.NoError(t, err)
	return res
}

func TestExecAsEachUser(t *testing.T) {
	c := testcluster.Require(t)
	for _, name := range []string{"alice", "bob", "carol"} {
		t.Run(name, func(t *testing.T) {
			_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: name}, c.Target(t, name))
			res := run(t, p, "id", "-un")
			require.Equal(t, 0, res.ExitCode, string(res.Stderr))
			require.Equal(t, name, strings.TrimSpace(string(res.Stdout)))
			res = run(t, p, "sh", "-c", "exit 7")
			require.Equal(t, 7, res.ExitCode)
		})
	}
}

// TestQuotingThroughLoginShells checks that the remote side receives exactly the argv, through a
// bash login shell (alice) and a tcsh login shell (carol).
func TestQuotingThroughLoginShells(t *testing.T) {
	c := testcluster.Require(t)
	args := []string{"plain", "", "two words", "it's", `"dq"`, "$(id)", "`id`", "a;b", "a&&b", "a|b", "*", "?",
		"-n", "--", "=1", "=-", "=x", `back\slash`, "tab\there", "ünïcödé", "$HOME", "${x}", "~", "a>b", "<in", "#hash", "%1", "{a,b}", "[ab]", "'", "''"}
	for _, name := range []string{"alice", "carol"} {
		for _, noDisp := range []bool{true, false} {
			path := map[bool]string{true: "session", false: "dispatcher"}[noDisp]
			t.Run(name+"/"+path, func(t *testing.T) {
				_, p := newPool(t, sshpool.Options{NoDispatcher: noDisp}, sshpool.Key{Identity: "local", User: name}, c.Target(t, name))
				for _, a := range args {
					res := run(t, p, "printf", "[%s]", a)
					require.Equal(t, 0, res.ExitCode, "arg %q: %s", a, res.Stderr)
					require.Equal(t, "["+a+"]", string(res.Stdout), "arg %q", a)
				}
			})
		}
	}
}

func TestEleventhSessionOpensSecondConnection(t *testing.T) {
	c := testcluster.Require(t)
	for _, cap := range []int{10, 30} { // 30: more than sshd's MaxSessions, so sshd's refusal is exercised
		t.Run("cap"+string(rune('0'+cap/10)), func(t *testing.T) {
			_, p := newPool(t, sshpool.Options{MaxSessionsPerConn: cap, MaxConnsPerUser: 3}, sshpool.Key{Identity: "local", User: "alice"}, c.Target(t, "alice"))
			var wg sync.WaitGroup
			errs := make(chan error, 15)
			for i := 0; i < 15; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					res, err := p.Exec(ctx, "sleep 2", nil)
					if err == nil && res.ExitCode != 0 {
						err = errors.New(string(res.Stderr))
					}
					errs <- err
				}()
			}
			time.Sleep(time.Second)
			st := p.Stats()
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, 2, st.Conns, "15 concurrent sessions need exactly two connections")
			require.Equal(t, 15, st.Sessions)
		})
	}
}

func TestBadInputErrors(t *testing.T) {
	c := testcluster.Require(t)
	ctx := context.Background()
	t.Run("wrong key", func(t *testing.T) {
		tg := c.Target(t, "alice")
		tg.Signer = c.Target(t, "dave").Signer
		_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "alice"}, tg)
		_, err := p.Exec(ctx, "true", nil)
		require.ErrorIs(t, err, sshpool.ErrAuth)
		require.Contains(t, err.Error(), `identity "local" user "alice"`)
	})
	t.Run("host key mismatch", func(t *testing.T) {
		tg := c.Target(t, "alice")
		other, err := ssh.ParsePublicKey(c.Target(t, "dave").Signer.PublicKey().Marshal())
		require.NoError(t, err)
		tg.HostKeys = sshpool.HostKeys{other}
		_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "alice"}, tg)
		_, err = p.Exec(ctx, "true", nil)
		require.ErrorIs(t, err, sshpool.ErrHostKey)
		var hk *sshpool.HostKeyError
		require.ErrorAs(t, err, &hk)
		require.Contains(t, err.Error(), "SHA256:")
	})
	t.Run("unreachable", func(t *testing.T) {
		tg := c.Target(t, "alice")
		tg.Port = 1
		_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "alice"}, tg)
		_, err := p.Exec(ctx, "true", nil)
		require.ErrorIs(t, err, sshpool.ErrUnreachable)
	})
	t.Run("cancel stops a long command", func(t *testing.T) {
		_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "alice"}, c.Target(t, "alice"))
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Exec(cctx, "sleep 30", nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 5*time.Second)
		// The pool is still usable afterwards.
		require.Equal(t, "alice", strings.TrimSpace(string(run(t, p, "id", "-un").Stdout)))
	})
}

func TestStdinReachesCommand(t *testing.T) {
	c := testcluster.Require(t)
	_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "carol"}, c.Target(t, "carol"))
	res, err := p.Exec(context.Background(), "cat", []byte("hello\nworld\n"))
	require.NoError(t, err)
	require.Equal(t, "hello\nworld\n", string(res.Stdout))
}

// TestDeadConnectionEvicted puts a proxy that silently stops forwarding between the pool and sshd:
// the connection is evicted within keepalive interval + timeout, an in-flight command returns an
// error instead of hanging, and once traffic flows again the pool dials a fresh connection.
func TestDeadConnectionEvicted(t *testing.T) {
	c := testcluster.Require(t)
	px, err := netproxy.Start(fmt.Sprintf("%s:%d", c.Host, c.Port), 0)
	require.NoError(t, err)
	defer px.Close()
	tg := c.Target(t, "alice")
	tg.Host, tg.Port = "127.0.0.1", px.Addr().Port
	interval, timeout := 300*time.Millisecond, 300*time.Millisecond
	_, p := newPool(t, sshpool.Options{KeepaliveInterval: interval, KeepaliveTimeout: timeout, DialTimeout: 2 * time.Second}, sshpool.Key{Identity: "local", User: "alice"}, tg)
	require.Equal(t, "alice", strings.TrimSpace(string(run(t, p, "id", "-un").Stdout)))
	require.Equal(t, 1, p.Stats().Conns)

	inflight := make(chan error, 1)
	go func() {
		_, err := p.Exec(context.Background(), "sleep 60", nil)
		inflight <- err
	}()
	time.Sleep(100 * time.Millisecond)
	px.Blackhole(true)
	start := time.Now()
	select {
	case err := <-inflight:
		require.Error(t, err)
		require.Contains(t, err.Error(), "outcome unknown")
	case <-time.After(3 * (interval + timeout)):
		t.Fatal("in-flight command still hanging after 3 keepalive bounds")
	}
	require.Less(t, time.Since(start), 3*(interval+timeout))
	require.Eventually(t, func() bool { return p.Stats().Conns == 0 }, time.Second, 20*time.Millisecond)
	require.Contains(t, p.Stats().LastError, "keepalive")

	px.Blackhole(false)
	require.Equal(t, "alice", strings.TrimSpace(string(run(t, p, "id", "-un").Stdout)))
}

// TestDialCapAcrossUsers opens 20 user pools at once against the real sshd (MaxStartups 10:30:100):
// no more than MaxDialsPerHost handshakes are ever in flight, and every pool gets in.
func TestDialCapAcrossUsers(t *testing.T) {
	c := testcluster.Require(t)
	m := sshpool.NewManager(sshpool.Options{MaxDialsPerHost: 4}, zerolog.Nop())
	defer m.Close()
	users := []string{"alice", "bob", "carol"}
	targets := map[string]sshpool.Target{}
	for _, u := range users {
		targets[u] = c.Target(t, u)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		u := users[i%len(users)]
		p, err := m.Pool(sshpool.Key{Identity: fmt.Sprintf("org%d", i), User: u}, targets[u])
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := p.Exec(ctx, "id -un", nil)
			if err == nil && strings.TrimSpace(string(res.Stdout)) != u {
				err = fmt.Errorf("pool %d logged in as %q, want %q", i, res.Stdout, u)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	peak := m.PeakDials(c.Host, c.Port)
	require.LessOrEqual(t, peak, 4)
	require.GreaterOrEqual(t, peak, 2, "the dials did overlap")
}

// TestBurstAgainstUnreachableNodeFailsTogether sends a burst of commands to a pool whose login node
// swallows every packet, with one connection per user allowed: one caller dials and the others
// wait for that dial. When it times out they all get its error at once, instead of each dialing
// in turn and the last one failing after a dial timeout per caller.
func TestBurstAgainstUnreachableNodeFailsTogether(t *testing.T) {
	c := testcluster.Require(t)
	px, err := netproxy.Start(fmt.Sprintf("%s:%d", c.Host, c.Port), 0)
	require.NoError(t, err)
	defer px.Close()
	px.Blackhole(true)
	tg := c.Target(t, "alice")
	tg.Host, tg.Port = "127.0.0.1", px.Addr().Port
	const dialTimeout, callers = time.Second, 5
	_, p := newPool(t, sshpool.Options{DialTimeout: dialTimeout, MaxConnsPerUser: 1}, sshpool.Key{Identity: "hole", User: "alice"}, tg)

	start := time.Now()
	took := make(chan time.Duration, callers)
	for range callers {
		go func() {
			_, err := p.Exec(context.Background(), "true", nil)
			assert.ErrorIs(t, err, sshpool.ErrUnreachable)
			took <- time.Since(start)
		}()
	}
	var slowest time.Duration
	for range callers {
		slowest = max(slowest, <-took)
	}
	t.Logf("%d callers failed within %s (dial timeout %s, %d dials)", callers, slowest.Round(time.Millisecond), dialTimeout, p.Stats().Dials)
	require.Less(t, slowest, 2*dialTimeout+time.Second, "the waiters dialed again one after another")
}
