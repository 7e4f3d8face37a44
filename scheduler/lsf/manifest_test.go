package lsf

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// manifestRow is one row of testdata/MANIFEST.tsv: the LSF rows of the shared
// fixture manifest, copied verbatim.
type manifestRow struct {
	file, scheduler, command, expected string
}

func readManifest(t testing.TB) []manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "MANIFEST.tsv"))
	require.NoError(t, err)
	defer f.Close()
	var rows []manifestRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	first := true
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if first {
			require.Equal(t, []string{"file", "scheduler", "command", "source", "expected", "notes"}, cols)
			first = false
			continue
		}
		require.Len(t, cols, 6, "manifest row %q", sc.Text())
		require.Equal(t, "lsf", cols[1], "manifest row %q", cols[0])
		rows = append(rows, manifestRow{file: cols[0], scheduler: cols[1], command: cols[2], expected: cols[4]})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows)
	return rows
}

type parseFunc func([]byte) ([]scheduler.JobState, error)

// fixtureParser chooses the parser for a fixture by its format, which the file name and the
// manifest's command say. Every manifest row must get one (or be in skipped with the reason), so a
// new fixture cannot be ignored silently.
func fixtureParser(row manifestRow) (parseFunc, bool) {
	switch {
	case row.file == "lsf-bjobs-1.txt":
		// A site -o list (aiida's), known from the command column.
		fields := strings.Fields("id stat exit_reason exec_host user slots max_req_proc exec_host queue finish_time start_time %complete submit_time name")
		return func(b []byte) ([]scheduler.JobState, error) { return ParseBjobsColumns(fields, b) }, true
	case strings.HasPrefix(row.file, "lsf-bjobs-json-"):
		// bjobs -json prints no JOBID when the -o list lacks it; the ids are the command's numbers.
		var ids []scheduler.JobID
		for _, w := range strings.Fields(row.command) {
			if isDigits(w) {
				ids = append(ids, scheduler.JobID(w))
			}
		}
		if ids == nil {
			return ParseBjobsJSON, true
		}
		return func(b []byte) ([]scheduler.JobState, error) { return ParseBjobsJSONFor(ids, b) }, true
	case strings.HasPrefix(row.command, "bjobs -l"):
		return ParseBjobsLong, true
	case strings.HasPrefix(row.file, "lsf-bjobs-"):
		return ParseBjobsTable, true
	}
	return nil, false
}

// skipped lists fixtures that are deliberately not parsed, with the reason. None so far.
var skipped = map[string]string{}

// TestManifest parses every LSF fixture with the parser for its format and compares the id=STATE
// pairs, in order, with the manifest's expected column; submit fixtures go through ParseSubmit.
func TestManifest(t *testing.T) {
	for _, row := range readManifest(t) {
		t.Run(row.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", row.file))
			require.NoError(t, err)
			if reason, ok := skipped[row.file]; ok {
				t.Skipf("not parsed: %s", reason)
			}
			if strings.HasPrefix(row.file, "lsf-bsub-") {
				var s scheduler.Scheduler = New(Options{})
				id, err := s.ParseSubmit(data)
				if row.expected == "NONE" {
					require.ErrorIs(t, err, scheduler.ErrParse)
					return
				}
				require.NoError(t, err)
				require.Equal(t, scheduler.JobID(row.expected), id)
				return
			}
			parse, ok := fixtureParser(row)
			require.True(t, ok, "no parser or skip reason for %s (command: %s)", row.file, row.command)
			states, err := parse(data)
			require.NoError(t, err)
			got := []string{}
			for _, js := range states {
				got = append(got, string(js.ID)+"="+js.Raw)
				require.NotEqual(t, scheduler.StatusUnknown, js.Status, "job %s state %q", js.ID, js.Raw)
			}
			want := []string{}
			if row.expected != "NONE" {
				want = strings.Split(row.expected, ",")
			}
			require.Equal(t, want, got)
		})
	}
}

// TestManifestCoversEveryFixture makes sure no fixture file sits in testdata without a manifest row.
func TestManifestCoversEveryFixture(t *testing.T) {
	listed := map[string]bool{}
	for _, r := range readManifest(t) {
		listed[r.file] = true
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
