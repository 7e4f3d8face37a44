package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// socketStopGrace bounds how long ServeSocket lets calls in flight finish once its ctx ends; a
// Watch stream never finishes on its own, so after this the server stops hard.
const socketStopGrace = 5 * time.Second

// ServeSocket serves impl (and its Admin half, if it has one) to local users over a plain gRPC
// server (no go-plugin) on the Unix socket at path, until ctx ends; then it stops serving, removes
// the socket and returns nil. It returns an error if serving could not start or stopped on its own.
// A nil logger means NewLogger(hclog.Info).
//
// Trust model: the socket is made mode 0666 so that any local user may connect (its directory, if
// ServeSocket creates it, 0755); authorization is by the caller's Unix credentials, not by file
// permissions. For every connection the kernel reports the uid of the process that connected
// (SO_PEERCRED, fixed at connect time, unforgeable); every call on it runs with the Actor that
// resolve(uid) returns, Via ViaCLI, in ctx. Any actor the caller names in its request metadata
// ("ferry-actor") is ignored, so a local user can never act as another member. If resolve fails,
// or returns an Actor with an empty Member (which would mean the trusted launcher itself), the
// call fails with PermissionDenied carrying resolve's message; it is logged as a warning with the
// uid and pid.
//
// A socket file left at path by an agent that died is replaced; if an agent still answers there,
// ServeSocket fails with ErrAlreadyExists, and it refuses to replace a path that is not a socket.
// SO_PEERCRED is Linux's: on other systems ServeSocket refuses every call.
func ServeSocket(ctx context.Context, impl Service, path string, resolve func(uid uint32) (Actor, error), logger hclog.Logger) error {
	switch {
	case path == "":
		return fmt.Errorf("serve cli socket: %w: empty socket path", ErrInvalidArgument)
	case impl == nil:
		return fmt.Errorf("serve cli socket: %w: no Service implementation", ErrInvalidArgument)
	case resolve == nil:
		return fmt.Errorf("serve cli socket: %w: no resolver for the callers' uids", ErrInvalidArgument)
	}
	if logger == nil {
		logger = NewLogger(hclog.Info)
	}
	ln, err := listenSocket(path)
	if err != nil {
		return fmt.Errorf("serve cli socket %q: %w", path, err)
	}
	ours, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("serve cli socket %q: %w", path, err)
	}

	auth := socketAuth{resolve: resolve, log: logger}
	srv := grpc.NewServer(append(serverOptions(),
		grpc.Creds(peerCredentials{}),
		grpc.ChainUnaryInterceptor(auth.unary),
		grpc.ChainStreamInterceptor(auth.stream),
	)...)
	registerServices(srv, impl, logger, false)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("cli socket serving", "socket", path)

	var serveErr error
	select {
	case <-ctx.Done():
		stopGracefully(srv, socketStopGrace)
		<-served // nil after a stop
	case serveErr = <-served:
		srv.Stop()
	}
	removeSocketIfOurs(path, ours, logger)
	if serveErr != nil {
		return fmt.Errorf("serve cli socket %q: %w", path, serveErr)
	}
	logger.Info("cli socket stopped serving", "socket", path)
	return nil
}

// listenSocket listens on a fresh Unix socket at path, mode 0666, creating its directory (0755) if
// missing and replacing a stale socket. The listener does not unlink path on Close: ServeSocket
// removes the socket itself, and only if it is still its own.
func listenSocket(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
		// MkdirAll applies the umask; every local user must be able to reach the socket.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open socket directory to local users: %w", err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%w: %q exists and is not a socket; remove it or choose another socket path",
				ErrAlreadyExists, path)
		}
		if conn, err := net.DialTimeout("unix", path, attachDialTimeout); err == nil {
			_ = conn.Close()
			return nil, fmt.Errorf("%w: another ferry agent is serving on %q", ErrAlreadyExists, path)
		}
		// Nobody answers: a socket left by an agent that died.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o666); err != nil {
		_ = ln.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("open socket to local users: %w", err)
	}
	return ln, nil
}

// removeSocketIfOurs removes path if it is still the socket ServeSocket created (ours), so an
// agent that stops does not delete the socket of another agent that replaced it.
func removeSocketIfOurs(path string, ours os.FileInfo, logger hclog.Logger) {
	cur, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return
	case err != nil:
		logger.Warn("cannot stat cli socket to remove it", "socket", path, "error", err)
		return
	case !os.SameFile(cur, ours):
		logger.Warn("cli socket was replaced by another agent; leaving it", "socket", path)
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Warn("cannot remove cli socket", "socket", path, "error", err)
	}
}

// stopGracefully lets calls in flight finish for at most grace, then ends the rest.
func stopGracefully(srv *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		srv.Stop()
		<-done
	}
}

// peerAuthInfo is the AuthInfo of a CLI socket connection: the Unix credentials of the process
// that connected, as the kernel reported them.
type peerAuthInfo struct {
	credentials.CommonAuthInfo
	UID, GID uint32
	PID      int32
}

// AuthType implements credentials.AuthInfo.
func (peerAuthInfo) AuthType() string { return "peercred" }

// peerCredentials are the CLI socket's transport credentials: no encryption (the kernel carries a
// Unix socket's bytes), but the server handshake reads the peer's uid (peerCred) and attaches it
// to the connection as peerAuthInfo. They are for the server side only.
type peerCredentials struct{}

var _ credentials.TransportCredentials = peerCredentials{}

func (peerCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("ferry: peer credentials are for the agent's side of the socket only")
}

// ServerHandshake reads the peer's credentials; a connection whose credentials cannot be read is
// refused.
func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := peerCred(conn)
	if err != nil {
		return nil, nil, err
	}
	info.SecurityLevel = credentials.NoSecurity
	return conn, info, nil
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c peerCredentials) Clone() credentials.TransportCredentials { return c }

func (peerCredentials) OverrideServerName(string) error { return nil }

// socketAuth turns a CLI socket connection's uid into the Actor of each call on it.
type socketAuth struct {
	resolve func(uid uint32) (Actor, error)
	log     hclog.Logger
}

// actor returns ctx carrying the caller's Actor (Via ViaCLI), or a PermissionDenied status error.
func (a socketAuth) actor(ctx context.Context, method string) (context.Context, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "ferry agent: the caller's Unix credentials are unknown")
	}
	info, ok := p.AuthInfo.(peerAuthInfo)
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "ferry agent: the caller's Unix credentials are unknown")
	}
	act, err := a.resolve(info.UID)
	if err == nil && act.Member == "" {
		err = fmt.Errorf("unix uid %d is not mapped to an organisation member", info.UID)
	}
	if err != nil {
		a.log.Warn("cli caller refused", "uid", info.UID, "pid", info.PID, "rpc", method, "error", err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	act.Via = ViaCLI
	return WithActor(ctx, act), nil
}

func (a socketAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	ctx, err := a.actor(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (a socketAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	ctx, err := a.actor(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return next(srv, ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a server stream with the Actor's ctx.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

// DialSocket connects the CLI to the agent's socket at path (see ServeSocket) and returns a Client
// whose Service and Admin act for the member the agent maps this process's Unix uid to; the actor
// set with WithActor is sent but ignored there. It fails with ErrUnavailable if no agent answers at
// path, and with ErrPermissionDenied if this user may not open the socket. Close disconnects; the
// agent keeps running.
func DialSocket(path string) (*Client, error) {
	if path == "" {
		return nil, fmt.Errorf("dial ferry agent: %w: empty socket path", ErrInvalidArgument)
	}
	// Check once that an agent answers, so a missing agent is reported now and clearly rather than
	// as a connection error on the first call.
	conn, err := net.DialTimeout("unix", path, attachDialTimeout)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: no ferry agent socket at %q: is `ferry agent` running?", ErrUnavailable, path)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%w: cannot open the ferry agent socket %q: %w", ErrPermissionDenied, path, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w: nothing answers on %q (an agent that died left it): is `ferry agent` running?",
			ErrUnavailable, path)
	case err != nil:
		return nil, fmt.Errorf("%w: dial ferry agent socket %q: %w", ErrUnavailable, path, err)
	}
	_ = conn.Close()
	cc, err := grpc.NewClient("passthrough:///ferry-agent", append(dialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}))...)
	if err != nil {
		return nil, fmt.Errorf("dial ferry agent socket %q: %w", path, err)
	}
	return &Client{svc: newGRPCClient(cc)}, nil
}
