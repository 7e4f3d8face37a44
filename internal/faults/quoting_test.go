package faults_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// quoteAlphabet weights what a random argument is made of: shell syntax of every family (sh,
// bash, tcsh), blanks, control characters, multi-byte UTF-8, bytes that are not UTF-8, and plain
// letters so that words form.
var quoteAlphabet = []string{
	`'`, `"`, `\`, "$", "`", ";", "&", "|", "<", ">", "(", ")", "{", "}", "[", "]", "*", "?", "~", "#",
	"%", "^", "=", ",", ".", ":", "/", "@", "+", "-", "--", "$(", "${", "$HOME", "'\\''", " ", "  ", "\t",
	"\x01", "\x07", "\x1b", "\x1f", "\x7f", "é", "ß", "日本", "😀", "\u00a0", "\u2028", "\xff", "\x80", "\xc3",
	"a", "b", "z", "Q", "0", "9", "_", "ab", "-n", "-e", "--help", "~root", "=x", "{a,b}", "*.*",
}

// randomArg returns a random argument: usually short, sometimes long.
func randomArg(r *rand.Rand) string {
	n := r.IntN(12)
	if r.IntN(20) == 0 {
		n = 200 + r.IntN(800)
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(quoteAlphabet[r.IntN(len(quoteAlphabet))])
	}
	return b.String()
}

// TestQuotingPropertyThroughLoginShells is the seeded random version of sshpool's fixed-list
// quoting test: for random argvs of shell syntax, blanks, control characters, UTF-8 and non-UTF-8
// bytes, the remote command receives exactly the argv, through a bash login shell (alice) and a
// tcsh one (carol), and an argument Quote refuses is exactly one containing NUL, CR, LF or '!'.
// The seed is logged; FERRY_QUOTE_SEED=N replays a run.
func TestQuotingPropertyThroughLoginShells(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FERRY_QUOTE_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay with FERRY_QUOTE_SEED=%d)", seed, seed)
	const commands, perCommand = 60, 10

	for _, tc := range []struct {
		user, path string
		opts       sshpool.Options
	}{
		// A command runs on the pool's dispatcher (/bin/sh started by the login shell) when it is
		// free, else on a session of its own (the login shell itself): both must deliver the argv.
		{"alice", "session", sshpool.Options{NoDispatcher: true}},
		{"alice", "dispatcher", sshpool.Options{}},
		{"carol", "session", sshpool.Options{NoDispatcher: true}},
		{"carol", "dispatcher", sshpool.Options{}},
	} {
		user := tc.user
		t.Run(user+"/"+tc.path, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, uint64(len(user))))
			p := userPoolOpts(t, c, user, tc.opts)
			sent := 0
			for i := 0; i < commands; i++ {
				args := make([]string, 0, perCommand)
				for len(args) < perCommand {
					a := randomArg(r)
					_, err := scheduler.Quote(a)
					if strings.ContainsAny(a, "\x00\r\n!") {
						require.Error(t, err, "%q must be refused", a)
						continue
					}
					require.NoError(t, err, "%q", a)
					args = append(args, a)
				}
				if i == 0 {
					// Words every shell family reads specially at the start of a word.
					args = append(args, "", "=1", "=-", "=x", "~", "~root", "-", "#x", "%1", "^x^y")
				}
				cmd := scheduler.Command{Argv: append([]string{"printf", `%s\0`}, args...)}
				if i%7 == 0 {
					cmd.Dir = c.WorkDir
				}
				line, err := scheduler.CommandLine(cmd)
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res, err := p.Exec(ctx, line, nil)
				cancel()
				require.NoError(t, err)
				if res.ExitCode != 0 {
					t.Errorf("argv %q: %s exited %d: %s", args, user, res.ExitCode, res.Stderr)
					continue
				}
				got := bytes.Split(bytes.TrimSuffix(res.Stdout, []byte{0}), []byte{0})
				if len(got) != len(args) {
					t.Errorf("argv %q arrived as %q", args, got)
					continue
				}
				for k := range args {
					if args[k] != string(got[k]) {
						t.Errorf("argument %q arrived as %q", args[k], got[k])
					}
				}
				sent += len(args)
			}
			t.Logf("%s (%s): %d random arguments in %d commands arrived intact", user, tc.path, sent, commands)
		})
	}
}
