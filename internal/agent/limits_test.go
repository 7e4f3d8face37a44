package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/sshpool"
)

// TestCommandRateLimits: beyond the burst, commands wait for the per-user rate, and a member's
// waiting does not use up another member's budget; the identity-wide limit binds them together.
func TestCommandRateLimits(t *testing.T) {
	cfg := config.Default()
	cfg.Limits = config.Limits{UserCommandsPerMinute: 6, IdentityCommandsPerMinute: 600, Burst: 2}
	a := &Agent{cfg: cfg, limits: map[string]*rate.Limiter{}}
	alice := sshpool.Key{Identity: "hpc", User: "alice"}
	bob := sshpool.Key{Identity: "hpc", User: "bob"}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	require.NoError(t, a.wait(short(), alice))
	require.NoError(t, a.wait(short(), alice))
	require.Error(t, a.wait(short(), alice), "a third command within the burst window must wait ~10s")
	require.NoError(t, a.wait(short(), bob), "bob has his own budget")

	cfg.Limits = config.Limits{UserCommandsPerMinute: 600, IdentityCommandsPerMinute: 6, Burst: 2}
	b := &Agent{cfg: cfg, limits: map[string]*rate.Limiter{}}
	require.NoError(t, b.wait(short(), alice))
	require.NoError(t, b.wait(short(), bob))
	require.Error(t, b.wait(short(), bob), "the identity's budget is shared by its members")
}
