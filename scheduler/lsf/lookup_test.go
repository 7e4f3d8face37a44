package lsf

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// TestParseLookup: the job whose description is exactly ferry:TOKEN, the earliest of two, a
// description with the delimiter in it, and garbage as an error.
func TestParseLookup(t *testing.T) {
	l := New(Options{})
	out := []byte("31|ferry:t-1\n30|ferry:t-1\n32|ferry:t-10\n33|-\n34|ferry:t|x\n")
	id, ok, err := l.ParseLookup(out, "t-1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, scheduler.JobID("30"), id)
	id, ok, err = l.ParseLookup(out, "t|x")
	require.NoError(t, err)
	require.True(t, ok, "the description is last and may hold the delimiter")
	require.Equal(t, scheduler.JobID("34"), id)
	_, ok, err = l.ParseLookup(out, "t")
	require.NoError(t, err)
	require.False(t, ok)
	_, _, err = l.ParseLookup([]byte("no delimiter here\n"), "t")
	require.ErrorIs(t, err, scheduler.ErrParse)
}

// TestCheckLookup: a user with no job at all (bjobs exits 255, "No job found") is no failure;
// another failure is.
func TestCheckLookup(t *testing.T) {
	l := New(Options{})
	require.NoError(t, l.CheckLookup(scheduler.Result{ExitCode: 255, Stderr: []byte("No job found\n")}))
	require.Error(t, l.CheckLookup(scheduler.Result{ExitCode: 255, Stderr: []byte("LSF is down. Please wait ...\n")}))
}
