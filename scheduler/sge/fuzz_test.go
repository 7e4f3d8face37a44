package sge

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
		if strings.TrimSpace(js.Raw) == "" || js.Status == "" {
			t.Fatalf("job %q has no state", js.ID)
		}
	}
}

func FuzzParseQstatXML(f *testing.F) {
	seed(f, "sge-qstat-xml-1", "sge-qstat-xml-3", "sge-qstat-xml-5", "sge-qstat-xml-7")
	f.Add([]byte(arrayXML))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatXML(b)
		checkStates(t, js, err)
	})
}

func FuzzParseQstatTable(f *testing.F) {
	seed(f, "sge-qstat-1", "sge-qstat-3", "sge-qstat-5", "sge-qstat-7")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatTable(b)
		checkStates(t, js, err)
	})
}

func FuzzParseQacct(f *testing.F) {
	f.Add([]byte(qacctOut))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQacct(b)
		checkStates(t, js, err)
	})
}

func FuzzParseSubmit(f *testing.F) {
	seed(f, "sge-qsub-")
	s := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := s.ParseSubmit(b)
		if err == nil && !isDigits(string(id)) {
			t.Fatalf("ParseSubmit returned id %q", id)
		}
	})
}
