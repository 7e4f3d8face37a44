package scheduler

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wrapperShells are the POSIX shells the wrapper is run with: /bin/sh (what the #! line names) and
// every other installed one, so a bashism or a dash-ism shows up.
func wrapperShells(t *testing.T) []string {
	shells := []string{"/bin/sh"}
	for _, sh := range []string{"dash", "bash", "ksh", "mksh", "busybox"} {
		if p, err := exec.LookPath(sh); err == nil {
			shells = append(shells, p)
		}
	}
	return shells
}

// startWrapper renders the wrapper for a temp dir, writes script as the task and starts the
// wrapper with shell. It returns the dir and the running command; the process group is killed
// when the test ends.
func startWrapper(t *testing.T, shell, script string, spec JobSpec) (string, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	spec.Dir = dir
	run, err := RenderWrapper(spec, []string{"#SBATCH -J test"}, "SLURM_JOB_ID")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, RunFile), run, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, TaskFile), []byte(script), 0o644))
	args := []string{filepath.Join(dir, RunFile)}
	if filepath.Base(shell) == "busybox" {
		args = append([]string{"sh"}, args...)
	}
	cmd := exec.Command(shell, args...)
	cmd.Dir = "/" // the wrapper must cd itself
	cmd.Env = append(os.Environ(), "SLURM_JOB_ID=4242")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
	})
	return dir, cmd
}

// waitExit waits for the wrapper and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "wait: %v", err)
		return ee.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatal("wrapper did not exit within 20s")
		return -1
	}
}

// waitFile waits for path to exist (and, when want is set, to hold want) for up to 10s.
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		b, err := os.ReadFile(path)
		if err == nil && (want == "" || string(b) == want) {
			return string(b)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: want %q, have %q (%v)", filepath.Base(path), want, b, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return string(b)
}

// A task that records TERM, announces it started, then waits (at most 30 s) for a "go" file.
const patientTask = `trap 'echo term > got-term; exit 7' TERM
echo started > started
i=0
while [ ! -f go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
exit 0
`

func TestWrapperExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   int
	}{
		{"success", "echo out; echo err >&2; exit 0\n", 0},
		{"failure", "exit 3\n", 3},
		{"last command", "false\n", 1},
		{"shebang task", "#!/bin/sh\nexit 5\n", 5},
		{"command not found", "no-such-command-ferry\n", 127},
	}
	for _, sh := range wrapperShells(t) {
		for _, tt := range tests {
			t.Run(filepath.Base(sh)+"/"+tt.name, func(t *testing.T) {
				dir, cmd := startWrapper(t, sh, tt.script, JobSpec{})
				require.Equal(t, tt.want, waitExit(t, cmd))
				require.Equal(t, strconv.Itoa(tt.want)+"\n", readFile(t, dir, ExitCodeFile))
				require.FileExists(t, filepath.Join(dir, BeginFile))
				leftovers, _ := filepath.Glob(filepath.Join(dir, ".exitcode.tmp.*"))
				require.Empty(t, leftovers, "the exit code is written atomically")
				if tt.name == "success" {
					require.Equal(t, "out\n", readFile(t, dir, OutFile))
					require.Equal(t, "err\n", readFile(t, dir, ErrFile))
				}
			})
		}
	}
}

func TestWrapperEnvironment(t *testing.T) {
	spec := JobSpec{Token: "tok'1", Env: map[string]string{"SAMPLE": "a b $x `y` 'z'\nline2", "EMPTY": ""}}
	dir, cmd := startWrapper(t, "/bin/sh", `printf '%s|%s|%s|%s\n' "$FERRY_TOKEN" "$SAMPLE" "$EMPTY" "$(pwd)"`+"\n", spec)
	require.Equal(t, 0, waitExit(t, cmd))
	require.Equal(t, "tok'1|a b $x `y` 'z'\nline2||"+dir+"\n", readFile(t, dir, OutFile))
}

// TestWrapperStaleExitCode checks that an .exitcode left by an earlier run is removed before the
// task starts, so it cannot be mistaken for this run's.
func TestWrapperStaleExitCode(t *testing.T) {
	dir, cmd := startWrapper(t, "/bin/sh", "cat .exitcode 2>/dev/null && exit 9; exit 0\n", JobSpec{})
	require.Equal(t, 0, waitExit(t, cmd))
	require.Equal(t, "0\n", readFile(t, dir, ExitCodeFile))

	require.NoError(t, os.WriteFile(filepath.Join(dir, ExitCodeFile), []byte("42\n"), 0o644))
	cmd2 := exec.Command("/bin/sh", RunFile)
	cmd2.Dir = dir
	require.NoError(t, cmd2.Run())
	require.Equal(t, "0\n", readFile(t, dir, ExitCodeFile))
}

// TestWrapperSignals sends the wrapper the signals a scheduler sends and checks what it records
// and that the task gets TERM.
func TestWrapperSignals(t *testing.T) {
	for _, sh := range wrapperShells(t) {
		// USR2 is the time-limit warning (--signal B:USR2@30): 140 is recorded at once and the task
		// keeps running; the TERM of the time-limit kill that follows reaches the task, and 140 stays.
		t.Run(filepath.Base(sh)+"/usr2 then term", func(t *testing.T) {
			dir, cmd := startWrapper(t, sh, patientTask, JobSpec{})
			waitFile(t, filepath.Join(dir, "started"), "started\n")
			require.NoError(t, cmd.Process.Signal(syscall.SIGUSR2))
			waitFile(t, filepath.Join(dir, ExitCodeFile), "140\n")
			_, err := os.Stat(filepath.Join(dir, "got-term"))
			require.True(t, os.IsNotExist(err), "USR2 alone must not stop the task")

			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, 140, waitExit(t, cmd))
			require.Equal(t, "140\n", readFile(t, dir, ExitCodeFile))
			waitFile(t, filepath.Join(dir, "got-term"), "term\n")
		})

		// A task that finishes after the warning records its own exit code.
		t.Run(filepath.Base(sh)+"/usr2 then finish", func(t *testing.T) {
			dir, cmd := startWrapper(t, sh, patientTask, JobSpec{})
			waitFile(t, filepath.Join(dir, "started"), "started\n")
			require.NoError(t, cmd.Process.Signal(syscall.SIGUSR2))
			waitFile(t, filepath.Join(dir, ExitCodeFile), "140\n")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
			require.Equal(t, 0, waitExit(t, cmd))
			require.Equal(t, "0\n", readFile(t, dir, ExitCodeFile))
		})

		for _, sig := range []struct {
			name string
			s    syscall.Signal
			code int
		}{{"term", syscall.SIGTERM, 143}, {"int", syscall.SIGINT, 130}} {
			t.Run(filepath.Base(sh)+"/"+sig.name, func(t *testing.T) {
				dir, cmd := startWrapper(t, sh, patientTask, JobSpec{})
				waitFile(t, filepath.Join(dir, "started"), "started\n")
				require.NoError(t, cmd.Process.Signal(sig.s))
				require.Equal(t, sig.code, waitExit(t, cmd))
				require.Equal(t, strconv.Itoa(sig.code)+"\n", readFile(t, dir, ExitCodeFile))
				waitFile(t, filepath.Join(dir, "got-term"), "term\n")
			})
		}
	}
}

// TestWrapperIsPOSIX runs the rendered script through the shells' syntax checkers.
func TestWrapperIsPOSIX(t *testing.T) {
	run, err := RenderWrapper(JobSpec{Dir: "/w/a b", Token: "t", Env: map[string]string{"A": "1"}}, []string{"#SBATCH -J x"}, "SLURM_JOB_ID")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(run), "#!/bin/sh\n#SBATCH -J x\n"))
	for _, sh := range wrapperShells(t) {
		if filepath.Base(sh) == "busybox" {
			continue
		}
		out, err := exec.Command(sh, "-n", "-c", string(run)).CombinedOutput()
		require.NoError(t, err, "%s -n: %s", sh, out)
	}
}

func TestRenderWrapperRefusals(t *testing.T) {
	_, err := RenderWrapper(JobSpec{Dir: "relative"}, nil, "")
	require.Error(t, err)
	_, err = RenderWrapper(JobSpec{Dir: "/w"}, []string{"#SBATCH -J a\n#SBATCH --array=1-3"}, "")
	require.Error(t, err)
	_, err = RenderWrapper(JobSpec{Dir: "/w"}, nil, "A;B")
	require.Error(t, err, "a job id variable that is not a name")
	_, err = RenderWrapper(JobSpec{Dir: "/w", Env: map[string]string{"1A": "x"}}, nil, "")
	require.Error(t, err)
	_, err = RenderWrapper(JobSpec{Dir: "/w", Env: map[string]string{"A": "x\x00"}}, nil, "")
	require.ErrorIs(t, err, ErrUnquotable)
	_, err = RenderWrapper(JobSpec{Dir: "/w\x00"}, nil, "")
	require.ErrorIs(t, err, ErrUnquotable)
}

// TestWrapperTimeLimitWithoutWarning covers a time-limit kill whose warning never came (Slurm's
// came too late on a busy CI controller; PBS sends none): a TERM or INT once the wrapper has run
// for its limit less KillMargin records 140, and one before that records 143 or 130.
func TestWrapperTimeLimitWithoutWarning(t *testing.T) {
	const limit = 4 * time.Second // KillMargin 2 s: a signal from 2 s on is the time-limit kill
	require.Equal(t, int64(2), limitAt(limit))
	for _, sh := range wrapperShells(t) {
		for _, sig := range []struct {
			name string
			s    syscall.Signal
			code int
		}{{"term", syscall.SIGTERM, 143}, {"int", syscall.SIGINT, 130}} {
			t.Run(filepath.Base(sh)+"/"+sig.name+" after the limit", func(t *testing.T) {
				dir, cmd := startWrapper(t, sh, patientTask, JobSpec{Resources: Resources{Time: limit}})
				started := time.Now()
				waitFile(t, filepath.Join(dir, "started"), "started\n")
				time.Sleep(time.Until(started.Add(3 * time.Second)))
				require.NoError(t, cmd.Process.Signal(sig.s))
				require.Equal(t, 140, waitExit(t, cmd))
				require.Equal(t, "140\n", readFile(t, dir, ExitCodeFile))
				waitFile(t, filepath.Join(dir, "got-term"), "term\n")
			})
			t.Run(filepath.Base(sh)+"/"+sig.name+" before the limit", func(t *testing.T) {
				dir, cmd := startWrapper(t, sh, patientTask, JobSpec{Resources: Resources{Time: time.Hour}})
				waitFile(t, filepath.Join(dir, "started"), "started\n")
				require.NoError(t, cmd.Process.Signal(sig.s))
				require.Equal(t, sig.code, waitExit(t, cmd))
				require.Equal(t, strconv.Itoa(sig.code)+"\n", readFile(t, dir, ExitCodeFile))
			})
		}
	}
}

func TestKillMargin(t *testing.T) {
	for _, c := range []struct {
		limit  time.Duration
		margin time.Duration
		at     int64
	}{
		{0, 0, 0},
		{-time.Second, 0, 0},
		{time.Second, 500 * time.Millisecond, 1},
		{4 * time.Second, 2 * time.Second, 2},
		{1500 * time.Millisecond, 750 * time.Millisecond, 1}, // 2 s once rounded up
		{time.Minute, 5 * time.Second, 55},
		{3 * time.Minute, 9 * time.Second, 171},
		{time.Hour, time.Minute, 3540},
		{48 * time.Hour, time.Minute, 48*3600 - 60},
	} {
		if c.limit > 0 {
			require.Equal(t, c.margin, KillMargin(c.limit), "KillMargin(%s)", c.limit)
		}
		require.Equal(t, c.at, limitAt(c.limit), "limitAt(%s)", c.limit)
	}
}

func TestEnforcedLimit(t *testing.T) {
	setsT := func(x string) bool { return strings.HasPrefix(x, "-t") }
	r := Resources{Time: 61 * time.Second}
	require.Equal(t, 2*time.Minute, EnforcedLimit(r, time.Minute, setsT), "rounded up to the unit")
	require.Equal(t, 61*time.Second, EnforcedLimit(r, time.Second, setsT))
	r.Extra = []string{"--qos=x", "  -t 10"}
	require.Zero(t, EnforcedLimit(r, time.Minute, setsT), "an extra option sets its own limit")
	require.Zero(t, EnforcedLimit(Resources{Extra: []string{"--qos=x"}}, time.Minute, setsT), "no limit")
}

// TestWrapperTwoSignals sends INT and TERM back to back, as LSF's bkill does. dash may run the
// TERM trap inside the INT one (at the handler's first command, or while it waits for date or mv),
// so either code can win; what must hold is that one handler writes .exitcode and the shell exits
// with that code. The handler used to exit from the nested call with 143 while the outer one's mv
// wrote 130, and to run date before claiming the signal (CI saw 143 where 130 was usual).
func TestWrapperTwoSignals(t *testing.T) {
	for _, sh := range wrapperShells(t) {
		t.Run(filepath.Base(sh), func(t *testing.T) {
			for range 10 {
				dir, cmd := startWrapper(t, sh, patientTask, JobSpec{Resources: Resources{Time: time.Hour}})
				waitFile(t, filepath.Join(dir, "started"), "started\n")
				require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
				require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
				code := waitExit(t, cmd)
				require.Contains(t, []int{130, 143}, code)
				require.Equal(t, strconv.Itoa(code)+"\n", readFile(t, dir, ExitCodeFile), "exit status and .exitcode agree")
			}
		})
	}
}

// A task that execs sleep, so that its pid is the process a signal kills.
const killableTask = `echo $$ > task.pid
echo started > started
exec sleep 30
`

// TestWrapperTaskKilledAtTheLimit kills the task, not the wrapper, with TERM: the scheduler
// signals every process of the job at the time limit, and the task can die before the wrapper
// runs its own trap (CI saw 143 that way). After the limit that is recorded as 140; before it the
// task's own 143 stands.
func TestWrapperTaskKilledAtTheLimit(t *testing.T) {
	for _, sh := range wrapperShells(t) {
		for _, c := range []struct {
			name  string
			limit time.Duration
			after time.Duration
			code  int
		}{{"after the limit", 4 * time.Second, 3 * time.Second, 140}, {"before the limit", time.Hour, 0, 143}} {
			t.Run(filepath.Base(sh)+"/"+c.name, func(t *testing.T) {
				dir, cmd := startWrapper(t, sh, killableTask, JobSpec{Resources: Resources{Time: c.limit}})
				started := time.Now()
				waitFile(t, filepath.Join(dir, "started"), "started\n")
				pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, dir, "task.pid")))
				require.NoError(t, err)
				time.Sleep(time.Until(started.Add(c.after)))
				require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
				require.Equal(t, c.code, waitExit(t, cmd))
				require.Equal(t, strconv.Itoa(c.code)+"\n", readFile(t, dir, ExitCodeFile))
			})
		}
	}
}

// TestWrapperRecordsJobID: .command.begin holds the scheduler's id of the job (the variable the
// adapter names, read before the task's environment is exported, so a task Env entry of the same
// name cannot change it), in every shell.
func TestWrapperRecordsJobID(t *testing.T) {
	for _, sh := range wrapperShells(t) {
		t.Run(filepath.Base(sh), func(t *testing.T) {
			dir, cmd := startWrapper(t, sh, "exit 0\n", JobSpec{Env: map[string]string{"SLURM_JOB_ID": "999"}})
			require.Equal(t, 0, waitExit(t, cmd))
			b, err := os.ReadFile(filepath.Join(dir, BeginFile))
			require.NoError(t, err)
			require.Equal(t, "4242\n", string(b))
		})
	}
}
