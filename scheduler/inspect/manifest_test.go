package inspect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// manifestDirs are the adapter packages whose testdata/MANIFEST.tsv (real outputs with their
// expected parse, see /work/shared/fixtures/README.md) this package is checked against.
var manifestDirs = []string{"../slurm/testdata", "../pbs/testdata", "../lsf/testdata", "../sge/testdata"}

type manifestRow struct {
	dir, file, scheduler, command, expected string
}

func readManifests(t testing.TB) []manifestRow {
	t.Helper()
	var rows []manifestRow
	for _, dir := range manifestDirs {
		for _, r := range adaptertest.ReadManifestFile(t, filepath.Join(dir, "MANIFEST.tsv")) {
			rows = append(rows, manifestRow{dir: dir, file: r.File, scheduler: r.Scheduler, command: r.Command, expected: r.Expected})
		}
	}
	require.NotEmpty(t, rows)
	return rows
}

// fixtureFormats names the format of every manifest row Main reads: a status format, or the
// scheduler's submit format (sbatch, qsub, bsub) for submit outputs. Every row must be here or in
// fixtureSkipped, so a new fixture cannot be ignored silently.
var fixtureFormats = map[string]string{
	"slurm-sacct-11.txt":                 "sacct",
	"slurm-sacct-15.txt":                 "sacct-parsable",
	"slurm-sacct-17.txt":                 "sacct-parsable",
	"slurm-sbatch-1.txt":                 "sbatch",
	"slurm-sbatch-3.txt":                 "sbatch",
	"slurm-sbatch-5.txt":                 "sbatch",
	"slurm-sbatch-7.txt":                 "sbatch",
	"slurm-sbatch-9.txt":                 "sbatch",
	"slurm-sbatch-11.txt":                "sbatch",
	"slurm-sbatch-13.txt":                "sbatch",
	"slurm-squeue-3.txt":                 "squeue", // a custom -o, but with the header that names its columns
	"slurm-squeue-7.txt":                 "squeue",
	"slurm-squeue-9.txt":                 "squeue",
	"slurm-squeue-11.txt":                "squeue",
	"slurm-squeue-13.txt":                "squeue",
	"slurm-squeue-15.txt":                "squeue", // a custom -o with its header
	"slurm-squeue-17.txt":                "squeue",
	"slurm-local-squeue-ferry-1.txt":     "ferry-squeue",
	"slurm-local-squeue-ferry-2.txt":     "ferry-squeue",
	"slurm-local-squeue-ferry-3.txt":     "ferry-squeue",
	"slurm-local-squeue-ferry-epoch.txt": "ferry-squeue",
	"slurm-local-squeue-default.txt":     "squeue",
	"slurm-local-squeue-long.txt":        "squeue",
	"slurm-local-squeue-id-state.txt":    "squeue-id-state",
	"slurm-local-scontrol.txt":           "scontrol",
	"slurm-local-scontrol-o.txt":         "scontrol",
	"slurm-local-sacct-ferry.txt":        "ferry-sacct",
	"slurm-local-sacct-ferry-steps.txt":  "ferry-sacct",
	"slurm-local-sacct-ferry-epoch.txt":  "ferry-sacct",
	"slurm-local-sacct-default.txt":      "sacct",
	"slurm-local-sacct-P.txt":            "sacct-parsable",
	"slurm-local-sacct-parsable.txt":     "sacct-parsable",

	"pbs-qsub-1.txt":           "qsub",
	"pbs-qsub-3.txt":           "qsub",
	"pbs-qsub-5.txt":           "qsub",
	"pbs-qsub-7.txt":           "qsub",
	"pbspro-qstat-1.txt":       "qstat",
	"pbspro-qstat-3.txt":       "qstat",
	"pbspro-qstat-5.txt":       "qstat",
	"pbspro-qstat-7.txt":       "qstat",
	"pbspro-qstat-9.txt":       "qstat",
	"pbspro-qstat-f-1.txt":     "qstat-f",
	"pbspro-qstat-f-3.txt":     "qstat-f",
	"pbspro-qstat-json-1.json": "qstat-json",
	"pbspro-qstat-json-3.json": "qstat-json",
	"pbspro-qstat-json-5.json": "qstat-json",
	"torque-qstat-1.txt":       "qstat",
	"torque-qstat-f-1.txt":     "qstat-f",
	"torque-qstat-f-3.txt":     "qstat-f",
	"torque-qstat-f-5.txt":     "qstat-f",

	"lsf-bjobs-3.txt":       "bjobs",
	"lsf-bjobs-5.txt":       "bjobs",
	"lsf-bjobs-7.txt":       "bjobs",
	"lsf-bjobs-9.txt":       "bjobs-l",
	"lsf-bjobs-11.txt":      "bjobs",
	"lsf-bjobs-json-1.json": "bjobs-json",
	"lsf-bjobs-json-3.json": "bjobs-json", // with --ids: its -o list lacks jobid
	"lsf-bsub-1.txt":        "bsub",
	"lsf-bsub-3.txt":        "bsub",
	"lsf-bsub-5.txt":        "bsub",
	"lsf-bsub-7.txt":        "bsub",

	"sge-local-qstat-array-pending.txt":     "qstat",
	"sge-local-qstat-xml-array-pending.xml": "ferry-qstat-xml",
	"sge-qstat-1.txt":                       "qstat",
	"sge-qstat-3.txt":                       "qstat",
	"sge-qstat-5.txt":                       "qstat",
	"sge-qstat-7.txt":                       "qstat",
	"sge-qstat-xml-1.xml":                   "qstat-xml",
	"sge-qstat-xml-3.xml":                   "qstat-xml",
	"sge-qstat-xml-5.xml":                   "qstat-xml",
	"sge-qstat-xml-7.xml":                   "qstat-xml",
	"sge-qstat-xml-9.xml":                   "qstat-xml",
	"sge-qsub-1.txt":                        "qsub",
	"sge-qsub-3.txt":                        "qsub",
	"sge-qsub-5.txt":                        "qsub",
}

// fixtureArgs are extra arguments a row needs: what the command line told, not the output.
var fixtureArgs = map[string][]string{
	"lsf-bjobs-json-3.json": {"--ids", "58652"}, // bjobs -o '...' 58652 -json: no JOBID in the records
}

const headerless = "headerless output of a site's own field list, which Ferry never issues and cannot read without it"

// fixtureSkipped lists the rows Main does not read, with the reason. For each, auto detection must
// refuse (exit 1) rather than guess.
var fixtureSkipped = map[string]string{
	"slurm-sacct-1.txt":  headerless + " (sacct --noheader --parsable --format jobid,exitcode,state,...: ExitCode before State)",
	"slurm-sacct-3.txt":  headerless + " (sacct --noheader --parsable --format jobid,exitcode,state,...)",
	"slurm-sacct-5.txt":  headerless + " (sacct --noheader --parsable --format jobid,exitcode,state,...)",
	"slurm-sacct-7.txt":  headerless + " (sacct --noheader --parsable --format jobid,exitcode,state,...)",
	"slurm-sacct-9.txt":  headerless + " (sacct -n -P --format JobIDRaw,State,ExitCode: three of Ferry's ten columns)",
	"slurm-sacct-13.txt": headerless + " (sacct --noheader --parsable2 with a 20-column --format)",
	"slurm-squeue-1.txt": headerless + " (squeue --noheader -o with '^^^' separators)",
	"slurm-squeue-5.txt": headerless + " (squeue -h -o '%A,%T')",
	"lsf-bjobs-1.txt":    headerless + " (bjobs -noheader -o 'id stat exit_reason exec_host user ...' delimiter='|')",
}

// twins maps a format to the Ferry format that auto detection finds first for the same input:
// Ferry's own query prints that format, so both read it alike.
var twins = map[string]string{
	"pbspro/qstat-json": "ferry-qstat-json",
	"torque/qstat-f":    "ferry-qstat-f",
	"sge/qstat-xml":     "ferry-qstat-xml",
	"sge/qacct":         "ferry-qacct",
}

// run calls Main and returns its exit status, stdout and stderr.
func run(t testing.TB, in []byte, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(args, bytes.NewReader(in), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// decodeJobs decodes parse --output status's stdout into "id=state" pairs, checking the shape.
func decodeJobs(t testing.TB, stdout string) []string {
	t.Helper()
	require.True(t, strings.HasSuffix(stdout, "\n"), "stdout ends with a newline: %q", stdout)
	require.Equal(t, 1, strings.Count(stdout, "\n"), "one line of JSON: %q", stdout)
	var out statusJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&out), stdout)
	require.NotNil(t, out.Jobs, "jobs is a list, never null: %q", stdout)
	got := []string{}
	for _, j := range out.Jobs {
		require.NotEmpty(t, j.ID, stdout)
		require.NotEmpty(t, j.State, stdout)
		require.NotEqual(t, "unknown", j.Status, "job %s state %q is known to Ferry", j.ID, j.State)
		got = append(got, j.ID+"="+j.State)
	}
	return got
}

// TestManifest reads every manifest row of the four adapter packages through Main, with --format
// auto and with the row's format named, and compares the printed jobs (or id) with the row's
// expected column.
func TestManifest(t *testing.T) {
	rows := readManifests(t)
	seen := map[string]bool{}
	covered, skipped := 0, 0
	for _, row := range rows {
		seen[row.file] = true
		t.Run(row.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(row.dir, row.file))
			require.NoError(t, err)
			s, ok := Lookup(row.scheduler)
			require.True(t, ok, "manifest scheduler %q", row.scheduler)

			if reason, ok := fixtureSkipped[row.file]; ok {
				require.NotContains(t, fixtureFormats, row.file, "listed as both read and skipped")
				code, stdout, stderr := run(t, in, "parse", "--scheduler", row.scheduler, "--output", "status")
				require.Equal(t, 1, code, "auto detection must refuse a format it cannot know, not guess: %s", stdout)
				require.Contains(t, stderr, "line ")
				skipped++
				t.Skipf("not read: %s", reason)
			}
			format, ok := fixtureFormats[row.file]
			require.True(t, ok, "no format or skip reason listed for %s (command: %s)", row.file, row.command)
			covered++

			if format == s.Submit {
				for _, f := range []string{"auto", format} {
					code, stdout, stderr := run(t, in, "parse", "--scheduler", row.scheduler, "--output", "submit", "--format", f)
					if row.expected == "NONE" {
						require.Equal(t, 1, code, "a failed submission is an error: %s", stdout)
						require.Empty(t, stdout)
						require.True(t, strings.HasPrefix(stderr, "ferry scheduler parse: "), stderr)
						continue
					}
					require.Equal(t, 0, code, stderr)
					require.Equal(t, `{"id":"`+row.expected+`"}`+"\n", stdout)
				}
				return
			}

			want := []string{}
			if row.expected != "NONE" {
				want = strings.Split(row.expected, ",")
			}
			_, known := s.Format(format)
			require.True(t, known, "%s has no format %q", row.scheduler, format)
			for _, f := range []string{"auto", format} {
				args := append([]string{"parse", "--scheduler", row.scheduler, "--output", "status", "--format", f, "-v"}, fixtureArgs[row.file]...)
				code, stdout, stderr := run(t, in, args...)
				require.Equal(t, 0, code, "--format %s: %s", f, stderr)
				require.Equal(t, want, decodeJobs(t, stdout), "--format %s", f)
				read := strings.TrimSpace(strings.TrimPrefix(stderr, "ferry scheduler parse: read as "+row.scheduler+" "))
				if f == "auto" && read != format {
					require.Equal(t, twins[row.scheduler+"/"+format], read, "auto detection read %s as %s, not %s", row.file, read, format)
				}
			}
		})
	}
	for file := range fixtureFormats {
		require.True(t, seen[file], "fixtureFormats lists %s, which no manifest has", file)
	}
	for file := range fixtureSkipped {
		require.True(t, seen[file], "fixtureSkipped lists %s, which no manifest has", file)
	}
	t.Logf("manifest rows: %d read (auto and named format), %d skipped", covered, skipped)
}
