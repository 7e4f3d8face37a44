package pbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// ParseQstatJSON parses qstat -f -F json (PBS Pro 14.1+): the jobs of the "Jobs" object in the
// order printed, each read like a qstat -f job (see rawJob.build). Output without a "Jobs" object
// (qstat prints only its header when it finds no job) and empty output are no jobs.
//
// qstat's JSON is not always valid: releases before 2020 print environment values with escapes
// JSON does not have ("\'", "\,"), all-digit values as numbers ("005"), and unescaped quotes. The
// escapes are repaired before decoding; output that still does not decode is read line by line,
// relying on qstat printing one attribute per line ("key":value,). Output that neither reading
// understands is an error wrapping scheduler.ErrParse that names the line.
func ParseQstatJSON(stdout []byte) ([]scheduler.JobState, error) {
	jobs, err := decodeQstatJSON(repairEscapes(stdout))
	if err != nil {
		var lerr error
		if jobs, lerr = scanQstatJSON(stdout); lerr != nil {
			return nil, fmt.Errorf("qstat JSON %v (line by line: %v): %w", err, lerr, scheduler.ErrParse)
		}
	}
	return buildAll(jobs)
}

// decodeQstatJSON decodes valid qstat JSON, keeping the jobs in the order printed.
func decodeQstatJSON(b []byte) ([]rawJob, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	fail := func(err error) ([]rawJob, error) {
		return nil, fmt.Errorf("line %d: %v", lineAt(b, dec.InputOffset()), err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return fail(err)
	}
	var jobs []rawJob
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return fail(err)
		}
		if key != "Jobs" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
			continue
		}
		if err := expectDelim(dec, '{'); err != nil {
			return fail(err)
		}
		for dec.More() {
			id, err := stringToken(dec)
			if err != nil {
				return fail(err)
			}
			var attrs map[string]json.RawMessage
			if err := dec.Decode(&attrs); err != nil {
				return fail(err)
			}
			j := rawJob{id: id, attrs: make(map[string]string, len(attrs))}
			for k, v := range attrs {
				if s, ok := adapter.JSONScalar(v); ok {
					j.attrs[k] = s
				}
			}
			jobs = append(jobs, j)
		}
		if err := expectDelim(dec, '}'); err != nil {
			return fail(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(errors.New("data after the JSON object"))
	}
	return jobs, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("found %v, want %q", t, rune(want))
	}
	return nil
}

func stringToken(dec *json.Decoder) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("found %v, want a key", t)
	}
	return s, nil
}

// lineAt returns the 1-based line of byte offset off in b.
func lineAt(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(b[:off], []byte{'\n'}) + 1
}

// repairEscapes drops the backslash of escapes JSON does not define ("\'", "\,") inside strings,
// which qstat before OpenPBS 20 printed for environment values, and escapes raw control characters
// inside strings. It changes nothing else.
func repairEscapes(b []byte) []byte {
	if !bytes.ContainsAny(b, "\\\t") {
		return b
	}
	out := make([]byte, 0, len(b))
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case !in:
			if c == '"' {
				in = true
			}
			out = append(out, c)
		case c == '"':
			in = false
			out = append(out, c)
		case c == '\\':
			if i+1 >= len(b) {
				continue
			}
			n := b[i+1]
			switch {
			case strings.IndexByte(`"\/bfnrt`, n) >= 0:
				out = append(out, c, n)
				i++
			case n == 'u' && i+5 < len(b) && isHex(b[i+2:i+6]):
				out = append(out, b[i:i+6]...)
				i += 5
			default:
				// an escape JSON does not know: keep the character, drop the backslash
			}
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c < 0x20:
			out = append(out, fmt.Sprintf(`\u%04x`, c)...)
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

var (
	jsonJobsOpen = regexp.MustCompile(`^"Jobs"\s*:\s*\{$`)
	jsonObjOpen  = regexp.MustCompile(`^"((?:[^"\\]|\\.)*)"\s*:\s*\{$`)
	jsonAttr     = regexp.MustCompile(`^"((?:[^"\\]|\\.)*)"\s*:\s*(.*?)\s*,?$`)
)

// scanQstatJSON reads qstat's JSON line by line, for output that is not valid JSON. qstat prints
// every key on a line of its own: `"Jobs":{`, then per job `"ID":{`, its attributes `"key":value,`
// and nested objects (`"Resource_List":{` ... `},`), closing with `}` or `},`. Only the job's own
// attributes are kept; lines inside nested objects are skipped whatever they hold.
func scanQstatJSON(b []byte) ([]rawJob, error) {
	var jobs []rawJob
	depth := -1 // -1 before "Jobs", 0 inside it, 1 inside a job, 2+ nested
	var cur *rawJob
	done := false
	err := adapter.EachLine(b, func(no int, line string) error {
		t := strings.TrimSpace(line)
		if done || t == "" {
			return nil
		}
		switch {
		case depth < 0:
			if jsonJobsOpen.MatchString(t) {
				depth = 0
			}
		case t == "}" || t == "},":
			if depth == 0 {
				done = true
				return nil
			}
			depth--
		case jsonObjOpen.MatchString(t):
			if depth == 0 {
				m := jsonObjOpen.FindStringSubmatch(t)
				jobs = append(jobs, rawJob{id: unquoteLenient(m[1]), attrs: map[string]string{}})
				cur = &jobs[len(jobs)-1]
			}
			depth++
		case depth == 0:
			return fmt.Errorf("line %d %q is not a job", no, adapter.Bound(t))
		case depth == 1:
			if m := jsonAttr.FindStringSubmatch(t); m != nil {
				cur.attrs[unquoteLenient(m[1])] = jsonValueLenient(m[2])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if depth < 0 && len(bytes.TrimSpace(b)) > 0 && !bytes.Contains(b, []byte(`"pbs_version"`)) {
		return nil, errors.New(`no "Jobs" object`)
	}
	return jobs, nil
}

// jsonValueLenient returns the text of a value as qstat printed it: a quoted string without its
// quotes and with its escapes resolved where they make sense, anything else as is.
func jsonValueLenient(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return unquoteLenient(v[1 : len(v)-1])
	}
	return v
}

// unquoteLenient resolves the JSON escapes in s and keeps the character after any other backslash.
func unquoteLenient(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
