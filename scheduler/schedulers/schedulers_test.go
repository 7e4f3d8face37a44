package schedulers

import (
	"path"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/pbs"
)

func TestNew(t *testing.T) {
	for _, kind := range []string{"slurm", "pbspro", "torque", "lsf", "sge"} {
		s, err := New(kind, Options{})
		require.NoError(t, err, kind)
		require.Equal(t, kind, s.Kind())
		c := s.CancelCommand([]scheduler.JobID{"12"})
		require.NotContains(t, c.Argv[0], "/", "%s: without a command dir commands come from PATH", kind)
	}
	_, err := New("pbs", Options{})
	require.ErrorContains(t, err, `unknown scheduler "pbs"`)
}

func TestNewWithSiteOptions(t *testing.T) {
	ids := []scheduler.JobID{"12"}
	for kind, cancel := range map[string]string{"pbspro": "qdel", "torque": "qdel", "lsf": "bkill", "sge": "qdel"} {
		s, err := New(kind, Options{CommandDir: "/opt/" + kind + "/bin"})
		require.NoError(t, err, kind)
		require.Equal(t, kind, s.Kind())
		require.Equal(t, "/opt/"+kind+"/bin/"+cancel, s.CancelCommand(ids).Argv[0])
		require.Equal(t, "/opt/"+kind+"/bin", path.Dir(s.StatusCommand("u", ids).Argv[0]), kind)
	}

	s, err := New("pbspro", Options{PBSHistory: true})
	require.NoError(t, err)
	require.Contains(t, s.StatusCommand("u", ids).Argv, "-x", "history adds -x to the status query")
	s, err = New("pbspro", Options{})
	require.NoError(t, err)
	require.NotContains(t, s.StatusCommand("u", ids).Argv, "-x")
	_, isPro := s.(*pbs.Pro)
	require.True(t, isPro)

	for name, c := range map[string]struct {
		kind string
		opts Options
		want string
	}{
		"relative":        {"sge", Options{CommandDir: "opt/sge/bin"}, "not an absolute path"},
		"unclean":         {"sge", Options{CommandDir: "/opt/../sge/bin"}, "not a clean path"},
		"newline":         {"lsf", Options{CommandDir: "/opt/lsf\n/bin"}, "login shell"},
		"bang":            {"torque", Options{CommandDir: "/opt/t!/bin"}, "login shell"},
		"slurm dir":       {"slurm", Options{CommandDir: "/usr/bin"}, "not supported for slurm"},
		"unknown kind":    {"pbs", Options{}, "unknown scheduler"},
		"unknown and dir": {"pbs", Options{CommandDir: "/x"}, "unknown scheduler"},
	} {
		_, err := New(c.kind, c.opts)
		require.ErrorContains(t, err, c.want, name)
	}
	_, err = New("sge", Options{CommandDir: "/opt/sge/bin/"})
	require.NoError(t, err, "a trailing slash is fine")
}
