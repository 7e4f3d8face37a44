package sshpool_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/sshpool"
)

// TestJumpHost logs in to the login node through a bastion (the same real sshd, as alice) and
// runs commands as bob there: the ProxyJump path with its own pinned host key and credential.
func TestJumpHost(t *testing.T) {
	c := testcluster.Require(t)
	bastion := c.Target(t, "alice")
	tg := c.Target(t, "bob")
	tg.Jump = &bastion
	_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "behind-bastion", User: "bob"}, tg)
	require.Equal(t, "bob", strings.TrimSpace(string(run(t, p, "id", "-un").Stdout)))
	// The bastion is really on the path: a wrong bastion host key is refused and named as the
	// jump host's, although the login node's own key is right.
	bad := bastion
	bad.HostKeys = sshpool.HostKeys{c.Target(t, "dave").Signer.PublicKey()}
	tg.Jump = &bad
	_, p = newPool(t, sshpool.Options{}, sshpool.Key{Identity: "behind-bastion", User: "bob"}, tg)
	_, err := p.Exec(context.Background(), "true", nil)
	require.ErrorIs(t, err, sshpool.ErrHostKey)
	require.ErrorContains(t, err, "jump host")
}

// TestCertificateLogin starts a second real sshd that trusts a user CA, and logs in with a fresh
// key that is in no authorized_keys file: only its certificate can get it in.
func TestCertificateLogin(t *testing.T) {
	c := testcluster.Require(t)
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	keygen := func(args ...string) {
		out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	keygen("-q", "-t", "ed25519", "-N", "", "-C", "ferry test CA", "-f", filepath.Join(dir, "ca"))
	keygen("-q", "-t", "ed25519", "-N", "", "-C", "alice cert key", "-f", filepath.Join(dir, "user"))
	keygen("-q", "-s", filepath.Join(dir, "ca"), "-I", "alice@ferry-test", "-n", "alice", "-V", "+1h", filepath.Join(dir, "user.pub"))

	// A private sshd on a free port: the cluster's config plus TrustedUserCAKeys.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base, err := os.ReadFile(c.SSHDConfig)
	require.NoError(t, err)
	var conf []string
	for _, line := range strings.Split(string(base), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "Port" || f[0] == "PidFile") {
			continue
		}
		conf = append(conf, line)
	}
	conf = append(conf, fmt.Sprintf("Port %d", port), "PidFile "+filepath.Join(dir, "sshd.pid"),
		"TrustedUserCAKeys "+filepath.Join(dir, "ca.pub"))
	cfgPath := filepath.Join(dir, "sshd_config")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.Join(conf, "\n")+"\n"), 0o644))
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-f", cfgPath, "-E", filepath.Join(dir, "sshd.log"))
	require.NoError(t, sshd.Start())
	defer func() { _ = sshd.Process.Kill(); _ = sshd.Wait() }()
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)

	pem, err := os.ReadFile(filepath.Join(dir, "user"))
	require.NoError(t, err)
	signer, err := sshpool.ParsePrivateKey(pem, nil)
	require.NoError(t, err)
	cert, err := os.ReadFile(filepath.Join(dir, "user-cert.pub"))
	require.NoError(t, err)
	certSigner, err := sshpool.WithCertificate(signer, cert)
	require.NoError(t, err)

	tg := c.Target(t, "alice")
	tg.Port = port
	tg.Signer = signer
	_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "cert", User: "alice"}, tg)
	_, err = p.Exec(context.Background(), "true", nil)
	require.ErrorIs(t, err, sshpool.ErrAuth, "the bare key is in no authorized_keys")

	tg.Signer = certSigner
	_, p = newPool(t, sshpool.Options{}, sshpool.Key{Identity: "cert", User: "alice"}, tg)
	require.Equal(t, "alice", strings.TrimSpace(string(run(t, p, "id", "-un").Stdout)))

	// A certificate for another key is refused up front.
	_, err = sshpool.WithCertificate(c.Target(t, "alice").Signer, cert)
	require.ErrorIs(t, err, sshpool.ErrBadKey)
}
