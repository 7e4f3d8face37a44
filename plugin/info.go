package plugin

import "runtime/debug"

// Info describes the agent a launcher talks to, as the Info rpc reports it.
type Info struct {
	// Version is the agent's release version ("v0.3.1"), or "(devel)" for a build without one.
	// It is for humans and logs; compatibility is ProtocolVersion's business.
	Version string
	// ProtocolVersion is the plugin protocol version the agent speaks (Handshake.ProtocolVersion).
	ProtocolVersion int
}

// Versioner is an optional ability of a Service: an implementation that has it reports its own
// version in Info. Without it, the server shim reports the main module's version from the binary's
// build information.
type Versioner interface {
	Version() string
}

// serviceVersion returns impl's version: its own if it is a Versioner, else the binary's main
// module version, else "(devel)".
func serviceVersion(impl Service) string {
	if v, ok := impl.(Versioner); ok {
		if s := v.Version(); s != "" {
			return s
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
