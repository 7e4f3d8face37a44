package schedulers

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

var limitAtLine = regexp.MustCompile(`(?m)^ferry_limit_at=([0-9]+)$`)

// TestWrapperKnowsTheLimit checks that every adapter hands the wrapper the time limit it asked the
// scheduler for, rounded to the scheduler's unit (minutes for Slurm and LSF, seconds for PBS and
// Grid Engine), and none when an extra option sets a limit of its own, so that the wrapper's
// "killed at the time limit" check (140 without a warning) never fires early.
func TestWrapperKnowsTheLimit(t *testing.T) {
	limitAt := func(t *testing.T, kind string, r scheduler.Resources) int64 {
		t.Helper()
		s, err := New(kind, Options{})
		require.NoError(t, err)
		run, err := s.Render(scheduler.JobSpec{Name: "x", Dir: "/w/x", Resources: r})
		require.NoError(t, err, "%s %+v", kind, r)
		m := limitAtLine.FindSubmatch(run)
		require.NotNil(t, m, "%s: no ferry_limit_at line in\n%s", kind, run)
		n, err := strconv.ParseInt(string(m[1]), 10, 64)
		require.NoError(t, err)
		return n
	}
	const time90s = 90 * time.Second
	for _, c := range []struct {
		kind     string
		rounded  time.Duration // 90 s as the scheduler enforces it
		override string        // an extra option that sets the limit itself
		other    string        // one that does not
	}{
		{"slurm", 2 * time.Minute, "--time=10", "--qos=long"},
		{"slurm", 2 * time.Minute, "-t 10", "--test-only"},
		{"pbspro", time90s, "-l walltime=01:00:00", "-l ngpus=1"},
		{"torque", time90s, "-l nodes=1,walltime=1:00:00", "-W depend=afterok:1"},
		{"sge", time90s, "-l h_rt=1:00:00", "-l gpu=1"},
		{"lsf", 2 * time.Minute, "-W 10", "-We 10"},
		{"lsf", 2 * time.Minute, "-W10", "-app big"},
	} {
		want := int64((c.rounded - scheduler.KillMargin(c.rounded)) / time.Second)
		require.Equal(t, want, limitAt(t, c.kind, scheduler.Resources{Time: time90s}), c.kind)
		require.Equal(t, want, limitAt(t, c.kind, scheduler.Resources{Time: time90s, Extra: []string{c.other}}), "%s %q", c.kind, c.other)
		require.Zero(t, limitAt(t, c.kind, scheduler.Resources{Time: time90s, Extra: []string{c.override}}), "%s %q", c.kind, c.override)
		require.Zero(t, limitAt(t, c.kind, scheduler.Resources{}), "%s without a limit", c.kind)
	}
}
