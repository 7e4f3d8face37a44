package adapter

import (
	"regexp"
	"strings"
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
