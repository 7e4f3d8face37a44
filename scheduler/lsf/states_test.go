package lsf

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// documented are the job statuses STATES.md lists for LSF (the job states and bjobs -sum's
// FWD_PEND).
var documented = []string{"PEND", "PROV", "PSUSP", "RUN", "USUSP", "SSUSP", "DONE", "EXIT", "UNKWN", "WAIT", "ZOMBI", "POST_DONE", "POST_ERR", "FWD_PEND"}

func TestStatesTable(t *testing.T) {
	codes := map[string]bool{}
	for _, s := range States {
		require.False(t, codes[s.Code], "%s listed twice", s.Code)
		codes[s.Code] = true
		require.NotEmpty(t, s.Meaning)
		require.NotEmpty(t, s.Source)
		require.NotEqual(t, scheduler.StatusUnknown, s.Status)
		require.Equal(t, s.Status, StateStatus(s.Code))
	}
	for _, c := range documented {
		require.True(t, codes[c], "documented status %s missing", c)
	}
	require.Len(t, codes, len(documented))
	require.Equal(t, scheduler.StatusUnknown, StateStatus("UNKNOWN"))
	require.Equal(t, scheduler.StatusRunning, StateStatus(" RUN "))
}

func TestExitReasonStatus(t *testing.T) {
	for reason, want := range map[string]scheduler.Status{
		"TERM_RUNLIMIT: job killed after reaching LSF run time limit": scheduler.StatusTimeout,
		"TERM_DEADLINE":                                                   scheduler.StatusTimeout,
		"TERM_OWNER: job killed by owner":                                 scheduler.StatusCancelled,
		"TERM_FORCE_ADMIN":                                                scheduler.StatusCancelled,
		"TERM_PREEMPT: job killed after preemption":                       scheduler.StatusCancelled,
		"job killed after reaching LSF run time limit":                    scheduler.StatusTimeout,
		"TERM_MEMLIMIT: job killed after reaching LSF memory usage limit": scheduler.StatusFailed,
		"": scheduler.StatusFailed,
	} {
		require.Equal(t, want, ExitReasonStatus(scheduler.StatusFailed, reason), reason)
	}
}
