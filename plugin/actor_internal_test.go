package plugin

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

func TestWithOutgoingActor(t *testing.T) {
	stray := metadata.NewOutgoingContext(context.Background(),
		metadata.Pairs(actorMetadataKey, "mallory", viaMetadataKey, "cli", "other", "kept"))

	t.Run("no actor removes forwarded actor metadata", func(t *testing.T) {
		ctx, err := withOutgoingActor(stray)
		require.NoError(t, err)
		md, _ := metadata.FromOutgoingContext(ctx)
		assert.Empty(t, md.Get(actorMetadataKey))
		assert.Empty(t, md.Get(viaMetadataKey))
		assert.Equal(t, []string{"kept"}, md.Get("other"))
		orig, _ := metadata.FromOutgoingContext(stray)
		assert.Equal(t, []string{"mallory"}, orig.Get(actorMetadataKey), "the caller's metadata was modified")
	})
	t.Run("actor replaces forwarded actor metadata", func(t *testing.T) {
		ctx, err := withOutgoingActor(WithActor(stray, Actor{Member: "alice@example.org", Via: "nextflow"}))
		require.NoError(t, err)
		md, _ := metadata.FromOutgoingContext(ctx)
		assert.Equal(t, []string{"alice@example.org"}, md.Get(actorMetadataKey))
		assert.Equal(t, []string{"nextflow"}, md.Get(viaMetadataKey))
	})
	t.Run("no metadata at all", func(t *testing.T) {
		ctx, err := withOutgoingActor(WithActor(context.Background(), Actor{Member: "bob"}))
		require.NoError(t, err)
		md, _ := metadata.FromOutgoingContext(ctx)
		assert.Equal(t, []string{"bob"}, md.Get(actorMetadataKey))
		assert.Empty(t, md.Get(viaMetadataKey))
	})
	for _, bad := range []Actor{{Member: "zoë"}, {Member: "a\nb"}, {Member: "a", Via: "\x00"}} {
		_, err := withOutgoingActor(WithActor(context.Background(), bad))
		assert.ErrorIs(t, err, ErrInvalidArgument, "%q", bad)
	}
}

func TestActorFromMetadata(t *testing.T) {
	in := func(kv ...string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
	}
	ctx, err := actorFromMetadata(context.Background())
	require.NoError(t, err)
	_, ok := ActorFrom(ctx)
	assert.False(t, ok, "no metadata: no actor")

	ctx, err = actorFromMetadata(in(viaMetadataKey, "cli"))
	require.NoError(t, err)
	_, ok = ActorFrom(ctx)
	assert.False(t, ok, "via alone names nobody")

	ctx, err = actorFromMetadata(in(actorMetadataKey, "alice", viaMetadataKey, "cli"))
	require.NoError(t, err)
	a, ok := ActorFrom(ctx)
	assert.True(t, ok)
	assert.Equal(t, Actor{Member: "alice", Via: ViaPlugin}, a, "the channel, not the caller, sets via")

	_, err = actorFromMetadata(in(actorMetadataKey, "alice", actorMetadataKey, "root"))
	assert.ErrorIs(t, err, ErrInvalidArgument)
}
