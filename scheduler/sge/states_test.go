package sge

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// documented are the state codes STATES.md lists: sge_status(5) combinations, the single letters of
// qstat(1), and the Univa codes of sge-qstat-7.
var documented = []string{
	"qw", "Rq", "hqw", "hRwq", "r", "t", "Rr", "Rt", "s", "ts", "S", "tS", "T", "tT",
	"Rs", "Rts", "RS", "RtS", "RT", "RtT", "Eqw", "Ehqw", "EhRqw",
	"dr", "dt", "dRr", "dRt", "ds", "dS", "dT", "dRs", "dRS", "dRT",
	"d", "E", "h", "R", "w", "q", "hr", "Tr", "N", "P",
}

func TestStatesTable(t *testing.T) {
	codes := map[string]bool{}
	for _, s := range States {
		require.False(t, codes[s.Code], "%s listed twice", s.Code)
		codes[s.Code] = true
		require.NotEmpty(t, s.Meaning)
		require.NotEmpty(t, s.Source)
		require.NotEqual(t, scheduler.StatusUnknown, s.Status)
		require.Equal(t, s.Status, StateStatus(s.Code), "table and StateStatus disagree on %s", s.Code)
	}
	for _, c := range documented {
		require.NotEqual(t, scheduler.StatusUnknown, StateStatus(c), c)
		if c != "d" { // a lone d is never printed: deletion always comes with the state it interrupts
			require.True(t, codes[c], "documented state %s missing from States", c)
		}
	}
}

func TestStateStatus(t *testing.T) {
	for code, want := range map[string]scheduler.Status{
		"qw": scheduler.StatusPending, "Rq": scheduler.StatusPending, "w": scheduler.StatusPending,
		"hqw": scheduler.StatusHeld, "hRwq": scheduler.StatusHeld, "h": scheduler.StatusHeld,
		"r": scheduler.StatusRunning, "t": scheduler.StatusRunning, "R": scheduler.StatusRunning, "Rr": scheduler.StatusRunning, "hr": scheduler.StatusRunning,
		"Tr": scheduler.StatusHeld, "S": scheduler.StatusHeld, "rs": scheduler.StatusHeld,
		"Eqw": scheduler.StatusHeld, "E": scheduler.StatusHeld, "Edr": scheduler.StatusHeld,
		"dr": scheduler.StatusCancelled, "d": scheduler.StatusCancelled, "dRT": scheduler.StatusCancelled,
		"z": scheduler.StatusCompleted, " qw ": scheduler.StatusPending,
		"": scheduler.StatusUnknown, "x": scheduler.StatusUnknown, "qwx": scheduler.StatusUnknown, "au": scheduler.StatusUnknown,
	} {
		require.Equal(t, want, StateStatus(code), "%q", code)
	}
}
