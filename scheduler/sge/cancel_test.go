package sge

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

func TestCheckCancel(t *testing.T) {
	s := New(Options{})
	ids := []scheduler.JobID{"12", "13"}
	res := func(code int, stdout, stderr string) scheduler.Result {
		return scheduler.Result{ExitCode: code, Stdout: []byte(stdout), Stderr: []byte(stderr)}
	}
	for name, r := range map[string]scheduler.Result{
		"success":         res(0, "alice has registered the job 12 for deletion\nalice has deleted job 13\n", ""),
		"gone":            res(1, "", "denied: job \"12\" does not exist\n"),
		"gone on stdout":  res(1, "alice has deleted job 13\ndenied: job \"12\" does not exist\n", ""),
		"already":         res(1, "job 12 is already in deletion\n", ""),
		"zero with noise": res(0, "Welcome!\n", ""),
	} {
		require.NoError(t, s.CheckCancel(ids, r), name)
	}

	err := s.CheckCancel(ids, res(1, "alice - you do not have the necessary privileges to delete the job \"12\"\n", ""))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.Contains(t, err.Error(), "12")
	err = s.CheckCancel(ids, res(0, "alice - you do not have the necessary privileges to delete the job \"12\"\n", ""))
	require.ErrorIs(t, err, scheduler.ErrPermission, "a refusal is an error whatever the exit code")

	var ce *scheduler.CommandError
	err = s.CheckCancel(ids, res(1, "alice - you do not have the necessary privileges to delete the job \"12\"\n", "error: commlib error\n"))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.ErrorAs(t, err, &ce)

	for name, r := range map[string]scheduler.Result{
		"no qmaster": res(1, "", "error: commlib error: got select error (Connection refused)\nunable to send message to qmaster\n"),
		"silent":     res(2, "", ""),
	} {
		err := s.CheckCancel(ids, r)
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, "qdel", ce.Argv[0])
		require.NotErrorIs(t, err, scheduler.ErrPermission, name)
	}
}

func TestCheckStatus(t *testing.T) {
	s := New(Options{})
	require.NoError(t, s.CheckStatus(nil, scheduler.Result{}))
	var ce *scheduler.CommandError
	require.ErrorAs(t, s.CheckStatus(nil, scheduler.Result{ExitCode: 1, Stderr: []byte("error: unable to contact qmaster")}), &ce)
}
