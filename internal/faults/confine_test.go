package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
	"github.com/ferryhpc/ferry/sshpool"
)

// TestPathsOutOfWorkDirRefused tries every way out of the work dir at the agent's level (through
// the plugin connection a launcher uses): "..", absolute paths elsewhere, and symlinks that alice
// planted inside the work dir pointing out of it, for StageIn, StageOut and Submit's Dir. Each is
// refused with ErrInvalidArgument, nothing is written outside, nothing is read from outside, and
// nothing is submitted.
func TestPathsOutOfWorkDirRefused(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	a := newAgent(t, baseConfig(t, c, c.Host, c.Port), nil)
	defer a.Close()
	svc := plugintest.Client(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Targets outside the work dir that alice can write and read.
	outside, err := os.MkdirTemp("", "ferry-faults-outside-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(outside) })
	require.NoError(t, os.Chmod(outside, 0o777))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("outside\n"), 0o644))
	base := fmt.Sprintf("faults-escape-%s-%d", runID, tokenSeq.Add(1))
	remote(t, c, "alice", fmt.Sprintf("mkdir %s/%s && ln -s %s %s/%s/dirlink && ln -s %s/secret %s/%s/filelink",
		c.WorkDir, base, outside, c.WorkDir, base, outside, c.WorkDir, base))
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(c.WorkDir, base)) })

	local := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(local, []byte("payload\n"), 0o644))
	escapes := []string{"../x", "../../etc/x", "a/../../x", "/etc/ferry-escape", "/tmp/x", base + "/dirlink/owned", base + "/dirlink"}
	for _, rel := range escapes {
		_, err := svc.StageIn(ctx, plugin.StageRequest{Identity: "local", User: "alice", Files: []plugin.StageFile{{Local: local, Remote: rel}}})
		require.ErrorIs(t, err, plugin.ErrInvalidArgument, "stage in to %q", rel)
	}
	requireOnly(t, outside, "secret")

	for _, rel := range append(escapes, base+"/filelink", base+"/dirlink/secret") {
		dst := filepath.Join(t.TempDir(), "out")
		_, err := svc.StageOut(ctx, plugin.StageRequest{Identity: "local", User: "alice", Files: []plugin.StageFile{{Local: dst, Remote: rel}}})
		require.ErrorIs(t, err, plugin.ErrInvalidArgument, "stage out from %q", rel)
		_, err = os.Stat(dst)
		require.True(t, errors.Is(err, os.ErrNotExist), "stage out from %q wrote %s", rel, dst)
	}

	_, err = svc.StageIn(ctx, plugin.StageRequest{Identity: "local", User: "alice", Files: []plugin.StageFile{{Local: "relative/in.txt", Remote: base + "/x"}}})
	require.ErrorIs(t, err, plugin.ErrInvalidArgument, "a relative local path")

	for _, dir := range []string{"../../tmp", "/tmp", base + "/dirlink", base + "/dirlink/task"} {
		tk := exitTask(t, "alice", "escape", 0, 0)
		tk.req.Dir = dir
		_, err := svc.Submit(ctx, tk.req)
		require.ErrorIs(t, err, plugin.ErrInvalidArgument, "submit in %q", dir)
	}
	requireOnly(t, outside, "secret")
	require.Zero(t, a.CommandCounts()[sshpool.Key{Identity: "local", User: "alice"}]["sbatch"], "nothing was submitted")
	jobs, err := svc.ListJobs(ctx, plugin.ListRequest{})
	require.NoError(t, err)
	require.Empty(t, jobs)
}

// TestMemberCannotActOnAnotherMembersJobs connects as a launcher acting for the plain member alice
// (plugin.WithActor) and tries everything on bob's job and bob's files: submit, stage in and out as
// bob, cancel, status, list, watch, and submitting into bob's live task dir (which would replace
// his scripts and his .exitcode). All are refused or filtered, and bob's job ends untouched.
func TestMemberCannotActOnAnotherMembersJobs(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	cfg := baseConfig(t, c, c.Host, c.Port)
	cfg.Members = []config.Member{{Name: "alice", Role: "member"}, {Name: "bob", Role: "member"}}
	a := newAgent(t, cfg, nil)
	defer a.Close()
	svc := plugintest.Client(t, a)
	as := func(m string) context.Context {
		return plugin.WithActor(context.Background(), plugin.Actor{Member: m})
	}
	since := time.Now()
	bobs := exitTask(t, "bob", "bobs", 25, 7)
	j, err := svc.Submit(as("bob"), bobs.req)
	require.NoError(t, err)
	bobs.id = j.ID
	defer func() {
		if t.Failed() {
			scancelTokens(since, []*task{bobs})
		}
	}()

	alice := as("alice")
	steal := bobs.req
	steal.Token = newToken(t, "steal")
	_, err = svc.Submit(alice, steal)
	require.ErrorIs(t, err, plugin.ErrPermissionDenied, "submit as bob")
	local := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(local, []byte("x\n"), 0o644))
	_, err = svc.StageIn(alice, plugin.StageRequest{Identity: "local", User: "bob", Files: []plugin.StageFile{{Local: local, Remote: "ferry/bob/planted"}}})
	require.ErrorIs(t, err, plugin.ErrPermissionDenied, "stage in as bob")
	_, err = svc.StageOut(alice, plugin.StageRequest{Identity: "local", User: "bob", Files: []plugin.StageFile{{Local: local + ".out", Remote: j.Dir + "/.command.sh"}}})
	require.ErrorIs(t, err, plugin.ErrPermissionDenied, "stage out as bob")
	res, err := svc.Cancel(alice, []string{j.ID})
	require.NoError(t, err)
	require.Contains(t, res[0].Error, "permission denied")
	st, err := svc.Status(alice, []string{j.ID})
	require.NoError(t, err)
	require.Empty(t, st, "alice sees none of bob's jobs")
	list, err := svc.ListJobs(alice, plugin.ListRequest{User: "bob"})
	require.NoError(t, err)
	require.Empty(t, list)
	err = svc.Watch(alice, plugin.WatchRequest{User: "bob"}, func(plugin.JobEvent) error { return nil })
	require.ErrorIs(t, err, plugin.ErrPermissionDenied, "watch bob's jobs")
	wctx, wcancel := context.WithTimeout(alice, 2*time.Second)
	err = svc.Watch(wctx, plugin.WatchRequest{IDs: []string{j.ID}}, func(ev plugin.JobEvent) error {
		return fmt.Errorf("alice received bob's job: %+v", ev.Job)
	})
	wcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "watching bob's job by id must show nothing")

	// alice submits her own task into bob's live task dir: that would replace his .command.sh and
	// .command.run and, when her job ends, his .exitcode.
	intruder := exitTask(t, "alice", "intrude", 0, 0)
	intruder.req.Dir = j.Dir
	ij, err := svc.Submit(alice, intruder.req)
	if err == nil {
		intruder.id = ij.ID
		defer scancelTokens(since, []*task{intruder})
	}
	require.Error(t, err, "a member must not submit into another member's live task dir %s", j.Dir)

	got := waitDone(t, svc, []string{j.ID}, 3*time.Minute)
	checkFinal(t, got, []*task{bobs})
	require.Equal(t, "bob", got[j.ID].Owner)
	requireExactlyOnce(t, a, since, []*task{bobs})
}
