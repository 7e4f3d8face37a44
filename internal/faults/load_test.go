package faults_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin/plugintest"
	"github.com/ferryhpc/ferry/sshpool"
)

// Load test parameters and bounds. The bounds hold with a wide margin on the project's 2-CPU test
// machine (docs/reliability.md records measured values).
const (
	loadUsers         = 3
	loadJobsPerUser   = 500
	loadSubmitters    = 16        // concurrent submit calls per user, as a launcher's task pool
	loadMaxHeap       = 256 << 20 // bytes of Go heap in use (agent and launcher shims together)
	loadMaxGoroutines = 400       // agent, in-process gRPC server and client, and the 48 submitters
)

// schedulerPrograms are the remote programs that reach the scheduler (not the /bin/sh that carries
// a batch of submits).
var schedulerPrograms = map[string]bool{"sbatch": true, "squeue": true, "sacct": true, "scancel": true}

// commandSampler samples the agent's command counts every second, to find the busiest minute.
type commandSampler struct {
	mu      sync.Mutex
	samples []commandSample
}

type commandSample struct {
	at     time.Time
	byUser map[string]int // scheduler commands run so far
}

func (s *commandSampler) run(ctx context.Context, a *agent.Agent) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		cs := commandSample{at: time.Now(), byUser: map[string]int{}}
		for k, m := range a.CommandCounts() {
			for prog, n := range m {
				if schedulerPrograms[prog] {
					cs.byUser[k.User] += n
				}
			}
		}
		s.mu.Lock()
		s.samples = append(s.samples, cs)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// busiestMinute returns the most scheduler commands any user (and all users together) ran within
// any 60 s.
func (s *commandSampler) busiestMinute() (perUser map[string]int, identity int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perUser = map[string]int{}
	total := func(cs commandSample) int {
		n := 0
		for _, v := range cs.byUser {
			n += v
		}
		return n
	}
	for i, a := range s.samples {
		for j := i; j < len(s.samples) && s.samples[j].at.Sub(a.at) <= time.Minute; j++ {
			b := s.samples[j]
			for u, n := range b.byUser {
				perUser[u] = max(perUser[u], n-a.byUser[u])
			}
			identity = max(identity, total(b)-total(a))
		}
	}
	return perUser, identity
}

// TestLoad3Users500Jobs submits 3 users x 500 short jobs (exit N%3) at once through the plugin
// (go-plugin's gRPC over a real in-process connection), 16 concurrent submits per user, and waits
// for all. Every job must complete exactly once with its exit code; the Go heap and the goroutines
// stay under fixed bounds; and in every minute each user's scheduler commands stay within
// limits.user_commands_per_minute, and all users' within limits.identity_commands_per_minute
// (plus the burst).
//
// It floods the shared Slurm, so it runs only with FERRY_FAULTS_EXCLUSIVE=1, or FERRY_SOAK=1.
func TestLoad3Users500Jobs(t *testing.T) {
	c := testcluster.Require(t)
	if os.Getenv("FERRY_SOAK") != "1" {
		exclusive(t, "1500 jobs on the shared Slurm")
	}
	cfg := baseConfig(t, c, c.Host, c.Port)
	cfg.Poll.Interval.Duration = 2 * time.Second
	cfg.Poll.MaxInterval.Duration = 10 * time.Second
	cfg.Poll.ExitCodeGrace.Duration = 30 * time.Second
	cfg.Limits.UserCommandsPerMinute = 600
	cfg.Limits.IdentityCommandsPerMinute = 1200
	cfg.Limits.Burst = 20
	a := newAgent(t, cfg, nil)
	defer a.Close()
	svc := plugintest.Client(t, a)
	since := time.Now()
	var tasks []*task
	for u := 0; u < loadUsers; u++ {
		for n := 0; n < loadJobsPerUser; n++ {
			code := n % 3
			tk := newTask(t, users[u], "load", fmt.Sprintf("exit %d\n", code), "completed", code)
			if code != 0 {
				tk.status = "failed"
			}
			tasks = append(tasks, tk)
		}
	}
	defer func() {
		if t.Failed() {
			scancelTokens(since, tasks)
		}
	}()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var sampler commandSampler
	go sampler.run(ctx, a)
	var peakHeap uint64
	peakG := 0
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			g := runtime.NumGoroutine()
			sampler.mu.Lock()
			peakHeap, peakG = max(peakHeap, ms.HeapInuse), max(peakG, g)
			sampler.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	start := time.Now()
	var l launch
	var wg sync.WaitGroup
	for u := 0; u < loadUsers; u++ {
		queue := make(chan *task)
		for w := 0; w < loadSubmitters; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for tk := range queue {
					l.do(svc, tk, 5*time.Minute)
				}
			}()
		}
		go func(u int) {
			for _, tk := range tasks[u*loadJobsPerUser : (u+1)*loadJobsPerUser] {
				queue <- tk
			}
			close(queue)
		}(u)
	}
	wg.Wait()
	require.NoError(t, l.wait())
	submitted := time.Since(start)
	t.Logf("1500 submits returned in %s (%d retryable errors on the way)", submitted.Round(time.Second), l.seen)

	got := waitDone(t, svc, ids(tasks), 20*time.Minute)
	took := time.Since(start)
	stop()
	checkFinal(t, got, tasks)
	requireExactlyOnce(t, svc, since, tasks)

	perUser, identity := sampler.busiestMinute()
	sampler.mu.Lock()
	heap, gs := peakHeap, peakG
	sampler.mu.Unlock()
	counts := a.CommandCounts()
	var summary []string
	for _, u := range users {
		summary = append(summary, fmt.Sprintf("%s %v", u, counts[sshpool.Key{Identity: "local", User: u}]))
	}
	sort.Strings(summary)
	t.Logf("all %d jobs done in %s; peak Go heap in use %.1f MiB, peak goroutines %d; busiest minute: %v per user, %d for the identity; commands: %s",
		len(tasks), took.Round(time.Second), float64(heap)/(1<<20), gs, perUser, identity, strings.Join(summary, "; "))
	require.Less(t, heap, uint64(loadMaxHeap), "Go heap in use")
	require.Less(t, gs, loadMaxGoroutines, "goroutines")
	for u, n := range perUser {
		require.LessOrEqual(t, n, cfg.Limits.UserCommandsPerMinute+cfg.Limits.Burst,
			"%s ran %d scheduler commands within one minute; limits.user_commands_per_minute is %d (burst %d)", u, n, cfg.Limits.UserCommandsPerMinute, cfg.Limits.Burst)
	}
	require.LessOrEqual(t, identity, cfg.Limits.IdentityCommandsPerMinute+cfg.Limits.Burst,
		"the identity ran %d scheduler commands within one minute; limits.identity_commands_per_minute is %d", identity, cfg.Limits.IdentityCommandsPerMinute)
}
