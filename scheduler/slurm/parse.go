package slurm

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

var (
	// submitParsable is the line sbatch --parsable prints for a submitted job: "123" or
	// "123;cluster".
	submitParsable = regexp.MustCompile(`^([0-9]+)(?:;\S+)?$`)
	// submitSentence is the line sbatch prints otherwise: "Submitted batch job 123", with
	// " on cluster NAME" under sbatch -M. Older Slurm releases printed it with their logger
	// (info()), which prefixes the program's name: "sbatch: Submitted batch job 123".
	submitSentence = regexp.MustCompile(`^(?:sbatch: )?Submitted batch job ([0-9]+)(?: on cluster \S+)?$`)
)

// ParseSubmit returns the job id from sbatch's stdout: the last line that is "ID", "ID;CLUSTER" or
// "Submitted batch job ID" (leading and trailing blanks ignored), so banners, warnings and site
// messages printed before it do not matter. The cluster name is dropped. Empty or unrecognised
// output is an error wrapping scheduler.ErrParse that quotes the last line; when sbatch says the
// submission failed the error wraps scheduler.ErrSubmitRejected too.
func (s *Slurm) ParseSubmit(stdout []byte) (scheduler.JobID, error) {
	id, last, refused := adapter.ScanSubmit(stdout, func(l string) bool {
		return strings.Contains(l, "Batch job submission failed")
	}, submitParsable, submitSentence)
	switch {
	case id != "":
		return scheduler.JobID(id), nil
	case last == "":
		return "", fmt.Errorf("sbatch printed nothing: %w", scheduler.ErrParse)
	case refused != "":
		return "", fmt.Errorf("sbatch refused the job: %q: %w: %w", adapter.Bound(refused), scheduler.ErrSubmitRejected, scheduler.ErrParse)
	}
	return "", fmt.Errorf("no job id in sbatch output; last line %q: %w", adapter.Bound(last), scheduler.ErrParse)
}

// ParseStatus parses the output of StatusCommand: one line per job, nine '|'-separated fields
// (id, compact state, reason, partition, user, submit, start, end, name), the name last and kept
// whole even when it contains '|'. Empty output is no jobs. A line with fewer fields, an empty id
// or an empty state is an error wrapping scheduler.ErrParse that names the line number. A state
// Ferry does not know is StatusUnknown, not an error.
//
// Times may be epoch seconds (what StatusCommand asks for) or 2006-01-02T15:04:05 in time.Local;
// "N/A", "NONE", "Unknown" and anything else unparseable give the zero time, because a time is
// information, not a reason to fail a whole poll. Started is zero while the job is pending (squeue
// shows the expected start there) and Ended is zero until the status is final (squeue shows the
// expected end of a running job).
func (s *Slurm) ParseStatus(stdout []byte) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		if out == nil {
			out = make([]scheduler.JobState, 0, bytes.Count(stdout, []byte{'\n'})+1)
		}
		var buf [squeueFields]string
		f, ok := splitN(buf[:0], line, '|', squeueFields)
		if !ok {
			return fmt.Errorf("squeue line %d has %d fields, want %d: %q: %w", no, len(f), squeueFields, adapter.Bound(line), scheduler.ErrParse)
		}
		js, err := ferryColumns.build(f)
		if err != nil {
			return fmt.Errorf("squeue line %d %q: %w", no, adapter.Bound(line), err)
		}
		out = append(out, js)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParseAccounting parses the output of AccountingCommand: sacct --parsable2 with the columns
// JobID|State|ExitCode|Reason|Partition|User|Submit|Start|End|JobName, JobName last and kept whole.
// "CANCELLED by 1000" gives Raw "CANCELLED"; ExitCode "N:S" gives ExitCode N and Signal S. Steps
// ("123.batch", "123.extern", "123.0") and heterogeneous components ("123+0") are entries of their
// own with their own ids. Errors and times are as for ParseStatus.
func (s *Slurm) ParseAccounting(stdout []byte) ([]scheduler.JobState, error) {
	return parseSacctRows(stdout, sacctColumns, len(sacctFormat), false, "sacct")
}

// ferryColumns and sacctColumns are the column maps of the formats Ferry issues.
var (
	ferryColumns = mapColumns(strings.Split("JOBID|ST|REASON|PARTITION|USER|SUBMIT_TIME|START_TIME|END_TIME|NAME", "|"))
	sacctColumns = mapColumns(sacctFormat)
)

// columns says which field holds what; -1 when the output has no such column.
type columns struct {
	id, state, exit, reason, queue, user, name, submit, start, end int
	// reasonInNodelist is set when the reason comes from squeue's NODELIST(REASON) column, where
	// only a parenthesised value is a reason (otherwise it is the node list).
	reasonInNodelist bool
}

// mapColumns finds the columns Ferry reads among names, in squeue's and sacct's spellings, ignoring
// case and a sacct width suffix ("JobName%30"). The first JOBID column wins; the compact ST column
// wins over STATE; JobID wins over JobIDRaw.
func mapColumns(names []string) columns {
	c := columns{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, false}
	rawID, longState, nodelist := -1, -1, -1
	set := func(p *int, i int) {
		if *p < 0 {
			*p = i
		}
	}
	for i, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if j := strings.IndexByte(n, '%'); j > 0 {
			n = n[:j]
		}
		switch n {
		case "JOBID":
			set(&c.id, i)
		case "JOBIDRAW":
			set(&rawID, i)
		case "ST":
			set(&c.state, i)
		case "STATE":
			set(&longState, i)
		case "EXITCODE":
			set(&c.exit, i)
		case "REASON":
			set(&c.reason, i)
		case "PARTITION":
			set(&c.queue, i)
		case "USER":
			set(&c.user, i)
		case "NAME", "JOBNAME":
			set(&c.name, i)
		case "SUBMIT", "SUBMIT_TIME", "SUBMITTIME":
			set(&c.submit, i)
		case "START", "START_TIME", "STARTTIME":
			set(&c.start, i)
		case "END", "END_TIME", "ENDTIME":
			set(&c.end, i)
		default:
			if strings.HasSuffix(n, "(REASON)") {
				set(&nodelist, i)
			}
		}
	}
	if c.id < 0 {
		c.id = rawID
	}
	if c.state < 0 {
		c.state = longState
	}
	if c.reason < 0 && nodelist >= 0 {
		c.reason, c.reasonInNodelist = nodelist, true
	}
	return c
}

// usable reports whether the columns include an id and a state.
func (c columns) usable() bool { return c.id >= 0 && c.state >= 0 }

// build turns one row's fields into a JobState. Fields are trimmed except the name.
func (c columns) build(f []string) (scheduler.JobState, error) {
	get := func(i int) string {
		if i < 0 || i >= len(f) {
			return ""
		}
		return strings.TrimSpace(f[i])
	}
	js := scheduler.JobState{ID: scheduler.JobID(get(c.id))}
	if js.ID == "" {
		return js, fmt.Errorf("empty job id: %w", scheduler.ErrParse)
	}
	if hasBlank(string(js.ID)) {
		return js, fmt.Errorf("job id %q contains a blank: %w", js.ID, scheduler.ErrParse)
	}
	js.Raw, js.Status = normalizeState(get(c.state))
	if js.Raw == "" {
		return js, fmt.Errorf("job %q has an empty state: %w", js.ID, scheduler.ErrParse)
	}
	reason := get(c.reason)
	if c.reasonInNodelist {
		if strings.HasPrefix(reason, "(") && strings.HasSuffix(reason, ")") {
			reason = reason[1 : len(reason)-1]
		} else {
			reason = "" // a node list, not a reason
		}
	}
	js.Reason = cleanReason(reason)
	js.Queue = get(c.queue)
	js.User = get(c.user)
	if c.name >= 0 && c.name < len(f) {
		js.Name = f[c.name]
	}
	if c.exit >= 0 {
		code, sig, err := parseExitCode(get(c.exit))
		if err != nil {
			return js, fmt.Errorf("job %q: %w", js.ID, err)
		}
		js.ExitCode, js.Signal = code, sig
	}
	js.Submitted = parseTime(get(c.submit))
	js.Started = parseTime(get(c.start))
	js.Ended = parseTime(get(c.end))
	settle(&js)
	return js, nil
}

// settle drops the projections squeue and scontrol print as times: the expected start of a pending
// job and the expected end of a job that has not ended.
func settle(js *scheduler.JobState) {
	if js.Status == scheduler.StatusPending {
		js.Started = time.Time{}
	}
	if !js.Status.Final() {
		js.Ended = time.Time{}
	}
}

// cleanReason maps Slurm's "no reason" spellings to "".
func cleanReason(r string) string {
	switch r {
	case "None", "NONE", "(null)", "N/A", "n/a":
		return ""
	}
	return r
}

// parseExitCode parses sacct's and scontrol's "EXIT:SIGNAL" ("0:0", "1:0", "0:15", "-2:0"). Empty
// gives no exit code.
func parseExitCode(s string) (*int, int, error) {
	if s == "" {
		return nil, 0, nil
	}
	code, sig, ok := strings.Cut(s, ":")
	c, err := strconv.Atoi(code)
	if err != nil {
		return nil, 0, fmt.Errorf("exit code %q is not EXIT:SIGNAL: %w", s, scheduler.ErrParse)
	}
	sg := 0
	if ok {
		if sg, err = strconv.Atoi(sig); err != nil {
			return nil, 0, fmt.Errorf("exit code %q is not EXIT:SIGNAL: %w", s, scheduler.ErrParse)
		}
	}
	return &c, sg, nil
}

// parseTime parses a Slurm time: epoch seconds (SLURM_TIME_FORMAT=%s) or the standard
// 2006-01-02T15:04:05 in time.Local. "N/A", "NONE", "Unknown" and anything else give the zero time.
func parseTime(s string) time.Time {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return time.Time{} // N/A, None, NONE, Unknown, (null), INVALID
	}
	if adapter.IsDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > 1<<40 {
			return time.Time{}
		}
		return time.Unix(n, 0)
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}

// splitN appends to dst the first n-1 sep-separated fields of s and the rest as the n-th; it reports
// whether s had n fields. Unlike strings.SplitN it allocates nothing when dst has room.
func splitN(dst []string, s string, sep byte, n int) ([]string, bool) {
	for len(dst) < n-1 {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			return append(dst, s), false
		}
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
	return append(dst, s), true
}

// hasBlank reports whether s contains a space or a tab.
func hasBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			return true
		}
	}
	return false
}
