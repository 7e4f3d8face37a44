package identity_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/plugin/contract"
)

func as(member string) context.Context {
	return contract.WithActor(context.Background(), contract.Actor{Member: member, Via: contract.ViaWeb})
}

var root = contract.WithActor(context.Background(), contract.Actor{Member: "root", Via: contract.ViaCLI})

func TestPasswordSignInAndSessions(t *testing.T) {
	reg := newRegistry(t)
	_, _, err := reg.SignIn("alice", []byte("whatever password"), "127.0.0.1")
	require.ErrorIs(t, err, identity.ErrSignIn, "no password set yet")

	require.ErrorContains(t, reg.SetPassword(root, "alice", []byte("short")), "at least 12 characters")
	require.ErrorIs(t, reg.SetPassword(as("bob"), "alice", []byte("bob sets alice's password")), contract.ErrPermissionDenied)
	require.NoError(t, reg.SetPassword(root, "alice", []byte("alice's first password")))

	_, _, err = reg.SignIn("alice", []byte("alice's wrong password"), "127.0.0.1")
	require.ErrorIs(t, err, identity.ErrSignIn)
	_, _, errUnknown := reg.SignIn("mallory", []byte("alice's first password"), "127.0.0.1")
	require.Equal(t, err.Error(), errUnknown.Error(), "an unknown member and a wrong password read the same")

	cookie, s, err := reg.SignIn("alice", []byte("alice's first password"), "127.0.0.1")
	require.NoError(t, err)
	require.Equal(t, "alice", s.Member)
	require.NotEmpty(t, s.CSRF)
	got, err := reg.Session(cookie)
	require.NoError(t, err)
	require.Equal(t, s.CSRF, got.CSRF)
	_, err = reg.Session(cookie + "x")
	require.ErrorIs(t, err, identity.ErrUnauthenticated)

	// Changing her own password ends her sessions.
	require.NoError(t, reg.SetPassword(as("alice"), "alice", []byte("alice's second password")))
	_, err = reg.Session(cookie)
	require.ErrorIs(t, err, identity.ErrUnauthenticated)

	cookie, _, err = reg.SignIn("alice", []byte("alice's second password"), "127.0.0.1")
	require.NoError(t, err)
	require.NoError(t, reg.SignOut(cookie, "127.0.0.1"))
	_, err = reg.Session(cookie)
	require.ErrorIs(t, err, identity.ErrUnauthenticated)

	events, err := reg.Audit(root, contract.AuditFilter{Action: "web."})
	require.NoError(t, err)
	require.NotEmpty(t, events)
	for _, e := range events {
		require.NotContains(t, e.Detail, "password\"", "no password in the audit")
		require.NotContains(t, e.Detail, "alice's")
	}
}

func TestSessionExpiry(t *testing.T) {
	idle := newRegistryWith(t, func(c *config.Config) { c.Web.SessionIdle = config.Duration{Duration: 100 * time.Millisecond} })
	require.NoError(t, idle.SetPassword(root, "bob", []byte("bob's long password")))
	cookie, _, err := idle.SignIn("bob", []byte("bob's long password"), "")
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)
	_, err = idle.Session(cookie)
	require.ErrorIs(t, err, identity.ErrUnauthenticated, "idle past web.session_idle")

	abs := newRegistryWith(t, func(c *config.Config) { c.Web.SessionMax = config.Duration{Duration: 100 * time.Millisecond} })
	require.NoError(t, abs.SetPassword(root, "bob", []byte("bob's long password")))
	cookie, _, err = abs.SignIn("bob", []byte("bob's long password"), "")
	require.NoError(t, err)
	_, err = abs.Session(cookie)
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)
	_, err = abs.Session(cookie)
	require.ErrorIs(t, err, identity.ErrUnauthenticated, "older than web.session_max")
}

func TestInvitations(t *testing.T) {
	reg := newRegistryWith(t, func(c *config.Config) { c.Web.PublicURL = "https://ferry.example.org" })
	_, err := reg.Invite(as("alice"), "bob")
	require.ErrorIs(t, err, contract.ErrPermissionDenied, "only owners invite")
	_, err = reg.Invite(as("olivia"), "nobody")
	require.ErrorIs(t, err, contract.ErrNotFound)

	inv, err := reg.Invite(as("olivia"), "bob")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(inv.URL, "https://ferry.example.org/invite/"), inv.URL)
	secret := strings.TrimPrefix(inv.URL, "https://ferry.example.org/invite/")
	m, err := reg.InviteMember(secret)
	require.NoError(t, err)
	require.Equal(t, "bob", m)

	_, err = reg.AcceptInvite(secret, []byte("too short"), "")
	require.ErrorIs(t, err, contract.ErrInvalidArgument)
	member, err := reg.AcceptInvite(secret, []byte("bob chose this one"), "")
	require.NoError(t, err, "a weak password did not use up the link")
	require.Equal(t, "bob", member)
	_, err = reg.AcceptInvite(secret, []byte("bob chose this one"), "")
	require.ErrorIs(t, err, identity.ErrUnauthenticated, "usable once")
	_, err = reg.InviteMember(secret)
	require.ErrorIs(t, err, identity.ErrUnauthenticated)
	_, _, err = reg.SignIn("bob", []byte("bob chose this one"), "")
	require.NoError(t, err)

	accts, err := reg.Accounts(as("olivia"))
	require.NoError(t, err)
	byName := map[string]contract.Account{}
	for _, a := range accts {
		byName[a.Member] = a
	}
	require.True(t, byName["bob"].HasPassword)
	require.False(t, byName["alice"].HasPassword)

	expired := newRegistryWith(t, func(c *config.Config) { c.Web.InviteTTL = config.Duration{Duration: 50 * time.Millisecond} })
	inv, err = expired.Invite(as("olivia"), "alice")
	require.NoError(t, err)
	time.Sleep(80 * time.Millisecond)
	_, err = expired.AcceptInvite(inv.URL[strings.LastIndexByte(inv.URL, '/')+1:], []byte("alice is too late"), "")
	require.ErrorIs(t, err, identity.ErrUnauthenticated, "expired")
}

func TestAccessTokens(t *testing.T) {
	reg := newRegistry(t)
	tok, secret, err := reg.CreateToken(as("alice"), "laptop script", 0)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, identity.TokenPrefix+tok.ID+"_"), secret)
	require.WithinDuration(t, time.Now().Add(90*24*time.Hour), tok.Expires, time.Minute, "web.token_ttl by default")
	m, err := reg.TokenMember(secret)
	require.NoError(t, err)
	require.Equal(t, "alice", m)

	_, _, err = reg.CreateToken(as("alice"), "bad\nname", 0)
	require.ErrorIs(t, err, contract.ErrInvalidArgument)
	_, _, err = reg.CreateToken(as("alice"), "forever", 10*366*24*time.Hour)
	require.ErrorContains(t, err, "web.token_max_ttl")
	_, _, err = reg.CreateToken(root, "root's", 0)
	require.ErrorIs(t, err, contract.ErrPermissionDenied, "root is no member: it has no tokens")

	list, err := reg.ListTokens(as("alice"))
	require.NoError(t, err)
	require.Len(t, list, 1)
	list, err = reg.ListTokens(as("bob"))
	require.NoError(t, err)
	require.Empty(t, list, "members list only their own")

	require.ErrorIs(t, reg.RevokeToken(as("bob"), tok.ID), contract.ErrPermissionDenied)
	require.NoError(t, reg.RevokeToken(as("alice"), tok.ID))
	_, err = reg.TokenMember(secret)
	require.ErrorIs(t, err, identity.ErrUnauthenticated, "revoked")

	for _, bad := range []string{"", "ferry_pat_", "Bearer x", identity.TokenPrefix + "zzzzzzzzzzzzzzzz_x", secret[:len(secret)-1] + "A"} {
		_, err = reg.TokenMember(bad)
		require.ErrorIs(t, err, identity.ErrUnauthenticated, "%q", bad)
	}

	short, secret, err := reg.CreateToken(as("bob"), "short", 50*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(80 * time.Millisecond)
	_, err = reg.TokenMember(secret)
	require.ErrorIs(t, err, identity.ErrUnauthenticated, "expired")
	require.NoError(t, reg.RevokeToken(as("olivia"), short.ID), "an owner may revoke anyone's token")
}

// Removing a member removes their web account, sessions and tokens with them.
func TestRemovedMemberLosesWebAccess(t *testing.T) {
	reg := newRegistry(t)
	require.NoError(t, reg.SetPassword(root, "bob", []byte("bob's long password")))
	cookie, _, err := reg.SignIn("bob", []byte("bob's long password"), "")
	require.NoError(t, err)
	_, secret, err := reg.CreateToken(as("bob"), "ci", 0)
	require.NoError(t, err)
	require.NoError(t, reg.RemoveMember(as("olivia"), "bob"))
	_, err = reg.Session(cookie)
	require.ErrorIs(t, err, identity.ErrUnauthenticated)
	_, err = reg.TokenMember(secret)
	require.ErrorIs(t, err, identity.ErrUnauthenticated)
	require.NoError(t, reg.AddMember(as("olivia"), contract.Member{Name: "bob", Role: contract.RoleMember}))
	_, _, err = reg.SignIn("bob", []byte("bob's long password"), "")
	require.ErrorIs(t, err, identity.ErrSignIn, "a member added again starts without a password")
}

// The store holds no password, session cookie or token secret in clear.
func TestWebSecretsNotInStore(t *testing.T) {
	dir := t.TempDir()
	reg := newRegistryWith(t, func(c *config.Config) { c.Agent.StateDir = dir })
	require.NoError(t, reg.SetPassword(root, "alice", []byte("plaintext-password-123")))
	cookie, _, err := reg.SignIn("alice", []byte("plaintext-password-123"), "")
	require.NoError(t, err)
	_, secret, err := reg.CreateToken(as("alice"), "t", 0)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "ferry.db"))
	require.NoError(t, err)
	for _, s := range []string{"plaintext-password-123", cookie, secret} {
		require.NotContains(t, string(b), s)
	}
}
