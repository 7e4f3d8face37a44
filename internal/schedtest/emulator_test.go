package schedtest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/lsf"
	"github.com/ferryhpc/ferry/scheduler/pbs"
)

// TestEmulatorFormats runs the human formats of the PBS Pro and LSF emulators (the ones the
// adapters do not issue but people paste: qstat -f text, the qstat tables, the bjobs tables,
// bjobs -json, bhist -l) on a running and a finished job and parses them with the adapters' real
// parsers. scripts/emulators/selftest compares the same outputs with the real captures.
func TestEmulatorFormats(t *testing.T) {
	t.Run("pbspro", func(t *testing.T) {
		t.Parallel()
		e := requireScheduler(t, "pbspro")
		r := e.runner(t, "alice")
		dir := e.taskDir(t, r, "formats")
		done := e.submit(t, r, e.spec(dir, "alice", "formats-done"), okTask)
		e.await(t, r, "alice", done, time.Minute, final)
		dir2 := e.taskDir(t, r, "formats2")
		running := e.submit(t, r, e.spec(dir2, "alice", "formats-run"), loopTask)
		e.await(t, r, "alice", running, time.Minute, func(js scheduler.JobState) bool { return js.Status == scheduler.StatusRunning })

		for _, tc := range []struct {
			name  string
			argv  []string
			parse func([]byte) ([]scheduler.JobState, error)
			want  map[scheduler.JobID]string
		}{
			{"qstat -x -f", []string{e.sched.Prog("qstat"), "-x", "-f", string(done), string(running)}, pbs.ParseQstatFull,
				map[scheduler.JobID]string{done: "F", running: "R"}},
			{"qstat -x -f -F json", []string{e.sched.Prog("qstat"), "-x", "-f", "-F", "json", string(done), string(running)}, pbs.ParseQstatJSON,
				map[scheduler.JobID]string{done: "F", running: "R"}},
			{"qstat", []string{e.sched.Prog("qstat"), string(running)}, pbs.ParseQstatTable, map[scheduler.JobID]string{running: "R"}},
			{"qstat -x -u alice", []string{e.sched.Prog("qstat"), "-x", "-u", "alice"}, pbs.ParseQstatTable, nil},
		} {
			res := run(t, r, scheduler.Command{Argv: tc.argv})
			require.Equal(t, 0, res.ExitCode, "%s: %s", tc.name, res.Stderr)
			states, err := tc.parse(res.Stdout)
			require.NoError(t, err, "%s output:\n%s", tc.name, clip(res.Stdout))
			require.NotEmpty(t, states, tc.name)
			got := map[scheduler.JobID]string{}
			for _, js := range states {
				got[js.ID] = js.Raw
				require.Equal(t, "alice", js.User, "%s: %+v", tc.name, js)
			}
			for id, raw := range tc.want {
				require.Equal(t, raw, got[id], "%s: job %s in %v", tc.name, id, got)
			}
		}
	})
	t.Run("lsf", func(t *testing.T) {
		t.Parallel()
		e := requireScheduler(t, "lsf")
		r := e.runner(t, "carol")
		dir := e.taskDir(t, r, "formats")
		done := e.submit(t, r, e.spec(dir, "carol", "formats-done"), failTask)
		e.await(t, r, "carol", done, time.Minute, final)
		dir2 := e.taskDir(t, r, "formats2")
		running := e.submit(t, r, e.spec(dir2, "carol", "formats-run"), loopTask)
		e.await(t, r, "carol", running, time.Minute, func(js scheduler.JobState) bool { return js.Status == scheduler.StatusRunning })

		for _, tc := range []struct {
			name  string
			argv  []string
			parse func([]byte) ([]scheduler.JobState, error)
		}{
			{"bjobs -a", []string{e.sched.Prog("bjobs"), "-a", string(done), string(running)}, lsf.ParseBjobsTable},
			{"bjobs -w -a", []string{e.sched.Prog("bjobs"), "-w", "-a", string(done), string(running)}, lsf.ParseBjobsTable},
			{"bjobs -W -a", []string{e.sched.Prog("bjobs"), "-W", "-a", string(done), string(running)}, lsf.ParseBjobsTable},
			{"bjobs -json", []string{e.sched.Prog("bjobs"), "-a", "-o", "jobid stat user queue exit_code exit_reason submit_time start_time finish_time job_name", "-json", string(done), string(running)}, lsf.ParseBjobsJSON},
			{"bhist -l", []string{e.sched.Prog("bhist"), "-a", "-l", string(done), string(running)}, lsf.ParseBhistLong},
		} {
			res := run(t, r, scheduler.Command{Argv: tc.argv})
			require.Equal(t, 0, res.ExitCode, "%s: %s", tc.name, res.Stderr)
			states, err := tc.parse(res.Stdout)
			require.NoError(t, err, "%s output:\n%s", tc.name, clip(res.Stdout))
			got := map[scheduler.JobID]scheduler.JobState{}
			for _, js := range states {
				got[js.ID] = js
			}
			require.Equal(t, "EXIT", got[done].Raw, "%s: %v", tc.name, got)
			require.Equal(t, "RUN", got[running].Raw, "%s: %v", tc.name, got)
			require.Equal(t, "carol", got[done].User, "%s: %+v", tc.name, got[done])
			if got[done].ExitCode != nil {
				require.Equal(t, 3, *got[done].ExitCode, "%s: %+v", tc.name, got[done])
			}
		}
	})
}
