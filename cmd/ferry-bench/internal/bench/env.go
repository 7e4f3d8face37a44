// Package bench measures Ferry against the OpenSSH baselines it must beat (issue 5), on the local
// test cluster that scripts/cluster-up brings up: a real sshd on 127.0.0.1:2222, real users, real
// Slurm. Every result is a ratio against a baseline measured in the same run, interleaved with
// Ferry's samples where the benchmark allows, because the machine is shared and loaded: absolute
// times drift by tens of percent from one minute to the next, ratios much less.
//
// The harness (Env, the Run* functions) is used by cmd/ferry-bench, which scripts/bench (`make
// bench`) runs to print one `BENCH name key=value ...` line per benchmark and write
// docs/benchmarks.md, and by the Go benchmarks of this package (`go test -run '^$' -bench .
// ./cmd/ferry-bench/internal/bench/`), which skip when the cluster is absent.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/netproxy"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// Users are the test users every multi-user benchmark acts as: alice (ed25519), bob (ed25519 with
// a passphrase) and carol (RSA-4096, tcsh login shell).
var Users = []string{"alice", "bob", "carol"}

// OneWayDelay is the delay the latency proxy adds in each direction: +10 ms round-trip time.
const OneWayDelay = 5 * time.Millisecond

// Endpoint is one way to reach the login node: directly, or through the latency proxy.
type Endpoint struct {
	Name string // "loopback" or "rtt10"
	Host string
	Port int
}

// Addr returns host:port.
func (e Endpoint) Addr() string { return sshpool.HostPort(e.Host, e.Port) }

// User is a test user with the key material both sides need.
type User struct {
	Name string
	// Key is the credential as configured (may be passphrase-protected); Passphrase decrypts it.
	Key        string
	Passphrase string
	// OpenSSHKey is an unencrypted copy of the key in the run's private directory, because
	// OpenSSH in BatchMode cannot ask for a passphrase. Ferry's side uses Key and Passphrase.
	OpenSSHKey string
	Signer     ssh.Signer
}

// Env is one benchmark run's environment: the cluster, a private temporary directory, the users'
// keys, pinned host keys per port, the latency proxy and the SSH pools of Ferry's side. Close
// releases everything it started.
type Env struct {
	Cluster *testcluster.Cluster
	// Dir is the run's private directory (0700). Its path is short on purpose: OpenSSH control
	// sockets live in it and a Unix socket path is limited to 107 bytes.
	Dir string
	// RunID names this run's jobs and remote directories, so cleanup touches nothing else.
	RunID string

	users   map[string]*User
	hostKey string // "type base64" from cluster.json's known_hosts line

	mu      sync.Mutex // guards proxy, masters, pools
	proxy   *netproxy.Proxy
	masters []*Master
	pools   *sshpool.Manager
}

// NewEnv loads the test cluster (testcluster.Load) and prepares keys and the private directory.
// It fails when the cluster is absent or the caller is not root (the test users' keys are root's).
func NewEnv() (*Env, error) {
	c, err := testcluster.Load()
	if err != nil {
		return nil, fmt.Errorf("test cluster absent (%w): run `make cluster-up` as root", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("benchmarks read the test users' keys and need root")
	}
	f := strings.Fields(c.KnownHosts)
	if len(f) < 3 {
		return nil, fmt.Errorf("cluster.json: known_hosts %q is not a known_hosts line", c.KnownHosts)
	}
	dir, err := os.MkdirTemp("", "fb-")
	if err != nil {
		return nil, err
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	e := &Env{
		Cluster: c,
		Dir:     dir,
		RunID:   time.Now().Format("150405") + hex.EncodeToString(rnd[:]),
		users:   map[string]*User{},
		hostKey: f[1] + " " + f[2],
		pools:   sshpool.NewManager(sshpool.Options{}, zerolog.Nop()),
	}
	for _, name := range Users {
		u, err := e.loadUser(name)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.users[name] = u
	}
	return e, nil
}

func (e *Env) loadUser(name string) (*User, error) {
	var cu *testcluster.User
	for i := range e.Cluster.Users {
		if e.Cluster.Users[i].Name == name {
			cu = &e.Cluster.Users[i]
		}
	}
	if cu == nil {
		return nil, fmt.Errorf("test cluster has no user %q", name)
	}
	pemBytes, err := os.ReadFile(cu.Key)
	if err != nil {
		return nil, err
	}
	signer, err := sshpool.ParsePrivateKey(pemBytes, []byte(cu.Passphrase))
	if err != nil {
		return nil, fmt.Errorf("key of %q: %w", name, err)
	}
	var raw any
	if cu.Passphrase != "" {
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase(pemBytes, []byte(cu.Passphrase))
	} else {
		raw, err = ssh.ParseRawPrivateKey(pemBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("key of %q: %w", name, err)
	}
	block, err := ssh.MarshalPrivateKey(raw, "")
	if err != nil {
		return nil, fmt.Errorf("key of %q: %w", name, err)
	}
	plain := filepath.Join(e.Dir, "key-"+name)
	if err := os.WriteFile(plain, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return &User{Name: name, Key: cu.Key, Passphrase: cu.Passphrase, OpenSSHKey: plain, Signer: signer}, nil
}

// User returns a test user loaded by NewEnv.
func (e *Env) User(name string) *User { return e.users[name] }

// Loopback is the login node reached directly.
func (e *Env) Loopback() Endpoint {
	return Endpoint{Name: "loopback", Host: e.Cluster.Host, Port: e.Cluster.Port}
}

// RTT10 is the login node reached through a userspace proxy adding OneWayDelay in each direction
// (tc netem is not available on these machines), started on first use and shared by every
// benchmark of the run: a different port, so the pinned known_hosts line names that port.
func (e *Env) RTT10() (Endpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proxy == nil {
		p, err := netproxy.Start(e.Loopback().Addr(), OneWayDelay)
		if err != nil {
			return Endpoint{}, fmt.Errorf("latency proxy: %w", err)
		}
		e.proxy = p
	}
	return Endpoint{Name: "rtt10", Host: "127.0.0.1", Port: e.proxy.Addr().Port}, nil
}

// Endpoints returns loopback and, unless loopbackOnly, rtt10.
func (e *Env) Endpoints(loopbackOnly bool) ([]Endpoint, error) {
	eps := []Endpoint{e.Loopback()}
	if loopbackOnly {
		return eps, nil
	}
	r, err := e.RTT10()
	if err != nil {
		return nil, err
	}
	return append(eps, r), nil
}

// KnownHosts returns the pinned known_hosts line for the login node's key at host:port.
func (e *Env) KnownHosts(ep Endpoint) string {
	return fmt.Sprintf("[%s]:%d %s", ep.Host, ep.Port, e.hostKey)
}

// HostKeys returns the pinned key for Ferry's pools.
func (e *Env) HostKeys(ep Endpoint) (sshpool.HostKeys, error) {
	return sshpool.ParseKnownHosts(e.KnownHosts(ep))
}

// knownHostsFile writes (once) the known_hosts file OpenSSH checks for ep.
func (e *Env) knownHostsFile(ep Endpoint) (string, error) {
	p := filepath.Join(e.Dir, fmt.Sprintf("known_hosts-%d", ep.Port))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return p, os.WriteFile(p, []byte(e.KnownHosts(ep)+"\n"), 0o600)
}

// Pool returns Ferry's warm-able SSH pool for user at ep (default sshpool options), shared by the
// run. Its key's identity names the endpoint.
func (e *Env) Pool(user string, ep Endpoint) (*sshpool.Pool, error) {
	u := e.users[user]
	if u == nil {
		return nil, fmt.Errorf("unknown test user %q", user)
	}
	hk, err := e.HostKeys(ep)
	if err != nil {
		return nil, err
	}
	return e.pools.Pool(sshpool.Key{Identity: "bench-" + ep.Name, User: user},
		sshpool.Target{Host: ep.Host, Port: ep.Port, HostKeys: hk, User: user, Signer: u.Signer})
}

// JobName returns a Slurm job name for this run. Every job a run submits, Ferry's and the
// baselines', carries the run's prefix, which is how CancelJobs finds them.
func (e *Env) JobName(what string) string { return e.jobPrefix() + what }

func (e *Env) jobPrefix() string { return "ferrybench-" + e.RunID + "-" }

// RemoteDir returns a path relative to the work dir inside this run's own directory, which Close
// removes.
func (e *Env) RemoteDir(parts ...string) string {
	return path.Join(append([]string{"ferrybench-" + e.RunID}, parts...)...)
}

// CancelJobs cancels every job of this run still queued, pending, running or completing, as root
// on this machine (the test cluster's login node and controller are local), and waits at most
// timeout until Slurm lists none. It returns how many it cancelled.
func (e *Env) CancelJobs(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	seen := map[string]bool{}
	for {
		out, err := exec.CommandContext(ctx, "squeue", "--noheader", "--format=%i|%j").Output()
		if err != nil {
			return len(seen), fmt.Errorf("squeue: %w", err)
		}
		var ids []string
		for _, line := range strings.Split(string(out), "\n") {
			id, name, ok := strings.Cut(strings.TrimSpace(line), "|")
			if ok && strings.HasPrefix(name, e.jobPrefix()) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return len(seen), nil
		}
		if time.Now().After(deadline) {
			return len(seen), fmt.Errorf("%d jobs of this run still listed after %s", len(ids), timeout)
		}
		for start := 0; start < len(ids); start += 500 {
			batch := ids[start:min(start+500, len(ids))]
			// scancel fails for a job that ended meanwhile; the next squeue tells what is left.
			_ = exec.CommandContext(ctx, "scancel", batch...).Run()
			for _, id := range batch {
				seen[id] = true
			}
		}
		select {
		case <-ctx.Done():
			return len(seen), ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// WaitController waits at most timeout until `scontrol ping` reports the Slurm controller up.
// Other test runs on the machine restart it now and then (fault tests); a benchmark that starts
// while it is down would measure the outage.
func (e *Env) WaitController(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := exec.CommandContext(ctx, "scontrol", "ping").CombinedOutput()
		if err == nil && strings.Contains(string(out), "is UP") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slurm controller not up after %s: %s", timeout, bytesTrim(out))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Close cancels the run's remaining jobs, stops every ControlMaster, pool and proxy the run
// started, and removes the run's directory in the work dir and the private dir.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _ = e.CancelJobs(ctx, time.Minute)
	_ = os.RemoveAll(filepath.Join(e.Cluster.WorkDir, e.RemoteDir()))
	e.mu.Lock()
	masters := e.masters
	e.masters = nil
	proxy := e.proxy
	e.proxy = nil
	e.mu.Unlock()
	for _, m := range masters {
		m.Close()
	}
	e.pools.Close()
	if proxy != nil {
		proxy.Close()
	}
	_ = os.RemoveAll(e.Dir)
}

// sshOptions returns the OpenSSH options every baseline uses: no user or system config, the
// user's key only, host key pinned to the run's known_hosts file, never a prompt.
func (e *Env) sshOptions(u *User, ep Endpoint) ([]string, error) {
	kh, err := e.knownHostsFile(ep)
	if err != nil {
		return nil, err
	}
	return []string{
		"-F", "/dev/null",
		"-i", u.OpenSSHKey,
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + kh,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=ERROR",
		"-o", "Port=" + fmt.Sprint(ep.Port),
		"-o", "User=" + u.Name,
	}, nil
}

// Fresh returns `ssh ... host CMDLINE` on a new connection (OpenSSH's default key exchange).
func (e *Env) Fresh(ctx context.Context, user string, ep Endpoint, argv ...string) (*exec.Cmd, error) {
	u := e.users[user]
	opts, err := e.sshOptions(u, ep)
	if err != nil {
		return nil, err
	}
	line, err := scheduler.CommandLine(scheduler.Command{Argv: argv})
	if err != nil {
		return nil, err
	}
	args := append(opts, "-o", "ControlMaster=no", "-o", "ControlPath=none", ep.Host, line)
	return exec.CommandContext(ctx, "ssh", args...), nil
}

// Master is an OpenSSH ControlMaster: one authenticated connection that `ssh -S` clients
// multiplex sessions over, the best a shell script can do.
type Master struct {
	env  *Env
	user *User
	ep   Endpoint
	// Path is the control socket.
	Path string
	opts []string
}

// StartMaster starts `ssh -o ControlMaster=yes -o ControlPersist=600 -N -f` for user at ep and
// waits until it answers `-O check`. Master.Close (and Env.Close) stop it. ControlPersist is ten
// minutes, not one, because a master must outlive Ferry's longest phase between two baseline
// phases (2,000 small files through +10 ms take minutes); a master that timed out would make its
// clients connect on their own, silently.
func (e *Env) StartMaster(ctx context.Context, user string, ep Endpoint) (*Master, error) {
	u := e.users[user]
	if u == nil {
		return nil, fmt.Errorf("unknown test user %q", user)
	}
	opts, err := e.sshOptions(u, ep)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.Dir, fmt.Sprintf("cm-%s-%d", user, ep.Port))
	m := &Master{env: e, user: u, ep: ep, Path: path, opts: opts}
	args := append(append([]string{}, opts...), "-o", "ControlMaster=yes", "-o", "ControlPath="+path,
		"-o", "ControlPersist=600", "-N", "-f", ep.Host)
	if out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start ControlMaster for %q at %s: %w: %s", user, ep.Addr(), err, bytesTrim(out))
	}
	e.mu.Lock()
	e.masters = append(e.masters, m)
	e.mu.Unlock()
	if err := m.Check(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Command returns `ssh -S master ... host ARGV` (ControlMaster=no: a client only).
func (m *Master) Command(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	line, err := scheduler.CommandLine(scheduler.Command{Argv: argv})
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, m.opts...), "-S", m.Path, "-o", "ControlMaster=no", m.ep.Host, line)
	return exec.CommandContext(ctx, "ssh", args...), nil
}

// SFTP returns `sftp -b batch` multiplexed over the master (no connection setup in the timing).
func (m *Master) SFTP(ctx context.Context, batch string) *exec.Cmd {
	args := append(append([]string{}, m.opts...), "-o", "ControlPath="+m.Path, "-o", "ControlMaster=no",
		"-b", batch, m.ep.Host)
	return exec.CommandContext(ctx, "sftp", args...)
}

// Check fails unless the master is alive. Call it after a timed loop: a client whose master died
// silently opens a connection of its own, which would make the baseline look slow.
func (m *Master) Check(ctx context.Context) error {
	args := append(append([]string{}, m.opts...), "-S", m.Path, "-O", "check", m.ep.Host)
	if out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ControlMaster for %q at %s is not running: %w: %s", m.user.Name, m.ep.Addr(), err, bytesTrim(out))
	}
	return nil
}

// Close asks the master to exit.
func (m *Master) Close() {
	args := append(append([]string{}, m.opts...), "-S", m.Path, "-O", "exit", m.ep.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, "ssh", args...).Run()
}

func bytesTrim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
