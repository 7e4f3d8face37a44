package lsf

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.run from the current Render")

var fullSpec = scheduler.JobSpec{
	Name:  "nf-align (sample 1)",
	Dir:   "/scratch/alice/work/12/3456",
	Token: "run-42:task.7",
	Env:   map[string]string{"SAMPLE": "s 1", "THREADS": "4"},
	Resources: scheduler.Resources{
		CPUs: 4, MemoryMB: 8193, Time: 50*time.Hour + 90*time.Second,
		Queue: "short", Account: "proj-1",
		Extra: []string{`-R "rusage[ngpus_physical=1]"`, "-app big", "-G lab"},
	},
}

// goldenSpecs are the specs whose rendered scripts are kept in testdata/golden.
var goldenSpecs = []struct {
	name string
	opts Options
	spec scheduler.JobSpec
}{
	{name: "minimal", spec: scheduler.JobSpec{Name: "task", Dir: "/scratch/alice/work/ab/cdef"}},
	{name: "full", spec: fullSpec},
	{name: "site-options", opts: Options{MemoryUnit: "KB", PerJobMemLimit: true, PerTaskReserve: true, AccountOption: "-G", WarningLead: 90 * time.Minute},
		spec: scheduler.JobSpec{Dir: "/my work/[x]", Resources: scheduler.Resources{CPUs: 2, MemoryMB: 1000, Time: 3 * time.Hour, Account: "grp"}}},
	{name: "no-warning-gb", opts: Options{MemoryUnit: "gb", WarningLead: -1},
		spec: scheduler.JobSpec{Dir: "/w", Resources: scheduler.Resources{MemoryMB: 1500, Time: time.Hour}}},
}

func TestRenderGolden(t *testing.T) {
	for _, g := range goldenSpecs {
		t.Run(g.name, func(t *testing.T) {
			got, err := New(g.opts).Render(g.spec)
			require.NoError(t, err)
			adaptertest.RequireGolden(t, "lsf", g.name, got, *update)
		})
	}
}

// directives returns the #BSUB lines of a rendered script, without the prefix.
func directives(b []byte) []string {
	return adaptertest.Directives(b, "#BSUB ")
}

func TestRenderDirectives(t *testing.T) {
	b, err := New(Options{}).Render(fullSpec)
	require.NoError(t, err)
	require.Equal(t, []string{
		"-J nf-align__sample_1_", "-o /scratch/alice/work/12/3456/.command.log", "-q short",
		"-n 4", `-R "span[hosts=1]"`, "-W 50:02", "-wa USR2", "-wt 1",
		"-M 2049", `-R "select[mem>=8193] rusage[mem=8193]"`, "-P proj-1", "-Jd ferry:run-42:task.7",
		`-R "rusage[ngpus_physical=1]"`, "-app big", "-G lab",
	}, directives(b))

	b, err = New(Options{MemoryUnit: "KB", PerJobMemLimit: true, PerTaskReserve: true, AccountOption: "-G", WarningLead: 90 * time.Minute}).
		Render(scheduler.JobSpec{Dir: "/my work/[x]", Resources: scheduler.Resources{CPUs: 2, MemoryMB: 1000, Time: 3 * time.Hour, Account: "grp"}})
	require.NoError(t, err)
	require.Equal(t, []string{
		"-J ferry", `-o "/my work/[x]/.command.log"`, "-n 2", `-R "span[hosts=1]"`, "-W 03:00", "-wa USR2", "-wt 1:30",
		"-M 1024000", `-R "select[mem>=1024000] rusage[mem=512000]"`, "-G grp",
	}, directives(b))

	b, err = New(Options{MemoryUnit: "gb", WarningLead: -1}).Render(scheduler.JobSpec{Dir: "/w", Resources: scheduler.Resources{MemoryMB: 1500, Time: time.Hour}})
	require.NoError(t, err)
	require.Equal(t, []string{"-J ferry", "-o /w/.command.log", "-W 01:00", "-M 2", `-R "select[mem>=2] rusage[mem=2]"`}, directives(b))
}

func TestWarningNeedsRoom(t *testing.T) {
	b, err := New(Options{WarningLead: time.Hour}).Render(scheduler.JobSpec{Dir: "/w", Resources: scheduler.Resources{Time: time.Hour}})
	require.NoError(t, err)
	require.Equal(t, []string{"-J ferry", "-o /w/.command.log", "-W 01:00"}, directives(b), "a warning as long as the limit would fire at start")
}

func TestConvert(t *testing.T) {
	require.Equal(t, int64(2048), convert(2, -1))
	require.Equal(t, int64(5), convert(5, 0))
	require.Equal(t, int64(1), convert(1, 1))
	require.Equal(t, int64(2), convert(1025, 1))
	require.Equal(t, int64(1), convert(1, 2))
}

func TestRenderRefusals(t *testing.T) {
	ok := scheduler.JobSpec{Name: "x", Dir: "/w"}
	with := func(f func(*scheduler.JobSpec)) scheduler.JobSpec {
		s := ok
		f(&s)
		return s
	}
	extra := func(x string) scheduler.JobSpec {
		return with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{x} })
	}
	cases := []struct {
		name string
		opts Options
		spec scheduler.JobSpec
		want string
	}{
		{name: "relative dir", spec: with(func(s *scheduler.JobSpec) { s.Dir = "w" }), want: "not absolute"},
		{name: "dir with quote", spec: with(func(s *scheduler.JobSpec) { s.Dir = `/a"b` }), want: "quote"},
		{name: "dir with percent", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a%J" }), want: "# % $"},
		{name: "dir with newline", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a\nb" }), want: "control"},
		{name: "name with newline", spec: with(func(s *scheduler.JobSpec) { s.Name = "a\n#BSUB -q x" }), want: "control"},
		{name: "negative cpus", spec: with(func(s *scheduler.JobSpec) { s.Resources.CPUs = -1 }), want: "negative"},
		{name: "negative memory", spec: with(func(s *scheduler.JobSpec) { s.Resources.MemoryMB = -1 }), want: "negative"},
		{name: "negative time", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = -1 }), want: "negative"},
		{name: "bad token", spec: with(func(s *scheduler.JobSpec) { s.Token = "a b" }), want: "token"},
		{name: "queue with blank", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = "a b" }), want: "queue"},
		{name: "account with quote", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = "a'" }), want: "account"},
		{name: "bad unit", opts: Options{MemoryUnit: "PB"}, spec: ok, want: "memory unit"},
		{name: "bad account option", opts: Options{AccountOption: "-A"}, spec: ok, want: "not -P or -G"},
		{name: "extra not an option", spec: extra("span[hosts=1]"), want: "not a bsub option"},
		{name: "extra newline", spec: extra("-q a\n#BSUB -o /x"), want: "newline"},
		{name: "extra output", spec: extra("-oo /tmp/x"), want: ".command.log"},
		{name: "extra error", spec: extra("-e /tmp/x"), want: ".command.log"},
		{name: "extra array", spec: extra(`-J "x[1-10]"`), want: "arrays"},
		{name: "extra interactive", spec: extra("-Is"), want: "interactive"},
		{name: "extra wait", spec: extra("-K"), want: "wait"},
		{name: "extra description", spec: with(func(s *scheduler.JobSpec) { s.Token = "t"; s.Resources.Extra = []string{"-Jd x"} }), want: "token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.opts).Render(c.spec)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
	_, err := New(Options{}).Render(extra("-J other"))
	require.NoError(t, err, "a plain -J only renames the job")
	_, err = New(Options{}).Render(extra("-Jd note"))
	require.NoError(t, err, "-Jd is free without a token")
}

func TestSubmitCommand(t *testing.T) {
	l := New(Options{})
	c := l.SubmitCommand(fullSpec)
	require.Equal(t, []string{"bsub"}, c.Argv)
	require.Equal(t, fullSpec.Dir, c.Dir)
	script, err := l.Render(fullSpec)
	require.NoError(t, err)
	require.Equal(t, script, c.Stdin, "the script goes to bsub on stdin, byte for byte what Render returns")
	_, err = scheduler.CommandLine(c)
	require.NoError(t, err)

	bad := scheduler.JobSpec{Dir: "relative"}
	c = l.SubmitCommand(bad)
	require.Nil(t, c.Stdin)
	_, err = scheduler.CommandLine(c)
	require.ErrorIs(t, err, scheduler.ErrUnquotable, "a spec Render refuses must not produce a runnable command")
	require.Contains(t, err.Error(), "not absolute")
}

func TestCommands(t *testing.T) {
	l := New(Options{})
	ids := []scheduler.JobID{"12", "13"}
	require.Equal(t, []string{"bjobs", "-a", "-noheader", "-o",
		"jobid stat queue user exit_code exit_reason pend_reason submit_time start_time finish_time job_name delimiter='|'",
		"12", "13"}, l.StatusCommand("alice", ids).Argv)
	require.Equal(t, []string{"bhist", "-a", "-l", "-n", "5", "12", "13"}, l.AccountingCommand("alice", ids).Argv)
	require.Equal(t, []string{"bhist", "-a", "-l", "-n", "9", "12"}, New(Options{EventFiles: 9}).AccountingCommand("alice", ids[:1]).Argv)
	require.Equal(t, []string{"bkill", "12", "13"}, l.CancelCommand(ids).Argv)
	require.Equal(t, "lsf", l.Kind())
	for _, c := range []scheduler.Command{l.StatusCommand("a", ids), l.AccountingCommand("a", ids), l.CancelCommand(ids)} {
		line, err := scheduler.CommandLine(c)
		require.NoError(t, err)
		require.NotContains(t, line, "!")
	}
}

func TestCommandDir(t *testing.T) {
	l := New(Options{CommandDir: "/opt/lsf/bin"})
	ids := []scheduler.JobID{"12"}
	sub := l.SubmitCommand(scheduler.JobSpec{Name: "x", Dir: "/w"})
	require.Equal(t, []string{"/opt/lsf/bin/bsub"}, sub.Argv)
	require.NotEmpty(t, sub.Stdin)
	require.Equal(t, "/opt/lsf/bin/bjobs", l.StatusCommand("alice", ids).Argv[0])
	require.Equal(t, "/opt/lsf/bin/bhist", l.AccountingCommand("alice", ids).Argv[0])
	require.Equal(t, []string{"/opt/lsf/bin/bkill", "12"}, l.CancelCommand(ids).Argv)
	bad := l.SubmitCommand(scheduler.JobSpec{Name: "x", Dir: "relative"})
	require.Equal(t, "/opt/lsf/bin/bsub", bad.Argv[0])
	_, err := scheduler.CommandLine(bad)
	require.Error(t, err)
}
