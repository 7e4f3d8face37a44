package slurm

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// fixtureParsers says which parser reads each fixture. Every manifest row must be listed here,
// either with a parser or with the reason it is skipped, so a new fixture cannot be ignored silently.
func fixtureParsers() (map[string]adaptertest.ParseFunc, map[string]string) {
	s := New(Options{})
	columns := func(cols ...string) adaptertest.ParseFunc {
		return func(b []byte) ([]scheduler.JobState, error) { return ParseSacctColumns(cols, b) }
	}
	gc3pie := columns("jobid", "exitcode", "state", "ncpus", "elapsed", "totalcpu", "submit", "start", "end", "maxrss", "maxvmsize")
	parsers := map[string]adaptertest.ParseFunc{
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
		"slurm-local-squeue-id-state.txt":    ParseSqueueIDState,
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
// id=STATE pairs, in order, with the manifest's expected column. The manifest holds the Slurm rows
// of the shared fixture manifest, copied verbatim, plus rows for outputs captured on the local test
// cluster.
func TestManifest(t *testing.T) {
	parsers, skipped := fixtureParsers()
	s := New(Options{})
	for _, row := range adaptertest.ReadManifest(t, "slurm") {
		t.Run(row.File, func(t *testing.T) {
			data := adaptertest.Fixture(t, row.File)
			if strings.HasPrefix(row.File, "slurm-sbatch-") {
				adaptertest.RequireSubmitted(t, s, data, row.Expected)
				return
			}
			if reason, ok := skipped[row.File]; ok {
				t.Skipf("not parsed: %s", reason)
			}
			parse, ok := parsers[row.File]
			require.True(t, ok, "no parser or skip reason listed for %s (command: %s)", row.File, row.Command)
			states, err := parse(data)
			require.NoError(t, err)
			adaptertest.RequireStates(t, states, row.Expected)
		})
	}
}

// TestManifestCoversEveryFixture makes sure no fixture file sits in testdata without a manifest row.
func TestManifestCoversEveryFixture(t *testing.T) {
	listed := map[string]bool{}
	for _, r := range adaptertest.ReadManifest(t, "slurm") {
		listed[r.File] = true
	}
	files, err := filepath.Glob(filepath.Join("testdata", "slurm-*.txt"))
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, listed[filepath.Base(f)], "%s has no row in testdata/MANIFEST.tsv", f)
	}
}
