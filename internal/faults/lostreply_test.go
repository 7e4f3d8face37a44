package faults_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/schedtest"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
	"github.com/ferryhpc/ferry/sshpool"
)

// lostSubmit is a real adapter (any kind) whose submit command runs the real one and then sleeps
// far past poll.submit_timeout: the job exists, its reply never arrives. Every optional ability the
// agent looks for is passed through to the real adapter; where the adapter lacks one, the wrapper
// behaves as the agent does without it.
type lostSubmit struct {
	scheduler.Scheduler
	submits int
}

func (l *lostSubmit) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	real := l.Scheduler.SubmitCommand(spec)
	// "$@" runs the real argv; the sleep outlives the submit timeout. Stdin (LSF's script) still
	// reaches the real command, which reads it first.
	argv := append([]string{"sh", "-c", `"$@"; sleep 30`, "sh"}, real.Argv...)
	return scheduler.Command{Argv: argv, Dir: real.Dir, Stdin: real.Stdin}
}

func (l *lostSubmit) AccountingCommand(user string, ids []scheduler.JobID) scheduler.Command {
	return l.Scheduler.(scheduler.Accounting).AccountingCommand(user, ids)
}

func (l *lostSubmit) ParseAccounting(stdout []byte) ([]scheduler.JobState, error) {
	return l.Scheduler.(scheduler.Accounting).ParseAccounting(stdout)
}

func (l *lostSubmit) LookupCommand(user string) scheduler.Command {
	return l.Scheduler.(scheduler.TokenLookup).LookupCommand(user)
}

func (l *lostSubmit) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	return l.Scheduler.(scheduler.TokenLookup).ParseLookup(stdout, token)
}

func (l *lostSubmit) CheckLookup(r scheduler.Result) error {
	if c, ok := l.Scheduler.(scheduler.LookupChecker); ok {
		return c.CheckLookup(r)
	}
	if r.ExitCode != 0 {
		return scheduler.NewCommandError(l.LookupCommand(""), r)
	}
	return nil
}

func (l *lostSubmit) CheckStatus(ids []scheduler.JobID, r scheduler.Result) error {
	if c, ok := l.Scheduler.(scheduler.StatusChecker); ok {
		return c.CheckStatus(ids, r)
	}
	if r.ExitCode != 0 {
		return scheduler.NewCommandError(scheduler.Command{Argv: []string{"status"}}, r)
	}
	return nil
}

func (l *lostSubmit) ClassifyFailure(r scheduler.Result) scheduler.Failure {
	if c, ok := l.Scheduler.(scheduler.FailureClassifier); ok {
		return c.ClassifyFailure(r)
	}
	return scheduler.Classify(r, nil, nil)
}

// TestAmbiguousSubmitEveryScheduler is TestAmbiguousSubmitAdoptedByToken on Grid Engine and the
// PBS Pro, LSF and Moab emulators: the submit ran, its reply was lost, and the agent must find the job
// by its token (the job context, Variable_List, job description) and adopt it: one job per task
// at the scheduler, the right id, the right end; the same Submit again returns the same job.
// (Slurm is covered by TestAmbiguousSubmitAdoptedByToken; Torque's lookup cannot run on the test
// cluster's Slurm-backed Torque wrappers, see schedtest.TestTokenLookup.)
func TestAmbiguousSubmitEveryScheduler(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	scheds, err := schedtest.Schedulers()
	if err != nil {
		t.Skipf("cluster.json has no scheduler list (%v): run make cluster-up", err)
	}
	for _, kind := range []string{"sge", "pbspro", "lsf", "moab"} {
		s, ok := scheds[kind]
		if !ok {
			t.Errorf("test cluster lacks %s: run make cluster-up", kind)
			continue
		}
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var factory agent.SchedulerFactory = func(k string, opts schedulers.Options) (scheduler.Scheduler, error) {
				real, err := schedulers.New(k, opts)
				if err != nil {
					return nil, err
				}
				return &lostSubmit{Scheduler: real}, nil
			}
			cfg := baseConfig(t, c, c.Host, c.Port)
			cfg.Identities[0].Scheduler = kind
			cfg.Identities[0].SchedulerCommandDir = s.Path
			cfg.Identities[0].PBSHistory = kind == "pbspro" && s.History
			cfg.Poll.SubmitTimeout = config.Duration{Duration: 3 * time.Second}
			require.NoError(t, cfg.Validate())
			a := newAgent(t, cfg, factory)
			defer a.Close()
			tasks := []*task{exitTask(t, "alice", kind+"-lost-ok", 0, 0), exitTask(t, "carol", kind+"-lost-fail", 2, 6)}
			for _, tk := range tasks {
				start := time.Now()
				j, err := a.Submit(context.Background(), tk.req)
				require.NoError(t, err, "the job exists: the agent must adopt it, not fail")
				require.NotEmpty(t, j.SchedulerID)
				require.Less(t, time.Since(start), 25*time.Second, "the lost reply must not be waited for")
				tk.id = j.ID
				again, err := a.Submit(context.Background(), tk.req)
				require.NoError(t, err)
				require.Equal(t, j.ID, again.ID)
				require.Equal(t, j.SchedulerID, again.SchedulerID)
			}
			got := waitDone(t, a, ids(tasks), 3*time.Minute)
			checkFinal(t, got, tasks)
			for _, u := range []string{"alice", "carol"} {
				n := a.CommandCounts()[sshpool.Key{Identity: "local", User: u}]
				require.Equal(t, 1, n["sh"], "%s: one submit command, never a second: %v", u, n)
			}
			// Counted at the scheduler too: each token's job exactly once. Grid Engine forgets
			// ended jobs and its accounting keeps no context, so there the one submit command
			// per user (above) is the count.
			for _, tk := range tasks {
				if kind == "sge" {
					break
				}
				k, ks := kind, s
				if kind == "moab" { // Moab's jobs are its resource manager's: count them there
					k, ks = "pbspro", scheds["pbspro"]
				}
				require.Equal(t, 1, countTokenJobs(t, c, k, ks, tk), "%s: jobs carrying token %s", kind, tk.req.Token)
			}
		})
	}
}

// countTokenJobs asks the scheduler, with the adapter's own lookup listing, how many of the user's
// jobs carry tk's token, as the user.
func countTokenJobs(t *testing.T, c *testcluster.Cluster, kind string, s schedtest.Scheduler, tk *task) int {
	t.Helper()
	real, err := schedulers.New(kind, schedulers.Options{CommandDir: s.Path, PBSHistory: kind == "pbspro" && s.History})
	require.NoError(t, err)
	lc := real.(scheduler.TokenLookup).LookupCommand(tk.req.User)
	line, err := scheduler.CommandLine(scheduler.Command{Argv: s.Command(lc.Argv)})
	require.NoError(t, err)
	out := remote(t, c, tk.req.User, line+" || true")
	want := map[string]string{"sge": "FERRY_TOKEN=" + tk.req.Token, "pbspro": `"FERRY_TOKEN":"` + tk.req.Token + `"`, "lsf": "ferry:" + tk.req.Token}[kind]
	return strings.Count(out, want)
}
