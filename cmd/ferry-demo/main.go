// Command ferry-demo is a tiny workflow launcher: it starts `ferry agent` on the local test cluster,
// attaches to it with the go-plugin client (plugin.Attach), stages inputs and runs a dozen tasks as
// several users (one fails on purpose, one is cancelled), then prints each task's outcome. It is what
// `make demo` runs, and a worked example of the client API a launcher imports.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"golang.org/x/term"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
)

func main() {
	clusterFile := flag.String("cluster", testcluster.DefaultPath, "test cluster description written by scripts/cluster-up")
	ferryBin := flag.String("ferry", "bin/ferry", "ferry binary")
	stateDir := flag.String("state", "/var/lib/ferry-demo", "agent state dir for the demo")
	users := flag.String("users", "alice,bob,carol", "users to run tasks as")
	webAddr := flag.String("web", "127.0.0.1:8080", "address of the web console (plain HTTP on loopback); empty: no console")
	keep := flag.Bool("keep", term.IsTerminal(int(os.Stdin.Fd())), "keep the agent and its console running after the tasks, until Ctrl-C (default: when run from a terminal)")
	flag.Parse()
	if err := run(*clusterFile, *ferryBin, *stateDir, *webAddr, *keep, strings.Split(*users, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "ferry-demo:", err)
		os.Exit(1)
	}
}

// task is one step of the demo workflow.
type task struct {
	name   string
	user   string
	script string
	input  string
	cancel bool
	job    plugin.Job
}

func run(clusterFile, ferryBin, stateDir, webAddr string, keep bool, users []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	b, err := os.ReadFile(clusterFile)
	if err != nil {
		return fmt.Errorf("%w (run `make cluster-up` first)", err)
	}
	var c testcluster.Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	cfgPath, reattach, err := writeConfig(&c, stateDir, webAddr)
	if err != nil {
		return err
	}
	_ = os.Remove(reattach)
	logf, err := os.Create(filepath.Join(stateDir, "agent.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	agent := exec.Command(ferryBin, "agent", "--config", cfgPath)
	agent.Stderr = logf
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
	}()
	fmt.Printf("ferry agent started (pid %d, log %s)\n", agent.Process.Pid, logf.Name())
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(reattach); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("agent did not write its reattach file; see " + logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl, err := plugin.Attach(reattach, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	defer cl.Close()
	svc := cl.Service()
	if webAddr != "" {
		// The launcher holds the plugin channel and acts with owner rights: it gives the demo owner
		// a fresh password for the console.
		pw := randomPassword()
		if err := cl.Admin().SetPassword(ctx, demoOwner, []byte(pw)); err != nil {
			return fmt.Errorf("set the demo owner's console password: %w", err)
		}
		fmt.Printf("web console: http://%s/  sign in as %q with password %q\n", webAddr, demoOwner, pw)
		fmt.Printf("REST API:    http://%s/api/v1/openapi.json (create a token on the console's Tokens page)\n", webAddr)
	}

	runID := time.Now().Format("20060102-150405")
	var tasks []*task
	for i := 0; i < 12; i++ {
		u := users[i%len(users)]
		t := &task{
			name:   fmt.Sprintf("count-%02d", i),
			user:   u,
			input:  strings.Repeat(fmt.Sprintf("line %d\n", i), i+1),
			script: "wc -l < input.txt > output.txt\nid -un >> output.txt\n",
		}
		switch i {
		case 4:
			t.name, t.script = "fails-on-purpose", "echo 'something went wrong' >&2\necho partial > output.txt\nexit 42\n"
		case 7:
			t.name, t.script, t.cancel = "cancelled", "echo started > output.txt\nsleep 300\n", true
		}
		tasks = append(tasks, t)
	}

	// Stage inputs and submit, each task as its user, concurrently as a launcher would.
	local, err := os.MkdirTemp("", "ferry-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(local)
	var wg sync.WaitGroup
	errs := make(chan error, len(tasks))
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := fmt.Sprintf("demo/%s/%s", runID, t.name)
			in := filepath.Join(local, t.name+".txt")
			if err := os.WriteFile(in, []byte(t.input), 0o600); err != nil {
				errs <- err
				return
			}
			if _, err := svc.StageIn(ctx, plugin.StageRequest{Identity: "local", User: t.user,
				Files: []plugin.StageFile{{Local: in, Remote: dir + "/input.txt"}}}); err != nil {
				errs <- fmt.Errorf("stage in %s: %w", t.name, err)
				return
			}
			j, err := svc.Submit(ctx, plugin.SubmitRequest{Identity: "local", User: t.user, Name: t.name, Dir: dir,
				Token: runID + "-" + t.name, Script: []byte(t.script), Resources: plugin.Resources{CPUs: 1, MemoryMB: 100, Time: 10 * time.Minute}})
			if err != nil {
				errs <- fmt.Errorf("submit %s: %w", t.name, err)
				return
			}
			t.job = j
			fmt.Printf("submitted %-18s as %-6s -> Slurm job %s\n", t.name, t.user, j.SchedulerID)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}

	byID := map[string]*task{}
	var ids []string
	for _, t := range tasks {
		byID[t.job.ID] = t
		ids = append(ids, t.job.ID)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	done := map[string]bool{}
	cancelled := false
	err = svc.Watch(wctx, plugin.WatchRequest{IDs: ids}, func(ev plugin.JobEvent) error {
		t := byID[ev.Job.ID]
		prev := t.job
		t.job = ev.Job
		switch {
		case ev.Job.Done && !prev.Done:
			exit := "unknown"
			if ev.Job.ExitCode != nil {
				exit = strconv.Itoa(*ev.Job.ExitCode)
			}
			fmt.Printf("  %-18s %-6s %-9s exit code %s\n", t.name, t.user, ev.Job.Status, exit)
		case ev.Job.Status != prev.Status || ev.Job.Reason != prev.Reason:
			fmt.Printf("  %-18s %-6s %-9s %s\n", t.name, t.user, ev.Job.Status, ev.Job.Reason)
		}
		if t.cancel && !cancelled && ev.Job.Status == "running" {
			cancelled = true
			go func() {
				time.Sleep(time.Second)
				if _, err := svc.Cancel(ctx, []string{t.job.ID}); err != nil {
					fmt.Println("cancel:", err)
				}
			}()
		}
		if ev.Job.Done {
			done[ev.Job.ID] = true
		}
		if len(done) == len(ids) {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}

	defer func() {
		if keep && webAddr != "" {
			fmt.Printf("\nThe agent and its console stay up at http://%s/ until you press Ctrl-C.\n", webAddr)
			<-ctx.Done()
		}
	}()
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tUSER\tJOB ID\tFINAL STATE\tEXIT\tRUN AS (scheduler)\toutput.txt")
	for _, t := range tasks {
		j := t.job
		exit := "-"
		if j.ExitCode != nil {
			exit = strconv.Itoa(*j.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\t%s\t%s\t%s\n", t.name, t.user, j.SchedulerID, j.Status, j.State, exit, j.Owner, fileInfo(filepath.Join(j.Dir, "output.txt")))
	}
	return tw.Flush()
}

var errStop = errors.New("all done")

// fileInfo describes a file on the login node. The demo's login node is this machine, so a local
// stat sees the same file the cluster wrote.
func fileInfo(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	st := fi.Sys().(*syscall.Stat_t)
	owner, group := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fmt.Sprintf("%s:%s %s", owner, group, fi.Mode().Perm())
}

// demoOwner is the organisation owner the demo creates, for the web console.
const demoOwner = "owner"

// randomPassword returns a 20-character password for the demo owner.
func randomPassword() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeConfig(c *testcluster.Cluster, stateDir, webAddr string) (string, string, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", "", err
	}
	var creds strings.Builder
	for _, u := range c.Users {
		if !u.Shared {
			continue
		}
		fmt.Fprintf(&creds, "  [[identity.credential]]\n  user = %q\n  key_file = %q\n", u.Name, u.Key)
		if u.Passphrase != "" {
			pf := filepath.Join(stateDir, u.Name+".passphrase")
			if err := os.WriteFile(pf, []byte(u.Passphrase), 0o600); err != nil {
				return "", "", err
			}
			fmt.Fprintf(&creds, "  passphrase_file = %q\n", pf)
		}
	}
	reattach := filepath.Join(stateDir, "agent.json")
	web := ""
	if webAddr != "" {
		web = fmt.Sprintf("[web]\nlisten = %q\nplain_http = true\n", webAddr)
	}
	text := fmt.Sprintf(`# Written by ferry-demo for the local test cluster.
[agent]
state_dir = %q
%s[[member]]
name = %q
role = "owner"
[poll]
interval = "1s"
exit_code_grace = "10s"
[[identity]]
name = "local"
scheduler = %q
host = %q
port = %d
known_hosts = %q
work_dir = %q
group = %q
%s`, stateDir, web, demoOwner, c.Scheduler, c.Host, c.Port, c.KnownHosts, c.WorkDir, c.Group, creds.String())
	path := filepath.Join(stateDir, "ferry.toml")
	return path, reattach, os.WriteFile(path, []byte(text), 0o600)
}
