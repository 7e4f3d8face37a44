package sge

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

var (
	// submitTerse is what qsub -terse prints: the job id, with the task range for an array.
	submitTerse = regexp.MustCompile(`^([0-9]+)(?:\.[0-9]+-[0-9]+:[0-9]+)?$`)
	// submitSentence is what qsub prints without -terse.
	submitSentence = regexp.MustCompile(`^Your job(?:-array)? ([0-9]+)(?:\.[0-9]+-[0-9]+:[0-9]+)? \(.*\) has been submitted\.?$`)
)

// ParseSubmit returns the job id from qsub's stdout: the last line that is a bare id ("123", or
// "123.1-10:1" for an array, as -terse prints them) or qsub's "Your job 123 ("name") has been
// submitted" (also "Your job-array 123.1-10:1 ..."), ignoring surrounding blanks, so messages
// printed before it do not matter. The task range is dropped. Empty or unrecognised output is an
// error wrapping scheduler.ErrParse that quotes the last line; when qsub said "Unable to run job"
// it wraps scheduler.ErrSubmitRejected too.
func (s *SGE) ParseSubmit(stdout []byte) (scheduler.JobID, error) {
	id, last, refused := adapter.ScanSubmit(stdout, func(l string) bool {
		return strings.HasPrefix(l, "Unable to run job") || strings.HasPrefix(l, "qsub: ")
	}, submitTerse, submitSentence)
	switch {
	case id != "":
		return scheduler.JobID(id), nil
	case last == "":
		return "", fmt.Errorf("qsub printed nothing: %w", scheduler.ErrParse)
	case refused != "":
		return "", fmt.Errorf("qsub: %s: %w: %w", adapter.Bound(refused), scheduler.ErrSubmitRejected, scheduler.ErrParse)
	}
	return "", fmt.Errorf("no job id in qsub output; last line %q: %w", adapter.Bound(last), scheduler.ErrParse)
}

// ParseStatus parses the output of StatusCommand with ParseQstatXML.
func (s *SGE) ParseStatus(stdout []byte) ([]scheduler.JobState, error) {
	return ParseQstatXML(stdout)
}

// ParseAccounting parses the output of AccountingCommand with ParseQacct.
func (s *SGE) ParseAccounting(stdout []byte) ([]scheduler.JobState, error) {
	return ParseQacct(stdout)
}

// xmlJob collects the direct children of one <job_list> element.
type xmlJob struct {
	depth  int // nesting depth of the <job_list> element
	queue  string
	fields map[string]string
	line   int
}

// ParseQstatXML parses qstat -xml (plain, -ext, -urg, -pri, -f, -F; any user filter). Each
// <job_list> element is a job, wherever it appears (under queue_info, job_info, or a Queue-List of
// -f/-F), and only its direct children are read: JB_job_number and state (required), JB_name,
// JB_owner, queue_name (or the enclosing Queue-List's name), JB_submission_time, JAT_start_time
// and tasks. A running array task is "JOB.TASK"; a pending task range is "JOB.RANGE" ("1046.1-10:2").
// Queue-List elements carry a <state> of their own (queue states) that is never read as a job's.
// Empty output and a <job_info> without jobs are no jobs; anything that is not qstat XML, and a job
// without a number or state, is an error wrapping scheduler.ErrParse that names the line.
func ParseQstatXML(stdout []byte) ([]scheduler.JobState, error) {
	if len(bytes.TrimSpace(stdout)) == 0 {
		return nil, nil
	}
	dec := xml.NewDecoder(bytes.NewReader(stdout))
	var out []scheduler.JobState
	var stack []string
	var job *xmlJob
	var text strings.Builder
	queueList := "" // name of the enclosing Queue-List
	sawRoot := false
	fail := func(format string, a ...any) ([]scheduler.JobState, error) {
		line, _ := dec.InputPos()
		return nil, fmt.Errorf("qstat XML line %d: %s: %w", line, fmt.Sprintf(format, a...), scheduler.ErrParse)
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if len(stack) == 0 {
				if name != "job_info" {
					return fail("root element <%s> is not <job_info>", adapter.Bound(name))
				}
				sawRoot = true
			}
			stack = append(stack, name)
			text.Reset()
			switch {
			case job == nil && name == "job_list":
				line, _ := dec.InputPos()
				job = &xmlJob{depth: len(stack), queue: queueList, fields: map[string]string{}, line: line}
			case job == nil && name == "Queue-List":
				queueList = ""
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if len(stack) == 0 {
				return fail("unbalanced </%s>", adapter.Bound(t.Name.Local))
			}
			name := stack[len(stack)-1]
			switch {
			case job != nil && len(stack) == job.depth+1:
				if _, dup := job.fields[name]; !dup {
					job.fields[name] = strings.TrimSpace(text.String())
				}
			case job != nil && len(stack) == job.depth:
				js, err := job.build()
				if err != nil {
					return nil, fmt.Errorf("qstat XML job on line %d: %w", job.line, err)
				}
				out = append(out, js)
				job = nil
			case job == nil && name == "name" && len(stack) >= 2 && stack[len(stack)-2] == "Queue-List":
				queueList = strings.TrimSpace(text.String())
			}
			stack = stack[:len(stack)-1]
			text.Reset()
		}
	}
	if !sawRoot {
		return nil, fmt.Errorf("qstat XML has no <job_info> element: %w", scheduler.ErrParse)
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("qstat XML ends inside <%s>: %w", stack[len(stack)-1], scheduler.ErrParse)
	}
	return out, nil
}

func (j *xmlJob) build() (scheduler.JobState, error) {
	num := j.fields["JB_job_number"]
	if !adapter.IsDigits(num) {
		return scheduler.JobState{}, fmt.Errorf("job number %q is not a number: %w", adapter.Bound(num), scheduler.ErrParse)
	}
	id := num
	if t := j.fields["tasks"]; t != "" {
		id += "." + t
	}
	if !adapter.ValidID(id) {
		return scheduler.JobState{}, fmt.Errorf("job id %q contains a blank: %w", adapter.Bound(id), scheduler.ErrParse)
	}
	js := scheduler.JobState{ID: scheduler.JobID(id), Raw: j.fields["state"]}
	if js.Raw == "" {
		return js, fmt.Errorf("job %s has no state: %w", id, scheduler.ErrParse)
	}
	js.Status = StateStatus(js.Raw)
	js.Reason = stateReason(js.Raw)
	js.Name = j.fields["JB_name"]
	js.User = j.fields["JB_owner"]
	js.Queue = j.fields["queue_name"]
	if js.Queue == "" {
		js.Queue = j.queue
	}
	js.Submitted = parseTime(j.fields["JB_submission_time"])
	if js.Status != scheduler.StatusPending {
		js.Started = parseTime(j.fields["JAT_start_time"])
	}
	return js, nil
}

// tableDate and tableTime are the "submit/start at" column of the plain qstat table.
var (
	tableDate = regexp.MustCompile(`^[0-9]{2}/[0-9]{2}/[0-9]{4}$`)
	tableTime = regexp.MustCompile(`^[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
)

// ParseQstatTable parses the plain qstat table ("job-ID prior name user state submit/start at
// queue [jclass] slots ja-task-ID", Univa's jclass column included) after its header and line of
// dashes. Columns are not aligned (a long job id pushes the row right, the queue and task columns
// are empty for many rows), so each row is read around its "submit/start at" date and time: before
// them job-ID, prior, name (which may hold blanks), user and state; after them the queue and class
// (if any), slots (the first number) and the task id or range (if any). A task makes the id
// "JOB.TASK". Output without the header, and a row without the date and time, are errors wrapping
// scheduler.ErrParse that name the line; empty output is no jobs.
func ParseQstatTable(stdout []byte) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	state := 0 // 0 before the header, 1 after it (expect dashes), 2 in rows
	err := adapter.EachLine(stdout, func(no int, line string) error {
		t := strings.TrimSpace(line)
		if t == "" {
			return nil
		}
		switch state {
		case 0:
			if !strings.HasPrefix(t, "job-ID") {
				return fmt.Errorf("qstat line %d %q is not the \"job-ID\" header: %w", no, adapter.Bound(line), scheduler.ErrParse)
			}
			state = 1
			return nil
		case 1:
			if strings.Trim(t, "-") != "" {
				return fmt.Errorf("qstat line %d %q is not the line of dashes under the header: %w", no, adapter.Bound(line), scheduler.ErrParse)
			}
			state = 2
			return nil
		}
		f := strings.Fields(t)
		d := -1
		for i := 4; i+1 < len(f); i++ {
			if tableDate.MatchString(f[i]) && tableTime.MatchString(f[i+1]) {
				d = i
				break
			}
		}
		if d < 0 || !adapter.IsDigits(f[0]) {
			return fmt.Errorf("qstat line %d %q has no job-ID ... state MM/DD/YYYY HH:MM:SS columns: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		js := scheduler.JobState{Raw: f[d-1], User: f[d-2], Name: strings.Join(f[2:d-2], " ")}
		rest := f[d+2:]
		slot := -1
		for i, v := range rest {
			if adapter.IsDigits(v) {
				slot = i
				break
			}
		}
		id := f[0]
		if slot >= 0 {
			if slot > 0 {
				js.Queue = rest[0]
			}
			if slot+1 < len(rest) {
				id += "." + rest[slot+1]
			}
		} else if len(rest) > 0 {
			js.Queue = rest[0]
		}
		if !adapter.ValidID(id) {
			return fmt.Errorf("qstat line %d has an invalid job id %q: %w", no, adapter.Bound(id), scheduler.ErrParse)
		}
		js.ID = scheduler.JobID(id)
		js.Status = StateStatus(js.Raw)
		js.Reason = stateReason(js.Raw)
		if t, err := time.ParseInLocation("01/02/2006 15:04:05", f[d]+" "+f[d+1], time.Local); err == nil {
			if js.Status == scheduler.StatusPending || js.Status == scheduler.StatusHeld && !strings.ContainsAny(js.Raw, "rt") {
				js.Submitted = t
			} else {
				js.Started = t
			}
		}
		out = append(out, js)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if state == 1 {
		return nil, fmt.Errorf("qstat output ends after its header, without the line of dashes: %w", scheduler.ErrParse)
	}
	return out, nil
}

// qacctSeparator is the line of '=' qacct prints before every record (and under the header of
// its summary table).
var qacctSeparator = regexp.MustCompile(`^={10,}$`)

// qacctSummaryHeader reports whether line starts the usage summary qacct prints after the
// records: "Total System Usage" (no grouping option), or the column header of a table grouped by
// -o, -g, -q, -h... ("OWNER     WALLCLOCK         UTIME ..."): upper-case words including
// WALLCLOCK and UTIME. Record keys are lower case, so no record line looks like either.
func qacctSummaryHeader(line string) bool {
	if line == "Total System Usage" {
		return true
	}
	f := strings.Fields(line)
	wall, utime := false, false
	for _, w := range f {
		if strings.ToUpper(w) != w {
			return false
		}
		wall = wall || w == "WALLCLOCK"
		utime = utime || w == "UTIME"
	}
	return wall && utime
}

// ParseQacct parses qacct -j output: records that each follow a line of '=' and hold "key value"
// lines (the value may contain blanks). A record becomes one JobState: id jobnumber, or
// "jobnumber.taskid" for an array task; Raw "failed N", qacct's own failure code; status
// completed when failed is 0 (the exit code decides), timeout when the failure names h_rt or is
// 37 (qmaster enforced h_rt), cancelled when deleted_by names someone (Univa), else failed;
// Reason the failure's explanation; ExitCode the number of exit_status (Son of Grid Engine 8.1.9
// appends the signal's name: "137                  (Killed)"), and Signal exit_status - 128 when
// it is 129-192 (the job died of that signal); Queue qname; User owner; Name jobname; times
// qsub_time, start_time, end_time ("-/-" for never).
//
// A job killed with SIGKILL (Grid Engine's qdel, its h_rt enforcement and the execd's own kills
// all use it unless the queue or job asks for a warning signal) is recorded as exit_status 137
// with failed 100 ("assumedly after job") or 37 (h_rt); Grid Engine 8.1.9 writes no deleted_by,
// so a job cancelled with qdel is reported failed, which is final: the agent, which knows it asked
// for the cancel, reports it cancelled.
//
// The usage summary qacct prints after the records (with -o, -g, -q and the like a table headed
// "OWNER  WALLCLOCK  UTIME ...", without them "Total System Usage"; the column header, its line of
// '=' and the rows) is skipped; qacct -o USER for a user without jobs prints only that table's
// header, which is no jobs. When qacct lists an id more than once (a re-run job) the last record
// wins, at the place of the first. Empty output is no jobs; other text before the first separator
// and a record without jobnumber are errors wrapping scheduler.ErrParse that name the line.
func ParseQacct(stdout []byte) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	index := map[scheduler.JobID]int{}
	var rec map[string]string
	recLine := 0
	// summary is 0 outside the usage summary, 1 in its header (before its line of '='), 2 in
	// its rows.
	summary := 0
	flush := func() error {
		if rec == nil {
			return nil
		}
		js, err := qacctRecord(rec)
		rec = nil
		if err != nil {
			return fmt.Errorf("qacct record on line %d: %w", recLine, err)
		}
		if i, ok := index[js.ID]; ok {
			out[i] = js
		} else {
			index[js.ID] = len(out)
			out = append(out, js)
		}
		return nil
	}
	err := adapter.EachLine(stdout, func(no int, line string) error {
		t := strings.TrimSpace(line)
		if t == "" {
			return nil
		}
		if qacctSummaryHeader(t) {
			if summary == 0 {
				if err := flush(); err != nil {
					return err
				}
			}
			summary = 1
			return nil
		}
		if qacctSeparator.MatchString(t) {
			if summary == 1 {
				summary = 2 // the line under the summary's column header
				return nil
			}
			if err := flush(); err != nil {
				return err
			}
			summary = 0
			rec, recLine = map[string]string{}, no
			return nil
		}
		if summary != 0 {
			return nil // a summary row
		}
		if rec == nil {
			return fmt.Errorf("qacct line %d %q comes before the first record: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		key, val, _ := strings.Cut(t, " ")
		if _, dup := rec[key]; !dup {
			rec[key] = strings.TrimSpace(val)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func qacctRecord(rec map[string]string) (scheduler.JobState, error) {
	num := rec["jobnumber"]
	if !adapter.IsDigits(num) {
		return scheduler.JobState{}, fmt.Errorf("jobnumber %q is not a number: %w", adapter.Bound(num), scheduler.ErrParse)
	}
	id := num
	if t := rec["taskid"]; t != "" && t != "undefined" && t != "0" {
		id += "." + t
	}
	if !adapter.ValidID(id) {
		return scheduler.JobState{}, fmt.Errorf("job id %q contains a blank: %w", adapter.Bound(id), scheduler.ErrParse)
	}
	js := scheduler.JobState{ID: scheduler.JobID(id), Queue: rec["qname"], User: rec["owner"], Name: rec["jobname"]}
	code, why, _ := strings.Cut(rec["failed"], ":")
	code, why = strings.TrimSpace(code), strings.TrimSpace(why)
	if code == "" {
		code = "0"
	}
	js.Raw = "failed " + code
	switch {
	case code == "0":
		js.Status = scheduler.StatusCompleted
	case code == "37" || strings.Contains(why, "h_rt"):
		js.Status = scheduler.StatusTimeout
	default:
		js.Status = scheduler.StatusFailed
	}
	if by := rec["deleted_by"]; by != "" && by != "NONE" && by != "-" {
		js.Status = scheduler.StatusCancelled
		if why == "" {
			why = "deleted by " + by
		}
	}
	js.Reason = why
	if f := strings.Fields(rec["exit_status"]); len(f) > 0 {
		if n, err := strconv.Atoi(f[0]); err == nil {
			js.ExitCode = &n
			if n > 128 && n <= 128+64 {
				js.Signal = n - 128
			}
		}
	}
	js.Submitted = parseTime(rec["qsub_time"])
	js.Started = parseTime(rec["start_time"])
	js.Ended = parseTime(rec["end_time"])
	return js, nil
}

// timeLayouts are the time formats of qstat -xml ("2013-06-18T12:08:23", with milliseconds in some
// releases) and qacct (ctime(3) in SGE 6-8.1.8, "03/21/2019 10:49:30.588" in Son of Grid Engine
// 8.1.9 and Univa).
var timeLayouts = []string{
	"2006-01-02T15:04:05", "2006-01-02T15:04:05.000",
	"Mon Jan _2 15:04:05 2006", "Mon Jan 2 15:04:05 2006",
	"01/02/2006 15:04:05.000", "01/02/2006 15:04:05", "2006-01-02 15:04:05.000", "2006-01-02 15:04:05",
}

// parseTime parses a Grid Engine time in time.Local. "-/-", "0" and anything unparseable give the
// zero time: a time is information, not a reason to fail a poll.
func parseTime(s string) time.Time {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" || s == "-/-" {
		return time.Time{}
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			if t.Year() <= 1970 {
				return time.Time{} // the epoch, printed for "never"
			}
			return t
		}
	}
	return time.Time{}
}
