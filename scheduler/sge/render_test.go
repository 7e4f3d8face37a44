package sge

import (
	"flag"
	"strings"
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
		CPUs: 4, MemoryMB: 8193, Time: 50*time.Hour + 90*time.Second + 500*time.Millisecond,
		Queue: "short.q", Account: "proj-1",
		Extra: []string{"-l gpu=1", "-hold_jid 12", "-P lab"},
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
	{name: "site-options", opts: Options{ParallelEnv: "threaded", MemoryResources: []string{"mem_free", "h_vmem"}, AccountOption: "-P", Notify: true},
		spec: scheduler.JobSpec{Name: "9lives", Dir: "/w/", Resources: scheduler.Resources{CPUs: 2, MemoryMB: 1000, Account: "p9"}}},
	{name: "no-memory", opts: Options{MemoryResources: []string{}}, spec: scheduler.JobSpec{Dir: "/w", Resources: scheduler.Resources{MemoryMB: 1000}}},
}

func TestRenderGolden(t *testing.T) {
	for _, g := range goldenSpecs {
		t.Run(g.name, func(t *testing.T) {
			got, err := New(g.opts).Render(g.spec)
			require.NoError(t, err)
			adaptertest.RequireGolden(t, "sge", g.name, got, *update)
		})
	}
}

// directives returns the #$ lines of a rendered script, without the prefix.
func directives(b []byte) []string {
	return adaptertest.Directives(b, "#$ ")
}

func TestRenderDirectives(t *testing.T) {
	b, err := New(Options{}).Render(fullSpec)
	require.NoError(t, err)
	require.Equal(t, []string{
		"-N nf-align__sample_1_", "-o /scratch/alice/work/12/3456/.command.log", "-j y", "-S /bin/sh", "-cwd", "-r n",
		"-q short.q", "-pe smp 4", "-l h_rt=50:01:31", "-l h_vmem=2049M", "-A proj-1", "-ac FERRY_TOKEN=run-42:task.7",
		"-l gpu=1", "-hold_jid 12", "-P lab",
	}, directives(b))

	b, err = New(Options{ParallelEnv: "threaded", MemoryResources: []string{"mem_free", "h_vmem"}, AccountOption: "-P", Notify: true}).
		Render(scheduler.JobSpec{Name: "9lives", Dir: "/w/", Resources: scheduler.Resources{CPUs: 2, MemoryMB: 1000, Account: "p9"}})
	require.NoError(t, err)
	require.Equal(t, []string{
		"-N f9lives", "-o /w/.command.log", "-j y", "-S /bin/sh", "-cwd", "-r n", "-notify",
		"-pe threaded 2", "-l mem_free=500M,h_vmem=500M", "-P p9",
	}, directives(b))

	b, err = New(Options{}).Render(scheduler.JobSpec{Dir: "/w", Resources: scheduler.Resources{CPUs: 1, MemoryMB: 10}})
	require.NoError(t, err)
	require.Equal(t, []string{"-N ferry", "-o /w/.command.log", "-j y", "-S /bin/sh", "-cwd", "-r n", "-l h_vmem=10M"}, directives(b))
}

func TestJobName(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "ferry",
		"task":                         "task",
		"a/b:c@d\\e*f?g h=i":           "a_b_c_d_e_f_g_h_i",
		"123":                          "f123",
		strings.Repeat("x", 300):       strings.Repeat("x", 256),
		"1" + strings.Repeat("x", 300): "f1" + strings.Repeat("x", 254),
	} {
		require.Equal(t, want, jobName(in), "name %q", in)
	}
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
		{name: "dir with space", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/my work" }), want: "whitespace"},
		{name: "dir with colon", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a:b" }), want: "# : $"},
		{name: "dir with dollar", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a$JOB_ID" }), want: "# : $"},
		{name: "dir with control", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a\x01" }), want: "control"},
		{name: "name with newline", spec: with(func(s *scheduler.JobSpec) { s.Name = "a\n#$ -q x" }), want: "control"},
		{name: "negative cpus", spec: with(func(s *scheduler.JobSpec) { s.Resources.CPUs = -2 }), want: "negative"},
		{name: "negative memory", spec: with(func(s *scheduler.JobSpec) { s.Resources.MemoryMB = -2 }), want: "negative"},
		{name: "negative time", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = -1 }), want: "negative"},
		{name: "bad token", spec: with(func(s *scheduler.JobSpec) { s.Token = "a b" }), want: "token"},
		{name: "queue with comma", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = "a,b" }), want: "queue"},
		{name: "account with quote", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = `a"` }), want: "account"},
		{name: "pe with space", opts: Options{ParallelEnv: "a b"}, spec: ok, want: "parallel environment"},
		{name: "bad memory resource", opts: Options{MemoryResources: []string{"h_vmem=1G"}}, spec: ok, want: "complex name"},
		{name: "bad account option", opts: Options{AccountOption: "-G"}, spec: ok, want: "not -A or -P"},
		{name: "extra not an option", spec: extra("h_rt=1"), want: "not a qsub option"},
		{name: "extra long option", spec: extra("--help"), want: "not a qsub option"},
		{name: "extra newline", spec: extra("-l a=1\n#$ -o /x"), want: "newline"},
		{name: "extra array", spec: extra("-t 1-10"), want: "arrays"},
		{name: "extra tc", spec: extra("-tc 2"), want: "arrays"},
		{name: "extra output", spec: extra("-e /tmp/x"), want: ".command.log"},
		{name: "extra join", spec: extra("-j n"), want: ".command.log"},
		{name: "extra shell", spec: extra("-S /bin/csh"), want: "/bin/sh"},
		{name: "extra prefix", spec: extra("-C #X"), want: "prefix"},
		{name: "extra binary", spec: extra("-b y"), want: "binary"},
		{name: "extra options file", spec: extra("-@ /tmp/opts"), want: "options files"},
		{name: "extra sync", spec: extra("-sync y"), want: "wait"},
		{name: "extra verify", spec: extra("-w v"), want: "verifies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.opts).Render(c.spec)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
	_, err := New(Options{}).Render(extra("-w e"))
	require.NoError(t, err, "-w e only sets the verification level")
}

func TestCommands(t *testing.T) {
	s := New(Options{})
	sub := s.SubmitCommand(scheduler.JobSpec{Dir: "/w/x"})
	require.Equal(t, []string{"qsub", "-terse", ".command.run"}, sub.Argv)
	require.Equal(t, "/w/x", sub.Dir)
	ids := []scheduler.JobID{"12", "13"}
	require.Equal(t, []string{"qstat", "-xml", "-u", "alice"}, s.StatusCommand("alice", ids).Argv)
	require.Equal(t, []string{"qacct", "-o", "alice", "-d", "7", "-j"}, s.AccountingCommand("alice", ids).Argv)
	require.Equal(t, []string{"qacct", "-o", "alice", "-d", "30", "-j"}, New(Options{AccountingDays: 30}).AccountingCommand("alice", ids).Argv)
	require.Equal(t, []string{"qdel", "12", "13"}, s.CancelCommand(ids).Argv)
	require.Equal(t, "sge", s.Kind())
	for _, c := range []scheduler.Command{sub, s.StatusCommand("alice", ids), s.AccountingCommand("alice", ids), s.CancelCommand(ids)} {
		_, err := scheduler.CommandLine(c)
		require.NoError(t, err)
	}
}

func TestCommandDir(t *testing.T) {
	s := New(Options{CommandDir: "/usr/lib/gridengine/bin/"})
	ids := []scheduler.JobID{"12"}
	require.Equal(t, []string{"/usr/lib/gridengine/bin/qsub", "-terse", ".command.run"}, s.SubmitCommand(scheduler.JobSpec{Dir: "/w"}).Argv)
	require.Equal(t, "/usr/lib/gridengine/bin/qstat", s.StatusCommand("alice", ids).Argv[0])
	require.Equal(t, "/usr/lib/gridengine/bin/qacct", s.AccountingCommand("alice", ids).Argv[0])
	require.Equal(t, []string{"/usr/lib/gridengine/bin/qdel", "12"}, s.CancelCommand(ids).Argv)
}
