package plugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc/metadata"
)

// The gRPC metadata keys that carry the actor on the go-plugin channel (see the .proto).
const (
	actorMetadataKey = "ferry-actor"
	viaMetadataKey   = "ferry-via"
)

// withOutgoingActor returns ctx with the actor of ctx (ActorFrom) in the outgoing gRPC metadata, and
// with any "ferry-actor"/"ferry-via" metadata already there replaced or, without an actor, removed:
// the Actor in ctx is the only way a Go launcher names who it acts for, and metadata forwarded from
// elsewhere (a proxy copying incoming metadata) must not smuggle one in. It fails with
// ErrInvalidArgument if the member or via is not printable ASCII (gRPC metadata cannot carry it).
func withOutgoingActor(ctx context.Context) (context.Context, error) {
	a, ok := ActorFrom(ctx)
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy() // never nil; the context's own md must not be modified
	md.Delete(actorMetadataKey)
	md.Delete(viaMetadataKey)
	if ok {
		for _, v := range []struct{ what, s string }{{"member", a.Member}, {"via", a.Via}} {
			if !printableASCII(v.s) {
				return ctx, fmt.Errorf("%w: actor %s %q: only printable ASCII can travel to the agent",
					ErrInvalidArgument, v.what, v.s)
			}
		}
		md.Set(actorMetadataKey, a.Member)
		if a.Via != "" {
			md.Set(viaMetadataKey, a.Via)
		}
	}
	return metadata.NewOutgoingContext(ctx, md), nil
}

// actorFromMetadata returns ctx carrying the actor a launcher named in the incoming metadata of a
// go-plugin channel call, with Via ViaPlugin whatever "ferry-via" says (the channel is what the
// agent can vouch for). Without "ferry-actor" ctx is returned unchanged: the launcher acts for
// itself. It fails with ErrInvalidArgument if the key appears more than once, which no Ferry client
// sends and which would leave it unclear who the call is for.
func actorFromMetadata(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(actorMetadataKey)
	switch len(vals) {
	case 0:
		return ctx, nil
	case 1:
		return WithActor(ctx, Actor{Member: vals[0], Via: ViaPlugin}), nil
	default:
		return ctx, fmt.Errorf("%w: %d %q metadata values: a call acts for one member",
			ErrInvalidArgument, len(vals), actorMetadataKey)
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
