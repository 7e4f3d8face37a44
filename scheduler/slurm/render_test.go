package slurm

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.run from the current Render")

// goldenSpecs are the specs whose rendered scripts are kept in testdata/golden.
var goldenSpecs = []struct {
	name string
	opts Options
	spec scheduler.JobSpec
}{
	{name: "minimal", spec: scheduler.JobSpec{Name: "task", Dir: "/scratch/alice/work/ab/cdef"}},
	{name: "full", spec: scheduler.JobSpec{
		Name:  "nf-align (sample 1)",
		Dir:   "/scratch/alice/work/12/3456",
		Token: "run-42:task.7",
		Env:   map[string]string{"SAMPLE": "s 1", "THREADS": "4"},
		Resources: scheduler.Resources{
			CPUs: 4, MemoryMB: 8192, Time: 90*time.Minute + 30*time.Second,
			Queue: "short", Account: "proj-1",
			Extra: []string{"--qos=long", "--gres=gpu:1", `--constraint="a&b"`},
		},
	}},
	{name: "awkward-dir", spec: scheduler.JobSpec{
		Name: "x",
		Dir:  `/scratch/my work/o'neil "#1"/100%/hetjob/`,
	}},
	{name: "days-no-signal", opts: Options{SignalLead: -1}, spec: scheduler.JobSpec{
		Dir:       "/w",
		Resources: scheduler.Resources{CPUs: 1, Time: 51 * time.Hour},
	}},
}

func TestRenderGolden(t *testing.T) {
	for _, g := range goldenSpecs {
		t.Run(g.name, func(t *testing.T) {
			got, err := New(g.opts).Render(g.spec)
			require.NoError(t, err)
			adaptertest.RequireGolden(t, "slurm", g.name, got, *update)
		})
	}
}

// directiveArgs renders spec and returns the arguments sbatch reads from its #SBATCH lines,
// parsed the way sbatch parses them (sbatchSplit).
func directiveArgs(t *testing.T, opts Options, spec scheduler.JobSpec) []string {
	t.Helper()
	b, err := New(opts).Render(spec)
	require.NoError(t, err)
	var args []string
	for _, l := range strings.Split(string(b), "\n")[1:] {
		rest, ok := strings.CutPrefix(l, "#SBATCH")
		if !ok {
			break
		}
		a, err := sbatchSplit(rest)
		require.NoError(t, err, "line %q", l)
		args = append(args, a...)
	}
	return args
}

func TestRenderDirectives(t *testing.T) {
	base := scheduler.JobSpec{Name: "t", Dir: "/w/t"}
	with := func(f func(*scheduler.JobSpec)) scheduler.JobSpec {
		s := base
		f(&s)
		return s
	}
	tests := []struct {
		name string
		opts Options
		spec scheduler.JobSpec
		want []string // consecutive args that must appear
		not  []string // args that must not appear
	}{
		{name: "name", spec: base, want: []string{"-J", "t"}},
		{name: "name sanitised", spec: with(func(s *scheduler.JobSpec) { s.Name = "a b/c:d@é=f*" }), want: []string{"-J", "a_b_c_d___f_"}},
		{name: "name kept", spec: with(func(s *scheduler.JobSpec) { s.Name = "A.z_0-9" }), want: []string{"-J", "A.z_0-9"}},
		{name: "empty name", spec: with(func(s *scheduler.JobSpec) { s.Name = "" }), want: []string{"-J", "ferry"}},
		{name: "long name", spec: with(func(s *scheduler.JobSpec) { s.Name = strings.Repeat("x", 300) }), want: []string{"-J", strings.Repeat("x", 256)}},
		{name: "name hetjob", spec: with(func(s *scheduler.JobSpec) { s.Name = "my-HetJob" }), want: []string{"-J", "my-HetJob"}},
		{name: "output", spec: base, want: []string{"-o", "/w/t/.command.log"}},
		{name: "output trailing slash", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/t/" }), want: []string{"-o", "/w/t/.command.log"}},
		{name: "output root", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/" }), want: []string{"-o", "/.command.log"}},
		{name: "output percent", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/100%j" }), want: []string{"-o", "/w/100%%j/.command.log"}},
		{name: "output spaces and quotes", spec: with(func(s *scheduler.JobSpec) { s.Dir = `/w/a b/c'd/"e"#f` }), want: []string{"-o", `/w/a b/c'd/"e"#f/.command.log`}},
		{name: "no requeue", spec: base, want: []string{"--no-requeue"}},
		{name: "signal default", spec: base, want: []string{"--signal", "B:USR2@30"}},
		{name: "signal rounded up", opts: Options{SignalLead: 90500 * time.Millisecond}, spec: base, want: []string{"--signal", "B:USR2@91"}},
		{name: "signal off", opts: Options{SignalLead: -1}, spec: base, not: []string{"--signal"}},
		{name: "cpus", spec: with(func(s *scheduler.JobSpec) { s.Resources.CPUs = 8 }), want: []string{"-c", "8"}},
		{name: "one cpu", spec: with(func(s *scheduler.JobSpec) { s.Resources.CPUs = 1 }), not: []string{"-c"}},
		{name: "time seconds round up", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = 1 * time.Second }), want: []string{"-t", "00:01:00"}},
		{name: "time exact", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = 2 * time.Hour }), want: []string{"-t", "02:00:00"}},
		{name: "time just over", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = 2*time.Hour + time.Nanosecond }), want: []string{"-t", "02:01:00"}},
		{name: "time day", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = 24 * time.Hour }), want: []string{"-t", "1-00:00:00"}},
		{name: "time days", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = 10*24*time.Hour + 59*time.Minute + time.Second }), want: []string{"-t", "10-01:00:00"}},
		{name: "no time", spec: base, not: []string{"-t"}},
		{name: "memory", spec: with(func(s *scheduler.JobSpec) { s.Resources.MemoryMB = 1500 }), want: []string{"--mem", "1500M"}},
		{name: "no memory", spec: base, not: []string{"--mem"}},
		{name: "queue", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = "gpu,short" }), want: []string{"-p", "gpu,short"}},
		{name: "queue colon", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = ":odd" }), want: []string{"-p", ":odd"}},
		{name: "account", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = "proj_1" }), want: []string{"-A", "proj_1"}},
		{name: "no queue no account", spec: base, not: []string{"-p", "-A"}},
		{name: "token", spec: with(func(s *scheduler.JobSpec) { s.Token = "abc:1.2-3_4" }), want: []string{"--comment=ferry:abc:1.2-3_4"}},
		{name: "token hetjob", spec: with(func(s *scheduler.JobSpec) { s.Token = "xhetjobx" }), want: []string{"--comment=ferry:xhetjobx"}},
		{name: "no token", spec: base, not: []string{"--comment"}},
		{name: "extras last and verbatim", spec: with(func(s *scheduler.JobSpec) {
			s.Resources.Extra = []string{"--qos=long", `--mail-user="a b@x"`, "-x node1"}
		}), want: []string{"--qos=long", "--mail-user=a b@x", "-x", "node1"}},
		{name: "comment extra without token", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"--comment=mine"} }),
			want: []string{"--comment=mine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := directiveArgs(t, tt.opts, tt.spec)
			if tt.want != nil {
				require.True(t, containsRun(args, tt.want), "want %q in %q", tt.want, args)
			}
			for _, n := range tt.not {
				for _, a := range args {
					require.False(t, a == n || strings.HasPrefix(a, n+"="), "%q must not appear in %q", n, args)
				}
			}
		})
	}
}

// TestRenderOrder checks the directive order: Ferry's first, extras last so they can override.
func TestRenderOrder(t *testing.T) {
	b, err := New(Options{}).Render(goldenSpecs[1].spec)
	require.NoError(t, err)
	var opts []string
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "#SBATCH "); ok {
			opts = append(opts, strings.Fields(rest)[0])
		}
	}
	require.Equal(t, []string{"-J", "-o", "--no-requeue", "--signal", "-c", "-t", "--mem", "-p", "-A",
		"--comment=ferry:run-42:task.7", "--qos=long", "--gres=gpu:1", `--constraint="a&b"`}, opts)
	require.True(t, strings.HasPrefix(string(b), "#!/bin/sh\n#SBATCH -J "))
}

func TestRenderRefusals(t *testing.T) {
	base := scheduler.JobSpec{Name: "t", Dir: "/w/t"}
	with := func(f func(*scheduler.JobSpec)) scheduler.JobSpec {
		s := base
		s.Resources.Extra = nil
		f(&s)
		return s
	}
	extra := func(x ...string) scheduler.JobSpec {
		return with(func(s *scheduler.JobSpec) { s.Resources.Extra = x })
	}
	tests := []struct {
		name string
		opts Options
		spec scheduler.JobSpec
		err  string
	}{
		{name: "extra without dash", spec: extra("qos=long"), err: `extra option 0 "qos=long": does not start with '-'`},
		{name: "extra empty", spec: extra("--qos=a", ""), err: "extra option 1"},
		{name: "extra newline", spec: extra("--qos=a\n#SBATCH --array=1-9"), err: "newline"},
		{name: "extra carriage return", spec: extra("--qos=a\rb"), err: "newline"},
		{name: "extra nul", spec: extra("--qos=a\x00"), err: "NUL"},
		{name: "extra array", spec: extra("--array=1-3"), err: "arrays are not supported"},
		{name: "extra array abbreviated", spec: extra("--arr", "1-3"), err: "arrays are not supported"},
		{name: "extra array short", spec: extra("-a1-3"), err: "arrays are not supported"},
		{name: "extra hetjob", spec: extra("--constraint=x", "-N1 hetjob"), err: "heterogeneous"},
		{name: "extra packjob", spec: extra("--wckey=PackJob"), err: "heterogeneous"},
		{name: "extra comment with token", spec: with(func(s *scheduler.JobSpec) {
			s.Token = "t1"
			s.Resources.Extra = []string{"--comm=x"}
		}), err: "idempotency token"},
		{name: "newline in name", spec: with(func(s *scheduler.JobSpec) { s.Name = "a\n#SBATCH --array=1-9" }), err: "job name"},
		{name: "nul in name", spec: with(func(s *scheduler.JobSpec) { s.Name = "a\x00" }), err: "control character"},
		{name: "tab in name", spec: with(func(s *scheduler.JobSpec) { s.Name = "a\tb" }), err: "control character"},
		{name: "token with space", spec: with(func(s *scheduler.JobSpec) { s.Token = "a b" }), err: "token"},
		{name: "token with slash", spec: with(func(s *scheduler.JobSpec) { s.Token = "a/b" }), err: "token"},
		{name: "token too long", spec: with(func(s *scheduler.JobSpec) { s.Token = strings.Repeat("a", 129) }), err: "token"},
		{name: "token newline", spec: with(func(s *scheduler.JobSpec) { s.Token = "a\n" }), err: "token"},
		{name: "relative dir", spec: with(func(s *scheduler.JobSpec) { s.Dir = "w/t" }), err: "not absolute"},
		{name: "empty dir", spec: with(func(s *scheduler.JobSpec) { s.Dir = "" }), err: "not absolute"},
		{name: "backslash dir", spec: with(func(s *scheduler.JobSpec) { s.Dir = `/w/a\b` }), err: "backslash"},
		{name: "newline dir", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/a\nb" }), err: "control character"},
		{name: "queue with space", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = "gpu short" }), err: "queue \"gpu short\" contains whitespace"},
		{name: "queue with newline", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = "gpu\n" }), err: "queue"},
		{name: "account with quote", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = `p"1` }), err: "account"},
		{name: "account with hash", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = "p#1" }), err: "account"},
		{name: "account with tab", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = "p\t1" }), err: "account"},
		{name: "negative cpus", spec: with(func(s *scheduler.JobSpec) { s.Resources.CPUs = -1 }), err: "cpus"},
		{name: "negative memory", spec: with(func(s *scheduler.JobSpec) { s.Resources.MemoryMB = -1 }), err: "memory"},
		{name: "negative time", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = -time.Second }), err: "time limit"},
		{name: "signal lead too long", opts: Options{SignalLead: 70000 * time.Second}, spec: base, err: "signal lead"},
		{name: "bad env name", spec: with(func(s *scheduler.JobSpec) { s.Env = map[string]string{"A-B": "x"} }), err: "environment variable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := New(tt.opts).Render(tt.spec)
			require.Error(t, err)
			require.Nil(t, out)
			require.Contains(t, err.Error(), tt.err)
		})
	}
}

// TestSbatchWordRoundTrip renders random directory names and checks that sbatch's parser
// (sbatchSplit, transcribed from Slurm's get_argument) reads the -o path back exactly.
func TestSbatchWordRoundTrip(t *testing.T) {
	alphabet := []rune(" \"'#:%$`;&|*?!()[]{}<>=,.-_/~^@aAjJbhetpackHETPACKé\u00a0日")
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 5000; i++ {
		n := rng.Intn(24)
		var b strings.Builder
		b.WriteByte('/')
		for j := 0; j < n; j++ {
			b.WriteRune(alphabet[rng.Intn(len(alphabet))])
		}
		if rng.Intn(4) == 0 {
			b.WriteString([]string{"hetjob", "PackJob", "HETJOB", ":x", "a hetjob b"}[rng.Intn(5)])
		}
		dir := b.String()
		args := directiveArgs(t, Options{}, scheduler.JobSpec{Name: "n", Dir: dir})
		want := strings.ReplaceAll(strings.TrimRight(dir, "/")+"/.command.log", "%", "%%")
		require.True(t, containsRun(args, []string{"-o", want}), "dir %q: args %q", dir, args)
	}
}

// TestRenderedLinesAvoidHetjob checks that no rendered directive contains the words older and newer
// sbatch versions treat as a heterogeneous job separator, whatever the name, dir and token.
func TestRenderedLinesAvoidHetjob(t *testing.T) {
	spec := scheduler.JobSpec{Name: "HetJob-packjob", Dir: "/w/hetjob/PACKJOB dir", Token: "hetjob:packjob",
		Resources: scheduler.Resources{Queue: "hetjob", Account: "packjob"}}
	b, err := New(Options{}).Render(spec)
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#SBATCH") {
			low := strings.ToLower(l)
			require.NotContains(t, low, "hetjob", l)
			require.NotContains(t, low, "packjob", l)
		}
	}
	args := directiveArgs(t, Options{}, spec)
	require.True(t, containsRun(args, []string{"-J", "HetJob-packjob"}), "%q", args)
	require.True(t, containsRun(args, []string{"-p", "hetjob"}), "%q", args)
	require.True(t, containsRun(args, []string{"--comment=ferry:hetjob:packjob"}), "%q", args)
}

func TestCommands(t *testing.T) {
	s := New(Options{})
	require.Equal(t, "slurm", s.Kind())
	require.Equal(t, scheduler.Command{Argv: []string{"sbatch", "--parsable", ".command.run"}, Dir: "/w/t"},
		s.SubmitCommand(scheduler.JobSpec{Dir: "/w/t"}))
	require.Equal(t, scheduler.Command{Argv: []string{"env", "SLURM_TIME_FORMAT=%s", "squeue", "--noheader", "--states=all",
		"--user=alice", "--format=%i|%t|%r|%P|%u|%V|%S|%e|%j"}}, s.StatusCommand("alice", []scheduler.JobID{"1", "2"}))
	require.Equal(t, scheduler.Command{Argv: []string{"env", "SLURM_TIME_FORMAT=%s", "sacct", "--noheader", "--parsable2", "--allocations",
		"--user=alice", "--jobs=1,2_3", "--format=JobID,State,ExitCode,Reason,Partition,User,Submit,Start,End,JobName"}},
		s.AccountingCommand("alice", []scheduler.JobID{"1", "2_3"}))
	require.Equal(t, scheduler.Command{Argv: []string{"scancel", "--", "1", "-2"}}, s.CancelCommand([]scheduler.JobID{"1", "-2"}))

	// Every command must survive the one function that builds remote command lines.
	for _, c := range []scheduler.Command{
		s.SubmitCommand(scheduler.JobSpec{Dir: "/w/t"}),
		s.StatusCommand("alice", nil),
		s.AccountingCommand("alice", []scheduler.JobID{"1"}),
		s.CancelCommand([]scheduler.JobID{"1"}),
	} {
		_, err := scheduler.CommandLine(c)
		require.NoError(t, err, "%q", c.Argv)
	}
}

func TestCheckCancel(t *testing.T) {
	s := New(Options{})
	ids := []scheduler.JobID{"15", "16"}
	tests := []struct {
		name   string
		r      scheduler.Result
		perm   bool
		cmdErr bool
		ok     bool
		named  string
	}{
		{name: "success", r: scheduler.Result{}, ok: true},
		{name: "success with noise", r: scheduler.Result{Stderr: []byte("bash: warning: setlocale\n")}, ok: true},
		// Slurm before 22.05 reports ids that are gone and exits 1.
		{name: "invalid id", r: scheduler.Result{ExitCode: 1, Stderr: []byte("scancel: error: Kill job error on job id 15: Invalid job id specified\n")}, ok: true},
		{name: "already done", r: scheduler.Result{ExitCode: 1, Stderr: []byte(
			"scancel: error: Kill job error on job id 15: Job/step already completing or completed\n" +
				"scancel: error: Kill job error on job id 16: Invalid job id specified\n")}, ok: true},
		// Captured from Slurm 22.05.8: alice cancelling root's job.
		{name: "permission", r: scheduler.Result{ExitCode: 210, Stderr: []byte("scancel: error: Kill job error on job id 15: Access/permission denied\n")},
			perm: true, named: "15"},
		{name: "permission and gone", r: scheduler.Result{ExitCode: 1, Stderr: []byte(
			"scancel: error: Kill job error on job id 16: Invalid job id specified\n" +
				"scancel: error: Kill job error on job id 15: Access/permission denied\n")}, perm: true, named: "15"},
		{name: "permission and other", r: scheduler.Result{ExitCode: 1, Stderr: []byte(
			"scancel: error: Kill job error on job id 15: Access/permission denied\n" +
				"scancel: error: Kill job error on job id 16: Unable to contact slurm controller (connect failure)\n")}, perm: true, cmdErr: true},
		{name: "bad id", r: scheduler.Result{ExitCode: 1, Stderr: []byte("scancel: error: Invalid job id abc\n")}, cmdErr: true},
		{name: "controller down", r: scheduler.Result{ExitCode: 1, Stderr: []byte(
			"scancel: error: Kill job error on job id 15: Unable to contact slurm controller (connect failure)\n")}, cmdErr: true},
		{name: "silent failure", r: scheduler.Result{ExitCode: 127, Stderr: []byte("sh: scancel: not found\n")}, cmdErr: true},
		{name: "empty stderr", r: scheduler.Result{ExitCode: 1}, cmdErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CheckCancel(ids, tt.r)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			if tt.perm {
				require.ErrorIs(t, err, scheduler.ErrPermission)
			} else {
				require.NotErrorIs(t, err, scheduler.ErrPermission)
			}
			if tt.named != "" {
				require.Contains(t, err.Error(), "job "+tt.named)
			}
			var ce *scheduler.CommandError
			if tt.cmdErr {
				require.ErrorAs(t, err, &ce)
				require.Equal(t, tt.r.ExitCode, ce.ExitCode)
				require.Equal(t, "scancel", ce.Argv[0])
			} else {
				require.False(t, errors.As(err, &ce), "unexpected CommandError: %v", err)
			}
		})
	}
}

func containsRun(args, run []string) bool {
	for i := 0; i+len(run) <= len(args); i++ {
		match := true
		for j := range run {
			if args[i+j] != run[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// sbatchSplit splits the text after "#SBATCH" into arguments the way sbatch does. It follows the
// get_argument function of Slurm's src/common/proc_args.c (Slurm 18.08-23.x): blanks separate
// arguments, '"' or '\” quote up to the same quote (blanks included), a backslash makes the next
// character literal (it cannot keep a blank inside an unquoted word: the word ends there), an
// unquoted '#' ends the line, an argument starting with ':' is fatal and an unmatched quote is
// fatal. The version used by Slurm before 17.11, which blanked out "packjob" first and had no
// single quotes, is covered by TestRenderedLinesAvoidHetjob and by escaping '\” and '#' always.
func sbatchSplit(line string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		if line[i] == ':' {
			return nil, fmt.Errorf("unexpected ':' in %q", line)
		}
		var arg []byte
		started := false
		quoted, q, escape := false, byte(0), false
	word:
		for i < len(line) && (quoted || !isBlank(line[i])) {
			c := line[i]
			switch {
			case escape:
				escape = false
			case c == '\\':
				escape = true
				i++
				continue
			case quoted:
				if c == q {
					quoted = false
					i++
					continue
				}
			case c == '"' || c == '\'':
				quoted, q = true, c
				i++
				continue
			case c == '#':
				break word
			}
			arg = append(arg, c)
			started = true
			i++
		}
		if quoted {
			return nil, fmt.Errorf("unmatched %c in %q", q, line)
		}
		if !started {
			// get_argument returns NULL for an argument with no characters: sbatch stops reading the line.
			return args, nil
		}
		args = append(args, string(arg))
		if i < len(line) && line[i] == '#' {
			return args, nil
		}
	}
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func TestLookup(t *testing.T) {
	s := New(Options{})
	require.Equal(t, scheduler.Command{Argv: []string{"/bin/sh", "-c", lookupScript, "ferry-lookup", "bob"}},
		s.LookupCommand("bob"))
	// Captured from Slurm 22.05.8 (a comment with '|' and blanks, and a job without a comment).
	out := []byte("130|ferry:tok|a b\n131|(null)\n")
	tests := []struct {
		name, out, token string
		want             string
		err              bool
	}{
		{name: "found", out: "130|ferry:tok|a b\n131|(null)\n", token: "tok|a b", want: "130"},
		{name: "absent", out: string(out), token: "tok"},
		{name: "empty", out: "", token: "tok"},
		{name: "duplicates take the first submission", out: "99|ferry:t1\n100|other\n12|ferry:t1\n", token: "t1", want: "12"},
		{name: "prefix only", out: "5|ferry:t10\n", token: "t1"},
		{name: "garbage", out: "Welcome\n", token: "t1", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := s.ParseLookup([]byte(tt.out), tt.token)
			if tt.err {
				require.ErrorIs(t, err, scheduler.ErrParse)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want != "", ok)
			require.Equal(t, scheduler.JobID(tt.want), id)
		})
	}
}
