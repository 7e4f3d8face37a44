// Package testcluster gives tests the local test cluster that scripts/cluster-up brings up (real
// sshd, real users in a shared group, a setgid/ACL work dir, real Slurm with accounting). Tests call
// Require, which skips with a clear message when the cluster is absent.
package testcluster

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
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
