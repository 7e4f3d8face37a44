package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPUs      int
	CPUModel  string
	MemTotal  string
	Kernel    string
	OpenSSH   string
	Go        string
	Slurm     string
	LoadStart string
	LoadEnd   string
	Start     time.Time
	End       time.Time
}

// ReadMachine reads the machine's description and load average now (the run's start).
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Start: time.Now().UTC(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		if v, err := statusField(f, "MemTotal"); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(v)/(1<<30))
		}
		f.Close()
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		m.OpenSSH = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("sbatch", "--version").CombinedOutput(); err == nil {
		m.Slurm = strings.TrimSpace(string(out))
	}
	return m
}

// Finish records the end of the run.
func (m *Machine) Finish() {
	m.End = time.Now().UTC()
	m.LoadEnd = loadAvg()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Report is everything docs/benchmarks.md shows.
type Report struct {
	Machine Machine
	// Command is the exact command that produced the run.
	Command string
	// Settings lists what the run changed from the defaults (sizes, counts).
	Settings []string
	Results  []Result
}

// Markdown renders the report.
func (rep Report) Markdown() string {
	var b strings.Builder
	m := rep.Machine
	met, total := 0, 0
	for _, r := range rep.Results {
		for _, c := range r.Checks {
			total++
			if r.Err == nil && c.Met() {
				met++
			}
		}
	}
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `scripts/bench` on %s; do not edit by hand, run `make bench` to refresh it.\n\n", m.Start.Format("2006-01-02 15:04 MST"))
	b.WriteString("Ferry is measured against the OpenSSH baselines it has to beat (issue 5), **in the same run**, " +
		"interleaved sample by sample where the benchmark allows and alternating which side goes first " +
		"where it does not. The machine is shared with other engineers' test runs, so absolute times move " +
		"by tens of percent from one minute to the next: read the ratios.\n\n")
	fmt.Fprintf(&b, "**%d of %d targets met.**\n\n", met, total)

	b.WriteString("## Reproduce\n\n```sh\n")
	b.WriteString("make bench                                     # as root: cluster up, build, every benchmark, this file\n")
	b.WriteString("scripts/bench exec submit                      # a subset (prints BENCH lines; --doc FILE writes a report)\n")
	b.WriteString("go test -run '^$' -bench . ./cmd/ferry-bench/internal/bench/   # the Go benchmarks (skip without the cluster)\n")
	b.WriteString("```\n\n")
	fmt.Fprintf(&b, "This run: `%s`", rep.Command)
	if len(rep.Settings) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(rep.Settings, ", "))
	}
	b.WriteString(".\n\n")

	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPUs (nproc) | %d (%s) |\n", m.CPUs, m.CPUModel)
	fmt.Fprintf(&b, "| memory | %s |\n", m.MemTotal)
	fmt.Fprintf(&b, "| kernel | %s |\n", m.Kernel)
	fmt.Fprintf(&b, "| OpenSSH | %s |\n", m.OpenSSH)
	fmt.Fprintf(&b, "| Go | %s |\n", m.Go)
	fmt.Fprintf(&b, "| Slurm | %s |\n", m.Slurm)
	fmt.Fprintf(&b, "| load average at start | %s |\n", m.LoadStart)
	fmt.Fprintf(&b, "| load average at end | %s |\n", m.LoadEnd)
	fmt.Fprintf(&b, "| date (UTC) | %s, %s |\n\n", m.Start.Format(time.RFC3339), m.End.Sub(m.Start).Round(time.Second))

	b.WriteString("## Results\n\n| benchmark | measured | value | target | met |\n|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		var ms []string
		for _, x := range r.Measures {
			ms = append(ms, x.Key+"="+x.Value)
		}
		measured := strings.Join(ms, " ")
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | **error**: %s | | no |\n", r.Name, measured, mdEscape(r.Err.Error()))
			continue
		}
		for i, c := range r.Checks {
			name, meas := r.Name, measured
			if i > 0 {
				name, meas = "", ""
			}
			ok := "yes"
			if !c.Met() {
				ok = "**no**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s%s (%s) | %s | %s |\n", name, meas, num(c.Value), c.Unit, mdEscape(c.Desc), c.Target(), ok)
		}
	}
	b.WriteString("\n")

	var missed strings.Builder
	for _, r := range rep.Results {
		if r.Err != nil {
			fmt.Fprintf(&missed, "### %s: not measured\n\n%s\n\n", r.Name, r.Err)
			continue
		}
		for _, c := range r.Checks {
			if c.Met() {
				continue
			}
			fmt.Fprintf(&missed, "### %s: %s = %s%s, target %s\n\n", r.Name, c.Key, num(c.Value), c.Unit, c.Target())
			if c.Why != "" {
				fmt.Fprintf(&missed, "**Why.** %s\n\n", c.Why)
			}
			if c.Plan != "" {
				fmt.Fprintf(&missed, "**Plan.** %s\n\n", c.Plan)
			}
		}
	}
	if missed.Len() > 0 {
		b.WriteString("## Missed targets\n\n")
		b.WriteString(missed.String())
	}
	var findings []string
	for _, r := range rep.Results {
		for _, f := range r.Findings {
			findings = append(findings, fmt.Sprintf("- **%s**: %s", r.Name, f))
		}
	}
	if len(findings) > 0 {
		b.WriteString("## Findings\n\nWhat the measurements exposed besides the targets.\n\n")
		b.WriteString(strings.Join(findings, "\n") + "\n\n")
	}

	b.WriteString("## What was measured\n\n")
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if d, ok := methods[r.Bench]; ok && !seen[r.Bench] {
			seen[r.Bench] = true
			fmt.Fprintf(&b, "- **%s**: %s\n", r.Bench, d)
		}
	}
	b.WriteString("\nMeasures:\n\n")
	for _, r := range rep.Results {
		var lines []string
		for _, x := range r.Measures {
			if x.Desc != "" {
				lines = append(lines, fmt.Sprintf("`%s` %s", x.Key, x.Desc))
			}
		}
		for _, n := range r.Notes {
			lines = append(lines, n)
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "- %s: %s.\n", r.Name, strings.Join(lines, "; "))
		}
	}
	b.WriteString("\n## Raw output\n\n```\n")
	for _, r := range rep.Results {
		b.WriteString(r.Line() + "\n")
	}
	b.WriteString("```\n")
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// methods says how each benchmark is measured, for the report.
var methods = map[string]string{
	"exec": "`true` as alice: Ferry's warm sshpool pool (`Pool.Exec`) vs `ssh -S` through an OpenSSH " +
		"ControlMaster (`-o ControlMaster=yes -o ControlPersist=600 -N -f`, checked alive after each timed loop) vs a fresh `ssh` per command " +
		"(OpenSSH's default key exchange), samples interleaved one by one (the fresh ones every 8th round); " +
		"all OpenSSH runs use `-F /dev/null -o IdentitiesOnly=yes -o BatchMode=yes` and a known_hosts file " +
		"holding the pinned key. `rtt10` goes through internal/netproxy adding 5 ms each way (+10 ms RTT).",
	"submit": "`exit 0` jobs for alice, bob and carol in turn: Ferry's `Submit` through the go-plugin " +
		"client attached (plugin.Attach) to a `ferry agent` daemon, all calls in flight at once, vs a " +
		"shell-style loop of `ssh -S master sbatch --parsable --wrap true`, one ControlMaster per user. " +
		"Wall time until every id is back (not job completion). Both sides are warm (one job per user " +
		"through Ferry, one `true` per master). The agent runs with the product's defaults, including " +
		"submit batching (poll.submit_batch_window 20 ms, poll.submit_batch_max 50, poll.submit_parallel 4), " +
		"except the command rate limits, raised so they do not bind (the baseline loop has none; with the " +
		"default 600 per user per minute and a burst of 20, a user's 100 submits take at least 8 s, since " +
		"each batched submit takes its own token); `remote_execs` counts the remote commands the Ferry phase ran. For rtt10 the agent's identity points at the proxy port and pins the " +
		"host key for `[127.0.0.1]:PORT`. Jobs are cancelled after each phase.",
	"poll": "500 held jobs (`sbatch --hold` through `Resources.Extra`) per user for alice, bob and carol in " +
		"one `ferry agent` with poll.interval = poll.max_interval fixed; the agent's " +
		"`ferry_scheduler_commands_total` counter (the same count as Agent.CommandCounts) is scraped every " +
		"25 ms and each user's poll period is taken from when its squeue count changes; the agent's CPU " +
		"time and storage writes over the same window come from /proc/PID/stat and /proc/PID/io. " +
		"`poll_parse` runs scheduler/slurm's BenchmarkParseStatus10k.",
	"stage": "uploads into the work dir as alice: `stage.Stager.Upload` on a warm sshpool pool vs OpenSSH " +
		"`sftp -b` (`put` / `put -r`) multiplexed over a warm ControlMaster, so neither side pays for a " +
		"connection. Small files: Ferry then sftp, once each. Big file: sftp, Ferry, Ferry, sftp, best of " +
		"2 per side. Every upload is deleted right after it is measured.",
	"scale": "a child process (`ferry-bench scale-child`) opens 1,000 sshpool pools with distinct keys " +
		"(identity `scale`, users `member0000`...), all logging in as alice (the cluster has three users; " +
		"the pool layer does not care), runs `true` in each so each holds one idle connection, then idles. " +
		"Its VmRSS is read from /proc by the parent. The connections go to a private sshd started with " +
		"the test cluster's configuration on another port, so that the listener's own count of " +
		"unauthenticated connections (its process title, `[listener] N of 10-100 startups`: what " +
		"MaxStartups limits) is the benchmark's alone; it is sampled every millisecond during the ramp.",
	"rpc": "one `Status` call with 1,000 Ferry job ids through the go-plugin client of a `ferry agent` " +
		"daemon, served from its cache while it polls the jobs (the poll benchmark's held jobs), 200 calls " +
		"one after another after 10 warm-up calls.",
}
