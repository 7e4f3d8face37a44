package agent

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// TestPruneForgetsOnlyOldFinishedJobs: a finished job past the retention goes from memory and the
// store; a recent finished job and an old active one stay; and a restarted agent does not see the
// pruned job again.
func TestPruneForgetsOnlyOldFinishedJobs(t *testing.T) {
	cfg := config.Default()
	cfg.Agent.StateDir = t.TempDir()
	cfg.Agent.Socket = ""
	cfg.Agent.KEKEnv = ""
	a, err := New(cfg, zerolog.Nop(), nil)
	require.NoError(t, err)
	now := time.Now().UTC()
	for _, j := range []store.Job{
		{ID: "old-done", Identity: "hpc", User: "alice", Done: true, Status: "completed", Submitted: now.Add(-100 * 24 * time.Hour), Ended: now.Add(-99 * 24 * time.Hour)},
		{ID: "new-done", Identity: "hpc", User: "alice", Done: true, Status: "completed", Submitted: now.Add(-time.Hour), Ended: now.Add(-time.Minute)},
		{ID: "old-active", Identity: "hpc", User: "alice", Status: "running", SchedulerID: "1", Submitted: now.Add(-100 * 24 * time.Hour)},
	} {
		j := j
		require.NoError(t, a.store.Put(j))
		a.mu.Lock()
		a.putJobLocked(&j)
		a.mu.Unlock()
	}
	require.Equal(t, 1, a.prune(now.Add(-cfg.Store.KeepFinished.Duration)))
	// The pruned job is gone from the per-user index too: ListJobs no longer returns it.
	listed, err := a.ListJobs(context.Background(), contract.ListRequest{User: "alice"}) // the launcher: sees all
	require.NoError(t, err)
	require.Len(t, listed, 2)
	_, ok := a.current("old-done")
	require.False(t, ok)
	for _, id := range []string{"new-done", "old-active"} {
		_, ok := a.current(id)
		require.True(t, ok, id)
	}
	_, err = a.store.Get("old-done")
	require.ErrorIs(t, err, store.ErrNotFound)
	a.cancel() // no poller for the fake active job
	require.NoError(t, a.Close())
}
