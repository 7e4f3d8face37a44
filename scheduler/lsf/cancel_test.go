package lsf

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

func TestCheckCancel(t *testing.T) {
	l := New(Options{})
	ids := []scheduler.JobID{"12", "13"}
	res := func(code int, stdout, stderr string) scheduler.Result {
		return scheduler.Result{ExitCode: code, Stdout: []byte(stdout), Stderr: []byte(stderr)}
	}
	for name, r := range map[string]scheduler.Result{
		"success":  res(0, "Job <12> is being terminated\nJob <13> is being terminated\n", ""),
		"finished": res(255, "Job <12> is being terminated\n", "Job <13>: Job has already finished\n"),
		"unknown":  res(255, "", "Job <12>: No matching job found\nJob <13> is not found\n"),
		"signaled": res(0, "Job <12> is being signaled\n", ""),
	} {
		require.NoError(t, l.CheckCancel(ids, r), name)
	}
	err := l.CheckCancel(ids, res(255, "Job <12> is being terminated\n", "Job <13>: User permission denied\n"))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.Contains(t, err.Error(), "13")
	var ce *scheduler.CommandError
	err = l.CheckCancel(ids, res(255, "", "Job <13>: User permission denied\nbkill: Failed in an LSF library call: LIM is down\n"))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.ErrorAs(t, err, &ce)
	for name, r := range map[string]scheduler.Result{
		"lim down": res(255, "", "LSF daemon (LIM) not responding ... still trying\n"),
		"silent":   res(1, "", ""),
	} {
		err := l.CheckCancel(ids, r)
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, "bkill", ce.Argv[0])
		require.NotErrorIs(t, err, scheduler.ErrPermission, name)
	}
}

func TestCheckStatus(t *testing.T) {
	l := New(Options{})
	res := func(code int, stderr string) scheduler.Result {
		return scheduler.Result{ExitCode: code, Stderr: []byte(stderr)}
	}
	require.NoError(t, l.CheckStatus(nil, res(0, "")))
	require.NoError(t, l.CheckStatus(nil, res(255, "Job <12> is not found\n")))
	require.NoError(t, l.CheckStatus(nil, res(255, "LSF is processing your request. Please wait ...\nNo matching job found\n")))
	var ce *scheduler.CommandError
	require.ErrorAs(t, l.CheckStatus(nil, res(255, "Job <12> is not found\nLSF is down. Please wait ...\n")), &ce)
	require.ErrorAs(t, l.CheckStatus(nil, res(255, "")), &ce)
}
