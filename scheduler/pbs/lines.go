package pbs

import (
	"bytes"
	"strings"
	"time"
)

// eachLine calls fn for every line of out with its 1-based number, without the "\n" or a trailing
// "\r". It stops at the first error.
func eachLine(out []byte, fn func(no int, line string) error) error {
	no := 0
	for len(out) > 0 {
		no++
		var line []byte
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			line, out = out, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if err := fn(no, string(line)); err != nil {
			return err
		}
	}
	return nil
}

// splitLines returns the lines of out (see eachLine).
func splitLines(out []byte) []string {
	var lines []string
	_ = eachLine(out, func(_ int, l string) error {
		lines = append(lines, l)
		return nil
	})
	return lines
}

// bound shortens s for an error message.
func bound(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// validID reports whether s can be a job id: not empty, no blank or control character.
func validID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// pbsTimeLayouts are the layouts PBS prints times in: ctime(3) ("Thu Jun 19 21:27:51 2025") in
// qstat -f and its JSON.
var pbsTimeLayouts = []string{"Mon Jan _2 15:04:05 2006", "Mon Jan 2 15:04:05 2006"}

// parseTime parses a PBS time in time.Local (the server prints local time), or epoch seconds (some
// sites patch qstat to print them). Anything else gives the zero time: a time is information, not
// a reason to fail a poll.
func parseTime(s string) time.Time {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return time.Time{}
	}
	if isDigits(s) && len(s) <= 11 {
		var n int64
		for i := 0; i < len(s); i++ {
			n = n*10 + int64(s[i]-'0')
		}
		if n <= 0 {
			return time.Time{}
		}
		return time.Unix(n, 0)
	}
	for _, l := range pbsTimeLayouts {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t
		}
	}
	return time.Time{}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
