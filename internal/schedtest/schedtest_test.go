package schedtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/lsf"
	"github.com/ferryhpc/ferry/scheduler/moab"
	"github.com/ferryhpc/ferry/scheduler/pbs"
	"github.com/ferryhpc/ferry/scheduler/sge"
	"github.com/ferryhpc/ferry/sshpool"
)

// These tests drive each adapter (scheduler/sge, scheduler/pbs NewTorque and NewPro,
// scheduler/lsf) against the matching scheduler of the local test cluster: render the batch
// script, write it and the task into a task dir over SFTP as the user, submit, poll with the
// adapter's status query (and its accounting query once the status query has forgotten the job),
// cancel; for alice (bash) and carol (tcsh). They skip when the cluster, or a scheduler in
// cluster.json's "schedulers", is absent.

// kinds are the schedulers under test, by their key in cluster.json and Scheduler.Kind().
var kinds = []string{"sge", "torque", "pbspro", "lsf", "moab"}

// users are the test users every scenario runs as: a bash and a tcsh login shell.
var users = []string{"alice", "carol"}

// expect is what each scheduler can deliver where schedulers differ for reasons no adapter can
// change. Everything else is asserted the same for all: the contract of scheduler.Scheduler.
type expect struct {
	// cancelExit are the .exitcode contents the wrapper may leave after a cancel: 128 + the
	// signal whose trap the shell runs first. None means no file: the job is killed with SIGKILL.
	cancelExit []string
	// cancelStatus are the final statuses the adapter may report for a cancelled job.
	cancelStatus []scheduler.Status
	// forgets says the live status query stops listing finished jobs (and after how long at
	// most), so the accounting query must take over.
	forgets time.Duration
}

var expectations = map[string]expect{
	// Grid Engine's qdel kills with SIGKILL (queue terminate_method default; -notify would send
	// SIGUSR2 first): no .exitcode. qstat shows "dr" (cancelled) at most briefly; qacct of GE
	// 8.1.9 records "failed 100 : assumedly after job", exit_status 137, and no deleted_by, so
	// accounting cannot tell a cancel from another kill.
	"sge": {cancelExit: nil, cancelStatus: []scheduler.Status{scheduler.StatusCancelled, scheduler.StatusFailed}, forgets: 5 * time.Second},
	// Slurm's Torque wrappers: qdel is scancel (SIGTERM first, so 143), and their qstat prints C
	// for every ended job (completed, failed, cancelled or timed out alike) with no exit status.
	"torque": {cancelExit: []string{"143\n"}, cancelStatus: []scheduler.Status{scheduler.StatusCompleted, scheduler.StatusCancelled}, forgets: 60 * time.Second},
	// PBS Pro: qdel sends SIGTERM (then SIGKILL after kill_delay); F with substate 91.
	"pbspro": {cancelExit: []string{"143\n"}, cancelStatus: []scheduler.Status{scheduler.StatusCancelled}, forgets: 5 * time.Second},
	// LSF: bkill sends SIGINT and SIGTERM back to back (then SIGKILL after
	// JOB_TERMINATE_INTERVAL). Usually the wrapper's INT trap runs first (130), but sh may start
	// the TERM trap first when TERM lands just as the INT trap starts (CI saw 143). EXIT with
	// TERM_OWNER.
	"lsf": {cancelExit: []string{"130\n", "143\n"}, cancelStatus: []scheduler.Status{scheduler.StatusCancelled}, forgets: 30 * time.Second},
	// Moab on the PBS Pro emulator: mjobctl -c has the resource manager delete the job (SIGTERM,
	// then SIGKILL); showq forgets an ended job at once and checkjob reports it as Removed.
	"moab": {cancelExit: []string{"143\n"}, cancelStatus: []scheduler.Status{scheduler.StatusCancelled}, forgets: 5 * time.Second},
}

// newAdapter returns the adapter for kind, running the commands in sc's directory.
func newAdapter(kind string, sc Scheduler) scheduler.Scheduler {
	switch kind {
	case "sge":
		return sge.New(sge.Options{CommandDir: sc.Path})
	case "torque":
		return pbs.NewTorque(pbs.Options{CommandDir: sc.Path})
	case "pbspro":
		// Without History: the status query forgets a job when it ends and the accounting query
		// (qstat -x) takes over, which is the path this suite wants to cover.
		return pbs.NewPro(pbs.Options{CommandDir: sc.Path})
	case "lsf":
		return lsf.New(lsf.Options{CommandDir: sc.Path})
	case "moab":
		return moab.New(moab.Options{CommandDir: sc.Path})
	}
	panic("unknown scheduler kind " + kind)
}

// The SSH pools are shared by all tests of the package: one connection set per user.
var (
	mgrOnce sync.Once
	mgr     *sshpool.Manager
	poolsMu sync.Mutex // guards pools
	pools   = map[string]*sshpool.Pool{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if mgr != nil {
		mgr.Close()
	}
	os.Exit(code)
}

// env is one scheduler of the test cluster with its adapter.
type env struct {
	c     *testcluster.Cluster
	kind  string
	sched Scheduler
	s     scheduler.Scheduler
	exp   expect
}

// requireScheduler returns the scheduler kind of the test cluster, or skips the test.
func requireScheduler(t *testing.T, kind string) *env {
	t.Helper()
	c := testcluster.Require(t)
	scheds, err := Schedulers()
	if err != nil {
		t.Skipf("cannot read the schedulers of the test cluster: %v", err)
	}
	sc, ok := scheds[kind]
	if !ok {
		t.Skipf("test cluster has no %q scheduler in %s: run `make cluster-up` (scripts/cluster-up brings up Grid Engine, the Torque wrappers and the PBS Pro and LSF emulators)", kind, testcluster.Path())
	}
	if _, err := os.Stat(sc.Path); err != nil {
		t.Skipf("commands of scheduler %q are missing (%v): run `make cluster-up`", kind, err)
	}
	return &env{c: c, kind: kind, sched: sc, s: newAdapter(kind, sc), exp: expectations[kind]}
}

// runner returns a Runner for name, on the package's pool for that user.
func (e *env) runner(t *testing.T, name string) *Runner {
	t.Helper()
	poolsMu.Lock()
	defer poolsMu.Unlock()
	mgrOnce.Do(func() { mgr = sshpool.NewManager(sshpool.Options{}, zerolog.Nop()) })
	p, ok := pools[name]
	if !ok {
		var err error
		p, err = mgr.Pool(sshpool.Key{Identity: "schedtest", User: name}, e.c.Target(t, name))
		require.NoError(t, err)
		pools[name] = p
	}
	return &Runner{Pool: p, Sched: e.sched}
}

func run(t *testing.T, r *Runner, c scheduler.Command) scheduler.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := r.Run(ctx, c)
	require.NoError(t, err, "running %q", c.Argv)
	return res
}

// taskDir creates a fresh task directory as the runner's user, over SFTP, under the work dir.
func (e *env) taskDir(t *testing.T, r *Runner, name string) string {
	t.Helper()
	parent := path.Join(e.c.WorkDir, "schedtest")
	if err := os.Mkdir(parent, 0o2775); err == nil {
		// The tests run as root: the shared dir belongs to root and the shared group, like the
		// work dir above it, so that every test user may create task dirs in it.
		g, err := user.LookupGroup(e.c.Group)
		require.NoError(t, err)
		gid, _ := strconv.Atoi(g.Gid)
		require.NoError(t, os.Chown(parent, 0, gid))
		require.NoError(t, os.Chmod(parent, 0o2775))
	} else {
		require.ErrorIs(t, err, os.ErrExist)
	}
	dir := path.Join(parent, fmt.Sprintf("%s-%s-%s-%d", e.kind, r.Pool.Key().User, name, time.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, release, err := r.Pool.SFTP(ctx)
	require.NoError(t, err)
	defer release()
	require.NoError(t, cl.Mkdir(dir))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// writeFiles writes name -> content into dir as the runner's user, mode 0664 (SFTP sends no mode
// on create; Ferry sets it explicitly).
func writeFiles(t *testing.T, r *Runner, dir string, files map[string][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, release, err := r.Pool.SFTP(ctx)
	require.NoError(t, err)
	defer release()
	for name, data := range files {
		p := path.Join(dir, name)
		f, err := cl.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		require.NoError(t, err)
		_, err = f.Write(data)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.NoError(t, cl.Chmod(p, 0o664))
	}
}

func readFile(t *testing.T, dir, name string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	require.NoError(t, err)
	return string(b), true
}

// exitCodeGrace is how long a test waits for the wrapper's .exitcode after the scheduler reports
// the job's end: the agent's poll.exit_code_grace, cut to what a test cluster needs.
const exitCodeGrace = 15 * time.Second

// waitFile waits up to grace for dir/name to exist and returns its content.
func waitFile(t *testing.T, dir, name string, grace time.Duration) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(grace)
	for {
		if s, ok := readFile(t, dir, name); ok || time.Now().After(deadline) {
			return s, ok
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// spec returns a job spec for a task dir, with the scheduler's default queue and a 5 minute limit.
func (e *env) spec(dir, who, name string) scheduler.JobSpec {
	return scheduler.JobSpec{
		Name:  "st " + e.kind + "/" + who + "/" + name,
		Dir:   dir,
		Token: fmt.Sprintf("st-%s-%s-%d", e.kind, who, time.Now().UnixNano()),
		Env:   map[string]string{"GREETING": "hello 'world'"},
		Resources: scheduler.Resources{
			Time:  5 * time.Minute,
			Queue: e.sched.Queue,
		},
	}
}

// submit renders spec, writes the batch script and task as the runner's user and submits it.
func (e *env) submit(t *testing.T, r *Runner, spec scheduler.JobSpec, task string) scheduler.JobID {
	t.Helper()
	script, err := e.s.Render(spec)
	require.NoError(t, err)
	writeFiles(t, r, spec.Dir, map[string][]byte{scheduler.RunFile: script, scheduler.TaskFile: []byte(task)})
	res := run(t, r, e.s.SubmitCommand(spec))
	require.Equal(t, 0, res.ExitCode, "submit: stdout %q stderr %q", res.Stdout, res.Stderr)
	id, err := e.s.ParseSubmit(res.Stdout)
	require.NoError(t, err, "submit stdout %q stderr %q", res.Stdout, res.Stderr)
	t.Logf("%s job %s in %s", e.kind, id, spec.Dir)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = r.Run(ctx, e.s.CancelCommand([]scheduler.JobID{id}))
	})
	return id
}

func (e *env) checkQuery(t *testing.T, c scheduler.Command, ids []scheduler.JobID, res scheduler.Result) {
	t.Helper()
	// The agent's rule: a scheduler.StatusChecker tells a status query that failed from one that
	// merely names jobs the scheduler no longer knows; without it any non-zero exit fails.
	if ch, ok := e.s.(scheduler.StatusChecker); ok {
		require.NoError(t, ch.CheckStatus(ids, res), "%q: stdout %q stderr %q", c.Argv, clip(res.Stdout), clip(res.Stderr))
		return
	}
	require.Equal(t, 0, res.ExitCode, "%q: stderr %q", c.Argv, res.Stderr)
}

// status runs the adapter's status query for id as who and returns the job's state and whether
// the query listed it. Every job listed must be who's.
func (e *env) status(t *testing.T, r *Runner, who string, id scheduler.JobID) (scheduler.JobState, bool) {
	t.Helper()
	ids := []scheduler.JobID{id}
	c := e.s.StatusCommand(who, ids)
	res := run(t, r, c)
	e.checkQuery(t, c, ids, res)
	states, err := e.s.ParseStatus(res.Stdout)
	require.NoError(t, err, "parse status output %q", clip(res.Stdout))
	for _, js := range states {
		if js.ID == id {
			require.Equal(t, who, js.User, "the status query names the job's owner: %+v", js)
			return js, true
		}
	}
	return scheduler.JobState{}, false
}

// accounting runs the adapter's accounting query for id as who.
func (e *env) accounting(t *testing.T, r *Runner, who string, id scheduler.JobID) (scheduler.JobState, bool) {
	t.Helper()
	acct, ok := e.s.(scheduler.Accounting)
	require.True(t, ok, "%s adapter has no accounting query", e.kind)
	ids := []scheduler.JobID{id}
	c := acct.AccountingCommand(who, ids)
	res := run(t, r, c)
	e.checkQuery(t, c, ids, res)
	states, err := acct.ParseAccounting(res.Stdout)
	require.NoError(t, err, "parse accounting output %q", clip(res.Stdout))
	var found scheduler.JobState
	ok = false
	for _, js := range states {
		if js.ID == id {
			if js.User != "" {
				require.Equal(t, who, js.User, "accounting names the job's owner: %+v", js)
			}
			found, ok = js, true
		}
	}
	return found, ok
}

// await polls every second, as the agent does: the status query, and the accounting query when
// the status query does not list the job, until done accepts the state, for at most limit.
func (e *env) await(t *testing.T, r *Runner, who string, id scheduler.JobID, limit time.Duration, done func(scheduler.JobState) bool) scheduler.JobState {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last scheduler.JobState
	for {
		js, listed := e.status(t, r, who, id)
		if listed {
			last = js
		} else if _, ok := e.s.(scheduler.Accounting); ok {
			if js, found := e.accounting(t, r, who, id); found {
				last = js
			}
		}
		if last.ID == id && done(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s job %s: last state %+v after %s", e.kind, id, last, limit)
		}
		time.Sleep(time.Second)
	}
}

func final(js scheduler.JobState) bool { return js.Status.Final() }

// clip shortens command output for a failure message: the start and the end, where the
// interesting lines usually are.
func clip(b []byte) string {
	const max = 1500
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max/3]) + "\n[...]\n" + string(b[len(b)-2*max/3:])
}

const (
	okTask   = "id -un > whoami\necho \"$GREETING\"\n"
	failTask = "id -un > whoami\necho \"$GREETING\"\nexit 3\n"
	loopTask = "id -un > whoami\nwhile :; do sleep 1; done\n"
)

// TestLifecycle runs a succeeding and a failing task as each user on each scheduler and follows
// them through the status query to a final state, then, once the status query has forgotten
// them, through the accounting query.
func TestLifecycle(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := requireScheduler(t, kind)
			for _, who := range users {
				for _, tc := range []struct {
					name, task string
					code       int
				}{{"ok", okTask, 0}, {"fail", failTask, 3}} {
					t.Run(who+"/"+tc.name, func(t *testing.T) {
						t.Parallel()
						e.lifecycle(t, who, tc.name, tc.task, tc.code)
					})
				}
			}
		})
	}
}

func (e *env) lifecycle(t *testing.T, who, name, task string, code int) {
	r := e.runner(t, who)
	dir := e.taskDir(t, r, name)
	spec := e.spec(dir, who, name)
	id := e.submit(t, r, spec, task)

	js := e.await(t, r, who, id, 2*time.Minute, final)
	t.Logf("final state: %+v", js)
	checkEnd(t, js, code)

	exit, ok := readFile(t, dir, scheduler.ExitCodeFile)
	require.True(t, ok, "the wrapper wrote %s", scheduler.ExitCodeFile)
	require.Equal(t, fmt.Sprintf("%d\n", code), exit)
	whoami, ok := readFile(t, dir, "whoami")
	require.True(t, ok, "the task ran")
	require.Equal(t, who+"\n", whoami, "the job ran as its user")
	out, _ := readFile(t, dir, scheduler.OutFile)
	require.Equal(t, "hello 'world'\n", out, "the task saw the spec's environment")
	_, ok = readFile(t, dir, scheduler.LogFile)
	require.True(t, ok, "the scheduler wrote the job's own output to %s (the -o directive)", scheduler.LogFile)

	if _, ok := e.s.(scheduler.Accounting); !ok {
		t.Logf("%s adapter has no accounting query: nothing knows the job once the status query forgets it", e.kind)
		return
	}
	// Once the live query no longer lists the job, the accounting query must still know it.
	deadline := time.Now().Add(e.exp.forgets + 30*time.Second)
	for {
		if _, listed := e.status(t, r, who, id); !listed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still lists finished job %s after %s", e.kind, id, e.exp.forgets+30*time.Second)
		}
		time.Sleep(time.Second)
	}
	acct, found := e.accounting(t, r, who, id)
	require.True(t, found, "the accounting query knows finished job %s", id)
	t.Logf("accounting: %+v", acct)
	checkEnd(t, acct, code)
	require.False(t, acct.Ended.IsZero(), "accounting reports when the job ended")
}

// checkEnd checks a final state of a job whose task exited with code: completed for 0; completed
// or failed for another code (some schedulers report every end as completed and leave the verdict
// to the exit code); an exit code, where the scheduler reports one, equal to code.
func checkEnd(t *testing.T, js scheduler.JobState, code int) {
	t.Helper()
	if code == 0 {
		require.Equal(t, scheduler.StatusCompleted, js.Status, "%+v", js)
	} else {
		require.Contains(t, []scheduler.Status{scheduler.StatusCompleted, scheduler.StatusFailed}, js.Status, "%+v", js)
	}
	if js.ExitCode != nil {
		require.Equal(t, code, *js.ExitCode, "the scheduler's exit code: %+v", js)
	}
}

// TestCancel cancels a running task of each user: another user's cancel is refused with
// ErrPermission, the owner's succeeds, the job ends as the scheduler's expectation says, and
// cancelling it again (or an unknown id) is not an error.
func TestCancel(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := requireScheduler(t, kind)
			for i, who := range users {
				other := users[(i+1)%len(users)]
				t.Run(who, func(t *testing.T) {
					t.Parallel()
					e.cancel(t, who, other)
				})
			}
		})
	}
}

func (e *env) cancel(t *testing.T, who, other string) {
	r := e.runner(t, who)
	dir := e.taskDir(t, r, "cancel")
	id := e.submit(t, r, e.spec(dir, who, "cancel"), loopTask)
	e.await(t, r, who, id, 2*time.Minute, func(js scheduler.JobState) bool { return js.Status == scheduler.StatusRunning })
	// "Running" can come before the wrapper has set its traps; it touches .command.begin after.
	_, began := waitFile(t, dir, scheduler.BeginFile, 30*time.Second)
	require.True(t, began, "the wrapper never started")
	ids := []scheduler.JobID{id}

	res := run(t, e.runner(t, other), e.s.CancelCommand(ids))
	err := e.s.CheckCancel(ids, res)
	require.ErrorIs(t, err, scheduler.ErrPermission, "%s may not cancel %s's job: stdout %q stderr %q", other, who, res.Stdout, res.Stderr)
	require.Contains(t, err.Error(), strings.SplitN(string(id), ".", 2)[0])

	res = run(t, r, e.s.CancelCommand(ids))
	require.NoError(t, e.s.CheckCancel(ids, res), "stdout %q stderr %q", res.Stdout, res.Stderr)
	js := e.await(t, r, who, id, 2*time.Minute, final)
	t.Logf("after cancel: %+v", js)
	require.Contains(t, e.exp.cancelStatus, js.Status, "%+v", js)

	// The job has ended: the wrapper writes .exitcode if it can. A scheduler may report the end
	// while the job's processes are still being signalled (Slurm's Torque wrappers show a
	// cancelled job as C while Slurm still has it COMPLETING), so the file is waited for, as
	// the agent waits for it (poll.exit_code_grace); its absence is checked after that wait too.
	exit, ok := waitFile(t, dir, scheduler.ExitCodeFile, exitCodeGrace)
	if len(e.exp.cancelExit) == 0 {
		require.False(t, ok, "a SIGKILLed wrapper leaves no %s (found %q)", scheduler.ExitCodeFile, exit)
	} else {
		require.True(t, ok, "the wrapper trapped the cancel and wrote %s", scheduler.ExitCodeFile)
		require.Contains(t, e.exp.cancelExit, exit)
	}

	// CheckCancel is given the ids the command named, as the agent does.
	both := []scheduler.JobID{id, unknownID(e.kind)}
	res = run(t, r, e.s.CancelCommand(both))
	require.NoError(t, e.s.CheckCancel(both, res), "cancelling a finished and an unknown job is not an error: stdout %q stderr %q", res.Stdout, res.Stderr)
}

// unknownID is a job id the scheduler has never issued, in its own format.
func unknownID(kind string) scheduler.JobID {
	if kind == "pbspro" {
		return "99999999.ferrypbs"
	}
	return "99999999"
}

// TestTimeLimit lets a task run into a short time limit: one second where schedulers enforce
// seconds (Grid Engine's h_rt, PBS Pro's walltime); for LSF, which counts minutes (-W), one minute
// in the emulator's "short" queue, whose minutes last 3 s (an emulator-only knob, see
// scripts/emulators/lsf.py; Slurm's time limit is tested in internal/faults). The adapter must
// report a timeout.
func TestTimeLimit(t *testing.T) {
	for _, kind := range []string{"sge", "pbspro", "lsf", "moab"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := requireScheduler(t, kind)
			r := e.runner(t, "alice")
			dir := e.taskDir(t, r, "timeout")
			spec := e.spec(dir, "alice", "timeout")
			spec.Resources.Time = time.Second
			if kind == "lsf" {
				spec.Resources.Time = time.Minute
				spec.Resources.Queue = "short"
			}
			id := e.submit(t, r, spec, loopTask)
			js := e.await(t, r, "alice", id, 2*time.Minute, final)
			t.Logf("final: %+v", js)
			exit, _ := readFile(t, dir, scheduler.ExitCodeFile)
			t.Logf(".exitcode %q", exit)
			require.Equal(t, scheduler.StatusTimeout, js.Status, "%+v", js)
		})
	}
}

// TestTokenLookup submits a job with a token as each user and finds it with the adapter's token
// lookup, as the agent does when a submit's outcome is unknown: the right id for the token, not
// found for another token, and not found (not an error) for a user who has no job at all.
func TestTokenLookup(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := requireScheduler(t, kind)
			lookup, ok := e.s.(scheduler.TokenLookup)
			require.True(t, ok, "%s has no token lookup", kind)
			if e.sched.BackedBy == "slurm" {
				t.Skipf("%s here is Slurm's Torque wrappers: they have no qselect and their qstat -f prints no Variable_List, so the Torque lookup cannot run on them (the parser is tested on real Torque qstat -f output in scheduler/pbs)", kind)
			}
			find := func(who, token string) (scheduler.JobID, bool) {
				r := e.runner(t, who)
				c := lookup.LookupCommand(who)
				res := run(t, r, c)
				if ch, ok := e.s.(scheduler.LookupChecker); ok {
					require.NoError(t, ch.CheckLookup(res), "%q: stdout %q stderr %q", c.Argv, clip(res.Stdout), clip(res.Stderr))
				} else {
					require.Equal(t, 0, res.ExitCode, "%q: stderr %q", c.Argv, res.Stderr)
				}
				id, found, err := lookup.ParseLookup(res.Stdout, token)
				require.NoError(t, err, "lookup output %q", clip(res.Stdout))
				return id, found
			}
			for _, who := range []string{"alice", "carol"} {
				r := e.runner(t, who)
				dir := e.taskDir(t, r, "lookup")
				spec := e.spec(dir, who, "lookup")
				id := e.submit(t, r, spec, loopTask)
				got, found := find(who, spec.Token)
				require.True(t, found, "%s: job %s with token %s not found", who, id, spec.Token)
				require.Equal(t, id, got)
				_, found = find(who, spec.Token+"x")
				require.False(t, found, "another token")
			}
			_, found := find("dave", "st-nobody")
			require.False(t, found, "dave has no job")
		})
	}
}
