package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServeDaemon serves impl (and its Admin half, if it has one) as a long-running agent (`ferry
// agent`) that launchers attach to with Attach, instead of starting it themselves. The local CLI
// reaches the same agent through ServeSocket, which the caller runs beside it. It returns nil once ctx ends and serving has stopped,
// or an error if serving could not start or stopped on its own.
//
// It uses go-plugin's in-process serving mode (ServeConfig.Test), so nothing is written to standard
// output. Once the server listens, the address is written as JSON (the reattach file format, see
// reattachInfo) to reattachFile, atomically (temporary file + rename) with mode 0600; an existing
// file is replaced. The file is removed when serving stops, unless another agent has replaced it
// meanwhile.
//
// Trust model: the agent listens on a Unix socket in a fresh directory of mode 0700 (created inside
// $PLUGIN_UNIX_SOCKET_DIR if set, else the system temporary directory), and the socket itself is
// made 0600. Only the agent's own Linux user (and root) can connect, and anyone who can connect can
// use every identity and user the agent manages, just as anyone who can read the reattach file and
// reach the socket can. There is no TLS in this mode (go-plugin's AutoMTLS needs a launcher that
// starts the agent); the file system permissions are the authentication. Run launchers as the
// agent's user and keep the reattach file in a directory only that user can write. Such a launcher
// is trusted to name the organisation member each call acts for (WithActor; none means the
// launcher itself).
//
// go-plugin reads its settings from the environment: while the server starts, ServeDaemon points
// PLUGIN_UNIX_SOCKET_DIR at its private directory and hides PLUGIN_UNIX_SOCKET_GROUP,
// PLUGIN_CLIENT_CERT and PLUGIN_MULTIPLEX_GRPC (which would open the socket to a group, turn on TLS
// that no attaching launcher could complete, or turn on multiplexing that reattaching does not
// support), then restores them. Concurrent ServeDaemon calls are serialised around that window.
//
// A launcher cannot stop the agent: go-plugin's Shutdown rpc (what a go-plugin client's Kill sends)
// is refused with PermissionDenied.
func ServeDaemon(ctx context.Context, impl Service, logger hclog.Logger, reattachFile string) error {
	if reattachFile == "" {
		return fmt.Errorf("serve agent: %w: empty reattach file path", ErrInvalidArgument)
	}
	if impl == nil {
		return fmt.Errorf("serve agent: %w: no Service implementation", ErrInvalidArgument)
	}
	if logger == nil {
		logger = NewLogger(hclog.Info)
	}

	sockDir, err := os.MkdirTemp(os.Getenv(goplugin.EnvUnixSocketDir), "ferry-agent-")
	if err != nil {
		return fmt.Errorf("serve agent: create socket directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(sockDir) }()
	// MkdirTemp creates 0700 already; say it where the trust model depends on it.
	if err := os.Chmod(sockDir, 0o700); err != nil {
		return fmt.Errorf("serve agent: restrict socket directory: %w", err)
	}

	// go-plugin stops serving when serveCtx ends by closing the listener first, which the gRPC
	// server logs as an error; so on ctx's end we stop the gRPC server ourselves first (shutdown).
	serveCtx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	srvCh := make(chan *grpc.Server, 1)
	rcCh := make(chan *goplugin.ReattachConfig, 1) // buffered: go-plugin sends before serving
	closeCh := make(chan struct{})

	restoreEnv := pointPluginEnvAt(sockDir)
	go goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl, Logger: logger}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			s := daemonGRPCServer(opts)
			srvCh <- s
			return s
		},
		Logger: logger,
		Test: &goplugin.ServeTestConfig{
			Context:          serveCtx,
			ReattachConfigCh: rcCh,
			CloseCh:          closeCh,
		},
	})
	var rc *goplugin.ReattachConfig
	select {
	case rc = <-rcCh:
		restoreEnv()
	case <-closeCh:
		restoreEnv()
		return errors.New("serve agent: the plugin server failed to start (its error is in the log)")
	}
	srv := <-srvCh // made before rc was sent
	shutdown := func() {
		srv.Stop() // ends every rpc and stream in flight
		stopServe()
		<-closeCh
	}
	fail := func(err error) error {
		shutdown()
		return err
	}

	if rc.Addr.Network() == "unix" {
		if err := os.Chmod(rc.Addr.String(), 0o600); err != nil {
			return fail(fmt.Errorf("serve agent: restrict socket: %w", err))
		}
	}
	data, err := json.MarshalIndent(reattachInfoFrom(rc), "", "  ")
	if err != nil {
		return fail(fmt.Errorf("serve agent: encode reattach config: %w", err))
	}
	data = append(data, '\n')
	if err := writeFileAtomic(reattachFile, data, 0o600); err != nil {
		return fail(fmt.Errorf("serve agent: write reattach file %q: %w", reattachFile, err))
	}
	logger.Info("agent serving", "reattach_file", reattachFile,
		"network", rc.Addr.Network(), "address", rc.Addr.String())

	var stoppedOnItsOwn bool
	select {
	case <-ctx.Done():
		shutdown()
	case <-closeCh:
		stoppedOnItsOwn = true
	}
	removeIfUnchanged(reattachFile, data, logger)
	if stoppedOnItsOwn {
		return errors.New("serve agent: the plugin server stopped on its own (see the log)")
	}
	logger.Info("agent stopped serving", "reattach_file", reattachFile)
	return nil
}

// shutdownMethod is go-plugin's controller rpc that stops the whole plugin server.
const shutdownMethod = "/plugin.GRPCController/Shutdown"

// daemonGRPCServer is ServeDaemon's gRPC server: go-plugin's default plus an interceptor that
// refuses the controller's Shutdown, because one launcher must not stop an agent that others share.
func daemonGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	refuse := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if info.FullMethod == shutdownMethod {
			return nil, status.Error(codes.PermissionDenied,
				"the ferry agent is shared and cannot be shut down by a client; stop the `ferry agent` process")
		}
		return next(ctx, req)
	}
	opts = append(opts, serverOptions()...)
	return grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(refuse))...)
}

// envMu serialises ServeDaemon's window in which go-plugin's environment variables are changed.
var envMu sync.Mutex

// pointPluginEnvAt sets go-plugin's environment for a private daemon socket in sockDir and returns
// the function that restores the previous values. The caller holds envMu in between.
func pointPluginEnvAt(sockDir string) (restore func()) {
	envMu.Lock()
	want := []struct{ key, val string }{
		{goplugin.EnvUnixSocketDir, sockDir},
		{goplugin.EnvUnixSocketGroup, ""},
		{"PLUGIN_CLIENT_CERT", ""},
		{"PLUGIN_MULTIPLEX_GRPC", ""},
	}
	type saved struct {
		key, val string
		had      bool
	}
	var old []saved
	for _, w := range want {
		v, had := os.LookupEnv(w.key)
		old = append(old, saved{w.key, v, had})
		if w.val == "" {
			_ = os.Unsetenv(w.key)
		} else {
			_ = os.Setenv(w.key, w.val)
		}
	}
	return func() {
		for _, o := range old {
			if o.had {
				_ = os.Setenv(o.key, o.val)
			} else {
				_ = os.Unsetenv(o.key)
			}
		}
		envMu.Unlock()
	}
}

// reattachInfo is the reattach file's JSON: go-plugin's ReattachConfig with the address spelled
// out (the same shape Terraform uses for TF_REATTACH_PROVIDERS).
type reattachInfo struct {
	Protocol        string
	ProtocolVersion int
	Addr            struct{ Network, String string }
	Pid             int
	Test            bool
}

func reattachInfoFrom(rc *goplugin.ReattachConfig) reattachInfo {
	ri := reattachInfo{
		Protocol:        string(rc.Protocol),
		ProtocolVersion: rc.ProtocolVersion,
		Pid:             rc.Pid,
		Test:            rc.Test,
	}
	ri.Addr.Network = rc.Addr.Network()
	ri.Addr.String = rc.Addr.String()
	return ri
}

// readReattachFile reads and checks a reattach file written by ServeDaemon. It fails with
// ErrUnavailable if the file does not exist (no agent is serving), and with ErrFailedPrecondition
// if the agent speaks another protocol.
func readReattachFile(path string) (*goplugin.ReattachConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no reattach file %q: is `ferry agent` running?", ErrUnavailable, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read reattach file: %w", err)
	}
	var ri reattachInfo
	if err := json.Unmarshal(data, &ri); err != nil {
		return nil, fmt.Errorf("reattach file %q: %w", path, err)
	}
	if ri.Protocol != string(goplugin.ProtocolGRPC) {
		return nil, fmt.Errorf("%w: reattach file %q: protocol %q, want %q",
			ErrFailedPrecondition, path, ri.Protocol, goplugin.ProtocolGRPC)
	}
	if ri.ProtocolVersion != int(Handshake.ProtocolVersion) {
		return nil, fmt.Errorf("%w: the agent speaks Ferry plugin protocol %d, this launcher %d: upgrade the older one",
			ErrFailedPrecondition, ri.ProtocolVersion, Handshake.ProtocolVersion)
	}
	var addr net.Addr
	switch ri.Addr.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", ri.Addr.String)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", ri.Addr.String)
	default:
		err = fmt.Errorf("unknown network %q", ri.Addr.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach file %q: address: %w", path, err)
	}
	return &goplugin.ReattachConfig{
		Protocol:        goplugin.ProtocolGRPC,
		ProtocolVersion: ri.ProtocolVersion,
		Addr:            addr,
		Pid:             ri.Pid,
		Test:            ri.Test,
	}, nil
}

// writeFileAtomic writes data to path through a temporary file in the same directory and a rename,
// so a reader sees the old file or the whole new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// removeIfUnchanged removes path if it still holds data, so an agent that stops does not delete
// the reattach file of another agent that replaced it.
func removeIfUnchanged(path string, data []byte, logger hclog.Logger) {
	cur, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return
	case err != nil:
		logger.Warn("cannot read reattach file to remove it", "reattach_file", path, "error", err)
		return
	case !bytes.Equal(cur, data):
		logger.Warn("reattach file was replaced by another agent; leaving it", "reattach_file", path)
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Warn("cannot remove reattach file", "reattach_file", path, "error", err)
	}
}
