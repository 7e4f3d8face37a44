package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/ferryhpc/ferry/plugin"
)

// reattachJSON is the reattach file as a launcher in another language would read it.
type reattachJSON struct {
	Protocol        string
	ProtocolVersion int
	Addr            struct{ Network, String string }
	Pid             int
	Test            bool
}

// waitForFile polls until path exists or the deadline passes.
func waitForFile(t *testing.T, path string, errCh <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-errCh:
			t.Fatalf("ServeDaemon returned before writing %s: %v", path, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("ServeDaemon did not write %s within 20s", path)
}

func TestServeDaemonAndAttach(t *testing.T) {
	// A launcher's AutoMTLS certificate in the environment must not turn on TLS that an attaching
	// launcher could never complete; ServeDaemon hides it while starting and restores it.
	t.Setenv("PLUGIN_CLIENT_CERT", "not a certificate")
	socketBase := t.TempDir()
	t.Setenv("PLUGIN_UNIX_SOCKET_DIR", socketBase)

	reattachFile := filepath.Join(t.TempDir(), "agent.json")
	f := newFake()
	f.job = fullJob()
	f.events = []plugin.JobEvent{{Job: pendingJob()}}
	logger := hclog.New(&hclog.LoggerOptions{Name: "agent", Level: hclog.Debug, Output: hclog.DefaultOutput, JSONFormat: true})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errCh := make(chan error, 1)
	go func() { errCh <- plugin.ServeDaemon(ctx, f, logger, reattachFile) }()
	waitForFile(t, reattachFile, errCh)

	assert.Equal(t, "not a certificate", os.Getenv("PLUGIN_CLIENT_CERT"), "environment not restored")
	assert.Equal(t, socketBase, os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), "environment not restored")

	// The reattach file: 0600, go-plugin's ReattachConfig as JSON.
	fi, err := os.Stat(reattachFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(reattachFile)
	require.NoError(t, err)
	var ri reattachJSON
	require.NoError(t, json.Unmarshal(data, &ri), "%s", data)
	assert.Equal(t, "grpc", ri.Protocol)
	assert.Equal(t, 1, ri.ProtocolVersion)
	assert.Equal(t, "unix", ri.Addr.Network)
	assert.Equal(t, os.Getpid(), ri.Pid)
	assert.True(t, ri.Test)

	// The socket: 0600, in a private 0700 directory inside PLUGIN_UNIX_SOCKET_DIR.
	sockDir := filepath.Dir(ri.Addr.String)
	assert.Equal(t, socketBase, filepath.Dir(sockDir))
	di, err := os.Stat(sockDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	si, err := os.Stat(ri.Addr.String)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, si.Mode().Type())
	assert.Equal(t, os.FileMode(0o600), si.Mode().Perm())

	// A launcher attaches and calls.
	c, err := plugin.Attach(reattachFile, logger)
	require.NoError(t, err)
	info, err := c.Info(testCtx(t))
	require.NoError(t, err)
	assert.Equal(t, plugin.Info{Version: "v9.9.9-test", ProtocolVersion: 1}, info)
	actorCtx := plugin.WithActor(testCtx(t), plugin.Actor{Member: "alice"})
	job, err := c.Service().Submit(actorCtx, plugin.SubmitRequest{Identity: "lab-a", User: "alice", Token: "tok-1"})
	require.NoError(t, err)
	assert.Equal(t, fullJob(), job)
	assert.Equal(t, "tok-1", f.submitReq.Token)
	assert.Equal(t, seenActor{plugin.Actor{Member: "alice", Via: plugin.ViaPlugin}, true}, f.Actor("Submit"))
	// The Admin half is served on the same channel.
	_, err = c.Admin().ListMembers(actorCtx)
	require.NoError(t, err)
	assert.Equal(t, seenActor{plugin.Actor{Member: "alice", Via: plugin.ViaPlugin}, true}, f.Actor("ListMembers"))
	_, err = c.Service().Status(testCtx(t), []string{"missing"})
	require.ErrorIs(t, err, plugin.ErrNotFound)
	c.Close()
	c.Close() // idempotent

	// Closing one launcher's client leaves the agent serving others.
	c2, err := plugin.Attach(reattachFile, logger)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Info(testCtx(t))
	require.NoError(t, err)

	// go-plugin's Shutdown rpc (what a go-plugin client's Kill sends) is refused.
	conn, err := grpc.NewClient("unix://"+ri.Addr.String, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	err = conn.Invoke(testCtx(t), "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = c2.Info(testCtx(t))
	require.NoError(t, err, "the agent stopped after a Shutdown rpc")

	// A watch in flight when the agent stops ends as unavailable (the launcher should watch again).
	watchErr := make(chan error, 1)
	watching := make(chan struct{})
	go func() {
		watchErr <- c2.Service().Watch(testCtx(t), plugin.WatchRequest{}, func(plugin.JobEvent) error {
			close(watching)
			return nil
		})
	}()
	select {
	case <-watching:
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event")
	}

	// Cancelling ctx stops the agent and removes the reattach file and the socket directory.
	cancel()
	select {
	case err := <-errCh:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("ServeDaemon did not return after ctx was cancelled")
	}
	_, err = os.Stat(reattachFile)
	assert.True(t, errors.Is(err, os.ErrNotExist), "reattach file left behind: %v", err)
	_, err = os.Stat(sockDir)
	assert.True(t, errors.Is(err, os.ErrNotExist), "socket directory left behind: %v", err)

	select {
	case err := <-watchErr:
		assert.ErrorIs(t, err, plugin.ErrUnavailable)
	case <-time.After(20 * time.Second):
		t.Fatal("the watch did not end when the agent stopped")
	}

	// The attached client now fails as unavailable, and so does attaching.
	_, err = c2.Info(testCtx(t))
	assert.ErrorIs(t, err, plugin.ErrUnavailable)
	_, err = plugin.Attach(reattachFile, logger)
	assert.ErrorIs(t, err, plugin.ErrUnavailable)
}

func TestServeDaemonLeavesAReplacedReattachFile(t *testing.T) {
	reattachFile := filepath.Join(t.TempDir(), "agent.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errCh := make(chan error, 1)
	go func() { errCh <- plugin.ServeDaemon(ctx, newFake(), hclog.NewNullLogger(), reattachFile) }()
	waitForFile(t, reattachFile, errCh)

	other := []byte(`{"Protocol":"grpc","ProtocolVersion":1,"Addr":{"Network":"unix","String":"/nonexistent/other.sock"},"Pid":1,"Test":true}`)
	require.NoError(t, os.WriteFile(reattachFile, other, 0o600))
	cancel()
	require.NoError(t, <-errCh)
	data, err := os.ReadFile(reattachFile)
	require.NoError(t, err)
	assert.Equal(t, other, data)
}

func TestServeDaemonRefusesBadArguments(t *testing.T) {
	err := plugin.ServeDaemon(context.Background(), newFake(), nil, "")
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
	err = plugin.ServeDaemon(context.Background(), nil, nil, filepath.Join(t.TempDir(), "a.json"))
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
}

func TestServeDaemonFailsOnUnwritableReattachFile(t *testing.T) {
	reattachFile := filepath.Join(t.TempDir(), "no-such-dir", "agent.json")
	done := make(chan error, 1)
	go func() {
		done <- plugin.ServeDaemon(context.Background(), newFake(), hclog.NewNullLogger(), reattachFile)
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), reattachFile)
	case <-time.After(20 * time.Second):
		t.Fatal("ServeDaemon did not fail")
	}
}

func TestAttachErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tests := []struct {
		name string
		file string
		want error
	}{
		{"missing file", filepath.Join(dir, "nope.json"), plugin.ErrUnavailable},
		{"stale file", write("stale.json", `{"Protocol":"grpc","ProtocolVersion":1,"Addr":{"Network":"unix","String":"`+filepath.Join(dir, "gone.sock")+`"},"Pid":1,"Test":true}`), plugin.ErrUnavailable},
		{"other protocol version", write("v2.json", `{"Protocol":"grpc","ProtocolVersion":2,"Addr":{"Network":"unix","String":"/x"},"Pid":1,"Test":true}`), plugin.ErrFailedPrecondition},
		{"net/rpc agent", write("netrpc.json", `{"Protocol":"netrpc","ProtocolVersion":1,"Addr":{"Network":"unix","String":"/x"},"Pid":1}`), plugin.ErrFailedPrecondition},
		{"not JSON", write("garbage.json", `plugin|1|unix`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := plugin.Attach(tt.file, hclog.NewNullLogger())
			require.Error(t, err)
			assert.Nil(t, c)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			t.Log(err)
		})
	}
}
