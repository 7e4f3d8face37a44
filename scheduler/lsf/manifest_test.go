package lsf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// fixtureParser chooses the parser for a fixture by its format, which the file name and the
// manifest's command say. Every manifest row must get one (or be in skipped with the reason), so a
// new fixture cannot be ignored silently.
func fixtureParser(row adaptertest.ManifestRow) (adaptertest.ParseFunc, bool) {
	switch {
	case row.File == "lsf-bjobs-1.txt":
		// A site -o list (aiida's), known from the command column.
		fields := strings.Fields("id stat exit_reason exec_host user slots max_req_proc exec_host queue finish_time start_time %complete submit_time name")
		return func(b []byte) ([]scheduler.JobState, error) { return ParseBjobsColumns(fields, b) }, true
	case strings.HasPrefix(row.File, "lsf-bjobs-json-"):
		// bjobs -json prints no JOBID when the -o list lacks it; the ids are the command's numbers.
		var ids []scheduler.JobID
		for _, w := range strings.Fields(row.Command) {
			if adapter.IsDigits(w) {
				ids = append(ids, scheduler.JobID(w))
			}
		}
		if ids == nil {
			return ParseBjobsJSON, true
		}
		return func(b []byte) ([]scheduler.JobState, error) { return ParseBjobsJSONFor(ids, b) }, true
	case strings.HasPrefix(row.Command, "bjobs -l"):
		return ParseBjobsLong, true
	case strings.HasPrefix(row.File, "lsf-bjobs-"):
		return ParseBjobsTable, true
	}
	return nil, false
}

// skipped lists fixtures that are deliberately not parsed, with the reason. None so far.
var skipped = map[string]string{}

// TestManifest parses every LSF fixture with the parser for its format and compares the id=STATE
// pairs, in order, with the manifest's expected column; submit fixtures go through ParseSubmit.
func TestManifest(t *testing.T) {
	for _, row := range adaptertest.ReadManifest(t, "lsf") {
		t.Run(row.File, func(t *testing.T) {
			data := adaptertest.Fixture(t, row.File)
			if reason, ok := skipped[row.File]; ok {
				t.Skipf("not parsed: %s", reason)
			}
			if strings.HasPrefix(row.File, "lsf-bsub-") {
				adaptertest.RequireSubmitted(t, New(Options{}), data, row.Expected)
				return
			}
			parse, ok := fixtureParser(row)
			require.True(t, ok, "no parser or skip reason for %s (command: %s)", row.File, row.Command)
			states, err := parse(data)
			require.NoError(t, err)
			adaptertest.RequireStates(t, states, row.Expected)
		})
	}
}

// TestManifestCoversEveryFixture makes sure no fixture file sits in testdata without a manifest row.
func TestManifestCoversEveryFixture(t *testing.T) {
	adaptertest.RequireEveryFixtureListed(t, adaptertest.ReadManifest(t, "lsf"))
}
