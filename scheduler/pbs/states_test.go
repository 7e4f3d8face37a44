package pbs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// documented are the state letters STATES.md lists for each flavour.
var documented = map[string][]string{
	"pbspro": {"B", "E", "F", "H", "M", "Q", "R", "S", "T", "U", "W", "X"},
	"torque": {"C", "E", "H", "Q", "R", "T", "W", "S"},
}

func TestStatesTables(t *testing.T) {
	for kind, tbl := range map[string][]State{"pbspro": ProStates, "torque": TorqueStates} {
		codes := map[string]bool{}
		for _, s := range tbl {
			require.False(t, codes[s.Code], "%s: %s listed twice", kind, s.Code)
			codes[s.Code] = true
			require.NotEmpty(t, s.Meaning)
			require.NotEmpty(t, s.Source)
			require.NotEqual(t, scheduler.StatusUnknown, s.Status)
			require.Equal(t, s.Status, StateStatus(s.Code), "%s %s", kind, s.Code)
		}
		for _, c := range documented[kind] {
			require.True(t, codes[c], "%s: documented state %s missing", kind, c)
		}
		require.Len(t, codes, len(documented[kind]), kind)
	}
	// The letters both tables list mean the same.
	for _, p := range ProStates {
		for _, q := range TorqueStates {
			if p.Code == q.Code {
				require.Equal(t, p.Status, q.Status, p.Code)
			}
		}
	}
	require.Equal(t, scheduler.StatusUnknown, StateStatus("Z"))
	require.Equal(t, scheduler.StatusUnknown, StateStatus(""))
	require.Equal(t, scheduler.StatusRunning, StateStatus(" R "))
}

func TestRefine(t *testing.T) {
	n := func(i int) *int { return &i }
	for _, c := range []struct {
		raw, sub string
		code     *int
		want     scheduler.Status
	}{
		{"F", "92", n(0), scheduler.StatusCompleted},
		{"F", "92", n(1), scheduler.StatusCompleted},
		{"F", "91", nil, scheduler.StatusCancelled},
		{"F", "93", n(1), scheduler.StatusFailed},
		{"F", "", n(-2), scheduler.StatusFailed},
		{"F", "92", n(-29), scheduler.StatusTimeout},
		{"F", "93", n(-29), scheduler.StatusTimeout},
		{"F", "91", n(-29), scheduler.StatusCancelled},
		{"F", "92", n(-27), scheduler.StatusFailed},
		{"F", "", n(-11), scheduler.StatusFailed},
		{"C", "", n(0), scheduler.StatusCompleted},
		{"C", "", n(271), scheduler.StatusCompleted},
		{"C", "", n(-11), scheduler.StatusTimeout},
		{"C", "", n(-10), scheduler.StatusFailed},
		{"R", "42", n(-11), scheduler.StatusRunning},
	} {
		require.Equal(t, c.want, refine(c.raw, StateStatus(c.raw), c.sub, c.code), "%+v", c)
	}
}
