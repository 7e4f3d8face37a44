package slurm

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// The fuzz targets check that no input makes a parser panic, that every error wraps
// scheduler.ErrParse, and that every job returned has an id and a raw state. The seed corpus is the
// fixtures in testdata. Run one with, for example:
//
//	go test -run='^$' -fuzz=FuzzParseStatus -fuzztime=20s ./scheduler/slurm/

func checkParsed(t *testing.T, states []scheduler.JobState, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, scheduler.ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		if states != nil {
			t.Fatalf("states %v returned with error %v", states, err)
		}
		return
	}
	for _, js := range states {
		if js.ID == "" || js.Raw == "" {
			t.Fatalf("job without id or state: %+v", js)
		}
		if js.Status == "" {
			t.Fatalf("job without status: %+v", js)
		}
		if js.Status == scheduler.StatusPending && !js.Started.IsZero() {
			t.Fatalf("pending job with a start: %+v", js)
		}
		if !js.Status.Final() && !js.Ended.IsZero() {
			t.Fatalf("active job with an end: %+v", js)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	adaptertest.Seed(f, "slurm-local-squeue-ferry")
	f.Add([]byte("1|R|None|p|u|N/A|N/A|N/A|a|b\n2|CANCELLED+|x|||1|2|3|\n"))
	s := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := s.ParseStatus(b)
		checkParsed(t, states, err)
		if err == nil && utf8.Valid(b) {
			// Every non-blank line is one job, in order.
			n := 0
			for _, l := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(strings.TrimSuffix(l, "\r")) != "" {
					n++
				}
			}
			if n != len(states) {
				t.Fatalf("%d lines, %d jobs", n, len(states))
			}
		}
	})
}

func FuzzParseAccounting(f *testing.F) {
	adaptertest.Seed(f, "slurm-local-sacct-ferry", "slurm-sacct-9")
	f.Add([]byte("7.0|CANCELLED by 1000|-2:0||||N/A|N/A|N/A|x|y\n"))
	s := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := s.ParseAccounting(b)
		checkParsed(t, states, err)
	})
}

func FuzzParseSubmit(f *testing.F) {
	adaptertest.Seed(f, "slurm-sbatch-")
	f.Add([]byte("123;cluster\n"))
	s := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := s.ParseSubmit(b)
		if err != nil {
			if !errors.Is(err, scheduler.ErrParse) {
				t.Fatalf("error does not wrap ErrParse: %v", err)
			}
			return
		}
		if id == "" || strings.Trim(string(id), "0123456789") != "" {
			t.Fatalf("id %q is not a number", id)
		}
	})
}

func FuzzParseSqueueTable(f *testing.F) {
	adaptertest.Seed(f, "slurm-squeue-", "slurm-local-squeue-default", "slurm-local-squeue-long")
	f.Add([]byte("JOBID ST NAME NODELIST(REASON)\n1 PD a b (x y)\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := ParseSqueueTable(b)
		checkParsed(t, states, err)
	})
}

func FuzzParseSacctParsable(f *testing.F) {
	adaptertest.Seed(f, "slurm-sacct-15", "slurm-sacct-17", "slurm-local-sacct-P", "slurm-local-sacct-parsable")
	f.Add([]byte("JobID|JobName|State|\n1|a|b|RUNNING|\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := ParseSacctParsable(b)
		checkParsed(t, states, err)
	})
}

func FuzzParseSacctTable(f *testing.F) {
	adaptertest.Seed(f, "slurm-sacct-11", "slurm-local-sacct-default")
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := ParseSacctTable(b)
		checkParsed(t, states, err)
	})
}

func FuzzParseScontrolShowJob(f *testing.F) {
	adaptertest.Seed(f, "slurm-local-scontrol")
	f.Add([]byte("JobId=1 ArrayJobId=1 ArrayTaskId=2-3 JobState=PENDING\n\nJobId=2 HetJobId=1 HetJobOffset=0 JobState=R\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := ParseScontrolShowJob(b)
		checkParsed(t, states, err)
	})
}
