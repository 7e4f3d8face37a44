package faults_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
)

// lateExitDelay is how long after the job ended its .exitcode appears (as on an NFS client whose
// attribute cache lags the node that wrote it).
const lateExitDelay = 9 * time.Second

// hideExitCode renders the real wrapper but has it write the exit code to .exitcode.late instead
// of .exitcode; the test moves it into place lateExitDelay after the job ended.
func hideExitCode(_ scheduler.JobSpec, real []byte) ([]byte, error) {
	const write = "mv -f .exitcode.tmp.$$ .exitcode\n"
	if !strings.Contains(string(real), write) {
		return nil, fmt.Errorf("the wrapper no longer writes .exitcode with %q: update hideExitCode", write)
	}
	return []byte(strings.Replace(string(real), write, "mv -f .exitcode.tmp.$$ .exitcode.late\n", 1)), nil
}

// TestLateExitCode makes each task's .exitcode appear lateExitDelay after its job left the queue.
// With poll.exit_code_grace longer than the delay, the job must wait ("waiting for .exitcode"),
// then end with the real exit code and no error: never a false failure. With a shorter grace,
// accounting's exit code is used and the job says so.
func TestLateExitCode(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{
		{"grace-longer-than-delay", 40 * time.Second},
		{"grace-shorter-than-delay", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &faultySlurm{render: hideExitCode}
			cfg := baseConfig(t, c, c.Host, c.Port)
			cfg.Poll.ExitCodeGrace = config.Duration{Duration: tc.grace}
			a := newAgent(t, cfg, f.factory())
			defer a.Close()
			since := time.Now()
			tasks := []*task{exitTask(t, "alice", "late-ok", 0, 0), exitTask(t, "carol", "late-fail", 0, 3)}
			for _, tk := range tasks {
				j, err := a.Submit(context.Background(), tk.req)
				require.NoError(t, err)
				tk.id = j.ID
			}
			defer func() {
				if t.Failed() {
					scancelTokens(since, tasks)
				}
			}()
			long := tc.grace > lateExitDelay
			// Watch every job until its exit code is moved into place.
			ended := map[string]time.Time{}
			waiting := map[string]bool{}
			restored := map[string]bool{}
			deadline := time.Now().Add(3 * time.Minute)
			for len(restored) < len(tasks) {
				require.True(t, time.Now().Before(deadline), "jobs did not end: %v", ended)
				js, err := a.Status(context.Background(), ids(tasks))
				require.NoError(t, err)
				for _, j := range js {
					if restored[j.ID] {
						continue
					}
					st := scheduler.Status(j.Status)
					if st.Final() && ended[j.ID].IsZero() {
						ended[j.ID] = time.Now()
					}
					if j.Reason == "waiting for "+scheduler.ExitCodeFile {
						waiting[j.ID] = true
					}
					if long {
						require.False(t, j.Done, "finished before its .exitcode appeared although the grace is longer: %+v", j)
					}
					if !ended[j.ID].IsZero() && time.Since(ended[j.ID]) >= lateExitDelay {
						late := filepath.Join(j.Dir, scheduler.ExitCodeFile+".late")
						_, err := os.Stat(late)
						require.NoError(t, err, "the wrapper wrote no %s", late)
						require.NoError(t, os.Rename(late, filepath.Join(j.Dir, scheduler.ExitCodeFile)))
						restored[j.ID] = true
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			got := waitDone(t, a, ids(tasks), time.Minute)
			checkFinal(t, got, tasks)
			for _, tk := range tasks {
				j := got[tk.id]
				if long {
					require.True(t, waiting[tk.id], "the job never said it was waiting for %s: %+v", scheduler.ExitCodeFile, j)
					require.Empty(t, j.Error, "the real .exitcode was read: %+v", j)
				} else {
					require.Contains(t, j.Error, "exit code from scheduler accounting", "%+v", j)
				}
				require.NotEqual(t, "waiting for "+scheduler.ExitCodeFile, j.Reason, "%+v", j)
			}
			requireExactlyOnce(t, a, since, tasks)
		})
	}
}
