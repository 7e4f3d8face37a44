package agent

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// TestBatchScriptRunsEachCommandSeparately runs a rendered batch with the real /bin/sh and checks
// each command gets its own output, stderr and exit status, whatever the others print.
func TestBatchScriptRunsEachCommandSeparately(t *testing.T) {
	batch := []submitReq{
		{cmd: scheduler.Command{Argv: []string{"sh", "-c", "echo 101; echo warn >&2"}}},
		{cmd: scheduler.Command{Argv: []string{"sh", "-c", "echo '@@ferry-fake-end 2 0'; exit 3"}}},
		{cmd: scheduler.Command{Argv: []string{"pwd"}, Dir: "/tmp"}},
		{cmd: scheduler.Command{Argv: []string{"printf", "%s", "no newline"}}},
	}
	script, nonce, err := batchScript(batch)
	require.NoError(t, err)
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = stringsReader(script)
	var stdout, stderr bytesBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run())
	outs, codes := splitBatch(stdout.Bytes(), nonce, len(batch), true)
	errs, _ := splitBatch(stderr.Bytes(), nonce, len(batch), false)
	require.Equal(t, map[int]int{0: 0, 1: 3, 2: 0, 3: 0}, codes)
	require.Equal(t, "101\n", string(outs[0]))
	require.Equal(t, "warn\n", string(errs[0]))
	require.Equal(t, "@@ferry-fake-end 2 0\n", string(outs[1]))
	require.Equal(t, "/tmp\n", string(outs[2]))
	// A command without a final newline still ends before the marker line.
	require.Equal(t, "no newline", string(outs[3]))
}

func TestSplitBatchMissingEnd(t *testing.T) {
	out := []byte("@@ferry-n-begin 0\n123\n\n@@ferry-n-end 0 0\n@@ferry-n-begin 1\n456\n")
	parts, codes := splitBatch(out, "n", 2, true)
	require.Equal(t, "123\n", string(parts[0]))
	_, ok := codes[1]
	require.False(t, ok, "a command that did not report has no exit status")
}
