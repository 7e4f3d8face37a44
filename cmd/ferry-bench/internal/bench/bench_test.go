package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
)

// The Go benchmarks share one Env per test binary (keys parsed once, one latency proxy, warm
// pools); TestMain closes it, which cancels the run's jobs and removes its files.
var (
	envOnce sync.Once
	envVal  *Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if agentVal != nil {
		agentVal.Stop()
	}
	if envVal != nil {
		envVal.Close()
	}
	os.Exit(code)
}

// requireEnv returns the shared Env or skips the benchmark when the cluster is absent.
func requireEnv(b *testing.B) *Env {
	b.Helper()
	envOnce.Do(func() { envVal, envErr = NewEnv() })
	if envErr != nil {
		b.Skipf("skipped: %v", envErr)
	}
	return envVal
}

// endpoints runs fn as a sub-benchmark per endpoint (loopback, rtt10).
func endpoints(b *testing.B, fn func(b *testing.B, e *Env, ep Endpoint)) {
	e := requireEnv(b)
	eps, err := e.Endpoints(false)
	if err != nil {
		b.Fatal(err)
	}
	for _, ep := range eps {
		b.Run(ep.Name, func(b *testing.B) { fn(b, e, ep) })
	}
}

// BenchmarkExecWarm runs `true` through Ferry's warm pool (compare BenchmarkExecControlMaster and
// BenchmarkExecFresh; targets: <= 0.7x ControlMaster, >= 30x faster than fresh).
func BenchmarkExecWarm(b *testing.B) {
	endpoints(b, func(b *testing.B, e *Env, ep Endpoint) {
		ctx := context.Background()
		if _, err := e.ExecFerry(ctx, ep); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := e.ExecFerry(ctx, ep); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExecControlMaster runs `ssh -S master ... true` through an OpenSSH ControlMaster.
func BenchmarkExecControlMaster(b *testing.B) {
	endpoints(b, func(b *testing.B, e *Env, ep Endpoint) {
		ctx := context.Background()
		m, err := e.StartMaster(ctx, "alice", ep)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		for b.Loop() {
			if _, err := ExecMaster(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExecFresh runs `ssh ... true` on a new connection each time.
func BenchmarkExecFresh(b *testing.B) {
	endpoints(b, func(b *testing.B, e *Env, ep Endpoint) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := e.ExecFresh(ctx, ep); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var (
	agentOnce sync.Once
	agentVal  *Agent
	agentErr  error
)

// requireAgent starts (once per binary; TestMain stops it) a `ferry agent` built from this module,
// with identities loopback and rtt10, attached through go-plugin.
func requireAgent(b *testing.B, e *Env) *Agent {
	b.Helper()
	agentOnce.Do(func() {
		ctx := context.Background()
		var bin string
		bin, agentErr = testcluster.BuildFerry(e.Dir)
		if agentErr != nil {
			return
		}
		var eps []Endpoint
		if eps, agentErr = e.Endpoints(false); agentErr != nil {
			return
		}
		agentVal, agentErr = e.StartAgent(ctx, bin, AgentConfig{Endpoints: eps})
	})
	if agentErr != nil {
		b.Fatal(agentErr)
	}
	return agentVal
}

// BenchmarkSubmit submits one `exit 0` job per op through the go-plugin client of a `ferry
// agent`, many in flight (compare BenchmarkSubmitControlMaster; targets: >= 3x loopback, >= 10x at
// +10 ms, measured by scripts/bench over 300 jobs).
func BenchmarkSubmit(b *testing.B) {
	endpoints(b, func(b *testing.B, e *Env, ep Endpoint) {
		a := requireAgent(b, e)
		ctx := context.Background()
		if _, _, err := e.FerrySubmit(ctx, a.Service, ep, "gobench-warm-"+ep.Name, len(Users), len(Users), nil); err != nil {
			b.Fatal(err)
		}
		var n atomic.Int64
		tag := fmt.Sprintf("gobench-%s-%d", ep.Name, time.Now().UnixNano())
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				user := Users[int(i)%len(Users)]
				_, err := a.Service.Submit(ctx, plugin.SubmitRequest{
					Identity: ep.Name, User: user, Name: e.JobName(tag),
					Dir: e.RemoteDir(tag, user, fmt.Sprint(i)), Script: []byte("exit 0\n"),
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		_, _ = e.CancelJobs(ctx, time.Minute)
	})
}

// BenchmarkSubmitControlMaster runs one `ssh -S master sbatch --parsable --wrap true` per op, the
// users in turn.
func BenchmarkSubmitControlMaster(b *testing.B) {
	endpoints(b, func(b *testing.B, e *Env, ep Endpoint) {
		ctx := context.Background()
		masters := map[string]*Master{}
		for _, u := range Users {
			m, err := e.StartMaster(ctx, u, ep)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			masters[u] = m
		}
		b.ResetTimer()
		if _, _, err := e.BaselineSubmit(ctx, masters, "gobench-base-"+ep.Name, b.N); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_, _ = e.CancelJobs(ctx, time.Minute)
	})
}

// BenchmarkStatusRPC1000 asks for 1,000 jobs by id through the go-plugin gRPC shims (in-process,
// plugintest) of an agent whose store holds them: Status is served from the agent's cache, so
// this needs no cluster. Target: p50 <= 2 ms (scripts/bench measures it against a `ferry agent`
// daemon polling real held jobs).
func BenchmarkStatusRPC1000(b *testing.B) {
	dir := b.TempDir()
	cfg := config.Default()
	cfg.Agent.StateDir = dir
	cfg.Agent.Socket = ""
	st, err := store.Open(filepath.Join(dir, "ferry.db"))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 1000)
	now := time.Now().UTC()
	for i := range ids {
		code := 0
		ids[i] = fmt.Sprintf("20250101-%016x", i)
		j := store.Job{ID: ids[i], Identity: "hpc", User: Users[i%len(Users)], Token: fmt.Sprintf("tok-%d", i),
			Name: fmt.Sprintf("nf-align_sample_%d", i), Dir: "/srv/ferry/work/ferry/alice/" + ids[i], SchedulerID: fmt.Sprint(100000 + i),
			Status: "completed", State: "CD", Queue: "debug", Owner: Users[i%len(Users)],
			Submitted: now.Add(-time.Hour), Started: now.Add(-50 * time.Minute), Ended: now.Add(-40 * time.Minute), ExitCode: &code, Done: true}
		if err := st.Put(j); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	a, err := agent.New(cfg, zerolog.Nop(), schedulers.New)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	conn := plugintest.Client(b, a)
	ctx := context.Background()
	var d Durations
	for b.Loop() {
		start := time.Now()
		js, err := conn.Status(ctx, ids)
		d = append(d, time.Since(start))
		if err != nil || len(js) != len(ids) {
			b.Fatalf("%d jobs, %v", len(js), err)
		}
	}
	b.ReportMetric(float64(d.Median())/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(d.Percentile(99))/float64(time.Millisecond), "p99-ms")
}

// BenchmarkStage uploads a 256 MiB file and a tree of 200 x 4 KiB files as alice with
// stage.Stager.Upload (ferry) and with `sftp -b` over a ControlMaster (sftp). Targets (over 1 GiB
// and 2,000 files in scripts/bench): >= 1.0x big file, >= 3x small files.
func BenchmarkStage(b *testing.B) {
	endpoints(b, func(b *testing.B, e *Env, ep Endpoint) {
		ctx := context.Background()
		local := b.TempDir()
		big := filepath.Join(local, "big.bin")
		small := filepath.Join(local, "small")
		if err := makeBig(big, 256); err != nil {
			b.Fatal(err)
		}
		if err := makeSmall(small, 200, 4); err != nil {
			b.Fatal(err)
		}
		m, err := e.StartMaster(ctx, "alice", ep)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		base := e.RemoteDir("gobench-stage", ep.Name)
		if _, _, err := e.StageFerry(ctx, ep, small, base+"/warm"); err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			local string
			bytes int64
			tree  bool
		}{{"big", big, 256 << 20, false}, {"small", small, 200 * 4 << 10, true}} {
			rel := func(side string, i int) string { return fmt.Sprintf("%s/%s-%s-%d", base, side, c.name, i) }
			clean := func(r string) { _ = os.RemoveAll(filepath.Join(e.Cluster.WorkDir, r)) }
			b.Run(c.name+"/ferry", func(b *testing.B) {
				b.SetBytes(c.bytes)
				i := 0
				for b.Loop() {
					i++
					if _, _, err := e.StageFerry(ctx, ep, c.local, rel("ferry", i)); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					clean(rel("ferry", i))
					b.StartTimer()
				}
			})
			b.Run(c.name+"/sftp", func(b *testing.B) {
				b.SetBytes(c.bytes)
				i := 0
				for b.Loop() {
					i++
					if _, err := e.StageSFTP(ctx, m, c.local, rel("sftp", i), c.tree); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					clean(rel("sftp", i))
					b.StartTimer()
				}
			})
		}
	})
}

// TestReportMarkdown checks the report renders every result, the targets and the misses.
func TestReportMarkdown(t *testing.T) {
	ok := Result{Name: "exec_loopback", Bench: "exec", Checks: []Check{{Key: "ratio", Value: 0.5, Op: "<=", Limit: 0.7, Unit: "x"}}}
	ok.AddMs("ferry_ms", 4500*time.Microsecond, "Ferry")
	miss := Result{Name: "submit_rtt10", Bench: "submit", Checks: []Check{{Key: "speedup", Value: 3.2, Op: ">=", Limit: 10, Unit: "x", Why: "because", Plan: "fix it"}}}
	bad := Result{Name: "scale", Bench: "scale", Err: fmt.Errorf("no sshd")}
	md := Report{Machine: ReadMachine(), Command: "make bench", Results: []Result{ok, miss, bad}}.Markdown()
	for _, want := range []string{"**1 of 2 targets met.**", "| exec_loopback | ferry_ms=4.50 | 0.5x", "| <= 0.7x | yes |",
		"### submit_rtt10: speedup = 3.20x, target >= 10x", "**Why.** because", "**Plan.** fix it", "### scale: not measured",
		"BENCH exec_loopback ferry_ms=4.50 ratio=0.5 target_ratio=<=0.7 met=yes", "This run: `make bench`"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if ok.Line() != "BENCH exec_loopback ferry_ms=4.50 ratio=0.5 target_ratio=<=0.7 met=yes" {
		t.Errorf("line %q", ok.Line())
	}
}
