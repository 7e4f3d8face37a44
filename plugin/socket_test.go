package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryhpc/ferry/plugin"
)

// uidActor is the resolver of these tests: uid N is the member "uid-N". It claims Via "plugin" to
// show that ServeSocket sets Via itself.
func uidActor(uid uint32) (plugin.Actor, error) {
	return plugin.Actor{Member: fmt.Sprintf("uid-%d", uid), Via: plugin.ViaPlugin}, nil
}

// shortTempDir returns a fresh directory with a short path (a Unix socket path has at most 107
// bytes), mode 0755 so that other users can reach a socket in it, removed when the test ends.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-sock-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// serveSocket runs ServeSocket on path in the background until the test ends (or stop is called);
// it waits until the socket answers. stop ends serving and returns ServeSocket's result; it may be
// called more than once.
func serveSocket(t *testing.T, impl plugin.Service, path string, resolve func(uint32) (plugin.Actor, error)) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plugin.ServeSocket(ctx, impl, path, resolve, hclog.NewNullLogger()) }()
	var (
		once   sync.Once
		result error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(20 * time.Second):
				result = errors.New("ServeSocket did not return within 20s after its ctx ended")
			}
		})
		return result
	}
	t.Cleanup(func() { assert.NoError(t, stop()) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			_ = conn.Close()
			return stop
		}
		select {
		case err := <-done:
			t.Fatalf("ServeSocket returned before serving: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ServeSocket did not serve %s within 20s", path)
		}
	}
}

func dialSocket(t *testing.T, path string) *plugin.Client {
	t.Helper()
	c, err := plugin.DialSocket(path)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// The socket's caller acts as the member its uid maps to, whatever actor it claims.
func TestServeSocketActsForThePeersUID(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "run", "ferry", "ferry.sock") // directories ServeSocket creates
	f := newFake()
	f.events = []plugin.JobEvent{{Job: pendingJob()}}
	f.watchReturnNil = true
	serveSocket(t, f, path, uidActor)

	si, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, si.Mode().Type())
	assert.Equal(t, os.FileMode(0o666), si.Mode().Perm(), "any local user may connect")
	for _, d := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		di, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), di.Mode().Perm(), d)
	}

	c := dialSocket(t, path)
	want := seenActor{plugin.Actor{Member: fmt.Sprintf("uid-%d", os.Getuid()), Via: plugin.ViaCLI}, true}
	for _, claimed := range []context.Context{
		testCtx(t), // no actor claimed
		plugin.WithActor(testCtx(t), plugin.Actor{Member: "owner-mallory", Via: plugin.ViaPlugin}),
		plugin.WithActor(testCtx(t), plugin.Actor{}), // the launcher itself
	} {
		info, err := c.Info(claimed)
		require.NoError(t, err)
		assert.Equal(t, "v9.9.9-test", info.Version)
		_, err = c.Service().ListJobs(claimed, plugin.ListRequest{})
		require.NoError(t, err)
		var n int
		err = c.Service().Watch(claimed, plugin.WatchRequest{}, func(plugin.JobEvent) error { n++; return nil })
		require.ErrorIs(t, err, plugin.ErrUnavailable) // the fake ended the stream
		assert.Equal(t, 1, n)
		_, err = c.Admin().SetCredential(claimed, plugin.CredentialSpec{Member: "owner-mallory", Key: []byte("k")})
		require.NoError(t, err)
		_, err = c.Admin().ListMembers(claimed)
		require.NoError(t, err)
		for _, m := range []string{"ListJobs", "Watch", "SetCredential", "ListMembers"} {
			assert.Equal(t, want, f.Actor(m), m)
		}
	}
	assert.Equal(t, []byte("k"), f.AdminArgs().cred.Key)
}

func TestServeSocketRefusesCallersItCannotResolve(t *testing.T) {
	tests := []struct {
		name    string
		resolve func(uint32) (plugin.Actor, error)
		want    string
	}{
		{
			name: "resolve error",
			resolve: func(uid uint32) (plugin.Actor, error) {
				return plugin.Actor{}, fmt.Errorf("unix user %d is not a member: ask an owner to run `ferry member add NAME --unix-user USER`", uid)
			},
			want: fmt.Sprintf("unix user %d is not a member: ask an owner", os.Getuid()),
		},
		{
			name: "resolve error wrapping another sentinel",
			resolve: func(uint32) (plugin.Actor, error) {
				return plugin.Actor{}, fmt.Errorf("lookup: %w", plugin.ErrNotFound)
			},
			want: "lookup: not found",
		},
		{
			name:    "empty member would be the launcher itself",
			resolve: func(uint32) (plugin.Actor, error) { return plugin.Actor{Via: plugin.ViaCLI}, nil },
			want:    "is not mapped to an organisation member",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(shortTempDir(t), "ferry.sock")
			f := newFake()
			serveSocket(t, f, path, tt.resolve)
			c := dialSocket(t, path)
			ctx := plugin.WithActor(testCtx(t), plugin.Actor{Member: "root"})

			errs := callEvery(ctx, c.Service())
			for rpc, err := range callEveryAdmin(ctx, c.Admin()) {
				errs[rpc] = err
			}
			_, errs["Info"] = c.Info(ctx)
			for rpc, err := range errs {
				require.ErrorIs(t, err, plugin.ErrPermissionDenied, rpc)
				assert.Equal(t, codes.PermissionDenied, status.Code(err), rpc)
				assert.Contains(t, err.Error(), tt.want, rpc)
				assert.NotErrorIs(t, err, plugin.ErrNotFound, rpc)
			}
			assert.Empty(t, f.Calls(), "the implementation must not be called")
		})
	}
}

func TestServeSocketErrorsMapLikeThePluginChannel(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "ferry.sock")
	f := newFake()
	f.err = fmt.Errorf("delete identity %q: %w", "lab-a", plugin.ErrFailedPrecondition)
	serveSocket(t, f, path, uidActor)
	c := dialSocket(t, path)
	for rpc, err := range callEveryAdmin(testCtx(t), c.Admin()) {
		require.ErrorIs(t, err, plugin.ErrFailedPrecondition, rpc)
		assert.Equal(t, f.err.Error(), err.Error(), rpc)
	}
}

func TestServeSocketWithoutAdminHalf(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "ferry.sock")
	serveSocket(t, struct{ plugin.Service }{newFake()}, path, uidActor)
	c := dialSocket(t, path)
	_, err := c.Admin().ListMembers(testCtx(t))
	require.ErrorIs(t, err, plugin.ErrUnimplemented)
	assert.Contains(t, err.Error(), "does not offer identity and credential management")
	_, err = c.Service().ListJobs(testCtx(t), plugin.ListRequest{})
	require.NoError(t, err)
}

func TestServeSocketLifecycle(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "ferry.sock")

	// No agent: DialSocket says so.
	_, err := plugin.DialSocket(path)
	require.ErrorIs(t, err, plugin.ErrUnavailable)
	assert.Contains(t, err.Error(), "is `ferry agent` running?")

	// A socket left by an agent that died: DialSocket reports it, ServeSocket replaces it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	_, err = plugin.DialSocket(path)
	require.ErrorIs(t, err, plugin.ErrUnavailable)
	assert.Contains(t, err.Error(), "an agent that died")

	f := newFake()
	stop := serveSocket(t, f, path, uidActor)
	c := dialSocket(t, path)
	_, err = c.Service().ListJobs(testCtx(t), plugin.ListRequest{})
	require.NoError(t, err)

	// A second agent on the same path is refused and leaves the first one serving.
	err = plugin.ServeSocket(testCtx(t), newFake(), path, uidActor, hclog.NewNullLogger())
	require.ErrorIs(t, err, plugin.ErrAlreadyExists)
	_, err = c.Service().ListJobs(testCtx(t), plugin.ListRequest{})
	require.NoError(t, err)

	// Close: later calls fail as unavailable, saying why.
	c.Close()
	_, err = c.Service().ListJobs(testCtx(t), plugin.ListRequest{})
	require.ErrorIs(t, err, plugin.ErrUnavailable)
	assert.Contains(t, err.Error(), "closed")

	// Ending ctx stops serving and removes the socket.
	require.NoError(t, stop())
	_, err = os.Lstat(path)
	assert.True(t, errors.Is(err, os.ErrNotExist), "socket left behind: %v", err)
}

func TestServeSocketWatchEndsWhenServingStops(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "ferry.sock")
	f := newFake()
	f.events = []plugin.JobEvent{{Job: pendingJob()}}
	stop := serveSocket(t, f, path, uidActor)
	c := dialSocket(t, path)
	watching := make(chan struct{})
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- c.Service().Watch(testCtx(t), plugin.WatchRequest{}, func(plugin.JobEvent) error {
			close(watching)
			return nil
		})
	}()
	<-watching
	require.NoError(t, stop()) // a watch never ends on its own: the grace period must end it
	assert.ErrorIs(t, <-watchErr, plugin.ErrUnavailable)
}

func TestServeSocketRefusesToReplaceAFile(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "ferry.sock")
	require.NoError(t, os.WriteFile(path, []byte("not a socket"), 0o600))
	err := plugin.ServeSocket(testCtx(t), newFake(), path, uidActor, hclog.NewNullLogger())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a socket")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "not a socket", string(data))
}

func TestServeSocketRefusesBadArguments(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(shortTempDir(t), "ferry.sock")
	assert.ErrorIs(t, plugin.ServeSocket(ctx, newFake(), "", uidActor, nil), plugin.ErrInvalidArgument)
	assert.ErrorIs(t, plugin.ServeSocket(ctx, nil, path, uidActor, nil), plugin.ErrInvalidArgument)
	assert.ErrorIs(t, plugin.ServeSocket(ctx, newFake(), path, nil, nil), plugin.ErrInvalidArgument)
	_, err := plugin.DialSocket("")
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
}

// socketHelperEnv makes the re-executed test binary a CLI that calls the socket named by its value
// (TestSocketHelperProcess).
const socketHelperEnv = "FERRY_SOCKET_TEST_HELPER"

// TestSocketHelperProcess is not a test: TestServeSocketTellsUsersApart re-executes the test binary
// as another Unix user to run only this function, which calls the agent's socket claiming to be
// "uid-0" and exits 0 if the calls succeeded.
func TestSocketHelperProcess(t *testing.T) {
	path := os.Getenv(socketHelperEnv)
	if path == "" {
		t.Skip("helper for TestServeSocketTellsUsersApart; runs only when it re-executes the test binary")
	}
	err := func() error {
		c, err := plugin.DialSocket(path)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ctx = plugin.WithActor(ctx, plugin.Actor{Member: "uid-0"})
		if _, err := c.Admin().ListMembers(ctx); err != nil {
			return err
		}
		_, err = c.Service().ListJobs(ctx, plugin.ListRequest{})
		return err
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// A real second Unix user (nobody, 65534) calling the same socket is resolved as itself, even when
// it claims to be root's member.
func TestServeSocketTellsUsersApart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper process as another Unix user (uid 65534)")
	}
	const otherUID = 65534
	dir := shortTempDir(t)
	// The test binary sits in a private build directory: copy it where the other user can run it.
	bin := filepath.Join(dir, "plugin.test")
	copyFile(t, os.Args[0], bin, 0o755)
	path := filepath.Join(dir, "ferry.sock")
	f := newFake()
	serveSocket(t, f, path, uidActor)

	// This process first.
	c := dialSocket(t, path)
	_, err := c.Admin().ListMembers(testCtx(t))
	require.NoError(t, err)
	assert.Equal(t, seenActor{plugin.Actor{Member: "uid-0", Via: plugin.ViaCLI}, true}, f.Actor("ListMembers"))

	cmd := exec.Command(bin, "-test.run=^TestSocketHelperProcess$")
	cmd.Env = append(os.Environ(), socketHelperEnv+"="+path)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helper as uid %d:\n%s", otherUID, out)
	want := seenActor{plugin.Actor{Member: "uid-" + strconv.Itoa(otherUID), Via: plugin.ViaCLI}, true}
	assert.Equal(t, want, f.Actor("ListMembers"))
	assert.Equal(t, want, f.Actor("ListJobs"))
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}
