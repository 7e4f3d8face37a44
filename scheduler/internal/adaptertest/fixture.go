// Package adaptertest holds the test scaffolding that Ferry's scheduler adapters (slurm, pbs, sge,
// lsf) share: reading fixtures and the fixture manifest from the package's testdata directory,
// checking what a parser made of them, seeding fuzz targets, and comparing rendered batch scripts
// with golden files. It is imported by tests only. Paths are relative to the working directory,
// which go test sets to the directory of the package under test.
package adaptertest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fixture returns the contents of testdata/NAME; name may name a subdirectory ("cluster/x.txt").
// It fails t when the file cannot be read.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// Local returns the time s, written "2006-01-02 15:04:05", in time.Local. It panics when s is not
// in that layout, which is a mistake in the test.
func Local(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
	if err != nil {
		panic(err)
	}
	return t
}
