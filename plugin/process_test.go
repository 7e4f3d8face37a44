package plugin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
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

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

// helperEnv makes the re-executed test binary act as a Ferry agent (TestHelperProcess).
const helperEnv = "FERRY_PLUGIN_TEST_HELPER=1"

// helperJob is what the helper agent's Submit returns.
func helperJob() plugin.Job {
	j := fullJob()
	j.ID = "helper-1"
	return j
}

// TestHelperProcess is not a test: the subprocess tests re-execute the test binary to run only
// this function, which serves a fake agent with plugin.Serve exactly as `ferry plugin` would.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("FERRY_PLUGIN_TEST_HELPER") != "1" {
		t.Skip("helper for the subprocess tests; runs only when they re-execute the test binary")
	}
	logger := plugin.NewLogger(hclog.Debug)
	f := newFake()
	f.log = logger
	f.job = helperJob()
	f.jobs = []plugin.Job{helperJob(), pendingJob()}
	f.results = []plugin.CancelResult{{ID: "helper-1"}, {ID: "fj-2", Error: "scancel: Access/permission denied"}}
	plugin.Serve(f, logger)
	// Exit here: returning would let the testing package print its verdict on stdout.
	os.Exit(0)
}

func helperCommand(t *testing.T) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv)
	return cmd
}

// jsonLines decodes every non-empty line of s as a JSON object.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not a JSON line: %q", line)
		out = append(out, m)
	}
	return out
}

func TestStartSubprocessWithAutoMTLS(t *testing.T) {
	var hostLog testcluster.SyncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "launcher", Level: hclog.Trace, Output: &hostLog, JSONFormat: true})
	cmd := helperCommand(t)

	c, err := plugin.Start(cmd, logger)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			c.Close()
		}
	})
	ctx := testCtx(t)

	info, err := c.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, plugin.Info{Version: "v9.9.9-test", ProtocolVersion: 1}, info)

	svc := c.Service()
	req := plugin.SubmitRequest{Identity: "lab-a", User: "alice", Token: "tok-9", Dir: "ab/cd", Script: []byte("echo hi\n"),
		Env: map[string]string{"K": "v"}, Resources: plugin.Resources{CPUs: 2, Time: time.Hour, Extra: []string{"--qos=x"}}}
	job, err := svc.Submit(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, helperJob(), job)

	jobs, err := svc.Status(ctx, []string{"helper-1", "fj-2"})
	require.NoError(t, err)
	assert.Equal(t, []plugin.Job{helperJob(), pendingJob()}, jobs)

	_, err = svc.Status(ctx, []string{"missing"})
	require.ErrorIs(t, err, plugin.ErrNotFound)
	assert.Equal(t, `status of job "missing": not found`, err.Error())

	results, err := svc.Cancel(ctx, []string{"helper-1", "fj-2"})
	require.NoError(t, err)
	assert.Equal(t, []plugin.CancelResult{{ID: "helper-1"}, {ID: "fj-2", Error: "scancel: Access/permission denied"}}, results)

	// The agent's JSON log lines were parsed by the host and re-logged at their level, with their
	// fields: the fake logged "fake submit" at info with the token.
	var sawSubmit bool
	var sockAddr string
	for _, e := range jsonLines(t, hostLog.String()) {
		switch e["@message"] {
		case "fake submit":
			sawSubmit = true
			assert.Equal(t, "info", e["@level"])
			assert.Equal(t, "tok-9", e["token"])
		case "plugin address":
			sockAddr, _ = e["address"].(string)
		}
	}
	assert.True(t, sawSubmit, "the agent's log line did not reach the launcher's logger:\n%s", hostLog.String())

	// AutoMTLS: the agent's socket refuses a client without the launcher's certificate.
	require.NotEmpty(t, sockAddr, "no plugin address in the log:\n%s", hostLog.String())
	conn, err := grpc.NewClient("unix://"+sockAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = ferryv1.NewFerryClient(conn).Info(shortCtx, &ferryv1.InfoRequest{})
	require.Error(t, err, "a plaintext client could call the agent")

	// Close stops the agent gracefully: Serve returns and the helper exits 0.
	c.Close()
	closed = true
	require.NotNil(t, cmd.ProcessState, "the agent process was not waited for")
	assert.True(t, cmd.ProcessState.Success(), "agent exit: %v", cmd.ProcessState)
	_, err = svc.Status(ctx, []string{"helper-1"})
	assert.ErrorIs(t, err, plugin.ErrUnavailable)
	assert.Contains(t, err.Error(), "closed")
}

func TestStartRefusesAProgramThatIsNotAnAgent(t *testing.T) {
	_, err := plugin.Start(exec.Command("/bin/sh", "-c", "echo not-a-plugin"), hclog.NewNullLogger())
	require.Error(t, err)
	t.Log(err)
}

// TestServeWritesOnlyTheHandshakeToStdout runs the agent as go-plugin's host would, but reads its
// raw standard output and error: stdout must carry exactly one handshake line, and every stderr
// line must be a JSON object the host can parse.
func TestServeWritesOnlyTheHandshakeToStdout(t *testing.T) {
	cmd := helperCommand(t)
	cmd.Env = append(cmd.Env,
		plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testcluster.SyncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	lines := make(chan string)
	rest := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		more, _ := r.ReadString(0)
		rest <- more
	}()
	var handshake string
	select {
	case handshake = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("no handshake within 30s; stderr:\n%s", stderr.String())
	}
	// core-protocol|app-protocol|network|address|protocol|server-cert (empty: no AutoMTLS here)
	parts := strings.Split(strings.TrimSuffix(handshake, "\n"), "|")
	require.Len(t, parts, 6, "handshake %q", handshake)
	assert.Equal(t, []string{"1", "1", "unix"}, parts[:3])
	assert.Equal(t, "grpc", parts[4])

	conn, err := grpc.NewClient("unix://"+parts[3], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx := testCtx(t)
	ferry := ferryv1.NewFerryClient(conn)
	_, err = ferry.Info(ctx, &ferryv1.InfoRequest{})
	require.NoError(t, err)
	_, err = ferry.Submit(ctx, &ferryv1.SubmitRequest{Identity: "lab-a", User: "alice", Token: "tok-raw"})
	require.NoError(t, err)
	_, err = ferry.Status(ctx, &ferryv1.StatusRequest{Ids: []string{"missing"}})
	assert.Equal(t, codes.NotFound, status.Code(err))

	// Stop it the way go-plugin's host does.
	_ = conn.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "stderr:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not exit after Shutdown")
	}

	assert.Empty(t, <-rest, "the agent wrote to stdout after the handshake")
	entries := jsonLines(t, stderr.String())
	require.NotEmpty(t, entries)
	var sawSubmit, sawFailedRPC bool
	for _, e := range entries {
		for _, key := range []string{"@message", "@level", "@timestamp"} {
			require.Contains(t, e, key, "log line %v", e)
		}
		_, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", e["@timestamp"].(string))
		assert.NoError(t, err, "timestamp in a format go-plugin's host cannot parse")
		switch e["@message"] {
		case "fake submit":
			sawSubmit = true
		case "rpc failed":
			sawFailedRPC = true
			assert.Equal(t, "Status", e["rpc"])
			assert.Equal(t, "NotFound", e["code"])
		}
	}
	assert.True(t, sawSubmit, "stderr:\n%s", stderr.String())
	assert.True(t, sawFailedRPC, "stderr:\n%s", stderr.String())
}
