package sge

import (
	"fmt"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

var _ scheduler.TokenLookup = (*SGE)(nil)

// lookupScript prints qstat -j of each of the user's ($1) jobs, with the qstat named by $2. qstat
// -j shows the job context, where Render records the token (-ac FERRY_TOKEN=TOKEN), but does not
// select by owner (-u is ignored with -j), so the ids come first from qstat -u. A failing qstat is
// an error, never "not found"; no job at all prints nothing. One line: the agent runs it through
// the user's login shell, which may be tcsh.
const lookupScript = `out=$("$2" -u "$1") || exit 1; ids=$(printf '%s\n' "$out" | awk 'NR > 2 && $1 ~ /^[0-9]+$/ { print $1 }' | sort -un | paste -sd, -); [ -n "$ids" ] || exit 0; exec "$2" -j "$ids"`

// LookupCommand returns the one command that prints the job contexts of user's jobs, so a job
// whose submit outcome is unknown can be found by its token. Grid Engine forgets a job when it
// ends and qacct does not keep the context: a job that already ended is not found (the agent waits
// poll.submit_timeout plus a grace before it asks, far less than any real task's run time).
func (s *SGE) LookupCommand(user string) scheduler.Command {
	return scheduler.Command{Argv: []string{"/bin/sh", "-c", lookupScript, "ferry-lookup", user, s.prog("qstat")}}
}

// ParseLookup finds the job whose context holds FERRY_TOKEN=token in qstat -j output (blocks
// starting at "job_number:", "context:" a comma-separated list of NAME=VALUE). Of several, the
// lowest id wins. A context line before any job_number is an error wrapping scheduler.ErrParse.
func (s *SGE) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	var best adapter.Earliest
	job := ""
	err := adapter.EachLine(stdout, func(no int, line string) error {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil
		}
		switch strings.TrimSpace(name) {
		case "job_number":
			job = strings.TrimSpace(value)
			if !adapter.IsDigits(job) {
				return fmt.Errorf("qstat -j line %d: job_number %q is not a number: %w", no, adapter.Bound(job), scheduler.ErrParse)
			}
		case "context":
			if job == "" {
				return fmt.Errorf("qstat -j line %d: a context before any job_number: %w", no, scheduler.ErrParse)
			}
			if adapter.HasVar(strings.TrimSpace(value), tokenVar, token) {
				best.Offer(job)
			}
		}
		return nil
	})
	if err != nil {
		return "", false, err
	}
	id, ok := best.ID()
	return id, ok, nil
}

// tokenVar is the variable Render records the token in.
const tokenVar = "FERRY_TOKEN"
