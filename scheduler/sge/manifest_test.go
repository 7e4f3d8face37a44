package sge

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// fixtureParser chooses the parser for a fixture by its format, which the file name says: every
// manifest row must get one, or be listed in skipped with the reason, so a new fixture cannot be
// ignored silently.
func fixtureParser(file string) (adaptertest.ParseFunc, bool) {
	if rest, ok := strings.CutPrefix(file, "sge-local-"); ok { // captured on the local test cluster
		file = "sge-" + rest
	}
	switch {
	case strings.HasPrefix(file, "sge-qstat-xml-"):
		return ParseQstatXML, true
	case strings.HasPrefix(file, "sge-qstat-"):
		return ParseQstatTable, true
	case strings.HasPrefix(file, "sge-qacct-"):
		return ParseQacct, true
	}
	return nil, false
}

// skipped lists fixtures that are deliberately not parsed, with the reason. None so far.
var skipped = map[string]string{}

// TestManifest parses every Grid Engine fixture with the parser for its format and compares the
// id=STATE pairs, in order, with the manifest's expected column; submit fixtures go through
// ParseSubmit.
func TestManifest(t *testing.T) {
	for _, row := range adaptertest.ReadManifest(t, "sge") {
		t.Run(row.File, func(t *testing.T) {
			data := adaptertest.Fixture(t, row.File)
			if reason, ok := skipped[row.File]; ok {
				t.Skipf("not parsed: %s", reason)
			}
			if strings.HasPrefix(row.File, "sge-qsub-") {
				adaptertest.RequireSubmitted(t, New(Options{}), data, row.Expected)
				return
			}
			parse, ok := fixtureParser(row.File)
			require.True(t, ok, "no parser or skip reason for %s (command: %s)", row.File, row.Command)
			states, err := parse(data)
			require.NoError(t, err)
			adaptertest.RequireStates(t, states, row.Expected)
		})
	}
}

// TestManifestCoversEveryFixture makes sure no fixture file sits in testdata without a manifest row.
func TestManifestCoversEveryFixture(t *testing.T) {
	adaptertest.RequireEveryFixtureListed(t, adaptertest.ReadManifest(t, "sge"))
}
