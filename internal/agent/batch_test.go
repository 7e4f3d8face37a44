package agent

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// TestBatchScriptRunsEachCommandSeparately runs a rendered batch with the real /bin/sh, one at a
// time and several at once, and checks each command gets its own output, stderr and exit status,
// whatever the others print, and that the script's temporary directory is gone afterwards.
func TestBatchScriptRunsEachCommandSeparately(t *testing.T) {
	batch := []submitReq{
		{cmd: scheduler.Command{Argv: []string{"sh", "-c", "echo 101; echo warn >&2"}}},
		{cmd: scheduler.Command{Argv: []string{"sh", "-c", "echo '@@ferry-fake-end 2 0'; exit 3"}}},
		{cmd: scheduler.Command{Argv: []string{"pwd"}, Dir: "/tmp"}},
		{cmd: scheduler.Command{Argv: []string{"printf", "%s", "no newline"}}},
		{cmd: scheduler.Command{Argv: []string{"sh", "-c", "read x || echo stdin-empty; exit 0"}}},
	}
	for _, parallel := range []int{1, 2, 8} {
		tmp := t.TempDir()
		script, nonce, err := batchScript(batch, parallel)
		require.NoError(t, err)
		cmd := exec.Command("/bin/sh", "-s")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		cmd.Stdin = stringsReader(script)
		var stdout, stderr bytesBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run())
		outs, codes := splitBatch(stdout.Bytes(), nonce, len(batch), true)
		errs, _ := splitBatch(stderr.Bytes(), nonce, len(batch), false)
		require.Equal(t, map[int]int{0: 0, 1: 3, 2: 0, 3: 0, 4: 0}, codes, "parallel %d", parallel)
		require.Equal(t, "101\n", string(outs[0]))
		require.Equal(t, "warn\n", string(errs[0]))
		require.Equal(t, "@@ferry-fake-end 2 0\n", string(outs[1]))
		require.Equal(t, "/tmp\n", string(outs[2]))
		// A command without a final newline still ends before the marker line.
		require.Equal(t, "no newline", string(outs[3]))
		require.Equal(t, "stdin-empty\n", string(outs[4]), "commands do not read the script")
		left, err := os.ReadDir(tmp)
		require.NoError(t, err)
		require.Empty(t, left, "the batch's temporary directory is removed")
	}
}

// TestBatchScriptKilledMidway: a command whose status was never written (the script died while
// it ran) reports no exit status, so its outcome is unknown rather than a made-up code.
func TestBatchScriptKilledMidway(t *testing.T) {
	batch := []submitReq{
		{cmd: scheduler.Command{Argv: []string{"true"}}},
		{cmd: scheduler.Command{Argv: []string{"sh", "-c", `rm -f "$ferry_d/0.c"; exit 0`}}},
	}
	script, nonce, err := batchScript(batch, 1)
	require.NoError(t, err)
	// Export ferry_d to the commands so the second can remove the first's status, standing in
	// for a status file that was never written.
	script = strings.Replace(script, "|| exit 97\n", "|| exit 97\nexport ferry_d\n", 1)
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = stringsReader(script)
	var stdout bytesBuffer
	cmd.Stdout = &stdout
	require.NoError(t, cmd.Run())
	_, codes := splitBatch(stdout.Bytes(), nonce, len(batch), true)
	require.Equal(t, map[int]int{1: 0}, codes)
}

func TestSplitBatchMissingEnd(t *testing.T) {
	out := []byte("@@ferry-n-begin 0\n123\n\n@@ferry-n-end 0 0\n@@ferry-n-begin 1\n456\n")
	parts, codes := splitBatch(out, "n", 2, true)
	require.Equal(t, "123\n", string(parts[0]))
	_, ok := codes[1]
	require.False(t, ok, "a command that did not report has no exit status")
}
