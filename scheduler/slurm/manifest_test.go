package slurm

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// manifestRow is one row of testdata/MANIFEST.tsv: the Slurm rows of the shared fixture manifest,
// copied verbatim, plus rows for outputs captured on the local test cluster.
type manifestRow struct {
	file, command, expected string
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
		require.Equal(t, "slurm", cols[1], "manifest row %q", cols[0])
		rows = append(rows, manifestRow{file: cols[0], command: cols[2], expected: cols[4]})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows)
	return rows
}

type parseFunc func([]byte) ([]scheduler.JobState, error)

// fixtureParsers says which parser reads each fixture. Every manifest row must be listed here,
// either with a parser or with the reason it is skipped, so a new fixture cannot be ignored silently.
func fixtureParsers() (map[string]parseFunc, map[string]string) {
	s := New(Options{})
	columns := func(cols ...string) parseFunc {
		return func(b []byte) ([]scheduler.JobState, error) { return ParseSacctColumns(cols, b) }
	}
	gc3pie := columns("jobid", "exitcode", "state", "ncpus", "elapsed", "totalcpu", "submit", "start", "end", "maxrss", "maxvmsize")
	parsers := map[string]parseFunc{
		"slurm-sacct-1.txt":  gc3pie,
		"slurm-sacct-3.txt":  gc3pie,
		"slurm-sacct-5.txt":  gc3pie,
		"slurm-sacct-7.txt":  gc3pie,
		"slurm-sacct-9.txt":  columns("JobIDRaw", "State", "ExitCode"),
		"slurm-sacct-11.txt": ParseSacctTable,
		"slurm-sacct-13.txt": columns("JobID", "AllocNodes", "Cluster", "ExitCode", "Group", "Account", "JobName", "NodeList", "Partition",
			"Priority", "State", "Reason", "ElapsedRaw", "Submit", "Start", "End", "Suspended", "TimelimitRaw", "User", "WorkDir"),
		"slurm-sacct-15.txt":  ParseSacctParsable,
		"slurm-sacct-17.txt":  ParseSacctParsable,
		"slurm-squeue-3.txt":  ParseSqueueTable,
		"slurm-squeue-7.txt":  ParseSqueueTable,
		"slurm-squeue-9.txt":  ParseSqueueTable,
		"slurm-squeue-11.txt": ParseSqueueTable,
		"slurm-squeue-13.txt": ParseSqueueTable,
		"slurm-squeue-15.txt": ParseSqueueTable,
		"slurm-squeue-17.txt": ParseSqueueTable,

		"slurm-local-squeue-ferry-1.txt":     s.ParseStatus,
		"slurm-local-squeue-ferry-2.txt":     s.ParseStatus,
		"slurm-local-squeue-ferry-3.txt":     s.ParseStatus,
		"slurm-local-squeue-ferry-epoch.txt": s.ParseStatus,
		"slurm-local-squeue-default.txt":     ParseSqueueTable,
		"slurm-local-squeue-long.txt":        ParseSqueueTable,
		"slurm-local-scontrol.txt":           ParseScontrolShowJob,
		"slurm-local-scontrol-o.txt":         ParseScontrolShowJob,
		"slurm-local-sacct-ferry.txt":        s.ParseAccounting,
		"slurm-local-sacct-ferry-steps.txt":  s.ParseAccounting,
		"slurm-local-sacct-ferry-epoch.txt":  s.ParseAccounting,
		"slurm-local-sacct-default.txt":      ParseSacctTable,
		"slurm-local-sacct-P.txt":            ParseSacctParsable,
		"slurm-local-sacct-parsable.txt":     ParseSacctParsable,
	}
	skipped := map[string]string{
		"slurm-squeue-1.txt": "site-specific headerless squeue -o format ('^^^' separators, name not last); Ferry never issues it and a header-less custom format cannot be read without its format string",
		"slurm-squeue-5.txt": "site-specific headerless squeue -o '%A,%T'; Ferry never issues it (its long state names are covered by slurm-local-squeue-long and TestStatesTable)",
	}
	return parsers, skipped
}

// TestManifest parses every Slurm fixture with the parser for its format and compares the
// id=STATE pairs, in order, with the manifest's expected column.
func TestManifest(t *testing.T) {
	parsers, skipped := fixtureParsers()
	s := New(Options{})
	for _, row := range readManifest(t) {
		t.Run(row.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", row.file))
			require.NoError(t, err)
			if strings.HasPrefix(row.file, "slurm-sbatch-") {
				id, err := s.ParseSubmit(data)
				if row.expected == "NONE" {
					require.ErrorIs(t, err, scheduler.ErrParse)
					return
				}
				require.NoError(t, err)
				require.Equal(t, scheduler.JobID(row.expected), id)
				return
			}
			if reason, ok := skipped[row.file]; ok {
				t.Skipf("not parsed: %s", reason)
			}
			parse, ok := parsers[row.file]
			require.True(t, ok, "no parser or skip reason listed for %s (command: %s)", row.file, row.command)
			states, err := parse(data)
			require.NoError(t, err)
			var got []string
			for _, js := range states {
				got = append(got, string(js.ID)+"="+js.Raw)
				require.NotEqual(t, scheduler.StatusUnknown, js.Status, "job %s state %q", js.ID, js.Raw)
			}
			want := []string{}
			if row.expected != "NONE" {
				want = strings.Split(row.expected, ",")
			}
			if got == nil {
				got = []string{}
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
	files, err := filepath.Glob(filepath.Join("testdata", "slurm-*.txt"))
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, listed[filepath.Base(f)], "%s has no row in testdata/MANIFEST.tsv", f)
	}
}
