package slurm

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// This file holds the parsers for output formats Ferry does not issue itself but that people paste
// or that admin tools produce: squeue's and sacct's default tables, sacct -P/--parsable with a
// header, headerless sacct with a known --format, and scontrol show job. All return one JobState
// per row in input order, with the same state and time rules as ParseStatus.

// ParseSacctColumns parses headerless sacct --parsable2 or --parsable output whose --format is
// known: columns are the --format names in order ("JobID", "State", "JobName%30"... case and width
// suffixes ignored). The columns must include JobID (or JobIDRaw) and State. A '|' inside a JobName
// is kept in the name when the row has more fields than columns.
func ParseSacctColumns(columns []string, stdout []byte) ([]scheduler.JobState, error) {
	c := mapColumns(columns)
	if !c.usable() {
		return nil, fmt.Errorf("sacct columns %q have no JobID and State", columns)
	}
	return parseSacctRows(stdout, c, len(columns), allEndWithBar(stdout), "sacct")
}

// ParseSacctParsable parses sacct -P (--parsable2) or --parsable output with its header line: the
// columns are found by name in the header (JobID or JobIDRaw, State, ExitCode, Reason, Partition,
// User, JobName, Submit, Start, End; case ignored), and a trailing '|' on every line (--parsable)
// is accepted. Output without such a header is an error wrapping scheduler.ErrParse.
func ParseSacctParsable(stdout []byte) ([]scheduler.JobState, error) {
	lines := adapter.SplitLines(stdout)
	h := 0
	for h < len(lines) && strings.TrimSpace(lines[h]) == "" {
		h++
	}
	if h == len(lines) {
		return nil, nil
	}
	header := lines[h]
	names := strings.Split(header, "|")
	trailing := strings.HasSuffix(header, "|")
	if trailing {
		names = names[:len(names)-1]
	}
	c := mapColumns(names)
	if len(names) < 2 || !c.usable() {
		return nil, fmt.Errorf("sacct header (line %d) %q has no JobID and State columns: %w", h+1, adapter.Bound(header), scheduler.ErrParse)
	}
	var body strings.Builder
	for i := h + 1; i < len(lines); i++ {
		if lines[i] == header {
			continue // a repeated header (one per cluster with -M)
		}
		body.WriteString(lines[i])
		body.WriteByte('\n')
	}
	out, err := parseSacctRows([]byte(body.String()), c, len(names), trailing, "sacct")
	if err != nil {
		return nil, fmt.Errorf("after the header on line %d: %w", h+1, err)
	}
	return out, nil
}

// parseSacctRows parses '|'-separated rows of n columns. trailing says every row ends with an extra
// '|' (sacct --parsable). A row with more fields than columns keeps the surplus in the name column
// (a '|' in a job name); a row with fewer is an error naming its line.
func parseSacctRows(stdout []byte, c columns, n int, trailing bool, what string) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	buf := make([]string, 0, n) // reused: build copies what it keeps
	nameLast := c.name == n-1 && !trailing
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		if out == nil {
			out = make([]scheduler.JobState, 0, bytes.Count(stdout, []byte{'\n'})+1)
		}
		var f []string
		ok := true
		if nameLast {
			// The common case, Ferry's own format: split off n-1 fields, the rest is the name.
			f, ok = splitN(buf[:0], line, '|', n)
		} else {
			f = strings.Split(line, "|")
			if trailing && len(f) > 1 && f[len(f)-1] == "" {
				f = f[:len(f)-1]
				if len(f) == n-1 {
					f = append(f, "") // --parsable2 whose last field was empty on every line
				}
			}
			f, ok = fitFields(f, n, c.name, "|")
		}
		if !ok {
			return fmt.Errorf("%s line %d has %d fields, want %d: %q: %w", what, no, len(f), n, adapter.Bound(line), scheduler.ErrParse)
		}
		js, err := c.build(f)
		if err != nil {
			return fmt.Errorf("%s line %d %q: %w", what, no, adapter.Bound(line), err)
		}
		out = append(out, js)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// allEndWithBar reports whether every non-blank line ends with '|' (sacct --parsable).
func allEndWithBar(stdout []byte) bool {
	seen := false
	all := true
	_ = adapter.EachLine(stdout, func(_ int, l string) error {
		if strings.TrimSpace(l) == "" {
			return nil
		}
		seen = true
		if !strings.HasSuffix(l, "|") {
			all = false
		}
		return nil
	})
	return seen && all
}

// fitFields returns f with exactly n fields: a surplus is joined with sep into column absorb (the
// free-text column), when there is one. It reports false when f cannot be fitted.
func fitFields(f []string, n, absorb int, sep string) ([]string, bool) {
	switch {
	case len(f) == n:
		return f, true
	case len(f) < n || absorb < 0 || absorb >= n:
		return f, false
	}
	extra := len(f) - n
	out := make([]string, 0, n)
	out = append(out, f[:absorb]...)
	out = append(out, strings.Join(f[absorb:absorb+extra+1], sep))
	out = append(out, f[absorb+extra+1:]...)
	return out, true
}

// ParseSacctTable parses sacct's default fixed-width output: a header line, a line of dashes that
// gives each column's width, then the rows. Columns are found by name as in ParseSacctParsable;
// values are cut at the dashes' positions, so a value sacct cut short keeps its '+' ("CANCELLED+"
// is read as CANCELLED, a cut id stays cut). Output without the header and dashes is an error
// wrapping scheduler.ErrParse.
func ParseSacctTable(stdout []byte) ([]scheduler.JobState, error) {
	lines := adapter.SplitLines(stdout)
	h := 0
	for h < len(lines) && strings.TrimSpace(lines[h]) == "" {
		h++
	}
	if h == len(lines) {
		return nil, nil
	}
	if h+1 >= len(lines) || !isDashes(lines[h+1]) {
		return nil, fmt.Errorf("sacct table: line %d is not followed by a line of dashes: %q: %w", h+1, adapter.Bound(lines[h]), scheduler.ErrParse)
	}
	header, dashes := lines[h], lines[h+1]
	spans := dashSpans(dashes)
	names := make([]string, len(spans))
	for i, sp := range spans {
		names[i] = cut(header, sp[0], sp[1])
	}
	c := mapColumns(names)
	if !c.usable() {
		return nil, fmt.Errorf("sacct table header %q has no JobID and State columns: %w", adapter.Bound(header), scheduler.ErrParse)
	}
	var out []scheduler.JobState
	for i := h + 2; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || l == header || l == dashes {
			continue
		}
		f := make([]string, len(spans))
		for j, sp := range spans {
			end := sp[1]
			if j == len(spans)-1 {
				end = len(l) // the last column may be wider than its dashes
			}
			f[j] = cut(l, sp[0], end)
		}
		js, err := c.build(f)
		if err != nil {
			return nil, fmt.Errorf("sacct table line %d %q: %w", i+1, adapter.Bound(l), err)
		}
		out = append(out, js)
	}
	return out, nil
}

// isDashes reports whether l is a column rule: runs of '-' separated by blanks.
func isDashes(l string) bool {
	l = strings.TrimSpace(l)
	return l != "" && strings.Trim(l, "- ") == ""
}

// dashSpans returns the [start, end) byte spans of the '-' runs in l.
func dashSpans(l string) [][2]int {
	var spans [][2]int
	for i := 0; i < len(l); {
		if l[i] != '-' {
			i++
			continue
		}
		j := i
		for j < len(l) && l[j] == '-' {
			j++
		}
		spans = append(spans, [2]int{i, j})
		i = j
	}
	return spans
}

// cut returns s[start:end] trimmed, clipped to s.
func cut(s string, start, end int) string {
	if start >= len(s) {
		return ""
	}
	if end > len(s) {
		end = len(s)
	}
	return strings.TrimSpace(s[start:end])
}

// ParseSqueueTable parses squeue output with a header line: the default layout ("JOBID PARTITION
// NAME USER ST TIME NODES NODELIST(REASON)"), -l, or any -o/--format whose header names the JOBID
// and ST (or STATE) columns. Fields are split on blanks, or on '\x1f' or '|' when the header uses
// that separator (a leading '\x1e' record mark is dropped). Multi-cluster output (squeue -M: a
// "CLUSTER: name" line and a header per cluster) is read as one list.
//
// squeue's columns are not quoted, so a value with a blank (a job name, a reason such as "(launch
// failed requeued held)") yields surplus fields: a parenthesised reason at the end of the line is
// joined back first, then any remaining surplus is given to the NAME column (or to the last column
// when there is no NAME). A row with one field missing is read with the last column empty (squeue
// leaves NODELIST empty for some jobs); a row with fewer fields, or data before any header, is an
// error wrapping scheduler.ErrParse that names the line.
func ParseSqueueTable(stdout []byte) ([]scheduler.JobState, error) {
	var (
		out    []scheduler.JobState
		c      columns
		n      int
		sep    string // "" for blanks
		header bool
	)
	err := adapter.EachLine(stdout, func(no int, line string) error {
		line = strings.TrimPrefix(line, "\x1e")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "CLUSTER:") {
			return nil
		}
		if names, s, ok := squeueHeader(line); ok {
			c, n, sep, header = mapColumns(names), len(names), s, true
			return nil
		}
		if !header {
			return fmt.Errorf("squeue line %d comes before any header naming JOBID and ST: %q: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		var f []string
		if sep == "" {
			f = strings.Fields(line)
			f = joinParenReason(f, n, c)
		} else {
			f = strings.Split(line, sep)
		}
		absorb := c.name
		if absorb < 0 {
			absorb = n - 1
		}
		f2, ok := fitFields(f, n, absorb, fieldSep(sep))
		if !ok && len(f) == n-1 && c.id < n-1 && c.state < n-1 {
			f2, ok = append(f, ""), true
		}
		if !ok {
			return fmt.Errorf("squeue line %d has %d fields, the header has %d: %q: %w", no, len(f), n, adapter.Bound(line), scheduler.ErrParse)
		}
		js, err := c.build(f2)
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

// squeueHeader reports whether line is a squeue header (it names JOBID and ST or STATE) and returns
// its column names and separator.
func squeueHeader(line string) ([]string, string, bool) {
	var names []string
	sep := ""
	switch {
	case strings.Contains(line, "\x1f"):
		sep = "\x1f"
	case strings.Contains(line, "|"):
		sep = "|"
	}
	if sep == "" {
		names = strings.Fields(line)
	} else {
		names = strings.Split(line, sep)
	}
	hasID, hasState := false, false
	for _, n := range names {
		switch strings.TrimSpace(n) {
		case "JOBID":
			hasID = true
		case "ST", "STATE":
			hasState = true
		}
	}
	return names, sep, hasID && hasState
}

func fieldSep(sep string) string {
	if sep == "" {
		return " "
	}
	return sep
}

// joinParenReason rejoins a parenthesised reason with blanks ("(launch", "failed", "requeued",
// "held)") at the end of a blank-separated row when the last column is a (REASON) column and the
// row has surplus fields.
func joinParenReason(f []string, n int, c columns) []string {
	if len(f) <= n || !c.reasonInNodelist || c.reason != n-1 || !strings.HasSuffix(f[len(f)-1], ")") {
		return f
	}
	for i := len(f) - 1; i >= n-1; i-- {
		if strings.HasPrefix(f[i], "(") {
			if i == len(f)-1 {
				return f
			}
			joined := strings.Join(f[i:], " ")
			return append(f[:i:i], joined)
		}
	}
	return f
}

// ParseScontrolShowJob parses scontrol show job output, multi-line (records separated by blank
// lines) or one record per line (scontrol -o). A record starts at each JobId=; fields are
// Key=Value pairs, a key being a word that follows a blank and precedes '=' (so values may contain
// blanks and '=' as long as no blank-separated word in them looks like a key). The id is written as
// squeue writes it: ARRAYJOB_TASK for an array task (ARRAYJOB_[RANGE] for a pending range),
// HETJOB+OFFSET for a heterogeneous component, else JobId. UserId "alice(1001)" gives User "alice".
// "No jobs in the system" is no jobs; a record without JobState, or text outside any record, is an
// error wrapping scheduler.ErrParse.
func ParseScontrolShowJob(stdout []byte) ([]scheduler.JobState, error) {
	var (
		out []scheduler.JobState
		rec map[string]string
		at  int
	)
	flush := func() error {
		if rec == nil {
			return nil
		}
		js, err := scontrolRecord(rec)
		if err != nil {
			return fmt.Errorf("scontrol record starting on line %d: %w", at, err)
		}
		out = append(out, js)
		rec = nil
		return nil
	}
	err := adapter.EachLine(stdout, func(no int, line string) error {
		t := strings.TrimSpace(line)
		if t == "" {
			return flush()
		}
		if t == "No jobs in the system" {
			return nil
		}
		pairs := keyValues(line)
		if len(pairs) == 0 {
			return fmt.Errorf("scontrol line %d has no Key=Value: %q: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		for _, kv := range pairs {
			if kv[0] == "JobId" {
				if err := flush(); err != nil {
					return err
				}
				rec, at = map[string]string{}, no
			}
			if rec == nil {
				return fmt.Errorf("scontrol line %d has %s= before any JobId=: %w", no, kv[0], scheduler.ErrParse)
			}
			if _, dup := rec[kv[0]]; !dup {
				rec[kv[0]] = kv[1]
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// keyValues splits one scontrol line into Key=Value pairs. A key starts the line or follows a
// blank, is made of [A-Za-z0-9_:/()] starting with a letter, and ends at '='. The value runs to the
// next key and is trimmed. Text before the first key makes the line invalid (nil).
func keyValues(line string) [][2]string {
	type kpos struct{ start, eq int }
	var keys []kpos
	for i := 0; i < len(line); i++ {
		if i > 0 && line[i-1] != ' ' && line[i-1] != '\t' {
			continue
		}
		if !isLetter(line[i]) {
			continue
		}
		j := i
		for j < len(line) && isKeyByte(line[j]) {
			j++
		}
		if j < len(line) && line[j] == '=' {
			keys = append(keys, kpos{i, j})
			i = j
		}
	}
	if len(keys) == 0 || strings.TrimSpace(line[:keys[0].start]) != "" {
		return nil
	}
	out := make([][2]string, len(keys))
	for k, p := range keys {
		end := len(line)
		if k+1 < len(keys) {
			end = keys[k+1].start
		}
		out[k] = [2]string{line[p.start:p.eq], strings.TrimSpace(line[p.eq+1 : end])}
	}
	return out
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isKeyByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '/' || c == '(' || c == ')'
}

// scontrolRecord builds a JobState from one record's fields.
func scontrolRecord(r map[string]string) (scheduler.JobState, error) {
	id := r["JobId"]
	if a, t := r["ArrayJobId"], r["ArrayTaskId"]; a != "" && t != "" && t != "N/A" {
		if adapter.IsDigits(t) {
			id = a + "_" + t
		} else {
			id = a + "_[" + t + "]"
		}
	} else if h, o := r["HetJobId"], r["HetJobOffset"]; h != "" && o != "" {
		id = h + "+" + o
	}
	state, ok := r["JobState"]
	if !ok {
		return scheduler.JobState{}, fmt.Errorf("job %q has no JobState: %w", id, scheduler.ErrParse)
	}
	user := r["UserId"]
	if i := strings.IndexByte(user, '('); i >= 0 {
		user = user[:i]
	}
	f := []string{id, state, r["Reason"], r["Partition"], user, r["SubmitTime"], r["StartTime"], r["EndTime"], r["JobName"], r["ExitCode"]}
	return scontrolColumns.build(f)
}

var scontrolColumns = mapColumns(strings.Split("JOBID|STATE|REASON|PARTITION|USER|SUBMIT|START|END|NAME|EXITCODE", "|"))

// ParseSqueueIDState parses headerless two-column squeue output, one job per line: the id and the
// state, as `squeue --noheader -o '%i %t'` prints them (the format the most used workflow executor
// issues; '%T' long state names are read too). Array rows keep their ids as printed
// ("5753_[3-4%2]", "5753_1"). Empty output is no jobs; a line that is not exactly an id starting
// with a digit and a state is an error wrapping scheduler.ErrParse that names the line.
func ParseSqueueIDState(stdout []byte) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	err := adapter.EachLine(stdout, func(no int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) != 2 || f[0][0] < '0' || f[0][0] > '9' {
			return fmt.Errorf("squeue line %d is not a job id and a state: %q: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		raw, st := normalizeState(f[1])
		out = append(out, scheduler.JobState{ID: scheduler.JobID(f[0]), Raw: raw, Status: st})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
