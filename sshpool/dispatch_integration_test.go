package sshpool_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

func execArgv(ctx context.Context, p *sshpool.Pool, stdin []byte, argv ...string) (sshpool.Result, error) {
	line, err := scheduler.CommandLine(scheduler.Command{Argv: argv})
	if err != nil {
		return sshpool.Result{}, err
	}
	return p.Exec(ctx, line, stdin)
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDispatcherKeepsEachCommandsResult runs commands one after another on the dispatcher, as a
// bash and a tcsh user, and checks every command's stdout, stderr and exit status, including
// output without a final newline, empty output, output that looks like a marker, large output and
// stdin; and that they ran on the dispatcher (one session for all of them), not a session each.
func TestDispatcherKeepsEachCommandsResult(t *testing.T) {
	c := testcluster.Require(t)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	cases := []struct {
		argv           []string
		stdin          string
		out, err       string
		code           int
		viaSessionOnly bool // stdin the dispatcher cannot carry
	}{
		{argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, out: "out\n", err: "err\n", code: 3},
		{argv: []string{"printf", "%s", "no newline"}, out: "no newline"},
		{argv: []string{"true"}},
		{argv: []string{"printf", `\n\n`}, out: "\n\n"},
		{argv: []string{"sh", "-c", `printf '\n@@0000000000000000-end 1 0\n'; printf '@@ffff-ready\n' >&2; exit 5`},
			out: "\n@@0000000000000000-end 1 0\n", err: "@@ffff-ready\n", code: 5},
		{argv: []string{"sh", "-c", "cat; echo done"}, stdin: "line 1\n$HOME `id` 'q'\n\nEOF\n", out: "line 1\n$HOME `id` 'q'\n\nEOF\ndone\n"},
		{argv: []string{"cat"}, stdin: "no final newline", out: "no final newline", viaSessionOnly: true},
		{argv: []string{"wc", "-c"}, stdin: "a\x00b\n", out: "4\n", viaSessionOnly: true},
		{argv: []string{"sh", "-c", "read x; echo \"got [$x]\""}, out: "got []\n"},
		{argv: []string{"printf", "%s", big}, out: big},
		{argv: []string{"pwd"}, out: "@HOMEDIR@\n"},
	}
	for _, user := range []string{"alice", "carol"} {
		t.Run(user, func(t *testing.T) {
			_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: user}, c.Target(t, user))
			home := strings.TrimSpace(string(run(t, p, "sh", "-c", "cd && pwd").Stdout))
			sessionOnly := 0
			for round := 0; round < 2; round++ {
				for _, tc := range cases {
					var stdin []byte
					if tc.stdin != "" {
						stdin = []byte(tc.stdin)
					}
					res, err := execArgv(ctx30(t), p, stdin, tc.argv...)
					require.NoError(t, err, "%q", tc.argv)
					want := strings.ReplaceAll(tc.out, "@HOMEDIR@", home)
					require.Equal(t, want, string(res.Stdout), "%q stdout", tc.argv)
					require.Equal(t, tc.err, string(res.Stderr), "%q stderr", tc.argv)
					require.Equal(t, tc.code, res.ExitCode, "%q", tc.argv)
					if tc.viaSessionOnly {
						sessionOnly++
					}
				}
			}
			st := p.Stats()
			require.Equal(t, int64(sessionOnly), st.ExecSessions, "only commands whose stdin cannot be a here-document open a session")
			require.Equal(t, int64(2*len(cases)+1-sessionOnly), st.Dispatched)
			require.Equal(t, 1, st.Conns)
			require.Equal(t, 0, st.Sessions, "an idle dispatcher is not a session in use")
		})
	}
}

// TestDispatcherRecoversFromItsShellDying kills the dispatcher's shell from inside a command: that
// command's outcome is unknown (an error matching ErrOutcomeUnknown), and the next command runs on
// a new dispatcher.
func TestDispatcherRecoversFromItsShellDying(t *testing.T) {
	c := testcluster.Require(t)
	_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "alice"}, c.Target(t, "alice"))
	require.Equal(t, "1\n", string(run(t, p, "echo", "1").Stdout))
	// Walk up from this process to the dispatcher's shell ("/bin/sh -s") and kill it.
	killer := `p=$$; while [ "$p" -gt 1 ]; do c=$(tr '\0' ' ' </proc/$p/cmdline); if [ "$c" = "/bin/sh -s " ]; then kill -9 "$p"; sleep 1; echo survived; exit 0; fi; p=$(cut -d' ' -f4 /proc/$p/stat); done; echo "no dispatcher" >&2; exit 9`
	_, err := execArgv(ctx30(t), p, nil, "sh", "-c", killer)
	require.Error(t, err)
	require.ErrorIs(t, err, sshpool.ErrOutcomeUnknown)
	for i := 2; i <= 4; i++ {
		require.Equal(t, fmt.Sprintf("%d\n", i), string(run(t, p, "echo", fmt.Sprint(i)).Stdout))
	}
	st := p.Stats()
	require.Equal(t, int64(0), st.ExecSessions)
	require.Equal(t, int64(5), st.Dispatched)
}

// TestDispatcherCancelAndOutputLimit: a command cancelled by its context, or printing past
// MaxOutput, fails with ErrOutcomeUnknown promptly; the pool goes on with a new dispatcher.
func TestDispatcherCancelAndOutputLimit(t *testing.T) {
	c := testcluster.Require(t)
	_, p := newPool(t, sshpool.Options{MaxOutput: 4096}, sshpool.Key{Identity: "local", User: "bob"}, c.Target(t, "bob"))
	run(t, p, "true")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := execArgv(ctx, p, nil, "sleep", "30")
	require.ErrorIs(t, err, sshpool.ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second)
	require.Equal(t, "after cancel\n", string(run(t, p, "echo", "after cancel").Stdout))

	_, err = execArgv(ctx30(t), p, nil, "head", "-c", "100000", "/dev/zero")
	require.ErrorIs(t, err, sshpool.ErrOutcomeUnknown)
	require.ErrorContains(t, err, "exceeded")
	require.Equal(t, "after limit\n", string(run(t, p, "echo", "after limit").Stdout))
}

// TestDispatcherUnderConcurrency runs commands from many goroutines at once: each gets its own
// result, whether it ran on the dispatcher or on a session of its own.
func TestDispatcherUnderConcurrency(t *testing.T) {
	c := testcluster.Require(t)
	_, p := newPool(t, sshpool.Options{}, sshpool.Key{Identity: "local", User: "carol"}, c.Target(t, "carol"))
	var wg sync.WaitGroup
	errs := make(chan error, 16*8)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				word := fmt.Sprintf("g%d-i%d", g, i)
				res, err := execArgv(context.Background(), p, []byte(word+"\n"), "sh", "-c", "read w; echo \"$w\"; echo \"$w\" >&2; exit "+fmt.Sprint(i))
				switch {
				case err != nil:
					errs <- err
				case string(res.Stdout) != word+"\n" || string(res.Stderr) != word+"\n" || res.ExitCode != i:
					errs <- fmt.Errorf("%s: got %q %q %d", word, res.Stdout, res.Stderr, res.ExitCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all bytes.Buffer
	for err := range errs {
		fmt.Fprintln(&all, err)
	}
	require.Empty(t, all.String())
	st := p.Stats()
	require.Equal(t, int64(16*8), st.Dispatched+st.ExecSessions)
	require.Positive(t, st.Dispatched)
	t.Logf("%d commands on the dispatcher, %d on sessions of their own, %d connections", st.Dispatched, st.ExecSessions, st.Conns)
}
