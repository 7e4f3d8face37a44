package lsf

import (
	"fmt"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

var (
	_ scheduler.TokenLookup   = (*LSF)(nil)
	_ scheduler.LookupChecker = (*LSF)(nil)
)

// descriptionPrefix starts the job description (#BSUB -Jd) Render records a token in.
const descriptionPrefix = "ferry:"

// LookupCommand returns bjobs -a -u USER -noheader -o "jobid job_description delimiter='|'": every
// job of user's, finished ones for CLEAN_PERIOD, with its description, so a job whose submit
// outcome is unknown can be found by its token. The description is last: it is free text.
func (l *LSF) LookupCommand(user string) scheduler.Command {
	return scheduler.Command{Argv: []string{l.prog("bjobs"), "-a", "-u", user, "-noheader", "-o", "jobid job_description delimiter='|'"}}
}

// CheckLookup accepts bjobs' exit 255 with "No job found" (the user has no job at all); any other
// failure is an error.
func (l *LSF) CheckLookup(r scheduler.Result) error { return l.CheckStatus(nil, r) }

// ParseLookup finds the job whose description is exactly "ferry:"+token (the lowest id of
// several). A line without the delimiter is an error wrapping scheduler.ErrParse.
func (l *LSF) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	want := descriptionPrefix + token
	var best adapter.Earliest
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		id, desc, ok := strings.Cut(line, "|")
		if !ok {
			return fmt.Errorf("bjobs line %d has no '|': %q: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		if strings.TrimSpace(desc) == want {
			best.Offer(strings.TrimSpace(id))
		}
		return nil
	})
	if err != nil {
		return "", false, err
	}
	id, ok := best.ID()
	return id, ok, nil
}
