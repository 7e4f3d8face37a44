package lsf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// continuationIndent is the least indentation of a line that continues the line before it in
// bjobs -l (26 spaces) and bhist -l (21 spaces) output, which LSF wraps at column 80.
const continuationIndent = 20

var (
	longSeparator = regexp.MustCompile(`^-{20,}$`)
	longJob       = regexp.MustCompile(`^Job <([^>]*)>`)
	longName      = regexp.MustCompile(`, Job Name <([^>]*)>`)
	longUser      = regexp.MustCompile(`, User <([^>]*)>`)
	longStatus    = regexp.MustCompile(`, Status <([^>]*)>`)
	longQueue     = regexp.MustCompile(`, Queue <([^>]*)>`)
	longToQueue   = regexp.MustCompile(`to Queue <([^>]*)>`)
	longEvent     = regexp.MustCompile(`^((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?: [0-9]{4})?): (.*)$`)
	longExitCode  = regexp.MustCompile(`Exited with exit code (-?[0-9]+)`)
	longExitSig   = regexp.MustCompile(`Exited by (?:LSF )?signal ([0-9]+)`)
	longCompleted = regexp.MustCompile(`^Completed <(done|exit)>[;.]?\s*(.*?)\.?$`)
)

// longBlock is one job of bjobs -l or bhist -l output: its lines with the wrapping undone.
type longBlock struct {
	line  int // where the job's "Job <" line starts
	lines []string
}

// longBlocks splits bjobs -l or bhist -l output into jobs (separated by lines of dashes), undoing
// LSF's wrapping: a line indented by continuationIndent or more spaces continues the one before,
// joined without a separator because LSF cuts mid-word. Text before a job's "Job <" line is
// skipped; a block with text but no "Job <" line is an error wrapping scheduler.ErrParse.
func longBlocks(stdout []byte, what string) ([]longBlock, error) {
	var blocks []longBlock
	var cur *longBlock
	var stray string
	strayLine := 0
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if longSeparator.MatchString(strings.TrimSpace(line)) {
			if cur == nil && stray != "" {
				return fmt.Errorf("%s line %d %q comes before any \"Job <\" line: %w", what, strayLine, adapter.Bound(stray), scheduler.ErrParse)
			}
			cur, stray = nil, ""
			return nil
		}
		if cur == nil {
			if longJob.MatchString(line) {
				blocks = append(blocks, longBlock{line: no, lines: []string{line}})
				cur = &blocks[len(blocks)-1]
			} else if t := strings.TrimSpace(line); t != "" && stray == "" {
				stray, strayLine = t, no
			}
			return nil
		}
		if len(line) > continuationIndent && strings.TrimLeft(line[:continuationIndent], " ") == "" && len(cur.lines) > 0 {
			cur.lines[len(cur.lines)-1] += strings.TrimLeft(line, " ")
			return nil
		}
		cur.lines = append(cur.lines, line)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cur == nil && stray != "" {
		return nil, fmt.Errorf("%s line %d %q comes before any \"Job <\" line: %w", what, strayLine, adapter.Bound(stray), scheduler.ErrParse)
	}
	return blocks, nil
}

// header reads a job's first line ("Job <N>, Job Name <x>, User <u>, Project <p>, Status <S>,
// Queue <q>, Command <...>") up to its Command, which may contain anything.
func (b *longBlock) header(js *scheduler.JobState) (status string, err error) {
	h := b.lines[0]
	if i := strings.Index(h, ", Command <"); i >= 0 {
		h = h[:i]
	}
	id := ""
	if m := longJob.FindStringSubmatch(b.lines[0]); m != nil {
		id = m[1]
	}
	if !adapter.ValidID(id) || id[0] < '0' || id[0] > '9' {
		return "", fmt.Errorf("job id %q on line %d is not a number: %w", adapter.Bound(id), b.line, scheduler.ErrParse)
	}
	js.ID = scheduler.JobID(id)
	if m := longName.FindStringSubmatch(h); m != nil {
		js.Name = m[1]
	}
	if m := longUser.FindStringSubmatch(h); m != nil {
		js.User = m[1]
	}
	if m := longQueue.FindStringSubmatch(h); m != nil {
		js.Queue = m[1]
	}
	if m := longStatus.FindStringSubmatch(h); m != nil {
		status = strings.TrimSpace(m[1])
	}
	return status, nil
}

// events reads a job's timestamped events ("Mon Aug  4 12:28:51 2014: Submitted from host ...")
// into js (times, exit code, queue, exit reason) and returns the status they imply, for bhist,
// whose output has no Status field: the last of PEND (submitted, requeued), RUN (dispatched,
// started, resumed), USUSP or PSUSP (suspended by the user or an administrator, after or before
// dispatch), SSUSP (suspended by LSF), DONE and EXIT.
func (b *longBlock) events(js *scheduler.JobState) string {
	status := ""
	ran := false
	for _, l := range b.lines[1:] {
		m := longEvent.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		at, text := parseTime(m[1]), m[2]
		switch {
		case strings.HasPrefix(text, "Submitted"):
			status = "PEND"
			if js.Submitted.IsZero() {
				js.Submitted = at
			}
			if q := longToQueue.FindStringSubmatch(text); q != nil && js.Queue == "" {
				js.Queue = q[1]
			}
		case strings.HasPrefix(text, "Dispatched"), strings.HasPrefix(text, "Started"), strings.HasPrefix(text, "Starting"):
			status, ran = "RUN", true
			if js.Started.IsZero() {
				js.Started = at
			}
		case strings.HasPrefix(text, "Running"), strings.HasPrefix(text, "Resumed") && ran:
			status = "RUN"
		case strings.HasPrefix(text, "Resumed"):
			status = "PEND"
		case strings.HasPrefix(text, "Suspended by the user or administrator"):
			status = "PSUSP"
			if ran {
				status = "USUSP"
			}
		case strings.HasPrefix(text, "Suspended"):
			status = "SSUSP"
		case strings.Contains(text, "requeue") || strings.Contains(text, "Requeue"):
			status = "PEND"
		case strings.HasPrefix(text, "Done successfully"):
			status, js.Ended = "DONE", at
		case strings.HasPrefix(text, "Exited"):
			status, js.Ended = "EXIT", at
			if c := longExitCode.FindStringSubmatch(text); c != nil {
				if n, err := strconv.Atoi(c[1]); err == nil {
					js.ExitCode = &n
				}
			}
			if s := longExitSig.FindStringSubmatch(text); s != nil {
				js.Signal, _ = strconv.Atoi(s[1])
			}
		case longCompleted.MatchString(text):
			c := longCompleted.FindStringSubmatch(text)
			status = strings.ToUpper(c[1])
			if js.Ended.IsZero() {
				js.Ended = at
			}
			if c[2] != "" {
				js.Reason = c[2]
			}
		}
	}
	return status
}

// pendingReasons returns the lines of a " PENDING REASONS:" section, joined with "; ".
func (b *longBlock) pendingReasons() string {
	var reasons []string
	in := false
	for _, l := range b.lines[1:] {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "PENDING REASONS:"):
			in = true
		case in && t == "":
			in = false
		case in:
			reasons = append(reasons, strings.TrimSuffix(t, ";"))
		}
	}
	return strings.Join(reasons, "; ")
}

// ParseBjobsLong parses bjobs -l: per job, the id, name, user, status and queue of its first
// paragraph (wrapped lines joined, even where the wrap splits a keyword: "St" / "atus <EXIT>"),
// the times and exit code of its events, its PENDING REASONS as the reason of a pending job and
// the reason after "Completed <exit>;" as that of an ended one. Jobs are separated by lines of
// dashes. A job without a Status, text before the first job, and an id that is not a number are
// errors wrapping scheduler.ErrParse that name the line; empty output is no jobs.
func ParseBjobsLong(stdout []byte) ([]scheduler.JobState, error) {
	return parseLong(stdout, "bjobs -l", false)
}

// ParseBhistLong parses bhist -l, the accounting query: like ParseBjobsLong, except that bhist
// prints no Status, so the status is the one the job's last events imply (see longBlock.events):
// "Done successfully" or "Completed <done>" is DONE, "Exited with exit code N" or "Completed
// <exit>" is EXIT, with the exit reason ("TERM_RUNLIMIT: job killed after reaching LSF run time
// limit") as the reason. A job without any event is an error wrapping scheduler.ErrParse.
func ParseBhistLong(stdout []byte) ([]scheduler.JobState, error) {
	return parseLong(stdout, "bhist -l", true)
}

func parseLong(stdout []byte, what string, fromEvents bool) ([]scheduler.JobState, error) {
	blocks, err := longBlocks(stdout, what)
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.JobState, 0, len(blocks))
	for i := range blocks {
		b := &blocks[i]
		var js scheduler.JobState
		status, err := b.header(&js)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		evStatus := b.events(&js)
		if fromEvents || status == "" {
			status = evStatus
		}
		if status == "" {
			return nil, fmt.Errorf("%s job %s on line %d has no status: %w", what, js.ID, b.line, scheduler.ErrParse)
		}
		js.Raw = status
		js.Status = StateStatus(status)
		if status == "PEND" || status == "PSUSP" {
			js.Reason = b.pendingReasons()
		}
		if status == "DONE" && js.ExitCode == nil {
			zero := 0
			js.ExitCode = &zero
		}
		if !js.Status.Final() {
			js.Ended = time.Time{}
		}
		if js.Status == scheduler.StatusPending {
			js.Started = time.Time{}
		}
		settle(&js)
		out = append(out, js)
	}
	return out, nil
}
