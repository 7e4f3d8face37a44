package plugin

import (
	"context"
	"errors"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is the go-plugin handshake shared by the launcher (host) and the agent (plugin). The
// magic cookie is not a security measure: it only stops a user from running the agent's plugin
// mode by hand and stops a launcher from starting a binary that is not a Ferry agent.
//
// ProtocolVersion changes only when the wire protocol (proto/ferry/v1) changes incompatibly; a
// launcher and an agent with different versions refuse each other at start or attach.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "FERRY_PLUGIN",
	MagicCookieValue: "08595c7afcdcc232965304a5bc09f6fdcd1fbcad27d926d7",
}

// PluginName is the name of Ferry's one plugin in the go-plugin plugin set.
const PluginName = "ferry"

// PluginSet returns the go-plugin plugin set that serves impl. A launcher passes PluginSet(nil):
// the client side needs no implementation.
func PluginSet(impl Service) goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// GRPCPlugin is Ferry's go-plugin plugin: gRPC only (net/rpc is refused). On the serving side it
// registers the gRPC server shims for Impl (Ferry, and FerryAdmin if Impl also implements Admin);
// on the launcher side it hands out a Service backed by the gRPC client shim.
//
// On this channel the launcher is trusted: the actor it names for a call (WithActor on its side,
// "ferry-actor" metadata on the wire) reaches Impl as ActorFrom(ctx) with Via ViaPlugin, and a call
// without one reaches Impl without an actor.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin

	// Impl is the Service to serve; nil on the launcher side.
	Impl Service
	// Logger receives the server shim's debug lines (one per failed rpc). Nil discards them.
	Logger hclog.Logger
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the Ferry gRPC service, backed by p.Impl, on s, and the FerryAdmin service
// if p.Impl also implements Admin (without it the admin rpcs answer Unimplemented). It fails if
// Impl is nil.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("ferry plugin: no Service implementation to serve")
	}
	registerServices(s, p.Impl, p.Logger, true)
	return nil
}

// GRPCClient returns the Service (a *grpcClient, which also answers Info and Admin) that calls the
// agent over c. It never fails; errors surface on the first call.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return newGRPCClient(c), nil
}

// NewLogger returns an hclog logger that writes JSON lines to the process's standard error at
// level: the format go-plugin's host parses (keys "@message", "@level", "@timestamp" with
// microseconds), so a launcher re-logs each line at its level. Create it before Serve: go-plugin
// replaces os.Stderr while serving, and the logger keeps the stream it was created with.
func NewLogger(level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "ferry",
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// Serve serves impl (and its Admin half, if it has one) to the launcher that started this process
// and returns when the launcher disconnects (its Client.Close) or the serving fails. It performs
// go-plugin's standard handshake, which is the only thing ever written to standard output;
// everything else, logs included, must go to standard error. A nil logger means
// NewLogger(hclog.Info).
//
// The launcher enables mutual TLS (Start uses go-plugin's AutoMTLS): Serve then generates a one-time
// server certificate and accepts only the launcher's one-time client certificate, so no other
// process can call the agent even if it can reach the socket.
//
// If the process was not started by a go-plugin host with Ferry's Handshake, Serve prints an
// explanation to standard error and exits the process with status 1.
func Serve(impl Service, logger hclog.Logger) {
	if logger == nil {
		logger = NewLogger(hclog.Info)
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl, Logger: logger}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, serverOptions()...)...)
		},
		Logger: logger,
	})
}
