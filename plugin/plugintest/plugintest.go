// Package plugintest lets tests of a plugin.Service implementation (the agent) call it the way a
// launcher does: through the gRPC shims over a real in-process connection, so conversions, error
// mapping and streaming are exercised, not bypassed.
package plugintest

import (
	"context"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/ferryhpc/ferry/plugin"
)

// Conn is what a launcher holds: the Service, plus the Info call it makes first and the Admin half.
type Conn interface {
	plugin.Service
	Info(ctx context.Context) (plugin.Info, error)
	// Admin calls impl's Admin half; if impl does not implement plugin.Admin every call fails with
	// an error matching plugin.ErrUnimplemented, as it would for a launcher.
	Admin() plugin.Admin
}

// Client serves impl on a go-plugin gRPC server in this process (a Unix socket in a temporary
// directory, no TLS) and returns a Conn that calls it through the client shim, as a launcher would.
// Errors come back as the launcher sees them: errors.Is matches the plugin package's sentinels and
// the message is impl's. The actor a test puts in a call's ctx (plugin.WithActor) reaches impl as
// on the go-plugin channel: plugin.ActorFrom gives its Member with Via plugin.ViaPlugin, and a call
// without one reaches impl without an actor. The connection and the server are closed when the
// test ends.
func Client(t testing.TB, impl plugin.Service) Conn {
	t.Helper()
	c, s := goplugin.TestPluginGRPCConn(t, false, plugin.PluginSet(impl))
	t.Cleanup(func() {
		// Stop the server first: the client's Close asks the server to stop too, and go-plugin's
		// GRPCServer.Stop is not safe to run twice concurrently.
		s.Stop()
		_ = c.Close()
	})
	raw, err := c.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("plugintest: dispense %q: %v", plugin.PluginName, err)
	}
	conn, ok := raw.(Conn)
	if !ok {
		t.Fatalf("plugintest: dispensed %T, which does not implement Conn", raw)
	}
	return conn
}
