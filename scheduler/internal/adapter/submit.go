package adapter

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
)

// ScanSubmit reads a submit command's stdout from the last line to the first, each line trimmed of
// surrounding blanks and blank lines skipped, so that whatever a site or the scheduler printed
// before the job id does not matter.
//
// A line names a job id when one of idPatterns matches it: the id is what the first pattern that
// matches captures in its first group, which must not be empty. When a line names one, id is that
// of the last such line and last and refused are "". Otherwise id is "", last is the last
// non-blank line ("" when stdout has none: the command printed nothing), and refused is the first
// line for which refusal reports true, the scheduler's reason for rejecting the job ("" when there
// is none).
func ScanSubmit(stdout []byte, refusal func(line string) bool, idPatterns ...*regexp.Regexp) (id, last, refused string) {
	lines := SplitLines(stdout)
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if last == "" {
			last = l
		}
		for _, p := range idPatterns {
			if m := p.FindStringSubmatch(l); m != nil {
				return m[1], "", ""
			}
		}
		if refusal(l) {
			refused = l
		}
	}
	return "", last, refused
}

// Earliest keeps, of the job ids offered, the one with the lowest leading number: the first
// submission, when a token was submitted more than once. An id without a leading number is kept
// only while nothing better is offered.
type Earliest struct {
	id string
	n  uint64
}

// Offer considers id.
func (e *Earliest) Offer(id string) {
	if id == "" {
		return
	}
	i := 0
	for i < len(id) && id[i] >= '0' && id[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(id[:i], 10, 64)
	if err != nil {
		n = ^uint64(0)
	}
	if e.id == "" || n < e.n {
		e.id, e.n = id, n
	}
}

// ID returns the earliest id offered, and whether there was one.
func (e *Earliest) ID() (scheduler.JobID, bool) { return scheduler.JobID(e.id), e.id != "" }

// HasVar reports whether a comma-separated NAME=VALUE list (a PBS Variable_List, a Grid Engine job
// context) holds name=value exactly, blanks around an item ignored.
func HasVar(list, name, value string) bool {
	want := name + "=" + value
	for _, kv := range strings.Split(list, ",") {
		if strings.TrimSpace(kv) == want {
			return true
		}
	}
	return false
}
