package lsf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// submitLine is how bsub names the job it accepted: "Job <123> is submitted to queue <q>.",
// "... to default queue <q>." (arrays: "Job <123> ...").
var submitLine = regexp.MustCompile(`Job <([0-9]+)> is submitted\b`)

// ParseSubmit returns the job id from bsub's stdout: the last "Job <N> is submitted" line, so lines
// printed before it (a project notice, "Job is submitted to <cpp> project.") do not matter. Empty
// or unrecognised output is an error wrapping scheduler.ErrParse that quotes the last line; when
// bsub said "Job not submitted" it wraps scheduler.ErrSubmitRejected too.
func (l *LSF) ParseSubmit(stdout []byte) (scheduler.JobID, error) {
	id, last, refused := adapter.ScanSubmit(stdout, func(l string) bool {
		return strings.Contains(l, "Job not submitted")
	}, submitLine)
	switch {
	case id != "":
		return scheduler.JobID(id), nil
	case last == "":
		return "", fmt.Errorf("bsub printed nothing: %w", scheduler.ErrParse)
	case refused != "":
		return "", fmt.Errorf("bsub: %s: %w: %w", adapter.Bound(refused), scheduler.ErrSubmitRejected, scheduler.ErrParse)
	}
	return "", fmt.Errorf("no job id in bsub output; last line %q: %w", adapter.Bound(last), scheduler.ErrParse)
}

// ParseStatus parses the output of StatusCommand with ParseBjobsColumns and the field list Ferry
// issues.
func (l *LSF) ParseStatus(stdout []byte) ([]scheduler.JobState, error) {
	return ParseBjobsColumns(statusFields, stdout)
}

// ParseAccounting parses the output of AccountingCommand with ParseBhistLong.
func (l *LSF) ParseAccounting(stdout []byte) ([]scheduler.JobState, error) {
	return ParseBhistLong(stdout)
}

// canonical maps a bjobs -o field name or alias, or a -json key, to the name buildJob reads; ""
// for fields it does not use.
func canonical(field string) string {
	f := strings.ToLower(strings.TrimSpace(field))
	if i := strings.IndexByte(f, ':'); i >= 0 {
		f = f[:i] // a width ("job_name:30") or unit suffix
	}
	switch f {
	case "jobid", "id":
		return "id"
	case "jobindex":
		return "index"
	case "stat":
		return "stat"
	case "queue", "user", "exit_code", "exit_reason", "pend_reason":
		return f
	case "submit_time":
		return "submit"
	case "start_time":
		return "start"
	case "finish_time":
		return "finish"
	case "job_name", "name":
		return "name"
	}
	return ""
}

// buildJob turns one job's fields (canonical names, "-" already cleared) into a JobState. The id
// must start with a digit; an array index ("jobindex", not 0) is appended as "ID[INDEX]". DONE
// without an exit code has exit code 0. The reason is the pending reason for PEND and PSUSP, the
// exit reason otherwise.
func buildJob(v map[string]string) (scheduler.JobState, error) {
	id := v["id"]
	if idx := v["index"]; idx != "" && idx != "0" && !strings.Contains(id, "[") {
		id += "[" + idx + "]"
	}
	js := scheduler.JobState{ID: scheduler.JobID(id)}
	if !adapter.ValidID(id) || id[0] < '0' || id[0] > '9' {
		return js, fmt.Errorf("job id %q is not a number: %w", adapter.Bound(id), scheduler.ErrParse)
	}
	js.Raw = v["stat"]
	if js.Raw == "" {
		return js, fmt.Errorf("job %s has no status: %w", id, scheduler.ErrParse)
	}
	js.Status = StateStatus(js.Raw)
	js.Queue, js.User, js.Name = v["queue"], v["user"], v["name"]
	if n, err := strconv.Atoi(v["exit_code"]); err == nil {
		js.ExitCode = &n
	} else if js.Raw == "DONE" {
		zero := 0
		js.ExitCode = &zero
	}
	if js.Raw == "PEND" || js.Raw == "PSUSP" {
		js.Reason = v["pend_reason"]
	} else {
		js.Reason = v["exit_reason"]
	}
	js.Submitted = parseTime(v["submit"])
	if js.Status != scheduler.StatusPending {
		js.Started = parseTime(v["start"])
	}
	if js.Status.Final() {
		js.Ended = parseTime(v["finish"])
	}
	settle(&js)
	return js, nil
}

func clean(v string) string {
	v = strings.TrimSpace(v)
	if v == "-" {
		return ""
	}
	return v
}

// ParseBjobsColumns parses headerless bjobs -o output whose field list is known: fields are the -o
// names or aliases in order ("jobid", "stat", "job_name", "name"...; case and ":width" ignored),
// values separated by '|' (delimiter='|'). The fields must include the job id and stat. A row with
// more values than fields keeps the surplus in the job name when there is one (a '|' in a name);
// a row with fewer, and a row without an id or status, are errors wrapping scheduler.ErrParse that
// name the line. A header line repeating the field names is skipped. "-" is an empty value.
func ParseBjobsColumns(fields []string, stdout []byte) ([]scheduler.JobState, error) {
	names := make([]string, len(fields))
	nameCol, haveID, haveStat := -1, false, false
	for i, f := range fields {
		names[i] = canonical(f)
		switch names[i] {
		case "name":
			nameCol = i
		case "id":
			haveID = true
		case "stat":
			haveStat = true
		}
	}
	if !haveID || !haveStat {
		return nil, fmt.Errorf("bjobs fields %q have no jobid and stat", fields)
	}
	var out []scheduler.JobState
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		f := strings.Split(line, "|")
		if len(f) > len(names) && nameCol >= 0 {
			extra := len(f) - len(names)
			joined := strings.Join(f[nameCol:nameCol+extra+1], "|")
			f = append(append(append([]string{}, f[:nameCol]...), joined), f[nameCol+extra+1:]...)
		}
		if len(f) != len(names) {
			return fmt.Errorf("bjobs line %d has %d fields, want %d: %q: %w", no, len(f), len(names), adapter.Bound(line), scheduler.ErrParse)
		}
		v := map[string]string{}
		for i, n := range names {
			if n != "" {
				v[n] = clean(f[i])
			}
		}
		if strings.EqualFold(v["id"], "JOBID") && strings.EqualFold(v["stat"], "STAT") {
			return nil // a header line
		}
		js, err := buildJob(v)
		if err != nil {
			return fmt.Errorf("bjobs line %d %q: %w", no, adapter.Bound(line), err)
		}
		out = append(out, js)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// bjobsJSON is the document bjobs -json prints.
type bjobsJSON struct {
	Records []map[string]json.RawMessage `json:"RECORDS"`
}

// ParseBjobsJSON parses bjobs -json (LSF 10.1+): one record per job with the -o fields as
// upper-case keys (JOBID and STAT required). Records that carry an ERROR ("Job <N> is not found")
// are left out. Output that is not that document, and a record without JOBID, are errors wrapping
// scheduler.ErrParse; use ParseBjobsJSONFor when the -o list did not include jobid.
func ParseBjobsJSON(stdout []byte) ([]scheduler.JobState, error) {
	return parseBjobsJSON(nil, stdout)
}

// ParseBjobsJSONFor parses bjobs -json output for the ids given on its command line, in that order:
// records without a JOBID (an -o list without jobid) take their id from ids by position, which
// needs exactly one record per id. Otherwise as ParseBjobsJSON.
func ParseBjobsJSONFor(ids []scheduler.JobID, stdout []byte) ([]scheduler.JobState, error) {
	if ids == nil {
		ids = []scheduler.JobID{}
	}
	return parseBjobsJSON(ids, stdout)
}

func parseBjobsJSON(ids []scheduler.JobID, stdout []byte) ([]scheduler.JobState, error) {
	if len(bytes.TrimSpace(stdout)) == 0 {
		return nil, nil
	}
	var doc bjobsJSON
	if err := json.Unmarshal(stdout, &doc); err != nil {
		line := 1
		if se, ok := err.(*json.SyntaxError); ok && se.Offset <= int64(len(stdout)) {
			line = bytes.Count(stdout[:se.Offset], []byte{'\n'}) + 1
		}
		return nil, fmt.Errorf("bjobs JSON line %d: %v: %w", line, err, scheduler.ErrParse)
	}
	var out []scheduler.JobState
	for i, rec := range doc.Records {
		v := map[string]string{}
		for k, raw := range rec {
			if c := canonical(k); c != "" {
				if s, ok := adapter.JSONScalar(raw); ok {
					v[c] = clean(s)
				}
			}
		}
		if _, ok := v["id"]; !ok && ids != nil {
			if len(ids) != len(doc.Records) {
				return nil, fmt.Errorf("bjobs JSON has %d records without JOBID for %d ids: %w", len(doc.Records), len(ids), scheduler.ErrParse)
			}
			v["id"] = string(ids[i])
		}
		if _, failed := rec["ERROR"]; failed {
			continue
		}
		if _, ok := v["id"]; !ok {
			return nil, fmt.Errorf("bjobs JSON record %d has no JOBID (the -o list needs jobid, or pass the ids): %w", i+1, scheduler.ErrParse)
		}
		js, err := buildJob(v)
		if err != nil {
			return nil, fmt.Errorf("bjobs JSON record %d: %w", i+1, err)
		}
		out = append(out, js)
	}
	return out, nil
}

// tableTime finds SUBMIT_TIME in a bjobs table row: "Oct 22 13:51" (three words) or, with -W,
// "03/31-19:24:57".
var (
	tableMonth = regexp.MustCompile(`^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$`)
	tableDay   = regexp.MustCompile(`^[0-9]{1,2}$`)
	tableClock = regexp.MustCompile(`^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$`)
	tableWide  = regexp.MustCompile(`^([0-9]{4}/)?[0-9]{2}/[0-9]{2}-[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
	arrayIndex = regexp.MustCompile(`\[([0-9]+)\]$`)
)

// ParseBjobsTable parses bjobs' default table, with or without -w and -W ("JOBID USER STAT QUEUE
// FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME", -W adding PROJ_NAME ... FINISH_TIME). Columns are not
// aligned with the header (-w widens them as needed, and a pending job's EXEC_HOST is empty), and a
// job name can hold blanks, so each row is read by position: JOBID, USER, STAT, QUEUE and FROM_HOST
// are its first words; EXEC_HOST follows unless the job is pending (PEND, PSUSP, WAIT, FWD_PEND);
// the name runs up to SUBMIT_TIME ("Oct 22 13:51" or "03/31-19:24:57"). A name ending in "[N]" is an
// array element, whose id is "JOBID[N]". Lines before the header ("LSF is processing your
// request...") and indented lines (more execution hosts) are skipped. Output without the header,
// and a row with fewer than five words or a non-numeric JOBID, are errors wrapping
// scheduler.ErrParse that name the line; empty output is no jobs.
func ParseBjobsTable(stdout []byte) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	header := false
	err := adapter.EachLine(stdout, func(no int, line string) error {
		t := strings.TrimSpace(line)
		if t == "" {
			return nil
		}
		f := strings.Fields(t)
		if !header {
			if len(f) >= 4 && f[0] == "JOBID" && f[1] == "USER" && f[2] == "STAT" && f[3] == "QUEUE" {
				header = true
			}
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil
		}
		if len(f) < 5 || !adapter.IsDigits(f[0]) {
			return fmt.Errorf("bjobs line %d %q is not a JOBID USER STAT QUEUE FROM_HOST row: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		js := scheduler.JobState{Raw: f[2], User: f[1], Queue: f[3]}
		rest := f[5:]
		switch js.Raw {
		case "PEND", "PSUSP", "WAIT", "FWD_PEND":
		default:
			if len(rest) > 0 {
				rest = rest[1:] // EXEC_HOST
			}
		}
		end := len(rest)
		for i := range rest {
			if tableWide.MatchString(rest[i]) ||
				i+2 < len(rest) && tableMonth.MatchString(rest[i]) && tableDay.MatchString(rest[i+1]) && tableClock.MatchString(rest[i+2]) {
				end = i
				break
			}
		}
		js.Name = strings.Join(rest[:end], " ")
		id := f[0]
		if m := arrayIndex.FindStringSubmatch(js.Name); m != nil {
			id += "[" + m[1] + "]"
		}
		js.ID = scheduler.JobID(id)
		js.Status = StateStatus(js.Raw)
		if end+2 < len(rest) && tableMonth.MatchString(rest[end]) {
			js.Submitted = parseTime(strings.Join(rest[end:end+3], " "))
		} else if end < len(rest) {
			js.Submitted = parseTime(rest[end])
		}
		if js.Raw == "DONE" {
			zero := 0
			js.ExitCode = &zero
		}
		settle(&js)
		out = append(out, js)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !header && len(bytes.TrimSpace(stdout)) > 0 && !onlyNotices(stdout) {
		return nil, fmt.Errorf("bjobs output has no \"JOBID USER STAT QUEUE\" header: %w", scheduler.ErrParse)
	}
	return out, nil
}

// onlyNotices reports whether out holds nothing but bjobs' own notices ("LSF is processing your
// request. Please wait ...", "No unfinished job found").
func onlyNotices(out []byte) bool {
	all := true
	_ = adapter.EachLine(out, func(_ int, l string) error {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "LSF is processing") && !strings.HasPrefix(t, "No ") {
			all = false
		}
		return nil
	})
	return all
}

// timeLayouts are the time formats of bjobs and bhist: "Feb  2 00:46" (-o, tables), with seconds
// or a year, "Mon Aug  4 12:28:51 2014" (-l with LSB_DISPLAY_YEAR, event times), and -W's
// "03/31-19:24:57". A trailing " L", " E" or " X" (local, estimated, exceeded) is dropped first.
var timeLayouts = []string{
	"Jan 2 15:04", "Jan 2 15:04:05", "Jan 2 15:04 2006", "Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05", "Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04", "01/02-15:04:05", "2006/01/02-15:04:05",
}

// now is the clock parseTime completes a year-less time with; tests replace it.
var now = time.Now

// parseTime parses an LSF time in time.Local. Most LSF times carry no year: it is taken to be the
// latest year that does not put the time more than a day in the future. Anything unparseable gives
// the zero time: a time is information, not a reason to fail a poll.
func parseTime(s string) time.Time {
	f := strings.Fields(s)
	if len(f) > 1 && len(f[len(f)-1]) == 1 && strings.Contains("LEXA", f[len(f)-1]) {
		f = f[:len(f)-1]
	}
	s = strings.Join(f, " ")
	if s == "" {
		return time.Time{}
	}
	for _, l := range timeLayouts {
		t, err := time.ParseInLocation(l, s, time.Local)
		if err != nil {
			continue
		}
		if !strings.Contains(l, "2006") {
			cur := now().In(time.Local)
			t = t.AddDate(cur.Year()-t.Year(), 0, 0)
			if t.After(cur.Add(24 * time.Hour)) {
				t = t.AddDate(-1, 0, 0)
			}
		}
		return t
	}
	return time.Time{}
}
