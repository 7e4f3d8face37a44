// Command ferry-bench runs Ferry's benchmarks against the OpenSSH baselines on the local test
// cluster and prints one `BENCH name key=value ...` line per result; with --doc it writes the
// Markdown report (docs/benchmarks.md). scripts/bench (`make bench`) builds and runs it.
//
// Usage: ferry-bench --ferry BIN [flags] [exec|submit|poll|stage|scale|rpc]...
//
// With no benchmark named, all run. It must run as root inside the module (poll runs `go test` on
// scheduler/slurm). `ferry-bench scale-child` is the process the scale benchmark starts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhpc/ferry/cmd/ferry-bench/internal/bench"
)

// all lists the benchmarks in the order they run.
var all = []string{"exec", "submit", "poll", "rpc", "stage", "scale"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "scale-child" {
		if err := scaleChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ferry-bench scale-child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferry-bench:", err)
		os.Exit(1)
	}
}

func scaleChild(args []string) error {
	fs := flag.NewFlagSet("scale-child", flag.ExitOnError)
	var o bench.ScaleChildOptions
	fs.IntVar(&o.Pools, "pools", 1000, "pools to open")
	fs.IntVar(&o.MaxDials, "max-dials", 4, "sshpool MaxDialsPerHost")
	fs.IntVar(&o.Port, "port", 0, "sshd port on 127.0.0.1")
	fs.StringVar(&o.KnownHosts, "known-hosts", "", "pinned known_hosts line")
	fs.StringVar(&o.Key, "key", "", "unencrypted private key file")
	fs.StringVar(&o.User, "user", "alice", "login user")
	_ = fs.Parse(args)
	return bench.ScaleChild(context.Background(), o, os.Stdin, os.Stdout)
}

func run() error {
	var (
		ferryBin  = flag.String("ferry", "", "ferry binary to run `ferry agent` from (required for submit, poll, rpc)")
		docPath   = flag.String("doc", "", "write the Markdown report to this file")
		command   = flag.String("command", "", "the command to show in the report as how to reproduce the run")
		execO     bench.ExecOptions
		submitO   bench.SubmitOptions
		pollO     bench.PollOptions
		stageO    bench.StageOptions
		scaleO    bench.ScaleOptions
		loopback  = flag.Bool("loopback-only", false, "skip the +10 ms RTT measurements")
		pollEvery = flag.Duration("poll-interval", 5*time.Second, "poll.interval (= poll.max_interval) for poll")
	)
	flag.IntVar(&execO.Rounds, "exec-rounds", 100, "exec: interleaved rounds")
	flag.IntVar(&submitO.Jobs, "submit-jobs", 300, "submit: jobs per endpoint")
	flag.IntVar(&pollO.JobsPerUser, "poll-jobs", 500, "poll: held jobs per user")
	flag.IntVar(&pollO.RPCCalls, "rpc-calls", 200, "rpc: Status calls timed")
	flag.IntVar(&stageO.BigMiB, "stage-big-mib", 1024, "stage: big file size in MiB")
	flag.IntVar(&stageO.SmallFiles, "stage-small-files", 2000, "stage: number of small files (loopback)")
	flag.IntVar(&stageO.SmallFilesRTT, "stage-small-files-rtt", 1000, "stage: number of small files at +10 ms RTT")
	flag.IntVar(&scaleO.Pools, "scale-pools", 1000, "scale: pools with one idle connection each")
	flag.IntVar(&scaleO.MaxDials, "scale-max-dials", 4, "scale: sshpool MaxDialsPerHost")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: ferry-bench --ferry BIN [flags] [%s]...\n", strings.Join(all, "|"))
		flag.PrintDefaults()
	}
	flag.Parse()
	pollO.Interval = *pollEvery
	pollO.Window = 6 * *pollEvery

	selected := map[string]bool{}
	for _, a := range flag.Args() {
		if !slices.Contains(all, a) {
			flag.Usage()
			return fmt.Errorf("unknown benchmark %q", a)
		}
		selected[a] = true
	}
	if len(selected) == 0 {
		for _, a := range all {
			selected[a] = true
		}
	}
	if (selected["submit"] || selected["poll"] || selected["rpc"]) && *ferryBin == "" {
		return fmt.Errorf("--ferry is required for submit, poll and rpc")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	machine := bench.ReadMachine()
	env, err := bench.NewEnv()
	if err != nil {
		return err
	}
	defer env.Close()
	eps, err := env.Endpoints(*loopback)
	if err != nil {
		return err
	}

	var results []bench.Result
	emit := func(rs ...bench.Result) {
		for _, r := range rs {
			fmt.Println(r.Line())
			results = append(results, r)
		}
	}
	step := func(name string) func() {
		start := time.Now()
		fmt.Fprintf(os.Stderr, "ferry-bench: %s (load %s)...\n", name, loadNow())
		return func() {
			fmt.Fprintf(os.Stderr, "ferry-bench: %s done in %s\n", name, time.Since(start).Round(time.Second))
		}
	}
	for _, b := range all {
		if !selected[b] || ctx.Err() != nil {
			continue
		}
		switch b {
		case "exec":
			done := step("exec")
			for _, ep := range eps {
				emit(bench.RunExec(ctx, env, ep, execO))
			}
			done()
		case "submit":
			done := step("submit")
			emit(bench.RunSubmit(ctx, env, *ferryBin, eps, submitO)...)
			done()
		case "poll", "rpc":
			if b == "rpc" && selected["poll"] {
				continue // measured with poll
			}
			done := step("poll/rpc")
			emit(bench.RunPollRPC(ctx, env, *ferryBin, selected["poll"], selected["rpc"], pollO)...)
			done()
		case "stage":
			done := step("stage")
			emit(bench.RunStage(ctx, env, eps, stageO)...)
			done()
		case "scale":
			done := step("scale")
			emit(bench.RunScale(ctx, env, self, scaleO))
			done()
		}
	}
	machine.Finish()
	met, total, failed := 0, 0, 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
		for _, c := range r.Checks {
			total++
			if r.Err == nil && c.Met() {
				met++
			}
		}
	}
	fmt.Fprintf(os.Stderr, "ferry-bench: %d of %d targets met, %d benchmarks failed to measure, %s\n",
		met, total, failed, machine.End.Sub(machine.Start).Round(time.Second))
	if *docPath != "" {
		cmdline := *command
		if cmdline == "" {
			cmdline = strings.Join(os.Args, " ")
		}
		var settings []string
		if selected["stage"] && stageO.BigMiB != 1024 {
			settings = append(settings, fmt.Sprintf("big file %d MiB instead of 1 GiB", stageO.BigMiB))
		}
		if selected["stage"] && !*loopback && stageO.SmallFilesRTT > 0 && stageO.SmallFilesRTT != stageO.SmallFiles {
			settings = append(settings, fmt.Sprintf("%d small files at +10 ms RTT instead of %d, to keep the run near 10 minutes: each file costs the same few round trips on both sides, so the ratio does not depend on the count (2,000 took 125 s for Ferry and 80 s for sftp)", stageO.SmallFilesRTT, stageO.SmallFiles))
		}
		if selected["poll"] {
			def := ""
			if *pollEvery == 5*time.Second {
				def = ", the default"
			}
			settings = append(settings, fmt.Sprintf("poll interval %s%s, held fixed", *pollEvery, def))
		}
		rep := bench.Report{Machine: machine, Command: cmdline, Settings: settings, Results: results}
		if err := os.WriteFile(*docPath, []byte(rep.Markdown()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "ferry-bench: wrote %s\n", *docPath)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return fmt.Errorf("%d benchmarks could not be measured", failed)
	}
	return nil
}

func loadNow() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
