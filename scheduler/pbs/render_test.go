package pbs

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
		CPUs: 4, MemoryMB: 8192, Time: 50*time.Hour + 90*time.Second + 500*time.Millisecond,
		Queue: "short", Account: "proj-1",
		Extra: []string{"-l ngpus=1", "-W depend=afterok:12.srv", "-m ae"},
	},
}

// goldenSpecs are the specs whose rendered scripts are kept in testdata/golden.
var goldenSpecs = []struct {
	name   string
	torque bool
	opts   Options
	spec   scheduler.JobSpec
}{
	{name: "pro-minimal", spec: scheduler.JobSpec{Name: "task", Dir: "/scratch/alice/work/ab/cdef"}},
	{name: "pro-full", spec: fullSpec},
	{name: "pro-project-mem-only", opts: Options{AccountOption: "-P", MaxNameLen: 40}, spec: scheduler.JobSpec{
		Name: "123 long name with spaces and more", Dir: "/w/x/", Resources: scheduler.Resources{MemoryMB: 100, Account: "p9"},
	}},
	{name: "torque-minimal", torque: true, spec: scheduler.JobSpec{Name: "", Dir: "/scratch/alice/work/ab/cdef"}},
	{name: "torque-full", torque: true, spec: fullSpec},
}

func render(torque bool, opts Options, spec scheduler.JobSpec) ([]byte, error) {
	if torque {
		return NewTorque(opts).Render(spec)
	}
	return NewPro(opts).Render(spec)
}

func TestRenderGolden(t *testing.T) {
	for _, g := range goldenSpecs {
		t.Run(g.name, func(t *testing.T) {
			got, err := render(g.torque, g.opts, g.spec)
			require.NoError(t, err)
			adaptertest.RequireGolden(t, "pbs", g.name, got, *update)
		})
	}
}

// directives returns the #PBS lines of a rendered script, without the prefix.
func directives(b []byte) []string {
	return adaptertest.Directives(b, "#PBS ")
}

func TestRenderDirectives(t *testing.T) {
	pro, err := NewPro(Options{}).Render(fullSpec)
	require.NoError(t, err)
	require.Equal(t, []string{
		"-l ngpus=1", "-W depend=afterok:12.srv", "-m ae", // first: PBS Pro keeps the first of competing directives
		"-N nf-align_sample", "-o /scratch/alice/work/12/3456/.command.log", "-j oe", "-S /bin/sh", "-r n",
		"-q short", "-l walltime=50:01:31", "-l select=1:ncpus=4:mem=8192mb", "-A proj-1", "-v FERRY_TOKEN=run-42:task.7",
	}, directives(pro))

	tq, err := NewTorque(Options{}).Render(fullSpec)
	require.NoError(t, err)
	require.Equal(t, []string{
		"-N nf-align_sample", "-o /scratch/alice/work/12/3456/.command.log", "-j oe", "-S /bin/sh", "-r n",
		"-q short", "-l walltime=50:01:31", "-l nodes=1:ppn=4", "-l mem=8192mb", "-A proj-1", "-v FERRY_TOKEN=run-42:task.7",
		"-l ngpus=1", "-W depend=afterok:12.srv", "-m ae", // last for Torque
	}, directives(tq))

	minimal, err := NewPro(Options{}).Render(scheduler.JobSpec{Dir: "/w", Resources: scheduler.Resources{CPUs: 1}})
	require.NoError(t, err)
	require.Equal(t, []string{"-N ferry", "-o /w/.command.log", "-j oe", "-S /bin/sh", "-r n"}, directives(minimal))
	require.True(t, strings.HasPrefix(string(minimal), "#!/bin/sh\n#PBS -N ferry\n"))
	require.Contains(t, string(minimal), "cd '/w' || exit 1\n")
}

func TestJobName(t *testing.T) {
	c := NewPro(Options{})
	for in, want := range map[string]string{
		"":                       "ferry",
		"task":                   "task",
		"nf-align (1)":           "nf-align_1",
		"()":                     "ferry",
		"1st":                    "f1st",
		"_x":                     "f_x",
		"a/b:c@d*e?f=g h":        "a_b_c_d_e_f_g_h",
		"exactly-fifteen":        "exactly-fifteen",
		"longer-than-fifteen-xx": "longer-than-fif",
		"é":                      "f_",
	} {
		require.Equal(t, want, c.jobName(in), "name %q", in)
	}
	require.Equal(t, "longer-than-fifteen-xx", NewTorque(Options{MaxNameLen: 100}).jobName("longer-than-fifteen-xx"))
}

func TestFormatWalltime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Nanosecond:                "00:00:01",
		59 * time.Second:               "00:00:59",
		time.Hour:                      "01:00:00",
		25*time.Hour + 61*time.Second:  "25:01:01",
		1000 * time.Hour:               "1000:00:00",
		90*time.Minute + time.Second/2: "01:30:01",
	} {
		require.Equal(t, want, formatWalltime(d), "%s", d)
	}
}

func TestRenderRefusals(t *testing.T) {
	ok := scheduler.JobSpec{Name: "x", Dir: "/w"}
	with := func(f func(*scheduler.JobSpec)) scheduler.JobSpec {
		s := ok
		s.Resources.Extra = nil
		f(&s)
		return s
	}
	cases := []struct {
		name   string
		torque bool
		opts   Options
		spec   scheduler.JobSpec
		want   string
	}{
		{name: "relative dir", spec: with(func(s *scheduler.JobSpec) { s.Dir = "w" }), want: "not absolute"},
		{name: "dir with space", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/my work" }), want: "whitespace"},
		{name: "dir with colon", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a:b" }), want: "# : $"},
		{name: "dir with quote", spec: with(func(s *scheduler.JobSpec) { s.Dir = `/a"b` }), want: "quote"},
		{name: "dir with dollar", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a$HOME" }), want: "# : $"},
		{name: "dir with newline", spec: with(func(s *scheduler.JobSpec) { s.Dir = "/a\nb" }), want: "control"},
		{name: "torque dir with semicolon", torque: true, spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/a;id" }), want: "';'"},
		{name: "torque dir with backquote", torque: true, spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/a`id`" }), want: "'`'"},
		{name: "torque dir with percent", torque: true, spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/%j" }), want: "'%'"},
		{name: "torque dir with non-ASCII", torque: true, spec: with(func(s *scheduler.JobSpec) { s.Dir = "/w/é" }), want: "'é'"},
		{name: "name with newline", spec: with(func(s *scheduler.JobSpec) { s.Name = "a\n#PBS -q x" }), want: "control"},
		{name: "negative cpus", spec: with(func(s *scheduler.JobSpec) { s.Resources.CPUs = -1 }), want: "negative"},
		{name: "negative memory", spec: with(func(s *scheduler.JobSpec) { s.Resources.MemoryMB = -1 }), want: "negative"},
		{name: "negative time", spec: with(func(s *scheduler.JobSpec) { s.Resources.Time = -time.Second }), want: "negative"},
		{name: "bad token", spec: with(func(s *scheduler.JobSpec) { s.Token = "a,b" }), want: "token"},
		{name: "queue with space", spec: with(func(s *scheduler.JobSpec) { s.Resources.Queue = "a b" }), want: "queue"},
		{name: "account with hash", spec: with(func(s *scheduler.JobSpec) { s.Resources.Account = "a#b" }), want: "account"},
		{name: "bad account option", opts: Options{AccountOption: "-G"}, spec: ok, want: "not -A or -P"},
		{name: "torque project", torque: true, opts: Options{AccountOption: "-P"}, spec: ok, want: "run as another user"},
		{name: "extra not an option", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"walltime=1"} }), want: "not a qsub option"},
		{name: "extra double dash", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-- /bin/true"} }), want: "not a qsub option"},
		{name: "extra newline", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-l a=1\n#PBS -o /x"} }), want: "newline"},
		{name: "extra array", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-J 1-10"} }), want: "arrays"},
		{name: "extra torque array", torque: true, spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-t 1-10"} }), want: "arrays"},
		{name: "extra output", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-o /tmp/x"} }), want: ".command.log"},
		{name: "extra keep", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-k oe"} }), want: ".command.log"},
		{name: "extra shell", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-S /bin/csh"} }), want: "/bin/sh"},
		{name: "extra prefix", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-C #X"} }), want: "prefix"},
		{name: "extra interactive", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-I"} }), want: "interactive"},
		{name: "extra block", spec: with(func(s *scheduler.JobSpec) { s.Resources.Extra = []string{"-W block=true"} }), want: "wait"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(c.torque, c.opts, c.spec)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestCommands(t *testing.T) {
	spec := scheduler.JobSpec{Name: "nf-x (1)", Dir: "/w/a-b"}
	pro := NewPro(Options{})
	sub := pro.SubmitCommand(spec)
	require.Equal(t, []string{"qsub", "-N", "nf-x_1", ".command.run"}, sub.Argv)
	require.Equal(t, "/w/a-b", sub.Dir)
	require.Nil(t, sub.Stdin)

	ids := []scheduler.JobID{"12.srv", "13[].srv"}
	require.Equal(t, []string{"qstat", "-E", "-f", "-F", "json", "12.srv", "13[].srv"}, pro.StatusCommand("alice", ids).Argv)
	require.Equal(t, []string{"qstat", "-E", "-f", "-F", "json", "-x", "12.srv"}, NewPro(Options{History: true}).StatusCommand("alice", ids[:1]).Argv)
	require.Equal(t, []string{"qstat", "-x", "-E", "-f", "-F", "json", "12.srv"}, pro.AccountingCommand("alice", ids[:1]).Argv)
	require.Equal(t, []string{"qdel", "12.srv", "13[].srv"}, pro.CancelCommand(ids).Argv)

	// Torque repeats the output directives on the command line: Slurm's Torque wrappers ignore
	// #PBS -o and -j (see testdata/cluster/torque-qsub.txt).
	tq := NewTorque(Options{})
	tsub := tq.SubmitCommand(spec)
	require.Equal(t, []string{"qsub", "-N", "nf-x_1", "-o", "/w/a-b/.command.log", "-j", "oe", ".command.run"}, tsub.Argv)
	require.Equal(t, "/w/a-b", tsub.Dir)
	require.Equal(t, []string{"qsub", "-N", "ferry", "-o", "/w/.command.log", "-j", "oe", ".command.run"},
		tq.SubmitCommand(scheduler.JobSpec{Dir: "/w/"}).Argv)
	require.Equal(t, []string{"qstat", "-f", "-1", "12.srv", "13[].srv"}, tq.StatusCommand("alice", ids).Argv)
	require.Equal(t, []string{"qdel", "12.srv"}, tq.CancelCommand(ids[:1]).Argv)
	_, isAcct := any(tq).(scheduler.Accounting)
	require.False(t, isAcct, "Torque has no accounting source")

	// A directory Render refuses gives a submit command that cannot be run.
	for _, dir := range []string{"/w/a b", "/w/a;id", "relative"} {
		_, err := scheduler.CommandLine(tq.SubmitCommand(scheduler.JobSpec{Name: "x", Dir: dir}))
		require.ErrorIs(t, err, scheduler.ErrUnquotable, dir)
	}

	require.Equal(t, "pbspro", pro.Kind())
	require.Equal(t, "torque", tq.Kind())

	for _, c := range []scheduler.Command{sub, tsub, pro.StatusCommand("u", ids), pro.CancelCommand(ids), tq.StatusCommand("u", ids)} {
		_, err := scheduler.CommandLine(c)
		require.NoError(t, err)
	}
}

func TestCommandDir(t *testing.T) {
	spec := scheduler.JobSpec{Name: "x", Dir: "/w"}
	ids := []scheduler.JobID{"12"}
	pro := NewPro(Options{CommandDir: "/opt/pbs/bin"})
	tq := NewTorque(Options{CommandDir: "/opt/ferry-torque/bin/"})
	for want, c := range map[string]scheduler.Command{
		"/opt/pbs/bin/qsub":           pro.SubmitCommand(spec),
		"/opt/pbs/bin/qstat":          pro.StatusCommand("u", ids),
		"/opt/pbs/bin/qdel":           pro.CancelCommand(ids),
		"/opt/ferry-torque/bin/qsub":  tq.SubmitCommand(spec),
		"/opt/ferry-torque/bin/qstat": tq.StatusCommand("u", ids),
		"/opt/ferry-torque/bin/qdel":  tq.CancelCommand(ids),
	} {
		require.Equal(t, want, c.Argv[0])
	}
	require.Equal(t, "/opt/pbs/bin/qstat", pro.AccountingCommand("u", ids).Argv[0])
	require.Equal(t, []string{"/opt/pbs/bin/qsub", "-N", "x", ".command.run"}, pro.SubmitCommand(spec).Argv)
}
