package adapter

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/ferryhpc/ferry/scheduler"
)

// tokenPattern is what an idempotency token may contain. Every adapter writes the token into a
// directive unquoted (Slurm's --comment, PBS's -v list, Grid Engine's -ac list, LSF's -Jd), where
// a blank would end the value and a ',' would start another variable.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// CheckToken returns an error unless token is empty or 1 to 128 characters from [A-Za-z0-9._:-].
func CheckToken(token string) error {
	if token != "" && !tokenPattern.MatchString(token) {
		return fmt.Errorf("token %q must be 1-128 characters from [A-Za-z0-9._:-]", token)
	}
	return nil
}

// CheckNonNegative returns an error naming the first of r.CPUs, r.MemoryMB and r.Time that is
// negative, in that order; nil when none is. Zero is allowed: it means the scheduler's default.
func CheckNonNegative(r scheduler.Resources) error {
	if r.CPUs < 0 {
		return fmt.Errorf("cpus %d is negative", r.CPUs)
	}
	if r.MemoryMB < 0 {
		return fmt.Errorf("memory %d MB is negative", r.MemoryMB)
	}
	if r.Time < 0 {
		return fmt.Errorf("time limit %s is negative", r.Time)
	}
	return nil
}

// HasControl reports whether s contains an ASCII control character (C0 or DEL).
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// CheckQsubDir returns an error unless dir is a task directory that PBS's and Grid Engine's qsub
// read back from an -o directive as one path: absolute, and without a control character,
// whitespace, a quote, a backslash, '#', ':' or '$'. qsub splits a directive's words on blanks,
// reads -o as [host:]path, and Grid Engine expands $HOME, $JOB_ID and the like in it. directive is
// the directive the message names, such as "#PBS -o".
func CheckQsubDir(dir, directive string) error {
	if !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("task dir %q is not absolute", dir)
	}
	if HasControl(dir) {
		return fmt.Errorf("task dir %q contains a control character", dir)
	}
	if strings.IndexFunc(dir, unicode.IsSpace) >= 0 || strings.ContainsAny(dir, "\"'\\#:$") {
		return fmt.Errorf("task dir %q contains whitespace, a quote, a backslash or one of # : $, which a %s directive cannot carry", dir, directive)
	}
	return nil
}
