package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

// Client is a connection to a Ferry agent, made by Start or Attach (a launcher) or DialSocket (the
// CLI). It is safe for concurrent use; Close it when done.
type Client struct {
	pc  *goplugin.Client // nil for DialSocket
	svc *grpcClient

	// detached is closed by Close for a Client made by Attach: it ends go-plugin's wait on the
	// agent (see attachedAgent). Nil for a Client made by Start.
	detached  chan struct{}
	closeOnce sync.Once
}

// Start starts the agent as cmd (for example exec.Command("ferry", "plugin")), performs go-plugin's
// handshake over the child's standard output with mutual TLS (AutoMTLS: a one-time certificate on
// each side, so only this launcher can call the agent), and returns a Client. The child's JSON log
// lines on standard error are re-logged through logger at their own level (nil: go-plugin's
// default logger). cmd must not have been started and must not set Stdout or Stderr.
//
// It fails if the child does not complete the handshake within a minute, is not a Ferry agent, or
// speaks another protocol version; the child is then killed. Close kills the agent it started.
func Start(cmd *exec.Cmd, logger hclog.Logger) (*Client, error) {
	if cmd == nil {
		return nil, fmt.Errorf("start ferry agent: %w: no command", ErrInvalidArgument)
	}
	pc := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  dialOptions(),
		Logger:           logger,
	})
	svc, err := dispense(pc)
	if err != nil {
		pc.Kill()
		return nil, fmt.Errorf("start ferry agent %q: %w", cmd.Path, err)
	}
	return &Client{pc: pc, svc: svc}, nil
}

// attachDialTimeout bounds Attach's check that the agent's socket accepts connections.
const attachDialTimeout = 5 * time.Second

// Attach connects to a running `ferry agent` (ServeDaemon) through the reattach file it wrote. It
// fails with ErrUnavailable if the file is missing or the agent does not accept connections (a
// stale file left by an agent that died), and with ErrFailedPrecondition if the agent speaks
// another protocol version. logger may be nil (go-plugin's default logger).
//
// Close disconnects without stopping the agent, which other launchers may share.
func Attach(reattachFile string, logger hclog.Logger) (*Client, error) {
	rc, err := readReattachFile(reattachFile)
	if err != nil {
		return nil, fmt.Errorf("attach to ferry agent: %w", err)
	}
	detached := make(chan struct{})
	// Test mode tells go-plugin that it does not own the process: Kill never signals the agent.
	rc.Test = true
	// Our own ReattachFunc instead of go-plugin's default, which polls the pid until the agent
	// exits (a goroutine that outlives Close) and cannot see an agent in another pid namespace.
	rc.ReattachFunc = func() (runner.AttachedRunner, error) {
		conn, err := net.DialTimeout(rc.Addr.Network(), rc.Addr.String(), attachDialTimeout)
		if err != nil {
			return nil, fmt.Errorf("%w: the agent in %q does not answer (stale file? is `ferry agent` running?): %w",
				ErrUnavailable, reattachFile, err)
		}
		_ = conn.Close()
		return &attachedAgent{pid: rc.Pid, detached: detached}, nil
	}
	pc := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginSet(nil),
		Reattach:         rc,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		GRPCDialOptions:  dialOptions(),
		Logger:           logger,
	})
	svc, err := dispense(pc)
	if err != nil {
		close(detached)
		return nil, fmt.Errorf("attach to ferry agent: %w", err)
	}
	return &Client{pc: pc, svc: svc, detached: detached}, nil
}

// dispense connects pc and returns the Ferry client shim.
func dispense(pc *goplugin.Client) (*grpcClient, error) {
	proto, err := pc.Client()
	if err != nil {
		return nil, err
	}
	raw, err := proto.Dispense(PluginName)
	if err != nil {
		return nil, err
	}
	svc, ok := raw.(*grpcClient)
	if !ok {
		return nil, fmt.Errorf("plugin %q dispensed %T, want the Ferry gRPC client", PluginName, raw)
	}
	return svc, nil
}

// Service returns the agent as a Service. Every call goes over gRPC; errors match the sentinels of
// this package with errors.Is (see errors.go), and a dead agent gives ErrUnavailable. Each call acts
// for the actor in its ctx (WithActor), or for the launcher itself without one; on the CLI socket
// (DialSocket) the agent ignores it and acts for this process's Unix user.
func (c *Client) Service() Service { return c.svc }

// Admin returns the agent's management half (identities, members, credentials, audit) over the
// same connection. Errors map like Service's; every call fails with an error matching
// ErrUnimplemented if the agent does not serve it.
func (c *Client) Admin() Admin { return c.svc.admin }

// Info asks the agent for its version and protocol version.
func (c *Client) Info(ctx context.Context) (Info, error) { return c.svc.Info(ctx) }

// Close ends the connection. For a Client made by Start it also stops the agent (asking it to exit,
// then killing it after two seconds); for one made by Attach or DialSocket the agent keeps running.
// Calls in flight fail. Close is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.svc.closed.Store(true)
		if c.pc == nil { // DialSocket: no go-plugin client, just our connection
			_ = c.svc.conn.Close()
			return
		}
		if c.detached == nil {
			c.pc.Kill()
			return
		}
		// Not pc.Kill: for an attached agent it would do nothing, and the gRPC client's own Close
		// would ask the agent to shut down. Close just our connection.
		_ = c.svc.conn.Close()
		close(c.detached)
	})
}

// attachedAgent is the go-plugin runner for an agent reached through a reattach file: go-plugin
// waits on it to learn that the plugin went away, which for us is when the Client is closed.
type attachedAgent struct {
	pid      int
	detached chan struct{}
}

func (a *attachedAgent) Wait(context.Context) error { <-a.detached; return nil }

// Kill does nothing: a launcher never kills a shared agent.
func (a *attachedAgent) Kill(context.Context) error { return nil }

func (a *attachedAgent) ID() string { return strconv.Itoa(a.pid) }

func (a *attachedAgent) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (a *attachedAgent) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// grpcClient is the client shim: it implements Service (and Info) by calling the agent over gRPC,
// converting messages with convert.go and errors with fromStatus. Every call carries the actor of
// its ctx (WithActor) in the request metadata.
type grpcClient struct {
	conn   *grpc.ClientConn
	rpc    ferryv1.FerryClient
	admin  *grpcAdminClient
	closed *atomic.Bool // set by Client.Close; shared with admin
}

var _ Service = (*grpcClient)(nil)

func newGRPCClient(conn *grpc.ClientConn) *grpcClient {
	closed := new(atomic.Bool)
	return &grpcClient{
		conn:   conn,
		rpc:    ferryv1.NewFerryClient(checkedConn{conn}),
		admin:  &grpcAdminClient{rpc: ferryv1.NewFerryAdminClient(checkedConn{conn}), closed: closed},
		closed: closed,
	}
}

// Admin returns the agent's Admin half over the same connection.
func (c *grpcClient) Admin() Admin { return c.admin }

// fail converts a gRPC call's error (see fromStatus). After Client.Close every call fails with
// ErrUnavailable saying so, not with the context.Canceled that gRPC reports for a closed connection.
func (c *grpcClient) fail(err error) error {
	return failFromStatus(c.closed, err)
}

func failFromStatus(closed *atomic.Bool, err error) error {
	if closed.Load() {
		return fmt.Errorf("%w: the ferry client is closed", ErrUnavailable)
	}
	return fromStatus(err)
}

// Info asks the agent for its version and protocol version.
func (c *grpcClient) Info(ctx context.Context) (Info, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Info{}, err
	}
	resp, err := c.rpc.Info(ctx, &ferryv1.InfoRequest{})
	if err != nil {
		return Info{}, c.fail(err)
	}
	return infoFromPB(resp), nil
}

// Submit implements Service. It fails with ErrInvalidArgument, without calling the agent, if
// req.Resources.CPUs does not fit in 32 bits.
func (c *grpcClient) Submit(ctx context.Context, req SubmitRequest) (Job, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Job{}, err
	}
	pb, err := submitRequestToPB(req)
	if err != nil {
		return Job{}, err
	}
	resp, err := c.rpc.Submit(ctx, pb)
	if err != nil {
		return Job{}, c.fail(err)
	}
	return jobFromPB(resp.GetJob()), nil
}

// Status implements Service.
func (c *grpcClient) Status(ctx context.Context, ids []string) ([]Job, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.Status(ctx, &ferryv1.StatusRequest{Ids: stringsOrNil(ids)})
	if err != nil {
		return nil, c.fail(err)
	}
	return jobsFromPB(resp.GetJobs()), nil
}

// Watch implements Service: it calls fn for each event the agent streams, in order, from this
// goroutine. It returns ctx's error once ctx ends, fn's error (unchanged) if fn fails, which also
// ends the stream, and an error matching ErrUnavailable if the agent ends the stream first (the
// agent is shutting down or lost; watch again).
func (c *grpcClient) Watch(ctx context.Context, req WatchRequest, fn func(JobEvent) error) error {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when fn fails
	stream, err := c.rpc.Watch(ctx, watchRequestToPB(req))
	if err != nil {
		return c.fail(err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: the agent ended the watch stream", ErrUnavailable)
			}
			return c.fail(err)
		}
		if err := fn(jobEventFromPB(ev)); err != nil {
			return err
		}
	}
}

// Cancel implements Service.
func (c *grpcClient) Cancel(ctx context.Context, ids []string) ([]CancelResult, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.Cancel(ctx, &ferryv1.CancelRequest{Ids: stringsOrNil(ids)})
	if err != nil {
		return nil, c.fail(err)
	}
	return cancelResultsFromPB(resp.GetResults()), nil
}

// StageIn implements Service.
func (c *grpcClient) StageIn(ctx context.Context, req StageRequest) (StageResult, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return StageResult{}, err
	}
	resp, err := c.rpc.StageIn(ctx, stageInRequestToPB(req))
	if err != nil {
		return StageResult{}, c.fail(err)
	}
	return stageInResponseFromPB(resp), nil
}

// StageOut implements Service.
func (c *grpcClient) StageOut(ctx context.Context, req StageRequest) (StageResult, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return StageResult{}, err
	}
	resp, err := c.rpc.StageOut(ctx, stageOutRequestToPB(req))
	if err != nil {
		return StageResult{}, c.fail(err)
	}
	return stageOutResponseFromPB(resp), nil
}

// ListJobs implements Service.
func (c *grpcClient) ListJobs(ctx context.Context, req ListRequest) ([]Job, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.ListJobs(ctx, listRequestToPB(req))
	if err != nil {
		return nil, c.fail(err)
	}
	return jobsFromPB(resp.GetJobs()), nil
}

// Flow control and buffers for the launcher's connection. The agent is local (a Unix socket, or
// loopback), where a round trip costs microseconds but gRPC's default 64 KiB stream window makes
// a large answer (Status of 1,000 jobs is about 250 KiB) wait for window updates between the two
// processes several times; a 4 MiB window and 256 KiB buffers let it arrive in one go. The sizes
// bound memory per connection, not per call.
const (
	grpcWindow = 4 << 20
	grpcBuffer = 256 << 10
)

func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(grpcWindow),
		grpc.WithInitialConnWindowSize(grpcWindow),
		grpc.WithReadBufferSize(grpcBuffer),
		grpc.WithWriteBufferSize(grpcBuffer),
	}
}

func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(grpcWindow),
		grpc.InitialConnWindowSize(grpcWindow),
		grpc.ReadBufferSize(grpcBuffer),
		grpc.WriteBufferSize(grpcBuffer),
	}
}
