//go:build !linux

package plugin

import (
	"errors"
	"net"
)

// peerCred refuses every connection: reading a Unix socket peer's credentials (SO_PEERCRED) is
// implemented for Linux only, and without them the CLI socket cannot tell who calls.
func peerCred(net.Conn) (peerAuthInfo, error) {
	return peerAuthInfo{}, errors.New("peer credentials: the ferry agent's cli socket needs Linux (SO_PEERCRED)")
}
