package sge

import (
	"bytes"
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

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
