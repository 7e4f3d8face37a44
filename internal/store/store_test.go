package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/internal/testcluster"
)

// backends opens a fresh store of each kind: Bolt in a temp dir, and Postgres in a fresh
// database on the test cluster's PostgreSQL (skipped, with the reason, without it).
var backends = map[string]func(t *testing.T) store.Store{
	"bolt": func(t *testing.T) store.Store {
		s, err := store.Open(filepath.Join(t.TempDir(), "ferry.db"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	},
	"postgres": func(t *testing.T) store.Store {
		s, err := store.OpenPostgres(context.Background(), testcluster.PostgresDB(t))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	},
}

// each runs fn against every backend.
func each(t *testing.T, fn func(t *testing.T, s store.Store)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 12, 7, 1, 2, 3, 456000000, time.UTC)

func TestJobs(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		code := 3
		j := store.Job{ID: "j1", Identity: "hpc", User: "alice", Token: "tok-1", Name: "n", Status: "pending", Submitted: t0,
			ExitCode: &code, Meta: map[string]string{"k": "v"}, Spec: []byte(`{"name":"n"}`)}
		require.NoError(t, s.Put(j))
		got, err := s.Get("j1")
		require.NoError(t, err)
		require.JSONEq(t, string(j.Spec), string(got.Spec), "the spec comes back as the same JSON (PostgreSQL's jsonb may space it differently)")
		got.Spec = j.Spec
		require.Equal(t, j, got)
		_, err = s.Get("nope")
		require.ErrorIs(t, err, store.ErrNotFound)

		byTok, err := s.ByToken("hpc", "alice", "tok-1")
		require.NoError(t, err)
		require.Equal(t, "j1", byTok.ID)
		_, err = s.ByToken("hpc", "bob", "tok-1")
		require.ErrorIs(t, err, store.ErrNotFound, "a token is per user")
		_, err = s.ByToken("hpc", "alice", "")
		require.ErrorIs(t, err, store.ErrNotFound)

		j.Status = "running"
		require.NoError(t, s.Put(j), "put replaces")
		require.NoError(t, s.Put(store.Job{ID: "j2", Identity: "hpc", User: "bob", Status: "completed", Done: true}))
		all, err := s.All(nil)
		require.NoError(t, err)
		require.Len(t, all, 2)
		active, err := s.All(func(j store.Job) bool { return !j.Done })
		require.NoError(t, err)
		require.Len(t, active, 1)
		require.Equal(t, "running", active[0].Status)

		require.NoError(t, s.Delete("j1"))
		require.NoError(t, s.Delete("j1"), "deleting a missing job is fine")
		_, err = s.ByToken("hpc", "alice", "tok-1")
		require.ErrorIs(t, err, store.ErrNotFound, "the token goes with its job")
	})
}

func TestIdentitiesMembersCredentials(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		id := store.Identity{Name: "hpc", Scheduler: "slurm", Host: "login", Port: 22, WorkDir: "/w", Group: "g", KnownHosts: "login ssh-ed25519 AAAA",
			CreatedBy: "root", CreatedAt: t0}
		require.NoError(t, s.PutIdentity(id))
		require.NoError(t, s.PutIdentity(store.Identity{Name: "other", Scheduler: "sge", CreatedAt: t0}))
		got, err := s.GetIdentity("hpc")
		require.NoError(t, err)
		require.Equal(t, id, got)
		_, err = s.GetIdentity("nope")
		require.ErrorIs(t, err, store.ErrNotFound)

		require.NoError(t, s.PutMember(store.Member{Name: "alice", Role: "member", UnixUsers: []string{"alice"}}))
		m, err := s.GetMember("alice")
		require.NoError(t, err)
		require.Equal(t, []string{"alice"}, m.UnixUsers)
		ms, err := s.Members()
		require.NoError(t, err)
		require.Len(t, ms, 1)

		c := store.Credential{Identity: "hpc", Member: "alice", Username: "alice", Key: []byte{1, 2, 3}, Passphrase: []byte{4},
			KeyType: "ed25519", Fingerprint: "SHA256:x", AddedAt: t0, UpdatedAt: t0, Failures: 2, Held: true}
		require.NoError(t, s.PutCredential(c))
		require.NoError(t, s.PutCredential(store.Credential{Identity: "other", Member: "alice", Username: "a"}))
		gc, err := s.GetCredential("hpc", "alice")
		require.NoError(t, err)
		require.Equal(t, c, gc, "sealed blobs come back byte for byte")
		cs, err := s.Credentials()
		require.NoError(t, err)
		require.Len(t, cs, 2)

		require.NoError(t, s.DeleteIdentity("hpc"))
		_, err = s.GetCredential("hpc", "alice")
		require.ErrorIs(t, err, store.ErrNotFound, "an identity's credentials go with it")
		_, err = s.GetCredential("other", "alice")
		require.NoError(t, err, "other identities' credentials stay")
		ids, err := s.Identities()
		require.NoError(t, err)
		require.Len(t, ids, 1)

		require.NoError(t, s.DeleteCredential("other", "alice"))
		require.NoError(t, s.DeleteMember("alice"))
		_, err = s.GetMember("alice")
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestWebRecords(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		require.NoError(t, s.PutAccount(store.Account{Member: "alice", PasswordHash: "$argon2id$x", SetBy: "root", SetAt: t0}))
		a, err := s.GetAccount("alice")
		require.NoError(t, err)
		require.Equal(t, "$argon2id$x", a.PasswordHash)
		require.NoError(t, s.PutSession(store.Session{ID: "s1", Member: "alice", CSRF: "c", Created: t0, LastSeen: t0}))
		require.NoError(t, s.PutSession(store.Session{ID: "s2", Member: "bob", Created: t0, LastSeen: t0}))
		x, err := s.GetSession("s1")
		require.NoError(t, err)
		require.Equal(t, "c", x.CSRF)
		require.NoError(t, s.PutToken(store.AccessToken{ID: "t1", Member: "alice", Hash: "h", Created: t0, Expires: t0.Add(time.Hour)}))
		tok, err := s.GetToken("t1")
		require.NoError(t, err)
		require.Equal(t, "h", tok.Hash)
		require.NoError(t, s.PutInvite(store.Invite{ID: "i1", Member: "alice", Created: t0, Expires: t0.Add(time.Hour)}))
		require.NoError(t, s.PutInvite(store.Invite{ID: "i2", Member: "bob", Created: t0, Expires: t0.Add(time.Minute)}))

		_, err = s.UseInvite("i2", t0.Add(2*time.Minute))
		require.ErrorIs(t, err, store.ErrExpired)
		_, err = s.UseInvite("nope", t0)
		require.ErrorIs(t, err, store.ErrNotFound)
		inv, err := s.UseInvite("i1", t0.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, "alice", inv.Member)
		_, err = s.UseInvite("i1", t0.Add(2*time.Second))
		require.ErrorIs(t, err, store.ErrUsed)

		require.NoError(t, s.DeleteWebOf("alice"))
		_, err = s.GetAccount("alice")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.GetSession("s1")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.GetToken("t1")
		require.ErrorIs(t, err, store.ErrNotFound)
		sessions, err := s.Sessions()
		require.NoError(t, err)
		require.Len(t, sessions, 1, "bob's session stays")
		invs, err := s.Invites()
		require.NoError(t, err)
		require.Len(t, invs, 1)
		require.NoError(t, s.DeleteSession("s2"))
		require.NoError(t, s.DeleteToken("t1"))
	})
}

// TestUseInviteOnce races many acceptances of one invitation: exactly one wins.
func TestUseInviteOnce(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		require.NoError(t, s.PutInvite(store.Invite{ID: "i", Member: "alice", Created: t0, Expires: t0.Add(time.Hour)}))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, used := 0, 0
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.UseInvite("i", t0.Add(time.Second))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrUsed):
					used++
				default:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, 1, wins)
		require.Equal(t, 15, used)
	})
}

// TestPostgresMigrations: a second Open applies nothing new, and a database from a newer agent
// is refused.
func TestPostgresMigrations(t *testing.T) {
	dsn := testcluster.PostgresDB(t)
	ctx := context.Background()
	a, err := store.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	require.NoError(t, a.PutMember(store.Member{Name: "alice", Role: "owner"}))
	b, err := store.OpenPostgres(ctx, dsn)
	require.NoError(t, err, "opening again (a second agent) migrates nothing and loses nothing")
	m, err := b.GetMember("alice")
	require.NoError(t, err)
	require.Equal(t, "owner", m.Role)
	_, err = b.Pool().Exec(ctx, `INSERT INTO ferry_schema (version) VALUES ($1)`, store.SchemaVersion()+1)
	require.NoError(t, err)
	a.Close()
	b.Close()
	_, err = store.OpenPostgres(ctx, dsn)
	require.ErrorContains(t, err, "newer than this agent's")

	_, err = store.OpenPostgres(ctx, "postgres://ferry:wrong@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.ErrorContains(t, err, "cannot reach", "an unreachable database is named")
}

// TestPostgresAuditTrail: audit records appended by any agent come back in order.
func TestPostgresAuditTrail(t *testing.T) {
	s, err := store.OpenPostgres(context.Background(), testcluster.PostgresDB(t))
	require.NoError(t, err)
	defer s.Close()
	for _, r := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		require.NoError(t, s.AppendAudit([]byte(r)))
	}
	var got []string
	require.NoError(t, s.AuditRecords(func(b []byte) error { got = append(got, string(b)); return nil }))
	require.Equal(t, []string{`{"n": 1}`, `{"n": 2}`, `{"n": 3}`}, got)
	stop := errors.New("stop")
	n := 0
	require.ErrorIs(t, s.AuditRecords(func([]byte) error { n++; return stop }), stop, "fn's error ends the scan")
	require.Equal(t, 1, n)
}

// TestPostgresRegistryVersion: the version moves with members, identities and how a credential
// logs in, not with a credential's status alone (frequent, and kept by the agent working it).
func TestPostgresRegistryVersion(t *testing.T) {
	s, err := store.OpenPostgres(context.Background(), testcluster.PostgresDB(t))
	require.NoError(t, err)
	defer s.Close()
	v := func() int64 {
		n, err := s.RegistryVersion()
		require.NoError(t, err)
		return n
	}
	moved := func(what string, fn func() error) {
		t.Helper()
		before := v()
		require.NoError(t, fn())
		require.Greater(t, v(), before, what)
	}
	same := func(what string, fn func() error) {
		t.Helper()
		before := v()
		require.NoError(t, fn())
		require.Equal(t, before, v(), what)
	}
	moved("a new member", func() error { return s.PutMember(store.Member{Name: "alice", Role: "member"}) })
	moved("a changed member", func() error { return s.PutMember(store.Member{Name: "alice", Role: "owner"}) })
	moved("a new identity", func() error { return s.PutIdentity(store.Identity{Name: "hpc"}) })
	c := store.Credential{Identity: "hpc", Member: "alice", Username: "alice", Key: []byte("sealed-1"), UpdatedAt: t0}
	moved("a new credential", func() error { return s.PutCredential(c) })
	c.LastOK, c.Verified, c.Failures = t0.Add(time.Minute), true, 0
	same("a login outcome", func() error { return s.PutCredential(c) })
	c.Failures, c.Held, c.LastError = 3, true, "permission denied"
	same("a credential held", func() error { return s.PutCredential(c) })
	c.Key, c.UpdatedAt, c.Held = []byte("sealed-2"), t0.Add(time.Hour), false
	moved("a new key", func() error { return s.PutCredential(c) })
	c.Username = "asmith"
	moved("a new username", func() error { return s.PutCredential(c) })
	moved("a deleted credential", func() error { return s.DeleteCredential("hpc", "alice") })
	moved("a deleted member", func() error { return s.DeleteMember("alice") })

	require.NoError(t, s.PutCredential(store.Credential{Identity: "hpc", Member: "bob"}))
	require.NoError(t, s.PutCredential(store.Credential{Identity: "gpu", Member: "bob"}))
	of, err := s.CredentialsOf("hpc")
	require.NoError(t, err)
	require.Len(t, of, 1)
	require.Equal(t, "hpc", of[0].Identity)
}

// TestPostgresJobsOfAndExcept: an agent reads one identity's jobs, or every identity's but those
// it holds.
func TestPostgresJobsOfAndExcept(t *testing.T) {
	s, err := store.OpenPostgres(context.Background(), testcluster.PostgresDB(t))
	require.NoError(t, err)
	defer s.Close()
	for _, j := range []store.Job{{ID: "1", Identity: "hpc", User: "a"}, {ID: "2", Identity: "gpu", User: "a"}, {ID: "3", Identity: "hpc", User: "b"}} {
		require.NoError(t, s.Put(j))
	}
	of, err := s.JobsOf("hpc")
	require.NoError(t, err)
	require.Equal(t, []string{"1", "3"}, []string{of[0].ID, of[1].ID})
	ex, err := s.JobsExcept([]string{"hpc"})
	require.NoError(t, err)
	require.Len(t, ex, 1)
	require.Equal(t, "2", ex[0].ID)
	ex, err = s.JobsExcept(nil)
	require.NoError(t, err)
	require.Len(t, ex, 3, "holding nothing: every job")
}
