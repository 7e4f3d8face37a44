package schedulers

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// TestClassifyFailure reads failed submits. The Slurm and Grid Engine lines were captured on the
// test cluster (sbatch with SLURM_CONF pointing at a dead port; qsub with SGE_QMASTER_PORT=9);
// the PBS and LSF lines are the clients' documented messages.
func TestClassifyFailure(t *testing.T) {
	cases := []struct {
		kind, stderr string
		want         scheduler.Failure
	}{
		{"slurm", "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n", scheduler.FailureUnavailable},
		{"slurm", "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n", scheduler.FailureAmbiguous},
		{"slurm", "sbatch: error: Batch job submission failed: Invalid partition name specified\n", scheduler.FailureRejected},
		{"slurm", "sbatch: error: Batch job submission failed: Requested node configuration is not available\n", scheduler.FailureRejected},
		{"sge", "error: commlib error: got select error (Connection refused)\nUnable to run job: unable to send message to qmaster using port 9 on host \"localhost\": got send error\nExiting.\n", scheduler.FailureUnavailable},
		{"sge", "Unable to run job: failed receiving gdi request response for mid=1 (got no message).\nExiting.\n", scheduler.FailureAmbiguous},
		{"sge", "Unable to run job: Job was rejected because job requests unknown queue \"nope\".\nExiting.\n", scheduler.FailureRejected},
		{"pbspro", "Connection refused\nqsub: cannot connect to server pbs01 (errno=111)\n", scheduler.FailureUnavailable},
		{"pbspro", "qsub: End of File\n", scheduler.FailureAmbiguous},
		{"pbspro", "qsub: Unknown queue\n", scheduler.FailureRejected},
		{"torque", "qsub: submit error (Unable to contact slurm controller (connect failure))\n", scheduler.FailureUnavailable},
		{"torque", "qsub: submit error (Bad UID for job execution MSG=ruserok failed validating bob/bob from host)\n", scheduler.FailureRejected},
		{"lsf", "LSF is down. Please wait ...\n", scheduler.FailureUnavailable},
		{"lsf", "Queue <nope>: No such queue. Job not submitted.\n", scheduler.FailureRejected},
	}
	for _, c := range cases {
		s, err := New(c.kind, Options{})
		require.NoError(t, err)
		fc, ok := s.(scheduler.FailureClassifier)
		require.True(t, ok, "%s adapter classifies failed submits", c.kind)
		got := fc.ClassifyFailure(scheduler.Result{Stderr: []byte(c.stderr), ExitCode: 1})
		require.Equal(t, c.want, got, "%s: %q", c.kind, c.stderr)
	}
}
