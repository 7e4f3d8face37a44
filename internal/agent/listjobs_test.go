package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// listAgent is an agent without identities whose cache holds n jobs spread over users u0..u(users-1)
// on identities hpc and lab, every third one finished.
func listAgent(t testing.TB, n, users int) *Agent {
	t.Helper()
	cfg := config.Default()
	cfg.Agent.StateDir = t.TempDir()
	cfg.Agent.Socket = ""
	cfg.Agent.KEKEnv = ""
	a, err := New(cfg, zerolog.Nop(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { a.cancel(); _ = a.Close() })
	now := time.Now().UTC()
	a.mu.Lock()
	for i := 0; i < n; i++ {
		ident := "hpc"
		if i%2 == 1 {
			ident = "lab"
		}
		a.putJobLocked(&store.Job{ID: fmt.Sprintf("j%06d", i), Identity: ident, User: fmt.Sprintf("u%d", i%users),
			Done: i%3 == 0, Status: "running", Submitted: now.Add(time.Duration(i) * time.Millisecond)})
	}
	a.mu.Unlock()
	return a
}

// TestListJobsFilters: every filter combination returns exactly the matching jobs, oldest first,
// also after jobs are replaced and removed (the per-user index follows the cache).
func TestListJobsFilters(t *testing.T) {
	a := listAgent(t, 600, 6)
	ctx := context.Background() // the launcher: sees every job
	count := func(req contract.ListRequest) int {
		t.Helper()
		jobs, err := a.ListJobs(ctx, req)
		require.NoError(t, err)
		for i := 1; i < len(jobs); i++ {
			require.True(t, !jobs[i].Submitted.Before(jobs[i-1].Submitted), "oldest first")
		}
		for _, j := range jobs {
			require.True(t, req.User == "" || j.User == req.User, "%+v", j)
			require.True(t, req.Identity == "" || j.Identity == req.Identity, "%+v", j)
			require.True(t, !req.ActiveOnly || !j.Done, "%+v", j)
		}
		return len(jobs)
	}
	require.Equal(t, 600, count(contract.ListRequest{}))
	require.Equal(t, 300, count(contract.ListRequest{Identity: "lab"}))
	require.Equal(t, 100, count(contract.ListRequest{User: "u1"}))
	require.Equal(t, 100, count(contract.ListRequest{User: "u1", Identity: "lab"}), "u1 is always on lab (odd ids)")
	require.Equal(t, 0, count(contract.ListRequest{User: "u1", Identity: "hpc"}))
	require.Equal(t, 400, count(contract.ListRequest{ActiveOnly: true}))
	require.Equal(t, 0, count(contract.ListRequest{User: "nobody"}))

	a.mu.Lock()
	a.deleteJobLocked("j000001")                                           // u1 on lab
	a.putJobLocked(&store.Job{ID: "j000007", Identity: "hpc", User: "u1"}) // replaced: moved to hpc
	a.deleteJobLocked("no-such-job")
	a.mu.Unlock()
	require.Equal(t, 98, count(contract.ListRequest{User: "u1", Identity: "lab"}))
	require.Equal(t, 1, count(contract.ListRequest{User: "u1", Identity: "hpc"}))
	require.Equal(t, 599, count(contract.ListRequest{}))
}

// BenchmarkListJobsOneUser lists one user's 100 jobs from an agent holding 100,000 (1,000 users):
// with the per-user index it costs those 100 jobs, not the 100,000.
func BenchmarkListJobsOneUser(b *testing.B) {
	a := listAgent(b, 100_000, 1000)
	ctx := context.Background()
	for b.Loop() {
		jobs, err := a.ListJobs(ctx, contract.ListRequest{User: "u7"})
		if err != nil || len(jobs) != 100 {
			b.Fatalf("%d jobs, %v", len(jobs), err)
		}
	}
}
