package moab

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// submitID is the line msub prints for a submitted job: the id ("123", or "Moab.123" where Moab
// numbers jobs itself), after a blank line.
var submitID = regexp.MustCompile(`^((?:Moab\.)?[0-9]+)$`)

// ParseSubmit returns the job id from msub's stdout: the last line that is an id, so banners and
// warnings before it do not matter. Empty or unrecognised output is an error wrapping
// scheduler.ErrParse; when msub says it refused the job ("ERROR:"), it wraps
// scheduler.ErrSubmitRejected too.
func (m *Moab) ParseSubmit(stdout []byte) (scheduler.JobID, error) {
	id, last, refused := adapter.ScanSubmit(stdout, func(l string) bool {
		return strings.HasPrefix(l, "ERROR:")
	}, submitID)
	switch {
	case id != "":
		return scheduler.JobID(id), nil
	case last == "":
		return "", fmt.Errorf("msub printed nothing: %w", scheduler.ErrParse)
	case refused != "":
		return "", fmt.Errorf("msub refused the job: %q: %w: %w", adapter.Bound(refused), scheduler.ErrSubmitRejected, scheduler.ErrParse)
	}
	return "", fmt.Errorf("no job id in msub output; last line %q: %w", adapter.Bound(last), scheduler.ErrParse)
}

// xmlJob is a <job> element of showq --xml or checkjob --xml: Moab puts everything in attributes.
type xmlJob struct {
	JobID          string `xml:"JobID,attr"`
	State          string `xml:"State,attr"`
	JobName        string `xml:"JobName,attr"`
	AName          string `xml:"AName,attr"`
	User           string `xml:"User,attr"`
	Class          string `xml:"Class,attr"`
	SubmissionTime string `xml:"SubmissionTime,attr"`
	StartTime      string `xml:"StartTime,attr"`
	CompletionTime string `xml:"CompletionTime,attr"`
	CompletionCode string `xml:"CompletionCode,attr"`
	BlockReason    string `xml:"BlockReason,attr"`
	HoldReason     string `xml:"HoldReason,attr"`
}

// xmlData is one <Data> document: showq's queues, or checkjob's job.
type xmlData struct {
	XMLName xml.Name `xml:"Data"`
	Queues  []struct {
		Option string   `xml:"option,attr"`
		Jobs   []xmlJob `xml:"job"`
	} `xml:"queue"`
	Jobs []xmlJob `xml:"job"`
}

// ParseStatus parses showq --xml: the jobs of every <queue> (active, eligible, blocked, and
// completed where the site shows it), in the order printed. Empty output is no jobs; anything that
// is not Moab's <Data> XML, or a job without JobID or State, is an error wrapping scheduler.ErrParse.
func (m *Moab) ParseStatus(stdout []byte) ([]scheduler.JobState, error) {
	return parseData(stdout, "showq")
}

// ParseAccounting parses the output of AccountingCommand: one checkjob --xml <Data> document per
// job, one after the other.
func (m *Moab) ParseAccounting(stdout []byte) ([]scheduler.JobState, error) {
	return parseData(stdout, "checkjob")
}

func parseData(stdout []byte, prog string) ([]scheduler.JobState, error) {
	var out []scheduler.JobState
	if t := bytes.TrimSpace(stdout); len(t) > 0 && t[0] != '<' {
		return nil, fmt.Errorf("%s --xml printed no XML: %q: %w", prog, adapter.Bound(string(adapter.SplitLines(t)[0])), scheduler.ErrParse)
	}
	dec := xml.NewDecoder(bytes.NewReader(stdout))
	for {
		var d xmlData
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s --xml: %v: %w", prog, err, scheduler.ErrParse)
		}
		jobs := d.Jobs
		for _, q := range d.Queues {
			jobs = append(jobs, q.Jobs...)
		}
		for _, j := range jobs {
			js, err := j.build()
			if err != nil {
				return nil, fmt.Errorf("%s --xml: %w", prog, err)
			}
			out = append(out, js)
		}
	}
}

func (j xmlJob) build() (scheduler.JobState, error) {
	if j.JobID == "" || j.State == "" {
		return scheduler.JobState{}, fmt.Errorf("a job without JobID or State (JobID %q): %w", adapter.Bound(j.JobID), scheduler.ErrParse)
	}
	js := scheduler.JobState{
		ID: scheduler.JobID(j.JobID), Raw: j.State, Status: StateStatus(j.State),
		Queue: j.Class, User: j.User, Name: j.JobName,
		Submitted: epoch(j.SubmissionTime), Started: epoch(j.StartTime), Ended: epoch(j.CompletionTime),
	}
	if js.Name == "" {
		js.Name = j.AName
	}
	js.Reason = j.BlockReason
	if js.Reason == "" {
		js.Reason = j.HoldReason
	}
	if js.Status.Final() && j.CompletionCode != "" {
		if code, err := strconv.Atoi(strings.TrimSpace(j.CompletionCode)); err == nil {
			switch {
			case code == -11: // Torque's JOB_EXEC_OVERLIMIT_WT: ran past its walltime
				js.Status = scheduler.StatusTimeout
			case code < 0:
				js.Status = scheduler.StatusFailed
			default:
				js.ExitCode = &code
			}
		}
	}
	if !js.Status.Final() {
		js.Ended = time.Time{}
	}
	if js.Status == scheduler.StatusPending {
		js.Started = time.Time{}
	}
	return js, nil
}

// epoch reads Moab's epoch-seconds times; 0, empty or unreadable is the zero time.
func epoch(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// gone reports whether a checkjob or mjobctl message says the job no longer exists or has ended.
func gone(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "cannot locate job") || strings.Contains(m, "invalid job specified") ||
		strings.Contains(m, "has already completed") || strings.Contains(m, "job does not exist")
}

// CheckStatus judges a status or accounting result: checkjob fails for a job Moab has purged
// ("cannot locate job"), while the others are still printed; that is not an error.
func (m *Moab) CheckStatus(ids []scheduler.JobID, r scheduler.Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	recognised, other := false, false
	for _, l := range adapter.SplitLines(r.Stderr) {
		switch t := strings.TrimSpace(l); {
		case t == "":
		case gone(t):
			recognised = true
		default:
			other = true
		}
	}
	if recognised && !other {
		return nil
	}
	return scheduler.NewCommandError(scheduler.Command{Argv: []string{m.prog("checkjob")}}, r)
}

// CheckCancel interprets the mjobctl -c results (adapter.CancelTally's verdict): "job 'N'
// cancelled" is success, and so is a job that has already ended or is gone (cancelling is
// idempotent); "not authorized" or "permission denied" is an error wrapping scheduler.ErrPermission
// that names the job; anything else with a non-zero exit is an error. Both streams are read.
func (m *Moab) CheckCancel(ids []scheduler.JobID, r scheduler.Result) error {
	var tally adapter.CancelTally
	for _, l := range adapter.SplitLines(append(append([]byte{}, r.Stderr...), r.Stdout...)) {
		t := strings.TrimSpace(l)
		low := strings.ToLower(t)
		switch {
		case t == "":
		case strings.Contains(low, "not authorized") || strings.Contains(low, "permission denied"):
			job := ""
			if mm := quotedJob.FindStringSubmatch(t); mm != nil {
				job = mm[1]
			}
			tally.Refused = append(tally.Refused, job)
		case strings.Contains(low, "cancelled"), gone(t):
			tally.Recognised = true
		default:
			tally.Other = true
		}
	}
	return tally.Verdict("mjobctl -c", m.CancelCommand(ids), r)
}

// quotedJob is the job a Moab message names: "... job '12'".
var quotedJob = regexp.MustCompile(`job '([^']+)'`)
