package pbs

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// clusterCapture reads a capture of testdata/cluster (see its README.md).
// clusterCapture returns testdata/cluster/NAME, output captured on the local test cluster.
func clusterCapture(t *testing.T, name string) []byte {
	t.Helper()
	return adaptertest.Fixture(t, filepath.Join("cluster", name))
}

// TestClusterTorqueQstat parses the TAB-indented qstat -f -1 of Slurm's Torque wrappers. Every
// ended job is C without an exit status, so it is completed with no exit code: the agent then
// takes the verdict from the task's .exitcode (collectExit), and turns a non-zero one into failed.
func TestClusterTorqueQstat(t *testing.T) {
	tq := NewTorque(Options{})
	states, err := tq.ParseStatus(clusterCapture(t, "torque-qstat-f-running-completed.txt"))
	require.NoError(t, err)
	require.Equal(t, []scheduler.JobState{{
		ID: "6521", Raw: "R", Status: scheduler.StatusRunning, Queue: "debug", User: "alice", Name: "capture-run",
		Submitted: adaptertest.Local("2026-11-29 00:25:46"),
	}, {
		ID: "6522", Raw: "C", Status: scheduler.StatusCompleted, Queue: "debug", User: "alice", Name: "capture-fail",
		Submitted: adaptertest.Local("2026-11-29 00:25:52"), Ended: adaptertest.Local("2026-11-29 00:25:53"),
	}}, states)

	states, err = tq.ParseStatus(clusterCapture(t, "torque-qstat-f-cancelled.txt"))
	require.NoError(t, err)
	require.Len(t, states, 1)
	require.Equal(t, scheduler.JobID("9295"), states[0].ID)
	require.Equal(t, scheduler.StatusCompleted, states[0].Status, "the wrappers show a cancelled job as C too")
	require.Nil(t, states[0].ExitCode)
	require.False(t, states[0].Ended.IsZero())
}

// TestClusterTorqueQdel interprets the qdel results of Slurm's Torque wrappers.
func TestClusterTorqueQdel(t *testing.T) {
	tq := NewTorque(Options{})
	err := tq.CheckCancel([]scheduler.JobID{"9289"}, scheduler.Result{ExitCode: 1, Stdout: clusterCapture(t, "torque-qdel-denied.txt")})
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.Contains(t, err.Error(), "job 9289")
	require.NotContains(t, err.Error(), "denied:")

	gone := clusterCapture(t, "torque-qdel-gone.txt")
	require.Empty(t, gone)
	require.NoError(t, tq.CheckCancel([]scheduler.JobID{"9289", "99999999"}, scheduler.Result{ExitCode: 2, Stdout: gone}))
}

// TestClusterTorqueQsub reads the wrappers' qsub output.
func TestClusterTorqueQsub(t *testing.T) {
	id, err := NewTorque(Options{}).ParseSubmit(clusterCapture(t, "torque-qsub.txt"))
	require.NoError(t, err)
	require.Equal(t, scheduler.JobID("9293"), id)
}

// TestEmulatorWalltime reads a job the PBS Pro emulator killed on its walltime, with the
// Exit_status real PBS Pro gives such a job (-29, JOB_EXEC_KILL_WALLTIME): a timeout.
func TestEmulatorWalltime(t *testing.T) {
	p := NewPro(Options{})
	states, err := p.ParseAccounting(clusterCapture(t, "pbspro-emulator-qstat-json-walltime.json"))
	require.NoError(t, err)
	require.Len(t, states, 1)
	js := states[0]
	require.Equal(t, scheduler.JobID("24.ferrypbs"), js.ID)
	require.Equal(t, "F", js.Raw)
	require.Equal(t, scheduler.StatusTimeout, js.Status)
	require.Equal(t, -29, *js.ExitCode)
}
