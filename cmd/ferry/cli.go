package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/plugin"
)

// connFlags are the flags every CLI command shares to find the agent.
type connFlags struct {
	reattach *string
	config   *string
}

func addConnFlags(fs *flag.FlagSet) connFlags {
	return connFlags{
		reattach: fs.String("reattach", os.Getenv("FERRY_REATTACH"), "agent reattach file (default $FERRY_REATTACH, else from --config)"),
		config:   fs.String("config", defaultConfig, "configuration file, used to find the reattach file"),
	}
}

func (c connFlags) attach() (*plugin.Client, error) {
	path := *c.reattach
	if path == "" {
		cfg, err := config.Load(*c.config)
		if err != nil {
			return nil, fmt.Errorf("find the agent: %w (or pass --reattach)", err)
		}
		path = reattachPath(cfg)
	}
	cl, err := plugin.Attach(path, hclog.NewNullLogger())
	if err != nil {
		return nil, fmt.Errorf("attach to the agent (%s): %w; is `ferry agent` running?", path, err)
	}
	return cl, nil
}

// parseMem reads "512M", "2G", "1T" or a plain number of MiB.
func parseMem(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult, s = -1024, s[:len(s)-1]
	case "M":
		s = s[:len(s)-1]
	case "G":
		mult, s = 1024, s[:len(s)-1]
	case "T":
		mult, s = 1024*1024, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid memory %q (use e.g. 512M or 2G)", s)
	}
	if mult < 0 {
		return (n + 1023) / 1024, nil
	}
	return n * mult, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdSubmit(args []string) error {
	fs := flag.NewFlagSet("submit", flag.ExitOnError)
	cf := addConnFlags(fs)
	identity := fs.String("identity", "", "managed identity (required)")
	user := fs.String("user", "", "member's Linux user on the identity (required)")
	cpus := fs.Int("cpus", 0, "CPUs")
	mem := fs.String("mem", "", "memory, e.g. 2G")
	walltime := fs.Duration("time", 0, "time limit, e.g. 10m")
	queue := fs.String("queue", "", "queue / partition")
	account := fs.String("account", "", "account to charge")
	name := fs.String("name", "", "job name (default: the script's file name)")
	dir := fs.String("dir", "", "task dir relative to the work dir (default ferry/USER/JOBID)")
	token := fs.String("token", "", "idempotency token: resubmitting with it returns the same job")
	var extra multiFlag
	fs.Var(&extra, "extra", "extra scheduler option, verbatim (repeatable)")
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *identity == "" || *user == "" {
		return errors.New("usage: ferry submit --identity ID --user U [--cpus N --mem 2G --time 10m --queue Q] SCRIPT")
	}
	script, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	memMB, err := parseMem(*mem)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = strings.TrimSuffix(baseName(fs.Arg(0)), ".sh")
	}
	cl, err := cf.attach()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	job, err := cl.Service().Submit(ctx, plugin.SubmitRequest{
		Identity: *identity, User: *user, Token: *token, Name: *name, Dir: *dir, Script: script,
		Resources: plugin.Resources{CPUs: *cpus, MemoryMB: memMB, Time: *walltime, Queue: *queue, Account: *account, Extra: extra},
	})
	if err != nil {
		return err
	}
	fmt.Println(job.ID)
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func cmdJobs(args []string) error {
	fs := flag.NewFlagSet("jobs", flag.ExitOnError)
	cf := addConnFlags(fs)
	identity := fs.String("identity", "", "only this identity")
	user := fs.String("user", "", "only this user")
	active := fs.Bool("active", false, "only jobs still tracked")
	asJSON := fs.Bool("json", false, "JSON lines instead of a table")
	watch := fs.Bool("watch", false, "keep printing state changes until interrupted")
	_ = fs.Parse(args)
	cl, err := cf.attach()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	jobs, err := cl.Service().ListJobs(ctx, plugin.ListRequest{Identity: *identity, User: *user, ActiveOnly: *active})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, j := range jobs {
			if err := enc.Encode(jobJSON(j)); err != nil {
				return err
			}
		}
	} else {
		printJobs(os.Stdout, jobs)
	}
	if !*watch {
		return nil
	}
	err = cl.Service().Watch(ctx, plugin.WatchRequest{Identity: *identity, User: *user}, func(ev plugin.JobEvent) error {
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(jobJSON(ev.Job))
		}
		printJobs(os.Stdout, []plugin.Job{ev.Job})
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// jobView is the CLI's JSON shape of a job.
type jobView struct {
	ID          string `json:"id"`
	Identity    string `json:"identity"`
	User        string `json:"user"`
	Name        string `json:"name"`
	SchedulerID string `json:"scheduler_id"`
	Status      string `json:"status"`
	State       string `json:"state,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Queue       string `json:"queue,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Dir         string `json:"dir"`
	Submitted   string `json:"submitted,omitempty"`
	Started     string `json:"started,omitempty"`
	Ended       string `json:"ended,omitempty"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	Error       string `json:"error,omitempty"`
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func jobJSON(j plugin.Job) jobView {
	return jobView{ID: j.ID, Identity: j.Identity, User: j.User, Name: j.Name, SchedulerID: j.SchedulerID,
		Status: j.Status, State: j.State, Reason: j.Reason, Queue: j.Queue, Owner: j.Owner, Dir: j.Dir,
		Submitted: ts(j.Submitted), Started: ts(j.Started), Ended: ts(j.Ended), ExitCode: j.ExitCode, Error: j.Error}
}

func printJobs(w io.Writer, jobs []plugin.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tNAME\tJOBID\tSTATUS\tSTATE\tWHY\tQUEUE\tSUBMITTED\tSTARTED\tENDED\tEXIT")
	short := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("01-02 15:04:05")
	}
	for _, j := range jobs {
		exit := "-"
		if j.ExitCode != nil {
			exit = strconv.Itoa(*j.ExitCode)
		}
		why := j.Reason
		if j.Error != "" {
			why = j.Error
		}
		if why == "" || why == "None" {
			why = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.User, dash(j.Name), dash(j.SchedulerID),
			j.Status, dash(j.State), why, dash(j.Queue), short(j.Submitted), short(j.Started), short(j.Ended), exit)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdCancel(args []string) error {
	fs := flag.NewFlagSet("cancel", flag.ExitOnError)
	cf := addConnFlags(fs)
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("usage: ferry cancel ID...")
	}
	cl, err := cf.attach()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cl.Service().Cancel(ctx, fs.Args())
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range res {
		if r.Error != "" {
			failed++
			fmt.Fprintf(os.Stderr, "%s: %s\n", r.ID, r.Error)
		} else {
			fmt.Printf("%s: cancelled\n", r.ID)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cancels failed", failed, len(res))
	}
	return nil
}
