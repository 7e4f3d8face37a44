package main

import (
	"bytes"
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

	"github.com/BurntSushi/toml"
	hclog "github.com/hashicorp/go-hclog"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/plugin"
)

// connFlags are the flags a CLI command uses to find the agent.
type connFlags struct {
	fs       *flag.FlagSet
	socket   *string
	reattach *string // nil for commands that only use the socket
	config   *string
}

// addConnFlags adds --socket and --config to fs, and --reattach if withReattach.
func (c *cli) addConnFlags(fs *flag.FlagSet, withReattach bool) connFlags {
	cf := connFlags{
		fs:     fs,
		socket: fs.String("socket", "", "the agent's socket (default $FERRY_SOCKET, else agent.socket from --config, else "+defaultSocket+")"),
		config: fs.String("config", defaultConfig, "configuration file, read only to find the agent's socket or reattach file"),
	}
	if withReattach {
		cf.reattach = fs.String("reattach", "", "attach through the agent's reattach file instead of its socket (default $FERRY_REATTACH)")
	}
	return cf
}

// defaultSocket is where the CLI looks for the agent when nothing says otherwise.
var defaultSocket = config.Default().Agent.Socket

// connect reaches the agent: --socket, else --reattach, else $FERRY_SOCKET, else $FERRY_REATTACH,
// else the socket named in the config file, else defaultSocket.
func (c *cli) connect(cf connFlags) (*plugin.Client, error) {
	set := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *cf.socket != "":
		return c.dialSocket(*cf.socket)
	case cf.reattach != nil && *cf.reattach != "":
		return attach(*cf.reattach)
	case c.getenv("FERRY_SOCKET") != "":
		return c.dialSocket(c.getenv("FERRY_SOCKET"))
	case cf.reattach != nil && c.getenv("FERRY_REATTACH") != "":
		return attach(c.getenv("FERRY_REATTACH"))
	}
	path, err := socketFromConfig(*cf.config, set["config"])
	if err != nil {
		return nil, err
	}
	return c.dialSocket(path)
}

func (c *cli) dialSocket(path string) (*plugin.Client, error) {
	cl, err := plugin.DialSocket(path)
	if err != nil {
		return nil, fmt.Errorf("reach the agent: %w (pass --socket PATH if it listens elsewhere)", err)
	}
	return cl, nil
}

func attach(path string) (*plugin.Client, error) {
	cl, err := plugin.Attach(path, hclog.NewNullLogger())
	if err != nil {
		return nil, fmt.Errorf("attach to the agent (%s): %w; is `ferry agent` running?", path, err)
	}
	return cl, nil
}

// socketFromConfig returns agent.socket from the configuration file at path, read leniently (only
// that key, no validation): a member may not be able to read the rest, or the key files it names.
// A missing or unreadable file gives defaultSocket unless the user named it explicitly.
func socketFromConfig(path string, explicit bool) (string, error) {
	var f struct {
		Agent struct {
			Socket *string `toml:"socket"`
		} `toml:"agent"`
	}
	_, err := toml.DecodeFile(path, &f)
	switch {
	case err != nil && explicit:
		return "", fmt.Errorf("find the agent's socket: %w (or pass --socket)", err)
	case err != nil, f.Agent.Socket == nil:
		return defaultSocket, nil
	case *f.Agent.Socket == "":
		return "", fmt.Errorf("the agent's socket is disabled in %s (agent.socket is empty): pass --socket or --reattach", path)
	}
	return *f.Agent.Socket, nil
}

// parseArgs parses args with fs, allowing flags after positional arguments ("identity add NAME
// --host H"); everything after "--" is positional. It returns the positional arguments, or a
// usageError.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if fo, ok := fs.Output().(*flagOutput); ok {
			fo.flush(errors.Is(err, flag.ErrHelp))
		}
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{} // the flag package has printed the problem and the flags
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first positional argument, or after "--", which makes the rest
		// positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagSet returns an empty flag set for the command name. What the flag package prints goes to
// standard output when it is the help that -h or --help asked for (exit status 0), else, with the
// problem, to standard error (exit status 2).
func (c *cli) flagSet(name string) *flag.FlagSet {
	return newFlagSet("ferry "+name, c.out, c.errOut)
}

func newFlagSet(name string, out, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(&flagOutput{out: out, errOut: errOut})
	return fs
}

// flagOutput holds what the flag package prints during one Parse, until parseArgs knows where
// it belongs.
type flagOutput struct {
	buf         bytes.Buffer
	out, errOut io.Writer
}

func (f *flagOutput) Write(p []byte) (int, error) { return f.buf.Write(p) }

// flush sends what was printed to standard output (help) or standard error.
func (f *flagOutput) flush(help bool) {
	if f.buf.Len() == 0 {
		return
	}
	w := f.errOut
	if help {
		w = f.out
	}
	_, _ = w.Write(f.buf.Bytes())
	f.buf.Reset()
}

// helpText is a help page asked for with -h, --help or help: printed on standard output, exit
// status 0.
type helpText string

func (h helpText) Error() string { return string(h) }

// parseNoArgs parses args with fs and fails if any positional argument is left.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
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

func (c *cli) submit(args []string) error {
	fs := c.flagSet("submit")
	cf := c.addConnFlags(fs, true)
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
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *identity == "" || *user == "" {
		return usagef("usage: ferry submit --identity ID --user U [--cpus N --mem 2G --time 10m --queue Q] SCRIPT")
	}
	script, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	memMB, err := parseMem(*mem)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = strings.TrimSuffix(baseName(pos[0]), ".sh")
	}
	cl, err := c.connect(cf)
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
	fmt.Fprintln(c.out, job.ID)
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func (c *cli) jobs(args []string) error {
	fs := c.flagSet("jobs")
	cf := c.addConnFlags(fs, true)
	identity := fs.String("identity", "", "only this identity")
	user := fs.String("user", "", "only this user")
	active := fs.Bool("active", false, "only jobs still tracked")
	asJSON := fs.Bool("json", false, "JSON lines instead of a table")
	watch := fs.Bool("watch", false, "keep printing state changes until interrupted")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cl, err := c.connect(cf)
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
	// shown is what was last printed of each job: the watch stream starts with the current state
	// of every active job and may repeat a state, and only a change is worth a line.
	shown := make(map[string]string, len(jobs))
	key := func(v jobView) string { b, _ := json.Marshal(v); return string(b) } // ExitCode is a pointer
	for _, j := range jobs {
		shown[j.ID] = key(jobJSON(j))
	}
	if *asJSON {
		enc := json.NewEncoder(c.out)
		for _, j := range jobs {
			if err := enc.Encode(jobJSON(j)); err != nil {
				return err
			}
		}
	} else {
		printJobs(c.out, jobs, true)
	}
	if !*watch {
		return nil
	}
	err = cl.Service().Watch(ctx, plugin.WatchRequest{Identity: *identity, User: *user}, func(ev plugin.JobEvent) error {
		v := jobJSON(ev.Job)
		k := key(v)
		if last, ok := shown[v.ID]; ok && last == k {
			return nil
		}
		shown[v.ID] = k
		if *asJSON {
			return json.NewEncoder(c.out).Encode(v)
		}
		printJobs(c.out, []plugin.Job{ev.Job}, false)
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

// printJobs prints jobs as a table, with its header line when header is set (a watch prints one
// line per change under the first listing's header).
func printJobs(w io.Writer, jobs []plugin.Job, header bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "ID\tUSER\tNAME\tJOBID\tSTATUS\tSTATE\tWHY\tQUEUE\tSUBMITTED\tSTARTED\tENDED\tEXIT")
	}
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

func (c *cli) cancel(args []string) error {
	fs := c.flagSet("cancel")
	cf := c.addConnFlags(fs, true)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usagef("usage: ferry cancel ID...")
	}
	cl, err := c.connect(cf)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cl.Service().Cancel(ctx, ids)
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range res {
		if r.Error != "" {
			failed++
			fmt.Fprintf(c.errOut, "%s: %s\n", r.ID, r.Error)
		} else {
			fmt.Fprintf(c.out, "%s: cancelled\n", r.ID)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cancels failed", failed, len(res))
	}
	return nil
}
