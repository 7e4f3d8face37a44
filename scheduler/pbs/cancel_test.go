package pbs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

func TestCheckCancel(t *testing.T) {
	p := NewPro(Options{})
	ids := []scheduler.JobID{"12.srv", "13.srv"}
	res := func(code int, stderr string) scheduler.Result {
		return scheduler.Result{ExitCode: code, Stderr: []byte(stderr)}
	}
	for name, r := range map[string]scheduler.Result{
		"success":          res(0, ""),
		"unknown":          res(153, "qdel: Unknown Job Id 12.srv\n"),
		"torque unknown":   res(153, "qdel: Unknown Job Id Error 12.srv\n"),
		"finished":         res(35, "qdel: Job has finished 12.srv\n"),
		"exiting":          res(168, "qdel: Request invalid for state of job 12.srv\n"),
		"torque completed": res(170, "qdel: Invalid state for job - COMPLETE 12.srv\n"),
		"with noise":       res(153, "Welcome!\nqdel: Unknown Job Id 12.srv\nqdel: Unknown Job Id 13.srv\n"),
	} {
		require.NoError(t, p.CheckCancel(ids, r), name)
	}

	err := p.CheckCancel(ids, res(159, "qdel: Unauthorized Request  12.srv\n"))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.Contains(t, err.Error(), "12.srv")

	err = p.CheckCancel(ids, res(159, "qdel: Unauthorized Request  12.srv\nqdel: Server could not connect to MOM 13.srv\n"))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)

	for name, r := range map[string]scheduler.Result{
		"no server":  res(1, "qdel: cannot connect to server pbs (errno=111)\n"),
		"silent":     res(2, ""),
		"only noise": res(1, "bash: module: command not found\n"),
	} {
		err := p.CheckCancel(ids, r)
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, "qdel", ce.Argv[0])
		require.NotErrorIs(t, err, scheduler.ErrPermission, name)
	}
}

// TestCheckCancelTorque covers Slurm's Torque wrappers, which name a refused job after "job id"
// and say nothing about unknown or finished ids (testdata/cluster has the real outputs).
func TestCheckCancelTorque(t *testing.T) {
	tq := NewTorque(Options{})
	ids := []scheduler.JobID{"221", "222"}
	out := func(code int, stdout string) scheduler.Result {
		return scheduler.Result{ExitCode: code, Stdout: []byte(stdout)}
	}
	for name, r := range map[string]scheduler.Result{
		"success":            out(0, ""),
		"both gone":          out(2, ""),
		"one gone":           out(1, ""),
		"gone, shell noise":  out(1, "Welcome!\n"),
		"real torque finish": out(170, "qdel: Invalid state for job - COMPLETE 221\n"),
	} {
		require.NoError(t, tq.CheckCancel(ids, r), name)
	}

	err := tq.CheckCancel(ids, out(2, "qdel: Kill job error on job id 221: Access/permission denied\n"))
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.Contains(t, err.Error(), "job 221")

	var ce *scheduler.CommandError
	for name, r := range map[string]scheduler.Result{
		"more failures than ids": out(3, ""),
		"not found (bash)":       {ExitCode: 127, Stderr: []byte("bash: qdel: command not found\n")},
		"not found (tcsh)":       {ExitCode: 1, Stderr: []byte("qdel: Command not found.\n")},
		"other slurm error":      out(1, "qdel: Kill job error on job id 221: Unable to contact slurm controller (connect failure)\n"),
	} {
		err := tq.CheckCancel(ids, r)
		require.ErrorAs(t, err, &ce, name)
		require.NotErrorIs(t, err, scheduler.ErrPermission, name)
	}
	// PBS Pro's qdel always says why; silence there is an error.
	require.ErrorAs(t, NewPro(Options{}).CheckCancel(ids, out(1, "")), &ce)
}

func TestCheckStatus(t *testing.T) {
	p := NewPro(Options{})
	ids := []scheduler.JobID{"12.srv"}
	res := func(code int, stderr string) scheduler.Result {
		return scheduler.Result{ExitCode: code, Stderr: []byte(stderr), Stdout: []byte("{}")}
	}
	require.NoError(t, p.CheckStatus(ids, res(0, "")))
	require.NoError(t, p.CheckStatus(ids, res(153, "qstat: Unknown Job Id 12.srv\n")))
	require.NoError(t, p.CheckStatus(ids, res(35, "qstat: 12.srv Job has finished, use -x or -H to obtain historical job information\n")))
	require.ErrorIs(t, p.CheckStatus(ids, res(0, "qstat: job_history_enable is set to false\n")), ErrNoHistory)
	var ce *scheduler.CommandError
	require.ErrorAs(t, p.CheckStatus(ids, res(111, "qstat: cannot connect to server pbs (errno=111)\n")), &ce)
	require.ErrorAs(t, p.CheckStatus(ids, res(153, "qstat: Unknown Job Id 12.srv\nqstat: cannot connect to server b (errno=111)\n")), &ce)
	require.ErrorAs(t, p.CheckStatus(ids, res(2, "usage: qstat ...\n")), &ce)
}
