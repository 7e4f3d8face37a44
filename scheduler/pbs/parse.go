package pbs

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// ErrNoHistory means a PBS Pro server answered a job-history query (qstat -x) with no job at all,
// which is what a server without job history (job_history_enable = False) does.
var ErrNoHistory = errors.New("PBS server keeps no job history: qstat -x lists no job; set the pbspro history option to false")

var (
	// submitIDLine is the line qsub prints for a submitted job: "<seq>[.<server>]", an array
	// "<seq>[]" or a subjob "<seq>[<index>]", each with an optional server suffix.
	submitIDLine = regexp.MustCompile(`^([0-9]+(?:\[[0-9]*\])?(?:\.[A-Za-z0-9][A-Za-z0-9._-]*)?)$`)
	// submitWaiting is how an interactive or blocking qsub names the job: "qsub: waiting for job
	// ID to start", "qsub: job ID ready".
	submitWaiting = regexp.MustCompile(`^qsub: (?:waiting for job|job) ([0-9]+(?:\[[0-9]*\])?(?:\.[A-Za-z0-9][A-Za-z0-9._-]*)?) (?:to start|ready|completed)\b`)
)

// ParseSubmit returns the job id from qsub's stdout: the last line that is a bare id
// ("1234.server", "1234[].server") or qsub's "waiting for job ID to start", ignoring surrounding
// blanks, so warnings printed before it do not matter. Empty or unrecognised output is an error
// wrapping scheduler.ErrParse that quotes the last line; when qsub printed one of its own error
// lines ("qsub: ...") it wraps scheduler.ErrSubmitRejected too. Every id returned starts with a
// digit.
func (c *core) ParseSubmit(stdout []byte) (scheduler.JobID, error) {
	id, last, qsubErr := adapter.ScanSubmit(stdout, func(l string) bool {
		return strings.HasPrefix(l, "qsub:")
	}, submitIDLine, submitWaiting)
	switch {
	case id != "":
		return scheduler.JobID(id), nil
	case last == "":
		return "", fmt.Errorf("qsub printed nothing: %w", scheduler.ErrParse)
	case qsubErr != "":
		return "", fmt.Errorf("%s: %w: %w", adapter.Bound(qsubErr), scheduler.ErrSubmitRejected, scheduler.ErrParse)
	}
	return "", fmt.Errorf("no job id in qsub output; last line %q: %w", adapter.Bound(last), scheduler.ErrParse)
}

// ParseStatus parses the output of StatusCommand (qstat -f -F json) with ParseQstatJSON. With
// Options.History set, output that lists no job at all is ErrNoHistory: the query names at least
// one job, and a server with history knows every job for two weeks after it ends.
func (p *Pro) ParseStatus(stdout []byte) ([]scheduler.JobState, error) {
	out, err := ParseQstatJSON(stdout)
	if err != nil {
		return nil, err
	}
	if p.history && len(out) == 0 && len(strings.TrimSpace(string(stdout))) > 0 {
		return nil, ErrNoHistory
	}
	return out, nil
}

// ParseAccounting parses the output of AccountingCommand with ParseQstatJSON. No job listed is no
// job found, not an error.
func (p *Pro) ParseAccounting(stdout []byte) ([]scheduler.JobState, error) {
	return ParseQstatJSON(stdout)
}

// ParseStatus parses the output of StatusCommand (qstat -f -1) with ParseQstatFull.
func (t *Torque) ParseStatus(stdout []byte) ([]scheduler.JobState, error) {
	return ParseQstatFull(stdout)
}

// rawJob is one job of a qstat -f listing: its id and attributes by name ("job_state",
// "Resource_List.walltime"). Nested JSON objects are not kept.
type rawJob struct {
	id    string
	attrs map[string]string
}

func (j *rawJob) get(keys ...string) string {
	for _, k := range keys {
		if v, ok := j.attrs[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// build turns a job's attributes into a JobState: job_state (required), Exit_status or exit_status,
// queue, Job_Owner (user@host; euser when absent), Job_Name, comment (the reason, except for a
// running job), and the times qtime (or ctime), stime (Torque: start_time) and obittime (Torque:
// comp_time; mtime for a finished job that has neither).
func (j *rawJob) build() (scheduler.JobState, error) {
	js := scheduler.JobState{ID: scheduler.JobID(j.id)}
	if !adapter.ValidID(j.id) {
		return js, fmt.Errorf("job id %q is empty or contains a blank: %w", j.id, scheduler.ErrParse)
	}
	js.Raw = j.get("job_state")
	if js.Raw == "" {
		return js, fmt.Errorf("job %q has no job_state: %w", j.id, scheduler.ErrParse)
	}
	if ec := j.get("Exit_status", "exit_status"); ec != "" {
		if n, err := strconv.Atoi(ec); err == nil {
			js.ExitCode = &n
			if n > 256 {
				js.Signal = n - 256 // killed by a signal (Torque, PBS Pro on some systems)
			}
		}
	}
	js.Status = refine(js.Raw, StateStatus(js.Raw), j.get("substate"), js.ExitCode)
	js.Queue = j.get("queue")
	js.User = j.get("Job_Owner")
	if i := strings.IndexByte(js.User, '@'); i >= 0 {
		js.User = js.User[:i]
	}
	if js.User == "" {
		js.User = j.get("euser")
	}
	js.Name = j.get("Job_Name")
	if js.Status != scheduler.StatusRunning {
		js.Reason = j.get("comment")
		if js.Reason == "" && js.Status == scheduler.StatusHeld {
			if h := j.get("Hold_Types"); h != "" && h != "n" {
				js.Reason = "Hold_Types " + h
			}
		}
	}
	js.Submitted = firstTime(j.get("qtime"), j.get("ctime"))
	js.Started = firstTime(j.get("stime"), j.get("start_time"))
	js.Ended = firstTime(j.get("obittime"), j.get("comp_time"))
	if js.Status == scheduler.StatusPending {
		js.Started = time.Time{}
	}
	if !js.Status.Final() {
		js.Ended = time.Time{}
	} else if js.Ended.IsZero() {
		js.Ended = parseTime(j.get("mtime"))
	}
	return js, nil
}

func firstTime(vs ...string) time.Time {
	for _, v := range vs {
		if t := parseTime(v); !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func buildAll(jobs []rawJob) ([]scheduler.JobState, error) {
	out := make([]scheduler.JobState, 0, len(jobs))
	for i := range jobs {
		js, err := jobs[i].build()
		if err != nil {
			return nil, err
		}
		out = append(out, js)
	}
	return out, nil
}

var (
	fullJobLine = regexp.MustCompile(`^Job Id:\s*(.*?)\s*$`)
	// fullAttrLine is an attribute line, indented by four spaces (PBS Pro, Torque) or one TAB
	// (Slurm's Torque wrappers); group 1 is the indentation.
	fullAttrLine = regexp.MustCompile(`^( {4}|\t)([A-Za-z_][A-Za-z0-9_.-]*) =(?: (.*))?$`)
)

// ParseQstatFull parses qstat -f text, from PBS Pro or Torque, with or without -1: "Job Id: ID"
// starts a job, "    name = value" (four spaces) sets an attribute. A value qstat wrapped
// continues on lines that start with a TAB (or, in copies that lost the TAB, with more than four
// spaces); those pieces are joined without a separator, because qstat wraps mid-word. A line at
// column 0 inside a job (a value that itself contained a newline: an exported shell function, a
// multi-line comment) continues the last value after a newline. Blank lines are ignored.
//
// Slurm's Torque wrappers indent attributes with one TAB instead ("Job Id:\t221",
// "\tjob_state = C") and never wrap. The first line of each job decides: when it is a
// TAB-indented attribute, every TAB-indented "name = value" line of that job is an attribute
// (other indented lines still continue the last value); otherwise only four-space lines are.
//
// A non-blank line before the first "Job Id:", a first line of a job that is not an attribute,
// and a job without job_state are errors wrapping scheduler.ErrParse that name the line or job.
// Empty output is no jobs.
func ParseQstatFull(stdout []byte) ([]scheduler.JobState, error) {
	jobs, err := readQstatFull(stdout)
	if err != nil {
		return nil, err
	}
	return buildAll(jobs)
}

// readQstatFull reads qstat -f text into its jobs' attributes, as ParseQstatFull describes.
func readQstatFull(stdout []byte) ([]rawJob, error) {
	var jobs []rawJob
	var cur *rawJob
	lastKey, indent := "", ""
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		if m := fullJobLine.FindStringSubmatch(line); m != nil {
			jobs = append(jobs, rawJob{id: m[1], attrs: map[string]string{}})
			cur, lastKey, indent = &jobs[len(jobs)-1], "", ""
			return nil
		}
		if cur == nil {
			return fmt.Errorf("qstat -f line %d %q comes before any \"Job Id:\" line: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		if m := fullAttrLine.FindStringSubmatch(line); m != nil && (m[1] == indent || indent == "" && lastKey == "") {
			indent = m[1]
			if _, dup := cur.attrs[m[2]]; !dup {
				cur.attrs[m[2]] = m[3]
			}
			lastKey = m[2]
			return nil
		}
		if lastKey == "" {
			return fmt.Errorf("qstat -f line %d %q is not an attribute of job %q: %w", no, adapter.Bound(line), cur.id, scheduler.ErrParse)
		}
		switch {
		case line[0] == '\t' || line[0] == ' ':
			cur.attrs[lastKey] += strings.TrimLeft(line, " \t")
		default:
			cur.attrs[lastKey] += "\n" + line
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// ParseQstatTable parses qstat's one-line-per-job tables: the default layout ("Job id Name User
// Time Use S Queue") and the alternate one of -a, -u, -T, -n, -s ("Job ID Username Queue Jobname
// SessID NDS TSK Memory Time S Time"), from PBS Pro or Torque, with their "server:" lines, several
// header rows and one block per server. Each table is found by its line of dashes; the row above it
// names the columns, of which "Job ID" and "S" are required. Rows are split on blanks, which is
// safe because PBS allows no blank inside any of these fields; indented lines under a row (-n
// nodes, -s comments) are skipped. Ids are kept as printed, which may be cut short
// ("2596901[].pbsse"). Non-blank output without any table, a header without the required columns
// and a row with the wrong number of fields are errors wrapping scheduler.ErrParse that name the
// line.
func ParseQstatTable(stdout []byte) ([]scheduler.JobState, error) {
	lines := adapter.SplitLines(stdout)
	var out []scheduler.JobState
	type cols struct{ n, id, state, user, queue, name int }
	var tbl *cols
	tables, content := 0, false
	for i, line := range lines {
		no := i + 1
		if strings.TrimSpace(line) == "" {
			tbl = nil
			continue
		}
		content = true
		if spans := dashGroups(line); len(spans) >= 4 {
			if i == 0 {
				return nil, fmt.Errorf("qstat line 1 is a line of dashes without a header above it: %w", scheduler.ErrParse)
			}
			c := cols{n: len(spans), id: -1, state: -1, user: -1, queue: -1, name: -1}
			head := lines[i-1]
			for k, s := range spans {
				end := s[1]
				if k == len(spans)-1 || end > len(head) {
					end = len(head)
				}
				label := ""
				if s[0] < end {
					label = strings.ToUpper(strings.TrimSpace(head[s[0]:end]))
				}
				switch {
				case k == 0 && strings.HasPrefix(label, "JOB"):
					c.id = k
				case label == "S":
					c.state = k
				case label == "USER" || label == "USERNAME":
					c.user = k
				case label == "QUEUE":
					c.queue = k
				case label == "NAME" || label == "JOBNAME":
					c.name = k
				}
			}
			if c.id < 0 || c.state < 0 {
				return nil, fmt.Errorf("qstat table header on line %d %q has no \"Job ID\" and \"S\" columns: %w", i, adapter.Bound(head), scheduler.ErrParse)
			}
			tbl = &c
			tables++
			continue
		}
		if tbl == nil || line[0] == ' ' || line[0] == '\t' {
			continue // server lines, header rows, -n/-s continuation lines
		}
		if i+1 < len(lines) && len(dashGroups(lines[i+1])) >= 4 {
			continue // the header of the next table
		}
		f := strings.Fields(line)
		if len(f) != tbl.n {
			return nil, fmt.Errorf("qstat line %d has %d fields, want %d: %q: %w", no, len(f), tbl.n, adapter.Bound(line), scheduler.ErrParse)
		}
		get := func(k int) string {
			if k < 0 {
				return ""
			}
			return f[k]
		}
		if !adapter.ValidID(f[tbl.id]) {
			return nil, fmt.Errorf("qstat line %d has an invalid job id %q: %w", no, adapter.Bound(f[tbl.id]), scheduler.ErrParse)
		}
		js := scheduler.JobState{ID: scheduler.JobID(f[tbl.id]), Raw: f[tbl.state]}
		js.Status = StateStatus(js.Raw)
		js.User, js.Queue, js.Name = get(tbl.user), get(tbl.queue), get(tbl.name)
		out = append(out, js)
	}
	if content && tables == 0 {
		return nil, fmt.Errorf("qstat output has no table header (a row of column names over a line of dashes): %w", scheduler.ErrParse)
	}
	return out, nil
}

// dashGroups returns the [start, end) spans of the runs of '-' in line, or nil when line holds
// anything but dashes and blanks.
func dashGroups(line string) [][2]int {
	var spans [][2]int
	start := -1
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '-':
			if start < 0 {
				start = i
			}
		case ' ', '\t':
			if start >= 0 {
				spans = append(spans, [2]int{start, i})
				start = -1
			}
		default:
			return nil
		}
	}
	if start >= 0 {
		spans = append(spans, [2]int{start, len(line)})
	}
	return spans
}
