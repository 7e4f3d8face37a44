package plugin_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
)

// On the go-plugin channel the actor a launcher puts in ctx reaches the implementation, on every
// kind of call (unary Service, streaming Service, Admin), with Via "plugin".
func TestActorPropagatesOverThePluginChannel(t *testing.T) {
	f := newFake()
	f.watchReturnNil = true
	c := plugintest.Client(t, f)
	want := seenActor{plugin.Actor{Member: "alice@example.org", Via: plugin.ViaPlugin}, true}

	ctx := plugin.WithActor(testCtx(t), plugin.Actor{Member: "alice@example.org", Via: "claimed-cli"})
	_, err := c.Submit(ctx, plugin.SubmitRequest{Token: "t"})
	require.NoError(t, err)
	_ = c.Watch(ctx, plugin.WatchRequest{}, func(plugin.JobEvent) error { return nil })
	_, err = c.Admin().ListCredentials(ctx, "")
	require.NoError(t, err)
	_, err = c.Admin().SetCredential(ctx, plugin.CredentialSpec{Member: "alice@example.org"})
	require.NoError(t, err)
	for _, m := range []string{"Submit", "Watch", "ListCredentials", "SetCredential"} {
		assert.Equal(t, want, f.Actor(m), m)
	}
}

// A launcher that sets no actor calls with none: the implementation sees no actor at all, not an
// empty one.
func TestNoActorMeansNoActor(t *testing.T) {
	f := newFake()
	c := plugintest.Client(t, f)
	ctx := testCtx(t)
	_, err := c.ListJobs(ctx, plugin.ListRequest{})
	require.NoError(t, err)
	_, err = c.Admin().ListMembers(ctx)
	require.NoError(t, err)
	assert.Equal(t, seenActor{}, f.Actor("ListJobs"))
	assert.Equal(t, seenActor{}, f.Actor("ListMembers"))

	// After a call with an actor, the next call without one still has none.
	_, err = c.ListJobs(plugin.WithActor(ctx, plugin.Actor{Member: "bob"}), plugin.ListRequest{})
	require.NoError(t, err)
	assert.True(t, f.Actor("ListJobs").ok)
	_, err = c.ListJobs(ctx, plugin.ListRequest{})
	require.NoError(t, err)
	assert.Equal(t, seenActor{}, f.Actor("ListJobs"))
}

func TestActorThatCannotTravelIsRefused(t *testing.T) {
	f := newFake()
	c := plugintest.Client(t, f)
	ctx := plugin.WithActor(context.Background(), plugin.Actor{Member: "zoë"})
	_, err := c.ListJobs(ctx, plugin.ListRequest{})
	require.ErrorIs(t, err, plugin.ErrInvalidArgument)
	_, err = c.Admin().ListMembers(ctx)
	require.ErrorIs(t, err, plugin.ErrInvalidArgument)
	assert.Empty(t, f.Calls(), "the agent must not be called")
}
