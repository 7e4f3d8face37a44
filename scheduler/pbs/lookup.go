package pbs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

var (
	_ scheduler.TokenLookup   = (*Pro)(nil)
	_ scheduler.LookupChecker = (*Pro)(nil)
	_ scheduler.TokenLookup   = (*Torque)(nil)
	_ scheduler.LookupChecker = (*Torque)(nil)
)

// tokenVar is the variable Render exports the token in (#PBS -v FERRY_TOKEN=TOKEN); qstat -f shows
// it in the job's Variable_List.
const tokenVar = "FERRY_TOKEN"

// lookupScript prints qstat -f of each of the user's ($1) jobs: qselect ($2, with its options in
// $3) lists their full ids, qstat ($4, options in $5) prints them. qstat -f cannot select by owner
// (see the package comment), qselect can. No job prints nothing; a failing qselect is an error. $3
// and $5 are split on blanks on purpose (they hold fixed options, never user input). One line:
// the agent runs it through the user's login shell, which may be tcsh.
const lookupScript = `ids=$("$2" $3 -u "$1") || exit 1; [ -n "$ids" ] || exit 0; exec "$4" $5 $ids`

// LookupCommand returns the one command that prints the full status, Variable_List included, of
// user's jobs, finished ones too when the server keeps history (qselect -x, qstat -x), so a job
// whose submit outcome is unknown can be found by its token.
func (p *Pro) LookupCommand(user string) scheduler.Command {
	sel, stat := "", "-f -F json"
	if p.history {
		sel, stat = "-x", "-x -f -F json"
	}
	return scheduler.Command{Argv: []string{"/bin/sh", "-c", lookupScript, "ferry-lookup", user, p.prog("qselect"), sel, p.prog("qstat"), stat}}
}

// LookupCommand returns the one command that prints qstat -f -1 of user's jobs (completed ones stay
// for the server's keep_completed), so a job whose submit outcome is unknown can be found by its
// token. Slurm's Torque wrappers have no qselect and show no Variable_List: there the lookup
// fails, and an ambiguous submit is reported as unknown, as before.
func (t *Torque) LookupCommand(user string) scheduler.Command {
	return scheduler.Command{Argv: []string{"/bin/sh", "-c", lookupScript, "ferry-lookup", user, t.prog("qselect"), "", t.prog("qstat"), "-f -1"}}
}

// CheckLookup accepts what CheckStatus accepts: qstat exits 153 when a job qselect listed ended
// (and, without history, left) before qstat asked, while it still prints the others.
func (c *core) CheckLookup(r scheduler.Result) error { return c.CheckStatus(nil, r) }

// ParseLookup finds the job whose Variable_List holds FERRY_TOKEN=token in qstat -f -F json output
// (the lowest id of several). Invalid JSON of older releases is read line by line, relying on
// qstat printing one attribute a line; output neither reading understands is an error wrapping
// scheduler.ErrParse.
func (p *Pro) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	var best adapter.Earliest
	var doc struct {
		Jobs map[string]struct {
			VariableList map[string]json.RawMessage `json:"Variable_List"`
		}
	}
	if err := json.Unmarshal(repairEscapes(stdout), &doc); err == nil || len(strings.TrimSpace(string(stdout))) == 0 {
		for id, j := range doc.Jobs {
			if v, ok := adapter.JSONScalar(j.VariableList[tokenVar]); ok && v == token {
				best.Offer(id)
			}
		}
	} else if err := scanJSONTokens(stdout, token, &best); err != nil {
		return "", false, fmt.Errorf("qstat JSON %v: %w", err, scheduler.ErrParse)
	}
	id, ok := best.ID()
	return id, ok, nil
}

var (
	jsonJobLine   = regexp.MustCompile(`^\s*"([^"]+)"\s*:\s*\{\s*$`)
	jsonTokenLine = regexp.MustCompile(`^\s*"` + tokenVar + `"\s*:\s*"([^"]*)"\s*,?\s*$`)
)

// scanJSONTokens reads qstat JSON line by line: a key opening an object at the jobs' level names
// the current job, a "FERRY_TOKEN":"..." line offers it.
func scanJSONTokens(stdout []byte, token string, best *adapter.Earliest) error {
	job, inJobs := "", false
	return adapter.EachLine(stdout, func(no int, line string) error {
		if m := jsonJobLine.FindStringSubmatch(line); m != nil {
			switch {
			case m[1] == "Jobs":
				inJobs = true
			case inJobs && strings.HasPrefix(line, "        \"") && !strings.HasPrefix(line, "         "):
				job = m[1]
			}
			return nil
		}
		if m := jsonTokenLine.FindStringSubmatch(line); m != nil && m[1] == token {
			if job == "" {
				return fmt.Errorf("line %d: a token before any job", no)
			}
			best.Offer(job)
		}
		return nil
	})
}

// ParseLookup finds the job whose Variable_List holds FERRY_TOKEN=token in qstat -f output (the
// lowest id of several), wrapped or not (see ParseQstatFull).
func (t *Torque) ParseLookup(stdout []byte, token string) (scheduler.JobID, bool, error) {
	jobs, err := readQstatFull(stdout)
	if err != nil {
		return "", false, err
	}
	var best adapter.Earliest
	for _, j := range jobs {
		if adapter.HasVar(j.attrs["Variable_List"], tokenVar, token) {
			best.Offer(j.id)
		}
	}
	id, ok := best.ID()
	return id, ok, nil
}
