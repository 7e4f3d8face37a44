package agent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
)

// offlineAgent returns an agent whose only identity, "offline", points at a closed port of
// 127.0.0.1, with a credential for alice: nothing it is asked can reach a login node, and every
// attempt shows in its pool statistics.
func offlineAgent(tb testing.TB) *agent.Agent {
	tb.Helper()
	dir := tb.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "fuzz")
	if err != nil {
		tb.Fatal(err)
	}
	keyFile := filepath.Join(dir, "alice.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Default()
	cfg.Agent.StateDir = filepath.Join(dir, "state")
	cfg.Agent.Socket = ""
	cfg.Pool.DialTimeout = config.Duration{Duration: 2 * time.Second}
	cfg.Identities = []config.Identity{{
		Name: "offline", Scheduler: "slurm", Host: "127.0.0.1", Port: 1, WorkDir: "/srv/ferry/work", Group: "ferryshare",
		KnownHosts:  "[127.0.0.1]:1 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
		Credentials: []config.Credential{{User: "alice", KeyFile: keyFile}},
	}}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	a, err := agent.New(cfg, zerolog.Nop(), schedulers.New)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return a
}

// dials counts the agent's connection attempts, all pools together.
func dials(a *agent.Agent) int64 {
	var n int64
	for _, st := range a.PoolStats() {
		n += st.Dials
	}
	return n
}

var (
	fuzzEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	fuzzToken   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// hasControl reports an ASCII control character (C0 or DEL).
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// FuzzSubmitValidation fuzzes every field of a Submit request against an agent that cannot reach
// any login node. Properties: no panic; no remote command is ever run (CommandCounts stays empty);
// a request the agent refuses as invalid (ErrInvalidArgument), unknown (ErrNotFound) or without
// credential (ErrFailedPrecondition) is refused before any connection is even attempted; and a
// request that passes validation (and so fails only because the node is unreachable) contains
// none of what must be refused: a name with a control character, a task dir with "..", a control
// character or a path outside the work dir, an invalid token, an environment variable whose name
// is not a POSIX name or whose value holds NUL, an extra scheduler option that does not start with
// '-' or holds a line break, a queue or account with blanks, quotes, '#' or a backslash, or an
// empty script.
func FuzzSubmitValidation(f *testing.F) {
	a := offlineAgent(f)
	f.Add("alice", "task", "", "tok-1", "FOO", "bar", "--qos=normal", "debug", "", []byte("exit 0\n"), 1, int64(0), int64(0))
	f.Add("alice", "a\nb", "../../etc", "tok 2", "1BAD", "x\x00y", "qos", "de bug", "a#b", []byte(""), -1, int64(-5), int64(-1))
	f.Add("alice", "", "/etc/passwd", "", "PATH", "$(id)", "--array=1-3", "", "", []byte("x"), 0, int64(1), int64(1))
	f.Add("bob", "ok", "x/../../y", "t", "A=B", "v", "-J\nx", "q\"", "acc\\", []byte("y"), 2, int64(2), int64(60e9))
	f.Add("alice", "n", "/srv/ferry/work/x", "t:1", "", "", "--comment=evil", "", "", []byte("z"), 1, int64(1), int64(1))
	f.Add("alice", "hetjob", "a\rb", strings.Repeat("t", 129), "ok_1", "line\nbreak", "--hetjob", "'", "", []byte("#!/bin/sh\n"), 1<<31, int64(1<<62), int64(1<<62))
	f.Add("../alice", "n", "", "", "", "", "", "", "", []byte("z"), 0, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, user, name, dir, token, envK, envV, extra, queue, account string, script []byte, cpus int, mem, limit int64) {
		req := plugin.SubmitRequest{
			Identity: "offline", User: user, Name: name, Dir: dir, Token: token, Script: script,
			Resources: plugin.Resources{CPUs: cpus, MemoryMB: mem, Time: time.Duration(limit), Queue: queue, Account: account},
		}
		if envK != "" || envV != "" {
			req.Env = map[string]string{envK: envV}
		}
		if extra != "" {
			req.Resources.Extra = []string{extra}
		}
		before := dials(a)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		j, err := a.Submit(ctx, req)
		cancel()
		if len(a.CommandCounts()) != 0 {
			t.Fatalf("a remote command was run for %+v: %v", req, a.CommandCounts())
		}
		if err == nil {
			t.Fatalf("submit succeeded without a reachable login node: %+v", j)
		}
		refused := errors.Is(err, plugin.ErrInvalidArgument) || errors.Is(err, plugin.ErrNotFound) ||
			errors.Is(err, plugin.ErrFailedPrecondition) || errors.Is(err, plugin.ErrPermissionDenied)
		if refused {
			if dials(a) != before {
				t.Fatalf("refused (%v) only after trying to connect", err)
			}
			return
		}
		// It passed validation: it failed only for want of a login node.
		if !errors.Is(err, plugin.ErrUnavailable) {
			t.Fatalf("error matches no sentinel a launcher can act on: %v", err)
		}
		var bad []string
		check := func(cond bool, what string) {
			if cond {
				bad = append(bad, what)
			}
		}
		check(user != "alice", "a user without credential")
		check(len(script) == 0, "an empty script")
		check(hasControl(name), "a control character in the name")
		check(hasControl(dir), "a control character in the task dir")
		for _, part := range strings.Split(dir, "/") {
			check(part == "..", "a \"..\" in the task dir")
		}
		check(strings.HasPrefix(dir, "/") && dir != "/srv/ferry/work" && !strings.HasPrefix(dir, "/srv/ferry/work/"), "a task dir outside the work dir")
		check(token != "" && !fuzzToken.MatchString(token), "an invalid token")
		if req.Env != nil {
			check(!fuzzEnvName.MatchString(envK), "an invalid environment variable name")
			check(strings.ContainsRune(envV, 0), "NUL in an environment value")
		}
		if extra != "" {
			check(!strings.HasPrefix(extra, "-"), "an extra option not starting with '-'")
			check(strings.ContainsAny(extra, "\n\r\x00"), "a line break or NUL in an extra option")
		}
		for _, w := range []string{queue, account} {
			check(strings.ContainsAny(w, " \t\"'\\#") || hasControl(w), "a queue or account that sbatch would misread")
		}
		check(cpus < 0 || mem < 0 || limit < 0, "negative resources")
		if len(bad) > 0 {
			t.Fatalf("accepted (it tried to connect: %v) although it has %s: %+v", err, strings.Join(bad, ", "), req)
		}
	})
}
