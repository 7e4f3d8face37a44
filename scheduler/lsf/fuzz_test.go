package lsf

import (
	"strings"
	"testing"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// checkStates fails unless every state a parser returned without error is usable
// (adaptertest.CheckStates) and its id starts with a digit, as LSF job ids do.
func checkStates(t *testing.T, states []scheduler.JobState, err error) {
	t.Helper()
	adaptertest.CheckStates(t, states, err)
	if err != nil {
		return
	}
	for _, js := range states {
		if js.ID[0] < '0' || js.ID[0] > '9' {
			t.Fatalf("invalid id %q", js.ID)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("101|RUN|normal|alice|-|-|-|Jun 14 10:00|Jun 14 10:05 L|-|nf-a\n102|EXIT|q|a|1|TERM_OWNER: x|-|-|-|-|a|b\n"))
	l := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := l.ParseStatus(b)
		checkStates(t, js, err)
	})
}

func FuzzParseBjobsColumns(f *testing.F) {
	adaptertest.Seed(f, "lsf-bjobs-1.")
	fields := strings.Fields("id stat exit_reason exec_host user slots max_req_proc exec_host queue finish_time start_time %complete submit_time name")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseBjobsColumns(fields, b)
		checkStates(t, js, err)
	})
}

func FuzzParseBjobsTable(f *testing.F) {
	adaptertest.Seed(f, "lsf-bjobs-3", "lsf-bjobs-5", "lsf-bjobs-7", "lsf-bjobs-11")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseBjobsTable(b)
		checkStates(t, js, err)
	})
}

func FuzzParseBjobsJSON(f *testing.F) {
	adaptertest.Seed(f, "lsf-bjobs-json-")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseBjobsJSON(b)
		checkStates(t, js, err)
		js, err = ParseBjobsJSONFor([]scheduler.JobID{"58652"}, b)
		checkStates(t, js, err)
	})
}

func FuzzParseBjobsLong(f *testing.F) {
	adaptertest.Seed(f, "lsf-bjobs-9")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseBjobsLong(b)
		checkStates(t, js, err)
	})
}

func FuzzParseBhistLong(f *testing.F) {
	f.Add([]byte(bhistOut))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseBhistLong(b)
		checkStates(t, js, err)
	})
}

func FuzzParseSubmit(f *testing.F) {
	adaptertest.Seed(f, "lsf-bsub-")
	l := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := l.ParseSubmit(b)
		if err == nil && !adapter.IsDigits(string(id)) {
			t.Fatalf("ParseSubmit returned id %q", id)
		}
	})
}
