// Package testcluster gives tests the local test cluster that scripts/cluster-up brings up (real
// sshd, real users in a shared group, a setgid/ACL work dir, real Slurm with accounting). Tests call
// Require, which skips with a clear message when the cluster is absent, then take what they need
// from the Cluster: an SSH target for a user (Target) or an agent configuration for it
// (IdentityTOML). Tests that run the ferry binary or another process also find BuildFerry and
// SyncBuffer here.
package testcluster

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhpc/ferry/sshpool"
)

// DefaultPath is where scripts/cluster-up writes the cluster description.
const DefaultPath = "/var/lib/ferry-testcluster/cluster.json"

// User is one test user.
type User struct {
	Name       string `json:"name"`
	UID        int    `json:"uid"`
	Shell      string `json:"shell"`
	Key        string `json:"key"`
	KeyType    string `json:"key_type"`
	Passphrase string `json:"passphrase"`
	Shared     bool   `json:"shared"`
}

// Cluster is the generated description of the test cluster.
type Cluster struct {
	Host             string `json:"host"`
	Port             int    `json:"port"`
	KnownHosts       string `json:"known_hosts"`
	Group            string `json:"group"`
	WorkDir          string `json:"workdir"`
	Scheduler        string `json:"scheduler"`
	Partition        string `json:"partition"`
	MinJobAgeSeconds int    `json:"min_job_age_seconds"`
	SSHDConfig       string `json:"sshd_config"`
	SSHDPidFile      string `json:"sshd_pid_file"`
	Users            []User `json:"users"`
}

// Path returns the description's path: $FERRY_TESTCLUSTER or DefaultPath.
func Path() string {
	if p := os.Getenv("FERRY_TESTCLUSTER"); p != "" {
		return p
	}
	return DefaultPath
}

// Load reads the description and checks that sshd answers.
func Load() (*Cluster, error) {
	b, err := os.ReadFile(Path())
	if err != nil {
		return nil, err
	}
	var c Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", Path(), err)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(c.Host, fmt.Sprint(c.Port)), 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("sshd of the test cluster is not answering: %w", err)
	}
	conn.Close()
	return &c, nil
}

// Require returns the cluster or skips the test with the reason and the command that fixes it.
func Require(t testing.TB) *Cluster {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Skipf("test cluster absent (%v): run `make cluster-up` as root (make test does it) to run this integration test", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("integration tests read the test users' keys and need root")
	}
	return c
}

// User returns the named user or fails the test.
func (c *Cluster) User(t testing.TB, name string) User {
	t.Helper()
	for _, u := range c.Users {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("test cluster has no user %q", name)
	return User{}
}

// Target returns the sshpool target that logs the named user in to the cluster's sshd: the user's
// key (decrypted with their passphrase) and the cluster's pinned host key. It fails the test when
// the user is unknown or the key or host key does not parse. Each call parses the key again (a
// bcrypt-KDF key costs ~150 ms): keep the target when a test needs it often.
func (c *Cluster) Target(t testing.TB, user string) sshpool.Target {
	t.Helper()
	u := c.User(t, user)
	pem, err := os.ReadFile(u.Key)
	if err != nil {
		t.Fatalf("key of test user %q: %v", user, err)
	}
	signer, err := sshpool.ParsePrivateKey(pem, []byte(u.Passphrase))
	if err != nil {
		t.Fatalf("key of test user %q: %v", user, err)
	}
	hk, err := sshpool.ParseKnownHosts(c.KnownHosts)
	if err != nil {
		t.Fatalf("test cluster's host key: %v", err)
	}
	return sshpool.Target{Host: c.Host, Port: c.Port, HostKeys: hk, User: user, Signer: signer}
}

// IdentityTOML returns the `[[identity]]` table of a ferry agent configuration for the cluster's
// sshd and Slurm, named "local", with a credential for each of users in that order. The
// passphrase of a user who has one is written to dir/NAME.pass (mode 0600) and named by
// passphrase_file. It fails the test when a user is unknown or the file cannot be written.
func (c *Cluster) IdentityTOML(t testing.TB, dir string, users ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `[[identity]]
name = "local"
scheduler = "slurm"
host = %q
port = %d
known_hosts = %q
work_dir = %q
group = %q
`, c.Host, c.Port, c.KnownHosts, c.WorkDir, c.Group)
	for _, name := range users {
		u := c.User(t, name)
		fmt.Fprintf(&b, "  [[identity.credential]]\n  user = %q\n  key_file = %q\n", u.Name, u.Key)
		if u.Passphrase != "" {
			pass := filepath.Join(dir, u.Name+".pass")
			if err := os.WriteFile(pass, []byte(u.Passphrase), 0o600); err != nil {
				t.Fatalf("passphrase file of test user %q: %v", u.Name, err)
			}
			fmt.Fprintf(&b, "  passphrase_file = %q\n", pass)
		}
	}
	return b.String()
}
