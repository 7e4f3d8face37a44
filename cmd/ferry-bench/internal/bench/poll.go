package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PollOptions sizes the poll and rpc benchmarks, which share one agent and one set of held jobs.
type PollOptions struct {
	// JobsPerUser is the number of held (pending) jobs per user for poll. Default 500.
	JobsPerUser int
	// Interval is poll.interval and poll.max_interval (fixed, so the rate is what is measured).
	// Default 2s.
	Interval time.Duration
	// Window is how long the poll rate is observed. Default 10 intervals.
	Window time.Duration
	// RPCJobs is the number of job ids in each Status call. Default 1000.
	RPCJobs int
	// RPCCalls is the number of Status calls timed. Default 200.
	RPCCalls int
}

func (o PollOptions) withDefaults() PollOptions {
	if o.JobsPerUser <= 0 {
		o.JobsPerUser = 500
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 10 * o.Interval
	}
	if o.RPCJobs <= 0 {
		o.RPCJobs = 1000
	}
	if o.RPCCalls <= 0 {
		o.RPCCalls = 200
	}
	return o
}

// RunPollRPC starts a `ferry agent` with a fixed poll interval, submits held jobs for alice, bob
// and carol through it (sbatch --hold via Resources.Extra: they stay pending and cost the node
// nothing), and then measures what was asked: with poll, the remote scheduler commands the agent
// runs per interval (from its ferry_scheduler_commands_total counter) and the parse time of 10,000
// squeue lines (scheduler/slurm's BenchmarkParseStatus10k); with rpc, the latency of Status calls
// for o.RPCJobs ids through go-plugin, served from the agent's cache while it keeps polling. The
// jobs are cancelled through the agent at the end.
func RunPollRPC(ctx context.Context, e *Env, ferryBin string, doPoll, doRPC bool, o PollOptions) []Result {
	o = o.withDefaults()
	var rs []Result
	if doPoll {
		rs = append(rs, RunParse(ctx))
	}
	fail := func(err error) []Result {
		if doPoll {
			rs = append(rs, Result{Name: "poll", Bench: "poll", Err: err})
		}
		if doRPC {
			rs = append(rs, Result{Name: "rpc", Bench: "rpc", Err: err})
		}
		return rs
	}
	ep := e.Loopback()
	if err := e.WaitController(ctx, 2*time.Minute); err != nil {
		return fail(err)
	}
	a, err := e.StartAgent(ctx, ferryBin, AgentConfig{Endpoints: []Endpoint{ep}, PollInterval: o.Interval, PollMaxInterval: o.Interval})
	if err != nil {
		return fail(err)
	}
	defer a.Stop()
	n := 0
	if doPoll {
		n = o.JobsPerUser * len(Users)
	}
	if doRPC {
		n = max(n, o.RPCJobs)
	}
	took, ids, err := e.FerrySubmit(ctx, a.Service, ep, "held", n, 150, []string{"--hold"})
	if err != nil {
		return fail(err)
	}
	heldNote := fmt.Sprintf("%d held jobs submitted through the agent in %.1f s (150 in flight)", n, took.Seconds())
	// Every job polled at least once: its state is known.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		js, err := a.Service.Status(ctx, ids)
		if err != nil {
			return fail(err)
		}
		pending := 0
		for _, j := range js {
			if j.State == "" {
				pending++
			}
		}
		if pending == 0 && len(js) == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("%d of %d held jobs not polled within 2 minutes", pending, len(ids)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if doPoll {
		r := measurePoll(ctx, a, ep, o)
		r.Notes = append(r.Notes, heldNote)
		rs = append(rs, r)
	}
	if doRPC {
		r := measureRPC(ctx, a, ids[:o.RPCJobs], o.RPCCalls)
		r.Notes = append(r.Notes, heldNote)
		rs = append(rs, r)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := a.Service.Cancel(cctx, ids)
	cancelTook := time.Since(start)
	bad := 0
	for _, c := range res {
		if c.Error != "" {
			bad++
		}
	}
	note := fmt.Sprintf("cancelling the %d jobs through the agent took %.2f s (%d errors)", len(ids), cancelTook.Seconds(), bad)
	if err != nil {
		note = "cancel through the agent failed: " + err.Error()
	}
	rs[len(rs)-1].Notes = append(rs[len(rs)-1].Notes, note)
	_, _ = e.CancelJobs(ctx, time.Minute)
	return rs
}

// measurePoll observes the agent's counters for o.Window. Each user's poller runs on its own
// timer, so instead of counting commands in a window (which catches one poll more or less per user
// at its edges), it records when each user's squeue count changes and derives each poller's
// period: commands per interval = sum over users of interval/period.
func measurePoll(ctx context.Context, a *Agent, ep Endpoint, o PollOptions) Result {
	r := Result{Name: "poll", Bench: "poll"}
	// Let the kicks of the last submits settle.
	time.Sleep(o.Interval)
	first, err := a.CommandCounts(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	use0, err := a.Usage()
	if err != nil {
		r.Err = err
		return r
	}
	last := first
	changes := map[string][]time.Time{}
	begin := time.Now()
	end := begin.Add(o.Window)
	for time.Now().Before(end) {
		time.Sleep(25 * time.Millisecond)
		c, err := a.CommandCounts(ctx)
		if err != nil {
			r.Err = err
			return r
		}
		now := time.Now()
		for _, u := range Users {
			k := CommandKey{ep.Name, u, "squeue"}
			if c[k] != last[k] {
				changes[u] = append(changes[u], now)
			}
		}
		last = c
	}
	use1, err := a.Usage()
	if err != nil {
		r.Err = err
		return r
	}
	perInterval := 0.0
	var periods []string
	for _, u := range Users {
		ts := changes[u]
		if len(ts) < 2 {
			r.Err = fmt.Errorf("%s: %d status polls seen in %s", u, len(ts), o.Window)
			return r
		}
		period := ts[len(ts)-1].Sub(ts[0]) / time.Duration(len(ts)-1)
		// The period only describes the window if the polls covered it: a poller that stalled
		// (a slow or failing squeue) leaves a gap at an edge, and then the count decides.
		slack := max(period, o.Interval) + o.Interval/2
		if ts[0].Sub(begin) > slack || end.Sub(ts[len(ts)-1]) > slack {
			period = o.Window / time.Duration(len(ts))
		}
		perInterval += float64(o.Interval) / float64(period)
		periods = append(periods, fmt.Sprintf("%s:%.2fs", u, period.Seconds()))
	}
	squeue, other := 0, 0
	var others []string
	for k, v := range last {
		if k.Identity != ep.Name {
			continue
		}
		d := v - first[k]
		if k.Program == "squeue" {
			squeue += d
		} else if d > 0 {
			other += d
			others = append(others, fmt.Sprintf("%s/%s:%d", k.User, k.Program, d))
		}
	}
	sort.Strings(others)
	r.Add("users", strconv.Itoa(len(Users)), "")
	r.Add("active_jobs", strconv.Itoa(o.JobsPerUser*len(Users)), "held (pending) jobs, 500 per user")
	r.Add("interval_s", num(o.Interval.Seconds()), "poll.interval = poll.max_interval")
	r.Add("window_s", num(o.Window.Seconds()), "observation window")
	r.Add("squeue_calls", strconv.Itoa(squeue), "squeue calls in the window, all users")
	r.Add("poll_period", strings.Join(periods, ","), "mean time between one user's squeue calls")
	otherDesc := "other remote commands in the window"
	if len(others) > 0 {
		otherDesc += ": " + strings.Join(others, " ")
	}
	r.Add("other_calls", strconv.Itoa(other), otherDesc)
	if squeue > 0 {
		cpu := (use1.CPU - use0.CPU) / time.Duration(squeue)
		wr := float64(use1.WriteBytes-use0.WriteBytes) / float64(squeue)
		r.AddMs("agent_cpu_ms_per_poll", cpu, "the agent's CPU time (user+system) in the window per user poll (one squeue of 500 jobs and its processing)")
		r.Add("agent_write_kib_per_poll", num(wr/1024), "KiB the agent wrote to storage (/proc/PID/io write_bytes) per user poll, although no job changed")
		if wr > 1<<20 {
			r.Findings = append(r.Findings, fmt.Sprintf("each user poll of %d unchanged jobs made the agent write %.1f MiB to storage and "+
				"use %d ms of CPU: agent.update (internal/agent/agent.go) calls store.Put for every polled job whether "+
				"or not anything changed, one bbolt transaction and fsync each, and the users' pollers share bbolt's "+
				"single writer. The rate holds at this interval, but a round of %d jobs takes a large share of it: "+
				"with a shorter poll.interval or more jobs, rounds overrun the interval (pollLoop then polls back to "+
				"back) and the rate falls below one per user per interval. Persist only changed records, in one "+
				"transaction per poll.", o.JobsPerUser, wr/(1<<20), cpu.Milliseconds(), o.JobsPerUser*len(Users)))
		}
	}
	r.Checks = append(r.Checks, Check{
		Key: "commands_per_interval", Desc: "sum over users of interval / poll period: 3 is one squeue per user per interval",
		Value: round(perInterval), Op: "==", Limit: 3, Tol: 0.1,
		Why: "A poll that takes longer than the interval starts the next one late (pollLoop schedules " +
			"from the previous poll's start): the status query, parsing and applying 500 states per " +
			"user, and persisting the records that changed (agent.update writes a record only when it " +
			"changed) must fit in the interval on this shared machine.",
		Plan: "Profile a poll of 500 jobs (agent_cpu_ms_per_poll) and write one poll's changes in a " +
			"single bbolt transaction.",
	}, Check{
		Key: "other_commands", Desc: "remote commands other than squeue while nothing changes", Value: float64(other), Op: "==", Limit: 0,
	})
	return r
}

// measureRPC times Status calls for ids through the go-plugin client.
func measureRPC(ctx context.Context, a *Agent, ids []string, calls int) Result {
	r := Result{Name: "rpc", Bench: "rpc"}
	var d Durations
	for i := 0; i < calls+10; i++ {
		start := time.Now()
		js, err := a.Service.Status(ctx, ids)
		took := time.Since(start)
		if err != nil {
			r.Err = err
			return r
		}
		if len(js) != len(ids) {
			r.Err = fmt.Errorf("status returned %d of %d jobs", len(js), len(ids))
			return r
		}
		if i >= 10 { // the first calls warm gRPC's buffers
			d = append(d, took)
		}
	}
	r.Add("ids_per_call", strconv.Itoa(len(ids)), "job ids in one Status call")
	r.Add("calls", strconv.Itoa(len(d)), "Status calls timed, one at a time")
	r.AddMs("p50_ms", d.Median(), "median Status call, go-plugin client to `ferry agent`, from its cache")
	r.AddMs("p99_ms", d.Percentile(99), "99th percentile")
	if rss, err := a.RSS(); err == nil {
		r.Add("agent_rss_mib", num(float64(rss)/(1<<20)), "the agent's VmRSS holding the jobs and polling them")
	}
	r.Checks = append(r.Checks, Check{
		Key: "p50", Desc: "median Status(1,000 ids) latency", Value: round(float64(d.Median()) / float64(time.Millisecond)),
		Op: "<=", Limit: 2, Unit: "ms",
		Why: "Status(1,000 ids) is CPU work in the gRPC layer, not in the agent. Two fixes of 2026-12-07 " +
			"took it from 3.4-3.9 ms to 2.0-2.7 ms in the same session: the answer is built with a handful " +
			"of allocations instead of five per job, and the connections use a 4 MiB flow-control window " +
			"(gRPC's default 64 KiB made the 250 KiB answer wait for window updates). What is left is " +
			"protobuf decoding of 1,000 messages in the client and garbage collection, on 2 cores shared " +
			"with the agent polling 1,500 held jobs, so the median sits at the target and moves with the " +
			"machine's load.",
		Plan: "Let launchers ask for less: Status for the jobs changed since the caller's last call (a " +
			"generation number, as the agent already keeps per user), or the Watch stream, so that a " +
			"launcher polling 1,000 running tasks receives the few that changed; or keep each job's " +
			"encoded message until the job changes and splice them into the answer.",
	})
	return r
}

var nsPerOp = regexp.MustCompile(`BenchmarkParseStatus10k\S*\s+\d+\s+([0-9.]+) ns/op`)

// RunParse runs scheduler/slurm's BenchmarkParseStatus10k with `go test` (the go command and the
// module's source must be at hand) and checks the time per parse of 10,000 squeue lines.
func RunParse(ctx context.Context) Result {
	r := Result{Name: "poll_parse", Bench: "poll"}
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkParseStatus10k$",
		"-benchtime", "50x", "-count", "3", "github.com/ferryhpc/ferry/scheduler/slurm").CombinedOutput()
	if err != nil {
		r.Err = fmt.Errorf("go test -bench BenchmarkParseStatus10k: %w: %s", err, bytesTrim(out))
		return r
	}
	var d Durations
	for _, m := range nsPerOp.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		d = append(d, time.Duration(v))
	}
	if len(d) == 0 {
		r.Err = fmt.Errorf("no result in: %s", bytesTrim(out))
		return r
	}
	med := d.Median()
	r.Add("lines", "10000", "squeue lines per parse (scheduler/slurm BenchmarkParseStatus10k, median of 3 runs of 50 parses)")
	r.Checks = append(r.Checks, Check{
		Key: "parse_ms", Desc: "time to parse 10,000 squeue lines", Value: round(float64(med) / float64(time.Millisecond)),
		Op: "<", Limit: 20, Unit: "ms",
		Why:  "The parser allocates per field and per job.",
		Plan: "Profile BenchmarkParseStatus10k and cut allocations (split once, intern the state codes).",
	})
	return r
}
