package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

func as(member string) context.Context {
	return plugin.WithActor(context.Background(), plugin.Actor{Member: member, Via: "plugin"})
}

// adminConfig is testConfig plus an owner (alice) and plain members (bob, carol, dave).
func adminConfig(t *testing.T, c *testcluster.Cluster) config.Config {
	cfg := testConfig(t, c, t.TempDir())
	cfg.Members = []config.Member{{Name: "alice", Role: "owner", UnixUsers: []string{"alice"}}, {Name: "bob", Role: "member"}}
	return cfg
}

func TestMembersActOnlyForThemselves(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, adminConfig(t, c))
	defer a.Close()
	req := plugin.SubmitRequest{Identity: "local", User: "alice", Name: "mine", Script: []byte("sleep 30\n")}
	_, err := a.Submit(as("bob"), req)
	require.ErrorIs(t, err, plugin.ErrPermissionDenied)
	_, err = a.Submit(as("mallory"), req)
	require.ErrorIs(t, err, plugin.ErrPermissionDenied)
	require.ErrorContains(t, err, "not a member")

	aj, err := a.Submit(as("alice"), req)
	require.NoError(t, err)
	req.User, req.Name = "bob", "bobs"
	bj, err := a.Submit(as("bob"), req)
	require.NoError(t, err)

	// bob sees only his jobs and cannot cancel alice's.
	jobs, err := a.ListJobs(as("bob"), plugin.ListRequest{})
	require.NoError(t, err)
	for _, j := range jobs {
		require.Equal(t, "bob", j.User)
	}
	st, err := a.Status(as("bob"), []string{aj.ID, bj.ID})
	require.NoError(t, err)
	require.Len(t, st, 1)
	res, err := a.Cancel(as("bob"), []string{aj.ID})
	require.NoError(t, err)
	require.Contains(t, res[0].Error, "permission denied")
	// The owner may cancel anyone's.
	res, err = a.Cancel(as("alice"), []string{aj.ID, bj.ID})
	require.NoError(t, err)
	require.Equal(t, "", res[0].Error)
	require.Equal(t, "", res[1].Error)
	wait(t, a, []string{aj.ID, bj.ID}, 2*time.Minute)

	// Members may not manage identities or other members' credentials.
	_, err = a.CreateIdentity(as("bob"), plugin.IdentitySpec{Name: "x"})
	require.ErrorIs(t, err, plugin.ErrPermissionDenied)
	err = a.DeleteCredential(as("bob"), "local", "carol")
	require.ErrorIs(t, err, plugin.ErrPermissionDenied)
	creds, err := a.ListCredentials(as("bob"), "")
	require.NoError(t, err)
	require.Len(t, creds, 3) // bob's credential on each of the three identities, nobody else's
	for _, cr := range creds {
		require.Equal(t, "bob", cr.Member)
	}

	// The audit log saw the refusals and the actions, with who and for whom.
	ev, err := a.Audit(as("alice"), plugin.AuditFilter{Action: "job.", Outcome: "denied"})
	require.NoError(t, err)
	require.NotEmpty(t, ev)
	require.Equal(t, "bob", ev[0].Actor)
	ev, err = a.Audit(as("alice"), plugin.AuditFilter{Action: "job.cancel", Outcome: "ok"})
	require.NoError(t, err)
	require.Len(t, ev, 2)
}

func TestCredentialsSealedValidatedAndNeverReturned(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfg := adminConfig(t, c)
	a := newAgent(t, cfg)
	key, err := os.ReadFile(c.User(t, "dave").Key)
	require.NoError(t, err)
	require.NoError(t, a.AddMember(as("alice"), plugin.Member{Name: "dave", Role: "member"}))

	// Bad input gets a specific message and changes nothing.
	for _, tc := range []struct {
		spec plugin.CredentialSpec
		msg  string
	}{
		{plugin.CredentialSpec{Identity: "local", Member: "dave", Username: ".dave", Key: key}, "starts with '.'"},
		{plugin.CredentialSpec{Identity: "local", Member: "dave", Username: "dave", Key: key[:len(key)/2]}, "END line is missing"},
		{plugin.CredentialSpec{Identity: "local", Member: "dave", Username: "dave", Key: []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9CD+DAwJHkhFqPdSkZjeh51XaBF8CiHVGcg3+5lpXw dave")}, "public key"},
		{plugin.CredentialSpec{Identity: "nosuch", Member: "dave", Username: "dave", Key: key}, "identity"},
	} {
		_, err := a.SetCredential(as("alice"), tc.spec)
		require.ErrorContains(t, err, tc.msg)
	}
	bobKey, err := os.ReadFile(c.User(t, "bob").Key)
	require.NoError(t, err)
	_, err = a.SetCredential(as("bob"), plugin.CredentialSpec{Identity: "local", Member: "bob", Username: "bob", Key: bobKey})
	require.ErrorContains(t, err, "this key needs its passphrase")
	_, err = a.SetCredential(as("bob"), plugin.CredentialSpec{Identity: "local", Member: "bob", Username: "bob", Key: bobKey, Passphrase: []byte("wrong")})
	require.ErrorContains(t, err, "incorrect passphrase")

	// dave's wrong credential (alice's key, from the config) is replaced by his own.
	cr, err := a.SetCredential(as("dave"), plugin.CredentialSpec{Identity: "local", Member: "dave", Username: "dave", Key: key})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cr.Fingerprint, "SHA256:"))
	require.Equal(t, "ed25519", cr.KeyType)
	// dave's key now logs in; the preflight also shows he is not in the shared group, with the fix.
	checks, err := a.TestIdentity(as("dave"), "local", "dave")
	require.NoError(t, err)
	byName := map[string]plugin.Check{}
	for _, ch := range checks {
		byName[ch.Name] = ch
	}
	require.True(t, byName["login"].OK)
	require.True(t, byName["username"].OK)
	require.False(t, byName["group"].OK)
	require.Contains(t, byName["group"].Fix, "usermod -aG ferryshare dave")
	creds, err := a.ListCredentials(as("alice"), "local")
	require.NoError(t, err)
	for _, c := range creds {
		if c.Member == "dave" {
			require.Equal(t, plugin.CredVerified, c.Status)
		}
	}
	require.NoError(t, a.Close())

	// At rest: the store is 0600 and holds neither key bodies nor passphrases.
	db := filepath.Join(cfg.Agent.StateDir, "ferry.db")
	fi, err := os.Stat(db)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(db)
	require.NoError(t, err)
	body := strings.Split(string(key), "\n")[1]
	require.False(t, bytes.Contains(raw, []byte(body)), "key body found in the store")
	require.False(t, bytes.Contains(raw, []byte(c.User(t, "bob").Passphrase)), "passphrase found in the store")
	require.False(t, bytes.Contains(raw, []byte("PRIVATE KEY")))

	// Rotation re-seals everything; a restarted agent opens them with the new key.
	b := newAgent(t, cfg)
	n, err := b.RotateKeys(as("alice"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 5) // four keys and bob's passphrase
	require.NoError(t, b.Close())
	b2 := newAgent(t, cfg)
	defer b2.Close()
	j := submit(t, b2, "bob", "after-rotate", "exit 0\n", plugin.Resources{})
	got := wait(t, b2, []string{j.ID}, time.Minute)
	require.Equal(t, 0, *got[j.ID].ExitCode)
}

// TestBadKeyIsHeld: a credential that keeps failing is held after max_failures, so the agent stops
// spending the login node's per-address penalty budget on it; updating the credential releases it.
func TestBadKeyIsHeld(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfg := adminConfig(t, c)
	cfg.Credentials.MaxFailures = 2
	cfg.Credentials.Backoff = config.Duration{Duration: time.Millisecond}
	a := newAgent(t, cfg)
	defer a.Close()
	req := plugin.SubmitRequest{Identity: "local", User: "dave", Name: "x", Script: []byte("true\n")}
	for i := 0; i < 2; i++ {
		time.Sleep(5 * time.Millisecond)
		_, err := a.Submit(context.Background(), req)
		require.ErrorContains(t, err, "authentication refused")
	}
	time.Sleep(5 * time.Millisecond)
	_, err := a.Submit(context.Background(), req)
	require.ErrorContains(t, err, "held after 2 failed logins")
	id, err := a.GetIdentity(context.Background(), "local")
	require.NoError(t, err)
	status := map[string]string{}
	for _, m := range id.Members {
		status[m.Member] = m.Status
	}
	require.Equal(t, plugin.CredHeld, status["dave"])
	require.Equal(t, plugin.CredMissing, func() string {
		require.NoError(t, a.AddMember(context.Background(), plugin.Member{Name: "erin", Role: "member"}))
		id, _ := a.GetIdentity(context.Background(), "local")
		for _, m := range id.Members {
			if m.Member == "erin" {
				return m.Status
			}
		}
		return ""
	}())
	ev, err := a.Audit(context.Background(), plugin.AuditFilter{Action: "login.failure", Subject: "dave"})
	require.NoError(t, err)
	require.Len(t, ev, 2)
	// Others are unaffected, and a new credential releases the hold.
	j := submit(t, a, "alice", "unaffected", "exit 0\n", plugin.Resources{})
	key, err := os.ReadFile(c.User(t, "dave").Key)
	require.NoError(t, err)
	_, err = a.SetCredential(context.Background(), plugin.CredentialSpec{Identity: "local", Member: "dave", Username: "dave", Key: key})
	require.NoError(t, err)
	checks, err := a.TestIdentity(context.Background(), "local", "dave")
	require.NoError(t, err)
	require.Equal(t, "login", checks[0].Name)
	require.True(t, checks[0].OK, "%+v", checks[0])
	wait(t, a, []string{j.ID}, time.Minute)
}

func TestIdentityLifecycleAndSafety(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, adminConfig(t, c))
	defer a.Close()
	ctx := as("alice")
	keys, err := a.ScanHostKey(ctx, c.Host, c.Port)
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	require.Contains(t, c.KnownHosts, strings.Fields(keys[0].KnownHosts)[2], "scanned key is the pinned one")

	spec := plugin.IdentitySpec{Name: "second", Scheduler: "slurm", Host: c.Host, Port: c.Port, WorkDir: c.WorkDir, Group: c.Group, KnownHosts: keys[0].KnownHosts}
	_, err = a.CreateIdentity(ctx, spec)
	require.NoError(t, err)
	_, err = a.CreateIdentity(ctx, spec)
	require.ErrorIs(t, err, plugin.ErrAlreadyExists)
	bad := spec
	bad.Name, bad.Host, bad.Port = "bad name", "host;rm -rf /", 70000
	_, err = a.CreateIdentity(ctx, bad)
	require.ErrorIs(t, err, plugin.ErrInvalidArgument)
	require.ErrorContains(t, err, "name")
	require.ErrorContains(t, err, "host")
	require.ErrorContains(t, err, "port")

	key, err := os.ReadFile(c.User(t, "alice").Key)
	require.NoError(t, err)
	_, err = a.SetCredential(ctx, plugin.CredentialSpec{Identity: "second", Member: "alice", Username: "alice", Key: key})
	require.NoError(t, err)
	j, err := a.Submit(ctx, plugin.SubmitRequest{Identity: "second", User: "alice", Name: "busy", Script: []byte("sleep 60\n")})
	require.NoError(t, err)

	// Editing an identity in use warns and needs force; deleting it or the credential is refused.
	edit := spec
	edit.WorkDir = c.WorkDir + "/elsewhere"
	_, err = a.EditIdentity(ctx, "second", edit, false)
	require.ErrorIs(t, err, plugin.ErrFailedPrecondition)
	require.ErrorContains(t, err, j.ID)
	require.ErrorContains(t, err, "--force")
	require.ErrorIs(t, a.DeleteIdentity(ctx, "second"), plugin.ErrFailedPrecondition)
	require.ErrorIs(t, a.DeleteCredential(ctx, "second", "alice"), plugin.ErrFailedPrecondition)
	_, err = a.EditIdentity(ctx, "second", edit, true)
	require.NoError(t, err)

	// A changed host key is refused until an owner accepts the new one.
	wrong := spec
	wrong.KnownHosts = strings.Replace(keys[0].KnownHosts, strings.Fields(keys[0].KnownHosts)[2], "AAAAC3NzaC1lZDI1NTE5AAAAIK9CD+DAwJHkhFqPdSkZjeh51XaBF8CiHVGcg3+5lpXX", 1)
	_, err = a.EditIdentity(ctx, "second", wrong, true)
	require.NoError(t, err)
	_, err = a.Submit(ctx, plugin.SubmitRequest{Identity: "second", User: "alice", Name: "x", Script: []byte("true\n")})
	require.ErrorContains(t, err, "host key mismatch")
	require.ErrorContains(t, err, "owner must accept")

	// While the pinned key is wrong even a cancel is refused; accepting the right key fixes it.
	res, err := a.Cancel(ctx, []string{j.ID})
	require.NoError(t, err)
	require.Contains(t, res[0].Error, "host key mismatch")
	_, err = a.EditIdentity(ctx, "second", spec, true)
	require.NoError(t, err)
	res, err = a.Cancel(ctx, []string{j.ID})
	require.NoError(t, err)
	require.Equal(t, "", res[0].Error)
	wait(t, a, []string{j.ID}, 2*time.Minute)
	require.NoError(t, a.DeleteIdentity(ctx, "second"))
	_, err = a.GetIdentity(ctx, "second")
	require.ErrorIs(t, err, plugin.ErrNotFound)
}

func TestPreflight(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, adminConfig(t, c))
	defer a.Close()
	ctx := as("alice")
	checks, err := a.TestIdentity(ctx, "local", "")
	require.NoError(t, err)
	results := map[string]bool{}
	for _, ch := range checks {
		results[ch.Member+"/"+ch.Name] = ch.OK
		if ch.Member != "dave" {
			require.True(t, ch.OK, "%+v", ch)
		}
		if ch.OK {
			// An ok row says what passed, never the failure's wording.
			require.NotRegexp(t, `expected|not a|needs|cannot|could not|no default`, ch.Detail, "%+v", ch)
		}
	}
	for _, m := range []string{"alice", "bob", "carol"} {
		for _, name := range []string{"login", "username", "group", "work dir", "work dir group", "setgid", "default ACL"} {
			require.True(t, results[m+"/"+name], "%s/%s missing or failed", m, name)
		}
	}
	require.True(t, results["bob/group write"])
	require.False(t, results["dave/login"], "dave's config credential holds alice's key")

	// A work dir prepared without the recipe fails with the commands that fix it.
	spec := plugin.IdentitySpec{Name: "unprepared", Scheduler: "slurm", Host: c.Host, Port: c.Port, WorkDir: "/tmp", Group: c.Group, KnownHosts: c.KnownHosts}
	_, err = a.CreateIdentity(ctx, spec)
	require.NoError(t, err)
	key, err := os.ReadFile(c.User(t, "alice").Key)
	require.NoError(t, err)
	_, err = a.SetCredential(ctx, plugin.CredentialSpec{Identity: "unprepared", Member: "alice", Username: "alice", Key: key})
	require.NoError(t, err)
	checks, err = a.TestIdentity(ctx, "unprepared", "alice")
	require.NoError(t, err)
	fixes, details := map[string]string{}, map[string]string{}
	for _, ch := range checks {
		if !ch.OK {
			fixes[ch.Name] = ch.Fix
			details[ch.Name] = ch.Detail
		}
	}
	require.Contains(t, details["work dir group"], "expected ferryshare")
	require.Contains(t, details["setgid"], "needs setgid")
	require.Equal(t, "chgrp -R ferryshare /tmp", fixes["work dir group"])
	require.Equal(t, "chmod -R g+wxs /tmp", fixes["setgid"])
	require.Equal(t, "setfacl -Rdm g::rwX /tmp", fixes["default ACL"])
	// Members may test only themselves.
	_, err = a.TestIdentity(as("bob"), "local", "")
	require.ErrorIs(t, err, plugin.ErrPermissionDenied)
}

// TestIdentityBehindJumpHost reaches the login node through a bastion (the same real sshd; each
// member logs in there with their own credential) and runs bob's job: both hosts pinned by their
// own known_hosts line.
func TestIdentityBehindJumpHost(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, adminConfig(t, c))
	defer a.Close()
	ctx := as("alice")
	spec := plugin.IdentitySpec{Name: "bastioned", Scheduler: "slurm", Host: c.Host, Port: c.Port, WorkDir: c.WorkDir,
		Group: c.Group, KnownHosts: c.KnownHosts, JumpHost: fmt.Sprintf("%s:%d", c.Host, c.Port)}
	_, err := a.CreateIdentity(ctx, spec)
	require.NoError(t, err)
	bad := spec
	bad.Name, bad.JumpHost = "bastioned2", "alice@bastion.example.org:22"
	_, err = a.CreateIdentity(ctx, bad)
	require.ErrorContains(t, err, "jump host: known_hosts: no line for bastion.example.org")

	key, err := os.ReadFile(c.User(t, "bob").Key)
	require.NoError(t, err)
	_, err = a.SetCredential(ctx, plugin.CredentialSpec{Identity: "bastioned", Member: "bob", Username: "bob", Key: key, Passphrase: []byte(c.User(t, "bob").Passphrase)})
	require.NoError(t, err)
	j, err := a.Submit(ctx, plugin.SubmitRequest{Identity: "bastioned", User: "bob", Name: "via-bastion", Script: []byte("id -un\n")})
	require.NoError(t, err)
	got := wait(t, a, []string{j.ID}, time.Minute)
	require.Equal(t, "completed", got[j.ID].Status)
	require.Equal(t, "bob", got[j.ID].Owner)
}

// TestScanHostKeyThroughJumpHost scans the login node's host key through a bastion (the real sshd,
// logged in to with alice's key; it then dials the login node from its side): the key found is the
// cluster's. A bastion whose key is not the pinned one, a key the bastion refuses, and a missing
// pin are refused with what to fix; the key is never part of any error.
func TestScanHostKeyThroughJumpHost(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, adminConfig(t, c))
	defer a.Close()
	ctx := as("alice")
	key, err := os.ReadFile(c.User(t, "alice").Key)
	require.NoError(t, err)
	via := plugin.JumpScan{Host: c.Host, Port: c.Port, User: "alice", KnownHosts: c.KnownHosts, Key: key}
	keys, err := a.ScanHostKeyVia(ctx, "localhost", c.Port, via)
	require.NoError(t, err)
	want := strings.Fields(c.KnownHosts)
	found := false
	for _, k := range keys {
		f := strings.Fields(k.KnownHosts)
		require.Equal(t, fmt.Sprintf("[localhost]:%d", c.Port), f[0])
		found = found || (f[1] == want[1] && f[2] == want[2])
	}
	require.True(t, found, "the scan through the bastion finds the login node's pinned key: %+v", keys)

	wrongPin := via
	wrongPin.KnownHosts = fmt.Sprintf("[%s]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9CD+DAwJHkhFqPdSkZjeh51XaBF8CiHVGcg3+5lpXX", c.Host, c.Port)
	_, err = a.ScanHostKeyVia(ctx, "localhost", c.Port, wrongPin)
	require.ErrorIs(t, err, plugin.ErrFailedPrecondition)
	require.ErrorContains(t, err, "jump host")

	wrongKey := via
	wrongKey.User = "dave" // dave's authorized key is not alice's
	_, err = a.ScanHostKeyVia(ctx, "localhost", c.Port, wrongKey)
	require.ErrorIs(t, err, plugin.ErrPermissionDenied)
	require.NotContains(t, err.Error(), strings.Split(string(key), "\n")[1])

	noPin := via
	noPin.KnownHosts = ""
	_, err = a.ScanHostKeyVia(ctx, "localhost", c.Port, noPin)
	require.ErrorIs(t, err, plugin.ErrInvalidArgument)

	_, err = a.ScanHostKeyVia(as("bob"), "localhost", c.Port, via)
	require.ErrorIs(t, err, plugin.ErrPermissionDenied, "only owners scan")
}
