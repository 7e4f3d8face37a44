package pbs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhpc/ferry/scheduler"
)

// seed adds the fixtures whose names start with one of prefixes to f's corpus.
func seed(f *testing.F, prefixes ...string) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
}

// checkStates fails unless every state a parser returned without error is usable.
func checkStates(t *testing.T, states []scheduler.JobState, err error) {
	if err != nil {
		return
	}
	for _, js := range states {
		if !validID(string(js.ID)) {
			t.Fatalf("invalid id %q", js.ID)
		}
		if strings.TrimSpace(js.Raw) == "" {
			t.Fatalf("job %q has an empty state", js.ID)
		}
		if js.Status == "" {
			t.Fatalf("job %q has no status", js.ID)
		}
	}
}

func FuzzParseQstatJSON(f *testing.F) {
	seed(f, "pbspro-qstat-json-")
	f.Add([]byte(history))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatJSON(b)
		checkStates(t, js, err)
	})
}

func FuzzParseQstatFull(f *testing.F) {
	seed(f, "pbspro-qstat-f-", "torque-qstat-f-")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatFull(b)
		checkStates(t, js, err)
	})
}

func FuzzParseQstatTable(f *testing.F) {
	seed(f, "pbspro-qstat-1", "pbspro-qstat-3", "pbspro-qstat-5", "pbspro-qstat-7", "pbspro-qstat-9", "torque-qstat-1")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatTable(b)
		checkStates(t, js, err)
	})
}

func FuzzParseSubmit(f *testing.F) {
	seed(f, "pbs-qsub-")
	p := NewPro(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := p.ParseSubmit(b)
		if err == nil && (!validID(string(id)) || id[0] < '0' || id[0] > '9') {
			t.Fatalf("ParseSubmit returned id %q", id)
		}
	})
}
