package adaptertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// RequireGolden fails t unless got is byte for byte testdata/golden/NAME.run. With update set it
// first writes got to that file: that is how golden files are made and remade, with
// "go test ./scheduler/PKG -run TestRenderGolden -update", which the failure for a missing file
// names; pkg is the adapter's directory under scheduler. Each adapter's test declares the -update
// flag and passes its value: a flag declared here would be registered in every test binary that
// imports this package, and scheduler/inspect, which does, declares an -update of its own.
func RequireGolden(t testing.TB, pkg, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".run")
	if update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./scheduler/%s -run TestRenderGolden -update to create it", pkg)
	require.Equal(t, string(want), string(got))
}

// Directives returns the directive lines of a rendered batch script, without prefix ("#BSUB "):
// the lines after the first ("#!/bin/sh") that start with prefix, up to the first that does not.
func Directives(script []byte, prefix string) []string {
	var out []string
	for _, l := range strings.Split(string(script), "\n")[1:] {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			break
		}
		out = append(out, rest)
	}
	return out
}
