package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

// buildFerry compiles this command into a directory removed when the test ends.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin, err := testcluster.BuildFerry(t.TempDir())
	require.NoError(t, err)
	return bin
}

// writeConfig writes an agent config for the test cluster into dir.
func writeConfig(t *testing.T, c *testcluster.Cluster, dir string) string {
	t.Helper()
	text := fmt.Sprintf(`[agent]
state_dir = %q
socket = %q
log_level = "debug"
metrics_listen = "127.0.0.1:0"
[poll]
interval = "1s"
exit_code_grace = "5s"
`, filepath.Join(dir, "state"), filepath.Join(dir, "ferry.sock")) + c.IdentityTOML(t, dir, "alice", "bob")
	path := filepath.Join(dir, "ferry.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func waitDone(t *testing.T, svc plugin.Service, id string) plugin.Job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		js, err := svc.Status(context.Background(), []string{id})
		require.NoError(t, err)
		require.Len(t, js, 1)
		if js[0].Done {
			return js[0]
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("job %s not done", id)
	return plugin.Job{}
}

// TestPluginSubprocess starts `ferry plugin` as a real subprocess with go-plugin's client (AutoMTLS)
// and runs submit, status and cancel through it.
func TestPluginSubprocess(t *testing.T) {
	c := testcluster.Require(t)
	bin := buildFerry(t)
	cfg := writeConfig(t, c, t.TempDir())
	var logs testcluster.SyncBuffer // written by go-plugin's stderr relay while the test reads it
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
	cl, err := plugin.Start(exec.Command(bin, "plugin", "--config", cfg), logger)
	require.NoError(t, err)
	defer cl.Close()
	svc := cl.Service()
	ctx := context.Background()
	j, err := svc.Submit(ctx, plugin.SubmitRequest{Identity: "local", User: "bob", Name: "via-plugin", Script: []byte("exit 4\n")})
	require.NoError(t, err)
	long, err := svc.Submit(ctx, plugin.SubmitRequest{Identity: "local", User: "alice", Name: "long", Script: []byte("sleep 300\n")})
	require.NoError(t, err)
	res, err := svc.Cancel(ctx, []string{long.ID})
	require.NoError(t, err)
	require.Equal(t, "", res[0].Error)
	got := waitDone(t, svc, j.ID)
	require.Equal(t, "failed", got.Status)
	require.Equal(t, 4, *got.ExitCode)
	require.Equal(t, "bob", got.Owner)
	require.Equal(t, "cancelled", waitDone(t, svc, long.ID).Status)
	// The agent's JSON logs reached the launcher's logger.
	require.Contains(t, logs.String(), "job submitted")
}

// TestAgentAttachAndCLI runs `ferry agent` as a daemon, then the CLI (submit, jobs --json) and a
// go-plugin client attach to it through the reattach file.
func TestAgentAttachAndCLI(t *testing.T) {
	c := testcluster.Require(t)
	bin := buildFerry(t)
	dir := t.TempDir()
	cfg := writeConfig(t, c, dir)
	agent := exec.Command(bin, "agent", "--config", cfg)
	var stderr testcluster.SyncBuffer // written by exec's copying goroutine while the test reads it
	agent.Stderr = &stderr
	require.NoError(t, agent.Start())
	defer func() {
		_ = agent.Process.Signal(os.Interrupt)
		_ = agent.Wait()
	}()
	reattach := filepath.Join(dir, "state", "agent.json")
	require.Eventually(t, func() bool { _, err := os.Stat(reattach); return err == nil }, 20*time.Second, 100*time.Millisecond, stderr.String())

	script := filepath.Join(dir, "task.sh")
	require.NoError(t, os.WriteFile(script, []byte("echo hello from $(id -un)\n"), 0o644))
	out, err := exec.Command(bin, "submit", "--reattach", reattach, "--identity", "local", "--user", "alice", "--time", "5m", "--mem", "100M", script).CombinedOutput()
	require.NoError(t, err, string(out))
	id := strings.TrimSpace(string(out))

	cl, err := plugin.Attach(reattach, hclog.NewNullLogger())
	require.NoError(t, err)
	defer cl.Close()
	got := waitDone(t, cl.Service(), id)
	require.Equal(t, "completed", got.Status)
	require.Equal(t, 0, *got.ExitCode)

	out, err = exec.Command(bin, "jobs", "--reattach", reattach, "--user", "alice", "--json").Output()
	require.NoError(t, err)
	var seen bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &v), line)
		if v["id"] == id {
			seen = true
			require.Equal(t, "completed", v["status"])
			require.EqualValues(t, 0, v["exit_code"])
			require.Equal(t, "task", v["name"])
		}
	}
	require.True(t, seen, string(out))
	out, err = exec.Command(bin, "jobs", "--reattach", reattach).Output()
	require.NoError(t, err)
	require.Contains(t, string(out), id)
	require.Contains(t, string(out), "STATUS")

	// The CLI socket, open to every local user (the agent tells them apart by uid); root is an
	// owner there.
	sock := filepath.Join(dir, "ferry.sock")
	si, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o666), si.Mode().Perm())
	out, err = exec.Command(bin, "jobs", "--socket", sock, "--json").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), id)
	out, err = exec.Command(bin, "member", "list", "--config", cfg, "--json").CombinedOutput()
	require.NoError(t, err, string(out))
	var members []map[string]any
	require.NoError(t, json.Unmarshal(out, &members), string(out))

	// Cancel of a finished job is fine; of an unknown one is reported.
	out, err = exec.Command(bin, "cancel", "--reattach", reattach, id, "nosuch").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "nosuch: job not found")
}
