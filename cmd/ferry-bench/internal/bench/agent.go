package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/ferryhpc/ferry/plugin"
)

// AgentConfig is what a benchmark changes in the agent's configuration; everything else is the
// product default (config.Default): pools, submit batching, command rate limits. Only
// poll.exit_code_grace is shortened (5s), so that cancelled jobs stop being tracked sooner.
type AgentConfig struct {
	// Endpoints become identities named after them ("loopback", "rtt10"), each with alice, bob
	// (passphrase-protected key) and carol.
	Endpoints []Endpoint
	// PollInterval and PollMaxInterval set poll.interval and poll.max_interval (zero: defaults).
	PollInterval, PollMaxInterval time.Duration
}

// Agent is a `ferry agent` daemon started for a benchmark, with a go-plugin client attached to it
// through its reattach file, as a long-running launcher would be.
type Agent struct {
	Client *plugin.Client
	// Service is the go-plugin client's Service: every call is a gRPC call to the daemon.
	Service plugin.Service
	// Pid is the daemon's process id (for its RSS).
	Pid int

	cmd     *exec.Cmd
	metrics string // http://host:port/metrics
	logPath string
	done    chan error
}

// StartAgent writes a configuration for ac into a fresh state dir, starts `ferryBin agent` and
// attaches to it. Stop it with Agent.Stop.
func (e *Env) StartAgent(ctx context.Context, ferryBin string, ac AgentConfig) (*Agent, error) {
	dir, err := os.MkdirTemp(e.Dir, "agent-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfgPath, []byte(e.agentConfig(dir, port, ac)), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(ferryBin, "agent", "--config", cfgPath)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ferry agent: %w", err)
	}
	a := &Agent{Pid: cmd.Process.Pid, cmd: cmd, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), logPath: logPath, done: make(chan error, 1)}
	go func() { a.done <- cmd.Wait() }()
	reattach := filepath.Join(dir, "state", "agent.json")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(reattach); err == nil {
			break
		}
		select {
		case err := <-a.done:
			return nil, fmt.Errorf("ferry agent exited (%v): %s", err, a.logTail())
		case <-ctx.Done():
			a.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.Stop()
			return nil, fmt.Errorf("ferry agent wrote no reattach file within 30s: %s", a.logTail())
		}
	}
	cl, err := plugin.Attach(reattach, hclog.NewNullLogger())
	if err != nil {
		a.Stop()
		return nil, err
	}
	a.Client, a.Service = cl, cl.Service()
	return a, nil
}

func (e *Env) agentConfig(dir string, metricsPort int, ac AgentConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\nstate_dir = %q\nlog_level = \"info\"\nmetrics_listen = \"127.0.0.1:%d\"\nsocket = \"\"\n", filepath.Join(dir, "state"), metricsPort)
	// The command rate limits are raised so they do not bind: the baselines have none, and with the
	// defaults (600 per user per minute, burst 20) 100 submits of one user take at least 8 s
	// whatever Ferry's round trips cost.
	b.WriteString("[limits]\nuser_commands_per_minute = 60000\nidentity_commands_per_minute = 600000\nburst = 1000\n")
	b.WriteString("[poll]\nexit_code_grace = \"5s\"\n")
	if ac.PollInterval > 0 {
		fmt.Fprintf(&b, "interval = %q\n", ac.PollInterval.String())
	}
	if ac.PollMaxInterval > 0 {
		fmt.Fprintf(&b, "max_interval = %q\n", ac.PollMaxInterval.String())
	}
	for _, ep := range ac.Endpoints {
		fmt.Fprintf(&b, "[[identity]]\nname = %q\nscheduler = \"slurm\"\nhost = %q\nport = %d\nknown_hosts = %q\nwork_dir = %q\ngroup = %q\n",
			ep.Name, ep.Host, ep.Port, e.KnownHosts(ep), e.Cluster.WorkDir, e.Cluster.Group)
		for _, name := range Users {
			u := e.users[name]
			fmt.Fprintf(&b, "  [[identity.credential]]\n  user = %q\n  key_file = %q\n", u.Name, u.Key)
			if u.Passphrase != "" {
				pf := filepath.Join(dir, u.Name+".pass")
				_ = os.WriteFile(pf, []byte(u.Passphrase+"\n"), 0o600)
				fmt.Fprintf(&b, "  passphrase_file = %q\n", pf)
			}
		}
	}
	return b.String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Stop detaches and stops the daemon (SIGINT, then SIGKILL after 15 s).
func (a *Agent) Stop() {
	if a.Client != nil {
		a.Client.Close()
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

func (a *Agent) logTail() string {
	b, _ := os.ReadFile(a.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// RSS returns the daemon's resident set size in bytes (VmRSS).
func (a *Agent) RSS() (int64, error) { return procRSS(a.Pid) }

// ProcUsage is a process's CPU time and bytes written to storage so far.
type ProcUsage struct {
	CPU        time.Duration // user + system
	WriteBytes int64         // /proc/PID/io write_bytes: what the process sent to the storage layer
}

// Usage reads the daemon's CPU time and storage writes from /proc.
func (a *Agent) Usage() (ProcUsage, error) { return procUsage(a.Pid) }

func procUsage(pid int) (ProcUsage, error) {
	var u ProcUsage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may contain spaces) start at state (field 3).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	// USER_HZ is 100 on Linux for every architecture Ferry runs on.
	u.CPU = time.Duration(ut+st) * 10 * time.Millisecond
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			u.WriteBytes, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return u, nil
}

// procRSS reads VmRSS of pid from /proc.
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return statusField(f, "VmRSS")
}

func statusField(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", name, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n * 1024, err
	}
	return 0, fmt.Errorf("%s not found", name)
}

// CommandKey names a counter of remote scheduler commands.
type CommandKey struct{ Identity, User, Program string }

var commandLine = regexp.MustCompile(`^ferry_scheduler_commands_total\{(.*)\} ([0-9.e+]+)$`)
var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// CommandCounts scrapes the daemon's /metrics (ferry_scheduler_commands_total, which the agent
// increments with the same calls as Agent.CommandCounts) and sums the outcomes.
func (a *Agent) CommandCounts(ctx context.Context) (map[CommandKey]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("metrics: " + resp.Status)
	}
	out := map[CommandKey]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := commandLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var k CommandKey
		for _, l := range labelRE.FindAllStringSubmatch(m[1], -1) {
			switch l[1] {
			case "identity":
				k.Identity = l[2]
			case "user":
				k.User = l[2]
			case "program":
				k.Program = l[2]
			}
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, err
		}
		out[k] += int(v)
	}
	return out, sc.Err()
}
