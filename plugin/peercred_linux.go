package plugin

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred returns the Unix credentials of the process at the other end of conn, which must be a
// Unix socket connection: the kernel records them when the peer calls connect(2), so they cannot be
// forged and do not change if the peer later passes the socket to another process or changes uid.
func peerCred(conn net.Conn) (peerAuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return peerAuthInfo{}, fmt.Errorf("peer credentials: %T is not a Unix socket connection", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerAuthInfo{}, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred    *unix.Ucred
		credErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerAuthInfo{}, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return peerAuthInfo{}, fmt.Errorf("peer credentials: SO_PEERCRED: %w", credErr)
	}
	return peerAuthInfo{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
