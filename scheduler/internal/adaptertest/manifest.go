package adaptertest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// ManifestRow is one row of a fixture manifest: an adapter's testdata/MANIFEST.tsv, which holds its
// rows of the shared fixture manifest, copied verbatim. The source and notes columns are not kept.
type ManifestRow struct {
	// File is the fixture's name in testdata.
	File string
	// Scheduler is the scheduler the fixture comes from ("slurm", "pbspro", "torque", "sge", "lsf").
	Scheduler string
	// Command is the command that printed the fixture.
	Command string
	// Expected is what parsing the fixture must give: the jobs as comma-separated id=STATE pairs in
	// order, the job id for a submit fixture, or "NONE" (no job; for a submit fixture, an error).
	Expected string
}

// ReadManifest returns the rows of testdata/MANIFEST.tsv, the fixture manifest of the package
// under test, as ReadManifestFile does, and fails t unless every row's scheduler is among
// schedulers.
func ReadManifest(t testing.TB, schedulers ...string) []ManifestRow {
	t.Helper()
	rows := ReadManifestFile(t, filepath.Join("testdata", "MANIFEST.tsv"))
	for _, r := range rows {
		require.Contains(t, schedulers, r.Scheduler, "manifest row %q", r.File)
	}
	return rows
}

// ReadManifestFile returns the rows of the fixture manifest at path. It fails t unless the file
// starts with the header "file scheduler command source expected notes" (tab-separated), every row
// has those six columns, and there is at least one row.
func ReadManifestFile(t testing.TB, path string) []ManifestRow {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var rows []ManifestRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	first := true
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if first {
			require.Equal(t, []string{"file", "scheduler", "command", "source", "expected", "notes"}, cols, path)
			first = false
			continue
		}
		require.Len(t, cols, 6, "%s: manifest row %q", path, sc.Text())
		rows = append(rows, ManifestRow{File: cols[0], Scheduler: cols[1], Command: cols[2], Expected: cols[4]})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows, path)
	return rows
}

// ParseFunc is the signature of an adapter's status and accounting parsers.
type ParseFunc func(stdout []byte) ([]scheduler.JobState, error)

// RequireEveryFixtureListed fails t when a file in testdata (not a directory, not MANIFEST.tsv)
// has no row in rows, so that no fixture sits there unchecked.
func RequireEveryFixtureListed(t testing.TB, rows []ManifestRow) {
	t.Helper()
	listed := map[string]bool{}
	for _, r := range rows {
		listed[r.File] = true
	}
	files, err := os.ReadDir("testdata")
	require.NoError(t, err)
	for _, f := range files {
		if f.IsDir() || f.Name() == "MANIFEST.tsv" {
			continue
		}
		require.True(t, listed[f.Name()], "%s has no row in testdata/MANIFEST.tsv", f.Name())
	}
}

// RequireSubmitted fails t unless s.ParseSubmit(stdout) gives the manifest's expected value: the
// job id, or, when expected is "NONE", an error wrapping scheduler.ErrParse.
func RequireSubmitted(t testing.TB, s scheduler.Scheduler, stdout []byte, expected string) {
	t.Helper()
	id, err := s.ParseSubmit(stdout)
	if expected == "NONE" {
		require.ErrorIs(t, err, scheduler.ErrParse)
		return
	}
	require.NoError(t, err)
	require.Equal(t, scheduler.JobID(expected), id)
}

// RequireStates fails t unless states, as id=STATE pairs (JobState.Raw), are the manifest's
// expected value in order ("NONE" for no job), and none has scheduler.StatusUnknown.
func RequireStates(t testing.TB, states []scheduler.JobState, expected string) {
	t.Helper()
	got := []string{}
	for _, js := range states {
		got = append(got, string(js.ID)+"="+js.Raw)
		require.NotEqual(t, scheduler.StatusUnknown, js.Status, "job %s state %q", js.ID, js.Raw)
	}
	want := []string{}
	if expected != "NONE" {
		want = strings.Split(expected, ",")
	}
	require.Equal(t, want, got)
}
