package schedtest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSchedulerCommand checks the environment prefix and Prog, without the cluster.
func TestSchedulerCommand(t *testing.T) {
	sge := Scheduler{Path: "/usr/bin", Env: map[string]string{"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}}
	require.Equal(t, []string{"env", "SGE_CELL=default", "SGE_ROOT=/var/lib/gridengine", "/usr/bin/qsub", "-terse", "f"},
		sge.Command([]string{"/usr/bin/qsub", "-terse", "f"}))
	require.Equal(t, "/usr/bin/qacct", sge.Prog("qacct"))

	tq := Scheduler{Path: "/opt/ferry-torque/bin/"}
	require.Equal(t, []string{"/opt/ferry-torque/bin/qstat", "-f"}, tq.Command([]string{"/opt/ferry-torque/bin/qstat", "-f"}),
		"the program is kept as the adapter named it")
	require.Equal(t, "/opt/ferry-torque/bin/qdel", tq.Prog("qdel"))
	require.Equal(t, "qdel", Scheduler{}.Prog("qdel"))
	require.Empty(t, sge.Command(nil))
}
