package slurm

import (
	"fmt"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// commentPrefix starts the --comment Render records a token in.
const commentPrefix = "ferry:"

// lookupFormat lists each job's id and comment; the comment is last because it is free text.
const lookupFormat = "%i|%k"

// lookupScript lists the user's ($1) jobs with their comments: squeue for jobs it still holds,
// then sacct for jobs that already left it (a submit settled after an agent restart may find its
// job finished and purged). A failing query is an error, never "not found": "not found" leads to
// a new submit. sacct sees comments only where AccountingStoreFlags includes job_comment.
const lookupScript = `squeue --noheader --states=all --user="$1" --format='%i|%k' || exit 1; sacct --noheader --parsable2 --allocations --user="$1" --starttime=now-7days --format=JobID,Comment || exit 1`

// LookupCommand returns the one command that lists user's jobs with their comments, finished ones
// included, so a job whose submit outcome is unknown can be found by its token (Render puts it in
// --comment=ferry:TOKEN). The user name travels as an argument, never inside the script.
func (s *Slurm) LookupCommand(user string) scheduler.Command {
	return scheduler.Command{Argv: []string{"/bin/sh", "-c", lookupScript, "ferry-lookup", user}}
}

// ParseLookup finds the job whose comment is exactly "ferry:"+token in LookupCommand's output.
// When several carry it (a submit that was retried after all), the lowest job id, the first
// submission, is returned. A line without '|' is an error wrapping scheduler.ErrParse.
func (s *Slurm) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	want := commentPrefix + token
	var best adapter.Earliest
	err := adapter.EachLine(stdout, func(no int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		id, comment, ok := strings.Cut(line, "|")
		if !ok {
			return fmt.Errorf("squeue line %d has no '|': %q: %w", no, adapter.Bound(line), scheduler.ErrParse)
		}
		id = strings.TrimSpace(id)
		if comment != want || id == "" {
			return nil
		}
		best.Offer(id)
		return nil
	})
	if err != nil {
		return "", false, err
	}
	id, ok := best.ID()
	return id, ok, nil
}
