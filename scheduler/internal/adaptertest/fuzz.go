package adaptertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// Seed adds to f's corpus every file in testdata whose name starts with one of prefixes.
func Seed(f *testing.F, prefixes ...string) {
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

// CheckStates fails t unless, when err is nil, every state has an id that adapter.ValidID accepts,
// a raw state that is not blank, and a status. A parser's error is not checked.
func CheckStates(t *testing.T, states []scheduler.JobState, err error) {
	t.Helper()
	if err != nil {
		return
	}
	for _, js := range states {
		if !adapter.ValidID(string(js.ID)) {
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
