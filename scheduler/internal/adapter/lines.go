// Package adapter holds the code that Ferry's scheduler adapters (slurm, pbs, sge, lsf) share:
// reading a command's output line by line, checking job ids, reading JSON scalars, finding the id
// a submit command printed, judging a cancel command's output, and checking the values a batch
// script carries. Everything here is pure: no function runs a command or keeps state.
package adapter

import "strings"

// maxBound is how many bytes of a value Bound keeps.
const maxBound = 200

// EachLine calls fn for every line of out with its 1-based number, without the "\n" or a trailing
// "\r". A last line without "\n" is a line; an empty out has none. It stops at the first error fn
// returns and returns it. out is converted to a string once and the lines share its memory, so a
// line kept after the call keeps all of out alive.
func EachLine(out []byte, fn func(no int, line string) error) error {
	rest := string(out)
	no := 0
	for len(rest) > 0 {
		no++
		var line string
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, ""
		}
		line = strings.TrimSuffix(line, "\r")
		if err := fn(no, line); err != nil {
			return err
		}
	}
	return nil
}

// SplitLines returns the lines of out as EachLine reads them; nil when out is empty.
func SplitLines(out []byte) []string {
	var lines []string
	_ = EachLine(out, func(_ int, l string) error {
		lines = append(lines, l)
		return nil
	})
	return lines
}

// Bound returns s cut to its first 200 bytes with "..." added when it is longer, for quoting
// scheduler output in an error message. It may cut a multi-byte character in two.
func Bound(s string) string {
	if len(s) <= maxBound {
		return s
	}
	return s[:maxBound] + "..."
}

// ValidID reports whether s can be a job id: not empty, and without a space or an ASCII control
// character (C0 or DEL).
func ValidID(s string) bool {
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

// IsDigits reports whether s is one or more ASCII digits, with nothing else.
func IsDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
