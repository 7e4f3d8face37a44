package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/plugin"
)

// These tests run the CLI in-process (and once as a built binary) against a fake agent served on
// a real socket by plugin.ServeSocket: no cluster needed.

// fakeAgent is a plugin.Service and plugin.Admin that records what the CLI sent. The Service
// methods the CLI tests do not use are left to the embedded nil Service (they would panic).
type fakeAgent struct {
	plugin.Service

	// Canned answers.
	identity    plugin.Identity
	identities  []plugin.Identity
	hostKeys    []plugin.HostKey
	checks      []plugin.Check
	members     []plugin.Member
	credentials []plugin.Credential
	events      []plugin.AuditEvent
	pools       []plugin.PoolStats
	jobs        []plugin.Job
	watch       []plugin.JobEvent // sent by Watch, which then returns
	err         error             // returned by every Admin method when set
	credErr     error             // returned by SetCredential when set

	mu       sync.Mutex // guards the fields below
	calls    []string
	actor    plugin.Actor
	spec     plugin.IdentitySpec
	name     string
	force    bool
	member   plugin.Member
	cred     plugin.CredentialSpec
	filter   plugin.AuditFilter
	scanned  string
	via      plugin.JumpScan
	password string
}

var (
	_ plugin.Service = (*fakeAgent)(nil)
	_ plugin.Admin   = (*fakeAgent)(nil)
)

func (f *fakeAgent) call(ctx context.Context, name string, set func()) error {
	a, _ := plugin.ActorFrom(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.actor = a
	set()
	return f.err
}

func (f *fakeAgent) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeAgent) ListJobs(ctx context.Context, _ plugin.ListRequest) ([]plugin.Job, error) {
	return f.jobs, f.call(ctx, "ListJobs", func() {})
}

func (f *fakeAgent) Watch(ctx context.Context, _ plugin.WatchRequest, fn func(plugin.JobEvent) error) error {
	for _, ev := range f.watch {
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeAgent) ListIdentities(ctx context.Context) ([]plugin.Identity, error) {
	return f.identities, f.call(ctx, "ListIdentities", func() {})
}

func (f *fakeAgent) GetIdentity(ctx context.Context, name string) (plugin.Identity, error) {
	return f.identity, f.call(ctx, "GetIdentity", func() { f.name = name })
}

func (f *fakeAgent) ScanHostKey(ctx context.Context, host string, port int) ([]plugin.HostKey, error) {
	return f.hostKeys, f.call(ctx, "ScanHostKey", func() { f.scanned = fmt.Sprintf("%s:%d", host, port) })
}

func (f *fakeAgent) ScanHostKeyVia(ctx context.Context, host string, port int, via plugin.JumpScan) ([]plugin.HostKey, error) {
	return f.hostKeys, f.call(ctx, "ScanHostKeyVia", func() {
		f.scanned = fmt.Sprintf("%s:%d via %s@%s:%d", host, port, via.User, via.Host, via.Port)
		f.via = via
	})
}

func (f *fakeAgent) CreateIdentity(ctx context.Context, spec plugin.IdentitySpec) (plugin.Identity, error) {
	return f.identity, f.call(ctx, "CreateIdentity", func() { f.spec = spec })
}

func (f *fakeAgent) EditIdentity(ctx context.Context, name string, spec plugin.IdentitySpec, force bool) (plugin.Identity, error) {
	return f.identity, f.call(ctx, "EditIdentity", func() { f.name, f.spec, f.force = name, spec, force })
}

func (f *fakeAgent) DeleteIdentity(ctx context.Context, name string) error {
	return f.call(ctx, "DeleteIdentity", func() { f.name = name })
}

func (f *fakeAgent) TestIdentity(ctx context.Context, name, member string) ([]plugin.Check, error) {
	return f.checks, f.call(ctx, "TestIdentity", func() { f.name, f.member.Name = name, member })
}

func (f *fakeAgent) ListMembers(ctx context.Context) ([]plugin.Member, error) {
	return f.members, f.call(ctx, "ListMembers", func() {})
}

func (f *fakeAgent) AddMember(ctx context.Context, m plugin.Member) error {
	return f.call(ctx, "AddMember", func() { f.member = m })
}

func (f *fakeAgent) RemoveMember(ctx context.Context, name string) error {
	return f.call(ctx, "RemoveMember", func() { f.name = name })
}

func (f *fakeAgent) SetCredential(ctx context.Context, c plugin.CredentialSpec) (plugin.Credential, error) {
	// Copy: the CLI clears its buffers after the call.
	c.Key, c.Passphrase = bytes.Clone(c.Key), bytes.Clone(c.Passphrase)
	cr := fakeCredential()
	cr.Identity, cr.Member, cr.Username = c.Identity, c.Member, c.Username
	if err := f.call(ctx, "SetCredential", func() { f.cred = c }); err != nil {
		return plugin.Credential{}, err
	}
	return cr, f.credErr
}

func (f *fakeAgent) DeleteCredential(ctx context.Context, identity, member string) error {
	return f.call(ctx, "DeleteCredential", func() { f.name, f.member.Name = identity, member })
}

func (f *fakeAgent) ListCredentials(ctx context.Context, identity string) ([]plugin.Credential, error) {
	return f.credentials, f.call(ctx, "ListCredentials", func() { f.name = identity })
}

func (f *fakeAgent) RotateKeys(ctx context.Context) (int, error) {
	return 7, f.call(ctx, "RotateKeys", func() {})
}

func (f *fakeAgent) Audit(ctx context.Context, filter plugin.AuditFilter) ([]plugin.AuditEvent, error) {
	return f.events, f.call(ctx, "Audit", func() { f.filter = filter })
}

func (f *fakeAgent) Pools(ctx context.Context) ([]plugin.PoolStats, error) {
	return f.pools, f.call(ctx, "Pools", func() {})
}

func (f *fakeAgent) SetPassword(ctx context.Context, member string, password []byte) error {
	return f.call(ctx, "SetPassword", func() { f.member.Name, f.password = member, string(password) })
}

func (f *fakeAgent) Invite(ctx context.Context, member string) (plugin.Invite, error) {
	return plugin.Invite{Member: member, URL: "https://ferry.example.org/invite/s3cret", Expires: time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)},
		f.call(ctx, "Invite", func() { f.member.Name = member })
}

const (
	testFingerprint = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
	testHostKeyFP   = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
	testKnownHosts  = "login.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	// testKey is a private key's content as the CLI reads it; its body line must never be printed.
	testKey        = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n"
	testPassphrase = "correct horse battery staple"
)

func fakeCredential() plugin.Credential {
	return plugin.Credential{
		Identity: "lab-a", Member: "alice", Username: "alice", KeyType: "ed25519", Fingerprint: testFingerprint,
		Encrypted: true, AddedBy: "root", AddedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Status: plugin.CredVerified, LastOK: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
	}
}

func fakeIdentity() plugin.Identity {
	return plugin.Identity{
		IdentitySpec: plugin.IdentitySpec{Name: "lab-a", Scheduler: "slurm", Host: "login.example.org", Port: 22,
			WorkDir: "/scratch/lab-a", Group: "lab", KnownHosts: testKnownHosts},
		HostKeys:  []plugin.HostKey{{Type: "ssh-ed25519", Fingerprint: testHostKeyFP, KnownHosts: testKnownHosts}},
		CreatedBy: "root", CreatedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		Members: []plugin.MemberStatus{
			{Member: "alice", Role: "owner", Status: plugin.CredVerified, Username: "alice"},
			{Member: "bob", Role: "member", Status: plugin.CredMissing},
		},
		ActiveJobs: 2,
	}
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{
		identity:    fakeIdentity(),
		identities:  []plugin.Identity{fakeIdentity()},
		hostKeys:    []plugin.HostKey{{Type: "ssh-ed25519", Fingerprint: testHostKeyFP, KnownHosts: testKnownHosts}},
		members:     []plugin.Member{{Name: "alice", Role: "owner", UnixUsers: []string{"alice"}}, {Name: "bob", Role: "member"}},
		credentials: []plugin.Credential{fakeCredential()},
		events: []plugin.AuditEvent{{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Actor: "root", Via: "cli",
			Action: "credential.add", Identity: "lab-a", Subject: "alice", Outcome: "ok"}},
		pools: []plugin.PoolStats{{Identity: "lab-a", User: "alice", Connections: 1, Sessions: 2, Dials: 3,
			DialFailures: 1, CommandsPerMinute: 12, LastError: "ssh: handshake failed"}},
	}
}

// serveFake serves f on a fresh socket (every uid is the member "cli-user") until the test ends.
func serveFake(t *testing.T, f plugin.Service) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-cli-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "ferry.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	resolve := func(uint32) (plugin.Actor, error) { return plugin.Actor{Member: "cli-user"}, nil }
	go func() { done <- plugin.ServeSocket(ctx, f, sock, resolve, hclog.NewNullLogger()) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	waitForSocket(t, sock)
	return sock
}

// waitForSocket waits until a server answers on sock (the file exists a moment before).
func waitForSocket(t *testing.T, sock string) {
	t.Helper()
	require.Eventually(t, func() bool {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "nothing serves %s", sock)
}

// result is one in-process CLI run.
type result struct {
	code      int
	stdout    string
	stderr    string
	allOutput string
}

// runCLI runs the CLI with args, stdin and the environment env (nothing else from the process's),
// without a terminal.
func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{
		in:      strings.NewReader(stdin),
		out:     &out,
		errOut:  &errOut,
		getenv:  func(k string) string { return env[k] },
		openTTY: func() (*os.File, error) { return nil, errors.New("no terminal in tests") },
	}
	code := run(args, c)
	return result{code: code, stdout: out.String(), stderr: errOut.String(), allOutput: out.String() + errOut.String()}
}

func TestCLIIdentityAddWithKnownHosts(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "identity", "add", "lab-a", "--socket", sock, "--scheduler", "slurm",
		"--host", "login.example.org", "--port", "2222", "--workdir", "/scratch/lab-a", "--group", "lab",
		"--known-hosts", testKnownHosts, "--jump", "hop@bastion.example.org:22")
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, plugin.IdentitySpec{Name: "lab-a", Scheduler: "slurm", Host: "login.example.org", Port: 2222,
		WorkDir: "/scratch/lab-a", Group: "lab", KnownHosts: testKnownHosts, JumpHost: "hop@bastion.example.org:22"}, f.spec)
	assert.Equal(t, []string{"CreateIdentity"}, f.Calls(), "a pinned key is not scanned")
	assert.Equal(t, plugin.Actor{Member: "cli-user", Via: plugin.ViaCLI}, f.actor)
	assert.Contains(t, r.stdout, `identity "lab-a" created`)
	assert.Contains(t, r.stdout, testHostKeyFP)
	assert.Regexp(t, `MEMBER\s+ROLE\s+STATUS\s+USERNAME`, r.stdout)
	assert.Regexp(t, `bob\s+member\s+missing credentials\s+-`, r.stdout)

	// The same from a known_hosts file, with --json.
	khFile := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(khFile, []byte(testKnownHosts+"\n"), 0o644))
	r = runCLI(t, "", nil, "identity", "add", "--socket", sock, "lab-a", "--scheduler=slurm", "--host=login.example.org",
		"--workdir=/scratch/lab-a", "--group=lab", "--known-hosts-file", khFile, "--json")
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, testKnownHosts, f.spec.KnownHosts)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	assert.Equal(t, "lab-a", v["name"])
	assert.EqualValues(t, 2, v["active_jobs"])
}

func TestCLIIdentityAddScansTheHostKeyAndAsks(t *testing.T) {
	args := []string{"identity", "add", "lab-a", "--scheduler", "slurm", "--host", "login.example.org",
		"--workdir", "/scratch/lab-a", "--group", "lab"}
	t.Run("yes", func(t *testing.T) {
		f := newFakeAgent()
		r := runCLI(t, "y\n", nil, append(args, "--socket", serveFake(t, f))...)
		require.Equal(t, 0, r.code, r.allOutput)
		assert.Equal(t, []string{"ScanHostKey", "CreateIdentity"}, f.Calls())
		assert.Equal(t, "login.example.org:22", f.scanned)
		assert.Equal(t, testKnownHosts, f.spec.KnownHosts)
		assert.Contains(t, r.stderr, "ssh-ed25519")
		assert.Contains(t, r.stderr, testHostKeyFP)
		assert.Contains(t, r.stderr, "Trust this host key? [y/N]")
	})
	for _, answer := range []string{"n\n", "\n", "", "yes please\n"} {
		t.Run(fmt.Sprintf("answer %q", answer), func(t *testing.T) {
			f := newFakeAgent()
			r := runCLI(t, answer, nil, append(args, "--socket", serveFake(t, f))...)
			assert.Equal(t, 1, r.code, r.allOutput)
			assert.Contains(t, r.stderr, "host key not trusted; nothing was changed")
			assert.Equal(t, []string{"ScanHostKey"}, f.Calls(), "nothing may be created")
		})
	}
	t.Run("--yes", func(t *testing.T) {
		f := newFakeAgent()
		r := runCLI(t, "", nil, append(args, "--yes", "--socket", serveFake(t, f))...)
		require.Equal(t, 0, r.code, r.allOutput)
		assert.Equal(t, testKnownHosts, f.spec.KnownHosts)
		assert.Contains(t, r.stderr, "warning: trusting this host key without confirmation")
		assert.NotContains(t, r.stderr, "[y/N]")
	})
}

func TestCLIIdentityAddRefusesIncompleteCommands(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "identity", "add", "lab-a", "--socket", sock, "--host", "h")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "missing --scheduler, --workdir, --group")
	r = runCLI(t, "", nil, "identity", "add", "--socket", sock, "--host", "h")
	assert.Equal(t, 2, r.code)
	r = runCLI(t, "", nil, "identity", "add", "lab-a", "--socket", sock, "--scheduler", "slurm", "--host", "h",
		"--workdir", "/w", "--group", "g", "--known-hosts", "x", "--known-hosts-file", "y")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "not both")
	r = runCLI(t, "", nil, "identity", "frobnicate", "--socket", sock)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown command "frobnicate"`)
	// An unknown scheduler is refused before the host key is scanned (no ScanHostKey call).
	r = runCLI(t, "", nil, "identity", "add", "lab-a", "--socket", sock, "--scheduler", "slurmm", "--host", "h",
		"--workdir", "/w", "--group", "g")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown --scheduler "slurmm"`)
	assert.Contains(t, r.stderr, "altair (= pbspro)")
	r = runCLI(t, "", nil, "identity", "edit", "lab-a", "--socket", sock, "--scheduler", "pbs")
	assert.Equal(t, 2, r.code)
	assert.Empty(t, f.Calls())
	// An alias is sent as its kind.
	r = runCLI(t, "", nil, "identity", "add", "lab-a", "--socket", sock, "--scheduler", "altair", "--host", "h",
		"--workdir", "/w", "--group", "g", "--known-hosts", testKnownHosts)
	assert.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, "pbspro", f.spec.Scheduler)
}

func TestCLIIdentityEdit(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "identity", "edit", "lab-a", "--socket", sock, "--workdir", "/scratch/new", "--force")
	require.Equal(t, 0, r.code, r.allOutput)
	want := fakeIdentity().IdentitySpec
	want.WorkDir = "/scratch/new"
	assert.Equal(t, want, f.spec, "unchanged settings are kept")
	assert.True(t, f.force)
	assert.Equal(t, []string{"GetIdentity", "EditIdentity"}, f.Calls())

	// A new host needs its key confirmed.
	f2 := newFakeAgent()
	f2.hostKeys = []plugin.HostKey{{Type: "ssh-ed25519", Fingerprint: "SHA256:new", KnownHosts: "login2 ssh-ed25519 AAAA"}}
	r = runCLI(t, "y\n", nil, "identity", "edit", "lab-a", "--socket", serveFake(t, f2), "--host", "login2")
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, "login2:22", f2.scanned)
	assert.Equal(t, "login2 ssh-ed25519 AAAA", f2.spec.KnownHosts)

	// Active jobs: the agent refuses and the CLI says how to go on.
	f3 := newFakeAgent()
	f3.err = fmt.Errorf("%w: identity %q has 2 active jobs (j1, j2) that may break", plugin.ErrFailedPrecondition, "lab-a")
	r = runCLI(t, "", nil, "identity", "edit", "lab-a", "--socket", serveFake(t, f3), "--group", "other")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "2 active jobs")
}

func TestCLIIdentityTestPrintsFixes(t *testing.T) {
	f := newFakeAgent()
	f.checks = []plugin.Check{
		{Member: "alice", Name: "login", OK: true, Detail: "key accepted"},
		{Member: "alice", Name: "setgid", OK: false, Detail: "mode drwxrwx---", Fix: "chmod g+s /scratch/lab-a"},
		{Member: "alice", Name: "default ACL", OK: false, Detail: "no default ACL", Fix: "setfacl -d -m g::rwx /scratch/lab-a"},
	}
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "identity", "test", "lab-a", "--socket", sock, "--user", "alice")
	assert.Equal(t, 1, r.code, r.allOutput)
	assert.Regexp(t, `MEMBER\s+CHECK\s+RESULT\s+DETAIL`, r.stdout)
	assert.Regexp(t, `alice\s+login\s+ok`, r.stdout)
	assert.Regexp(t, `alice\s+setgid\s+FAIL\s+mode drwxrwx---`, r.stdout)
	assert.Contains(t, r.stdout, "chmod g+s /scratch/lab-a")
	assert.Contains(t, r.stdout, "setfacl -d -m g::rwx /scratch/lab-a")
	assert.Contains(t, r.stderr, "2 of 3 checks failed")
	assert.Equal(t, "alice", f.member.Name)

	r = runCLI(t, "", nil, "identity", "test", "lab-a", "--socket", sock, "--json")
	assert.Equal(t, 1, r.code)
	var checks []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &checks), r.stdout)
	require.Len(t, checks, 3)
	assert.Equal(t, "chmod g+s /scratch/lab-a", checks[1]["fix"])

	f.checks = f.checks[:1]
	r = runCLI(t, "", nil, "identity", "test", "lab-a", "--socket", sock)
	assert.Equal(t, 0, r.code, r.allOutput)
}

func TestCLIMembers(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "member", "add", "carol", "--role", "member", "--unix-user", "carol", "--unix-user", "cw", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, plugin.Member{Name: "carol", Role: "member", UnixUsers: []string{"carol", "cw"}}, f.member)
	assert.Contains(t, r.stdout, `member "carol" added as member`)

	r = runCLI(t, "", nil, "member", "add", "dave", "--role", "admin", "--socket", sock)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `--role must be "owner" or "member"`)

	r = runCLI(t, "", nil, "member", "list", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Regexp(t, `NAME\s+ROLE\s+UNIX USERS`, r.stdout)
	assert.Regexp(t, `bob\s+member\s+-`, r.stdout)

	r = runCLI(t, "", nil, "member", "remove", "bob", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, "bob", f.name)
}

// An owner invites a member or sets their first web password from the CLI; the password reaches
// the agent as typed (from a file here) and is never printed.
func TestCLIMemberInviteAndPasswd(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "member", "invite", "carol", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, "carol", f.member.Name)
	assert.Contains(t, r.stdout, "https://ferry.example.org/invite/s3cret")
	assert.Contains(t, r.stdout, "usable once")

	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("correct horse battery staple\n"), 0o600))
	r = runCLI(t, "", nil, "member", "passwd", "carol", "--password-file", pwFile, "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, "correct horse battery staple", f.password, "the newline ends the password")
	assert.NotContains(t, r.allOutput, "horse")

	r = runCLI(t, "", nil, "member", "passwd", "carol", "--socket", sock)
	assert.Equal(t, 2, r.code, "without a terminal or a file there is no way to type it")
	assert.Contains(t, r.stderr, "--password-file")
}

// The credential's secrets reach the agent byte for byte, and never any output.
func TestCLICredsAddSendsTheSecretsAndNeverPrintsThem(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id_ed25519")
	require.NoError(t, os.WriteFile(keyFile, []byte(testKey), 0o600))
	passFile := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600))
	keyBody := strings.Split(testKey, "\n")[1]

	tests := []struct {
		name     string
		stdin    string
		env      map[string]string
		args     []string
		wantPass string
	}{
		{"key file and passphrase file", "", nil, []string{"--key-file", keyFile, "--passphrase-file", passFile}, testPassphrase},
		{"key on stdin", testKey, nil, []string{"--key-file", "-", "--passphrase-file", passFile}, testPassphrase},
		{"passphrase from the environment", "", map[string]string{"FERRY_PASSPHRASE": testPassphrase}, []string{"--key-file", keyFile}, testPassphrase},
		{"passphrase file wins over the environment", "", map[string]string{"FERRY_PASSPHRASE": "other"}, []string{"--key-file", keyFile, "--passphrase-file", passFile}, testPassphrase},
		{"no passphrase", "", nil, []string{"--key-file", keyFile}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent()
			f.credentials = nil // nothing yet: add is right
			sock := serveFake(t, f)
			args := append([]string{"creds", "add", "--socket", sock, "--identity", "lab-a", "--member", "alice", "--username", "alice"}, tt.args...)
			r := runCLI(t, tt.stdin, tt.env, args...)
			require.Equal(t, 0, r.code, r.allOutput)
			assert.Equal(t, []string{"ListCredentials", "SetCredential"}, f.Calls())
			assert.Equal(t, "lab-a", f.cred.Identity)
			assert.Equal(t, "alice", f.cred.Member)
			assert.Equal(t, "alice", f.cred.Username)
			assert.Equal(t, testKey, string(f.cred.Key))
			assert.Equal(t, tt.wantPass, string(f.cred.Passphrase))
			assert.Equal(t, plugin.Actor{Member: "cli-user", Via: plugin.ViaCLI}, f.actor)

			assert.Contains(t, r.stdout, testFingerprint)
			assert.NotContains(t, r.allOutput, keyBody)
			assert.NotContains(t, r.allOutput, "PRIVATE KEY")
			assert.NotContains(t, r.allOutput, testPassphrase)
		})
	}

	t.Run("--json", func(t *testing.T) {
		f := newFakeAgent()
		f.credentials = nil
		r := runCLI(t, "", nil, "creds", "add", "--socket", serveFake(t, f), "--identity", "lab-a", "--member", "alice",
			"--username", "alice", "--key-file", keyFile, "--passphrase-file", passFile, "--json")
		require.Equal(t, 0, r.code, r.allOutput)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
		assert.Equal(t, testFingerprint, v["fingerprint"])
		assert.NotContains(t, r.allOutput, keyBody)
		assert.NotContains(t, r.allOutput, testPassphrase)
	})
}

func TestCLICredsRefusals(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(testKey), 0o600))
	base := []string{"--identity", "lab-a", "--member", "alice", "--username", "alice", "--key-file", keyFile}

	f := newFakeAgent() // alice has a credential on lab-a
	sock := serveFake(t, f)
	for _, arg := range [][]string{{"--passphrase", testPassphrase}, {"--passphrase=" + testPassphrase}, {"-passphrase", testPassphrase}} {
		r := runCLI(t, "", nil, append(append([]string{"creds", "add", "--socket", sock}, base...), arg...)...)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "a passphrase is never taken on the command line")
		assert.NotContains(t, r.allOutput, testPassphrase)
	}
	assert.Empty(t, f.Calls())

	r := runCLI(t, "", nil, append([]string{"creds", "add", "--socket", sock}, base...)...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "already has a credential")
	assert.Contains(t, r.stderr, "ferry creds edit")

	r = runCLI(t, "", nil, append([]string{"creds", "edit", "--socket", sock}, base...)...)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Contains(t, r.stdout, "replaced")

	r = runCLI(t, "", nil, "creds", "edit", "--socket", sock, "--identity", "lab-b", "--member", "alice",
		"--username", "alice", "--key-file", keyFile)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no credential")

	r = runCLI(t, "", nil, append([]string{"creds", "edit", "--socket", sock, "--ask-passphrase"}, base...)...)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--ask-passphrase needs a terminal")

	r = runCLI(t, "", nil, "creds", "add", "--socket", sock, "--identity", "lab-a")
	assert.Equal(t, 2, r.code)

	// The agent's refusal of a bad key is shown as it is, with where to put the passphrase.
	f2 := newFakeAgent()
	f2.credentials = nil
	f2.credErr = fmt.Errorf("%w: key: this key needs its passphrase", plugin.ErrInvalidArgument)
	r = runCLI(t, "", nil, append([]string{"creds", "add", "--socket", serveFake(t, f2)}, base...)...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "this key needs its passphrase")
	assert.Contains(t, r.stderr, "--passphrase-file")
}

func TestCLICredsListShowsFingerprintsNotKeys(t *testing.T) {
	f := newFakeAgent()
	f.credentials = append(f.credentials, plugin.Credential{Identity: "lab-a", Member: "bob", Username: "bob",
		KeyType: "rsa 4096", Fingerprint: "SHA256:bob", Status: plugin.CredFailing, LastError: "ssh: unable to authenticate"})
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "creds", "list", "--socket", sock, "--identity", "lab-a")
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Regexp(t, `IDENTITY\s+MEMBER\s+USERNAME\s+TYPE\s+FINGERPRINT\s+STATUS\s+LAST-OK\s+LAST-ERROR`, r.stdout)
	assert.Contains(t, r.stdout, testFingerprint)
	assert.Regexp(t, `bob\s+bob\s+rsa 4096\s+SHA256:bob\s+failing\s+-\s+ssh: unable to authenticate`, r.stdout)
	assert.Contains(t, r.stdout, "ed25519 (passphrase)")
	assert.NotContains(t, r.stdout, "PRIVATE KEY")
	assert.Equal(t, "lab-a", f.name)

	r = runCLI(t, "", nil, "creds", "list", "--socket", sock, "--json")
	require.Equal(t, 0, r.code, r.allOutput)
	var cs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &cs), r.stdout)
	require.Len(t, cs, 2)
	assert.Equal(t, testFingerprint, cs[0]["fingerprint"])
	assert.Equal(t, true, cs[0]["encrypted"])
	for _, c := range cs {
		for k := range c {
			assert.NotContains(t, []string{"key", "passphrase", "private_key"}, k)
		}
	}

	r = runCLI(t, "", nil, "creds", "delete", "--socket", sock, "--identity", "lab-a", "--member", "bob")
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, "bob", f.member.Name)
}

// Every listing's --json is one JSON document that parses.
func TestCLIJSONOutputsParse(t *testing.T) {
	f := newFakeAgent()
	f.jobs = []plugin.Job{{ID: "j1", Identity: "lab-a", User: "alice", Status: "running"}}
	sock := serveFake(t, f)
	for _, args := range [][]string{
		{"identity", "list"}, {"identity", "show", "lab-a"}, {"member", "list"}, {"creds", "list"},
		{"audit"}, {"pools"}, {"keys", "rotate"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, "", nil, append(args, "--socket", sock, "--json")...)
			require.Equal(t, 0, r.code, r.allOutput)
			var v any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
			assert.NotEmpty(t, v)

			r = runCLI(t, "", nil, append(args, "--socket", sock)...)
			require.Equal(t, 0, r.code, r.allOutput)
			assert.NotEmpty(t, r.stdout)
		})
	}
	// jobs keeps its JSON lines, now over the socket.
	r := runCLI(t, "", nil, "jobs", "--socket", sock, "--json")
	require.Equal(t, 0, r.code, r.allOutput)
	var j map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &j), r.stdout)
	assert.Equal(t, "j1", j["id"])
}

func TestCLITables(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "pools", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Regexp(t, `IDENTITY\s+USER\s+CONNS\s+SESSIONS\s+WAITERS\s+DIALS\s+FAILURES\s+CMDS/MIN\s+LAST-ERROR`, r.stdout)
	assert.Regexp(t, `lab-a\s+alice\s+1\s+2\s+0\s+3\s+1\s+12\s+ssh: handshake failed`, r.stdout)

	r = runCLI(t, "", nil, "identity", "list", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Regexp(t, `lab-a\s+slurm\s+login.example.org:22\s+/scratch/lab-a\s+lab\s+2\s+1/2`, r.stdout)

	r = runCLI(t, "", nil, "keys", "rotate", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Contains(t, r.stdout, "re-sealed 7 secrets")
}

func TestCLIAuditFilters(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	before := time.Now()
	r := runCLI(t, "", nil, "audit", "--socket", sock, "--since", "24h", "--until", "2026-03-02T00:00:00Z",
		"--actor", "root", "--identity", "lab-a", "--subject", "alice", "--action", "credential.", "--outcome", "ok", "--limit", "50")
	require.Equal(t, 0, r.code, r.allOutput)
	got := f.filter
	assert.WithinDuration(t, before.Add(-24*time.Hour), got.Since, time.Minute)
	assert.True(t, got.Until.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)), got.Until)
	got.Since, got.Until = time.Time{}, time.Time{}
	assert.Equal(t, plugin.AuditFilter{Actor: "root", Identity: "lab-a", Subject: "alice", Action: "credential.", Outcome: "ok", Limit: 50}, got)
	assert.Regexp(t, `TIME\s+ACTOR\s+VIA\s+ACTION`, r.stdout)
	assert.Contains(t, r.stdout, "credential.add")

	r = runCLI(t, "", nil, "audit", "--socket", sock, "--since", "last tuesday")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `invalid time "last tuesday"`)
}

func TestCLIErrorsExitNonZero(t *testing.T) {
	f := newFakeAgent()
	f.err = fmt.Errorf("%w: only owners may create identities", plugin.ErrPermissionDenied)
	sock := serveFake(t, f)
	r := runCLI(t, "", nil, "member", "add", "eve", "--role", "owner", "--socket", sock)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "ferry member: permission denied: only owners may create identities\n", r.stderr)
	assert.Empty(t, r.stdout)

	// No agent at all.
	r = runCLI(t, "", nil, "member", "list", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "is `ferry agent` running?")

	// A local user the agent does not know.
	dir := t.TempDir()
	sock2 := filepath.Join(dir, "f.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- plugin.ServeSocket(ctx, newFakeAgent(), sock2, rootOnlyRefusing, hclog.NewNullLogger())
	}()
	defer func() { cancel(); <-done }()
	waitForSocket(t, sock2)
	r = runCLI(t, "", nil, "pools", "--socket", sock2)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "unix user is not mapped")

	// Bad command lines exit 2.
	for _, args := range [][]string{{"nonsense"}, {"member"}, {"member", "add"}, {"pools", "--bogus"}, {"creds", "delete"}} {
		r := runCLI(t, "", nil, args...)
		assert.Equal(t, 2, r.code, "%v: %s", args, r.allOutput)
	}
}

func rootOnlyRefusing(uint32) (plugin.Actor, error) {
	return plugin.Actor{}, errors.New("unix user is not mapped to an organisation member")
}

func TestCLIFindsTheSocket(t *testing.T) {
	f := newFakeAgent()
	sock := serveFake(t, f)
	dir := t.TempDir()

	// From $FERRY_SOCKET.
	r := runCLI(t, "", map[string]string{"FERRY_SOCKET": sock}, "member", "list")
	require.Equal(t, 0, r.code, r.allOutput)

	// From the config file, read leniently: only agent.socket matters.
	cfg := filepath.Join(dir, "ferry.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[agent]\nsocket = %q\nstate_dir = \"/nonexistent\"\nfuture_key = 1\n[[identity]]\nname = \"x\"\n", sock)), 0o600))
	r = runCLI(t, "", nil, "member", "list", "--config", cfg)
	require.Equal(t, 0, r.code, r.allOutput)

	// --socket beats the environment.
	r = runCLI(t, "", map[string]string{"FERRY_SOCKET": "/nonexistent.sock"}, "member", "list", "--socket", sock)
	require.Equal(t, 0, r.code, r.allOutput)

	got, err := socketFromConfig(filepath.Join(dir, "missing.toml"), false)
	require.NoError(t, err)
	assert.Equal(t, "/run/ferry/ferry.sock", got, "a member who cannot read the config gets the default")
	_, err = socketFromConfig(filepath.Join(dir, "missing.toml"), true)
	assert.Error(t, err, "a config file named explicitly must be readable")
	require.NoError(t, os.WriteFile(cfg, []byte("[agent]\nsocket = \"\"\n"), 0o600))
	_, err = socketFromConfig(cfg, false)
	assert.ErrorContains(t, err, "disabled")
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantX   string
	}{
		{[]string{"a", "--x", "1", "b"}, []string{"a", "b"}, "1"},
		{[]string{"--x=2", "a"}, []string{"a"}, "2"},
		{[]string{"a", "--", "--x", "3"}, []string{"a", "--x", "3"}, ""},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		c := &cli{errOut: &bytes.Buffer{}}
		fs := c.flagSet("t")
		x := fs.String("x", "", "")
		pos, err := parseArgs(fs, tt.args)
		require.NoError(t, err, tt.args)
		assert.Equal(t, tt.wantPos, pos, tt.args)
		assert.Equal(t, tt.wantX, *x, tt.args)
	}
}

func TestReadPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ content, want string }{
		{"secret\n", "secret"},
		{"secret", "secret"},
		{"secret\n\n", "secret\n"}, // exactly one newline is removed
		{"secret\r\n", "secret"},
		{" sp ace \n", " sp ace "},
		{"\n", ""},
	} {
		p := filepath.Join(dir, "p")
		require.NoError(t, os.WriteFile(p, []byte(tt.content), 0o600))
		got, err := readPassphraseFile(p)
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(got), "%q", tt.content)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.AddDate(0, 0, -7),
		"2026-03-01T10:00:00Z": time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		"2026-03-01":           time.Date(2026, 3, 1, 0, 0, 0, 0, time.Local),
	} {
		got, err := parseSince(in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%q: got %v, want %v", in, got, want)
	}
	for _, bad := range []string{"yesterday", "-5h", "7x"} {
		_, err := parseSince(bad, now)
		assert.Error(t, err, bad)
	}
}

// TestCLIBinary runs the built ferry binary against the fake agent: exit statuses, standard
// input and the real terminal-less environment.
func TestCLIBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ferry binary")
	}
	bin := buildFerry(t)
	f := newFakeAgent()
	f.credentials = nil
	sock := serveFake(t, f)
	passFile := filepath.Join(t.TempDir(), "pass")
	require.NoError(t, os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600))

	cmd := exec.Command(bin, "creds", "add", "--socket", sock, "--identity", "lab-a", "--member", "alice",
		"--username", "alice", "--key-file", "-", "--passphrase-file", passFile)
	cmd.Stdin = strings.NewReader(testKey)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, testKey, string(f.cred.Key))
	assert.Equal(t, testPassphrase, string(f.cred.Passphrase))
	assert.NotContains(t, string(out), testPassphrase)

	out, err = exec.Command(bin, "member", "list", "--socket", sock, "--json").Output()
	require.NoError(t, err)
	var ms []map[string]any
	require.NoError(t, json.Unmarshal(out, &ms), string(out))
	assert.Len(t, ms, 2)

	exitCode := func(args ...string) int {
		err := exec.Command(bin, args...).Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}
	assert.Equal(t, 2, exitCode("member", "add", "x", "--socket", sock))
	assert.Equal(t, 1, exitCode("member", "list", "--socket", sock+".missing"))
	assert.Equal(t, 0, exitCode("member", "list", "--socket", sock))
}

// TestCLIJobsWatchPrintsEachChangeOnce: the watch stream repeats the listing's states and may send
// a state twice (the final one, with its exit code read); ferry jobs --watch prints one line per
// change, under one header, in the table and in JSON.
func TestCLIJobsWatchPrintsEachChangeOnce(t *testing.T) {
	f := newFakeAgent()
	zero := 0
	pending := plugin.Job{ID: "j1", User: "alice", Name: "t", SchedulerID: "7", Status: "pending"}
	running := pending
	running.Status = "running"
	done := running
	done.Status, done.Done, done.ExitCode = "completed", true, &zero
	again := done
	again.ExitCode = new(int) // the same code in another event
	f.jobs = []plugin.Job{pending}
	f.watch = []plugin.JobEvent{{Job: pending}, {Job: running}, {Job: running}, {Job: done}, {Job: again}}
	sock := serveFake(t, f)
	// The fake ends the stream after its events, which the CLI reports (exit 1).
	r := runCLI(t, "", nil, "jobs", "--socket", sock, "--watch")
	require.Equal(t, 1, r.code, r.allOutput)
	require.Contains(t, r.stderr, "ended the watch stream")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout) // header, pending, running, completed
	require.Equal(t, 1, strings.Count(r.stdout, "STATUS"), r.stdout)
	require.Contains(t, lines[1], "pending")
	require.Contains(t, lines[2], "running")
	require.Contains(t, lines[3], "completed")
	r = runCLI(t, "", nil, "jobs", "--socket", sock, "--watch", "--json")
	require.Equal(t, 1, r.code, r.allOutput)
	require.Equal(t, 3, strings.Count(strings.TrimSpace(r.stdout), "\n")+1, r.stdout)
}

// TestCLIHelpGoesToStdout: every command's and subcommand's -h/--help prints its usage on standard
// output and exits 0; a wrong flag still goes to standard error with exit status 2.
func TestCLIHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{
		{"identity", "--help"}, {"identity", "-h"}, {"identity", "help"}, {"identity", "add", "--help"}, {"identity", "test", "-h"},
		{"creds", "--help"}, {"creds", "add", "--help"}, {"member", "--help"}, {"member", "add", "-h"}, {"keys", "--help"},
		{"jobs", "--help"}, {"submit", "--help"}, {"cancel", "-h"}, {"audit", "--help"}, {"pools", "--help"}, {"--help"},
	} {
		r := runCLI(t, "", nil, args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.allOutput)
		require.Contains(t, strings.ToLower(r.stdout), "usage", "%v", args)
		require.Empty(t, r.stderr, "%v", args)
	}
	r := runCLI(t, "", nil, "identity", "add", "--bogus")
	require.Equal(t, 2, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "bogus")
}

// TestCLIIdentityAddScansThroughTheJumpHost: with --jump and no pinned key, the jump host's key is
// scanned and confirmed first, then the login node's through it with the --jump-key (and its
// passphrase), and both are pinned. Without --jump-key, or without USER@ in --jump, it says what to
// give, before calling the agent.
func TestCLIIdentityAddScansThroughTheJumpHost(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id_ed25519")
	require.NoError(t, os.WriteFile(keyFile, []byte(testKey), 0o600))
	passFile := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600))
	args := []string{"identity", "add", "lab-a", "--scheduler", "slurm", "--host", "login.internal",
		"--workdir", "/scratch/lab-a", "--group", "lab", "--jump", "alice@bastion.example.org:2200"}
	f := newFakeAgent()
	sock := serveFake(t, f)
	r := runCLI(t, "y\ny\n", nil, append(args, "--socket", sock, "--jump-key", keyFile, "--jump-passphrase-file", passFile)...)
	require.Equal(t, 0, r.code, r.allOutput)
	assert.Equal(t, []string{"ScanHostKey", "ScanHostKeyVia", "CreateIdentity"}, f.Calls())
	assert.Equal(t, "login.internal:22 via alice@bastion.example.org:2200", f.scanned)
	assert.Equal(t, testKnownHosts, f.via.KnownHosts, "the jump host's confirmed key pins it for the scan")
	assert.Equal(t, testKey, string(f.via.Key))
	assert.Equal(t, testPassphrase, string(f.via.Passphrase))
	assert.Equal(t, testKnownHosts+"\n"+testKnownHosts, f.spec.KnownHosts, "both hosts pinned")
	assert.Equal(t, 2, strings.Count(r.stderr, "Trust this host key? [y/N]"))
	assert.Contains(t, r.stderr, "login.internal:22 (through bastion.example.org) presents")
	assert.NotContains(t, r.allOutput, testPassphrase)

	f = newFakeAgent()
	sock = serveFake(t, f)
	r = runCLI(t, "", nil, append(args, "--socket", sock)...)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--jump-key")
	r = runCLI(t, "", nil, append(args[:len(args)-1], "bastion.example.org", "--socket", sock, "--jump-key", keyFile)...)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "USER@HOST")
	assert.Empty(t, f.Calls())
}
