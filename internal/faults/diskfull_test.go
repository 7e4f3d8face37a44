package faults_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/sshpool"
)

// smallDisk mounts a 256 KiB tmpfs (setgid, group ferryshare, like the work dir) at a fresh
// directory of the work dir and returns its name relative to the work dir. It is unmounted and
// removed when the test ends.
func smallDisk(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("mount is not installed")
	}
	rel := fmt.Sprintf("faults-full-%s-%d", runID, tokenSeq.Add(1))
	dir := filepath.Join(c.WorkDir, rel)
	require.NoError(t, os.Mkdir(dir, 0o755))
	out, err := exec.Command("getent", "group", c.Group).Output()
	require.NoError(t, err)
	gid := strings.Split(strings.TrimSpace(string(out)), ":")[2]
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=2775,gid="+gid, "tmpfs", dir).CombinedOutput(); err != nil {
		_ = os.Remove(dir)
		t.Skipf("cannot mount a tmpfs here (%v: %s): the disk-full test needs CAP_SYS_ADMIN", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; lazy unmount", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
		_ = os.RemoveAll(dir)
	})
	return rel
}

// TestFailedSFTPWriteLeavesNothing stages a file larger than the space left (a full disk or a
// quota): the call fails with an error that names the identity, the user and the file, a file
// already there keeps its old content (the write was atomic), and no partial or temporary file is
// left. A Submit whose task script does not fit fails the same way and submits nothing.
func TestFailedSFTPWriteLeavesNothing(t *testing.T) {
	c := testcluster.Require(t)
	t.Parallel()
	rel := smallDisk(t, c)
	dir := filepath.Join(c.WorkDir, rel)
	a := newAgent(t, baseConfig(t, c, c.Host, c.Port), nil)
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	local := filepath.Join(t.TempDir(), "big.dat")
	require.NoError(t, os.WriteFile(local, big, 0o644))
	small := filepath.Join(t.TempDir(), "small.txt")
	require.NoError(t, os.WriteFile(small, []byte("old content\n"), 0o644))
	_, err := a.StageIn(ctx, plugin.StageRequest{Identity: "local", User: "alice", Files: []plugin.StageFile{{Local: small, Remote: rel + "/kept.txt"}}})
	require.NoError(t, err)

	for _, name := range []string{"new.dat", "kept.txt"} {
		_, err := a.StageIn(ctx, plugin.StageRequest{Identity: "local", User: "alice", Files: []plugin.StageFile{{Local: local, Remote: rel + "/" + name}}})
		require.Error(t, err, name)
		t.Logf("stage in %s on a full disk: %v", name, err)
		require.ErrorIs(t, err, plugin.ErrUnavailable, "retryable once space is freed")
		require.ErrorContains(t, err, `identity "local" user "alice"`)
		require.ErrorContains(t, err, path.Join(c.WorkDir, rel, name))
		require.Regexp(t, "(?i)no space|quota", err.Error(), "say why: SFTP itself only says \"Failure\"")
	}
	got, err := os.ReadFile(filepath.Join(dir, "kept.txt"))
	require.NoError(t, err)
	require.Equal(t, "old content\n", string(got), "a failed overwrite must leave the old file whole")
	requireOnly(t, dir, "kept.txt")

	// A task whose script does not fit: nothing is submitted, nothing is left.
	since := time.Now()
	tk := newTask(t, "bob", "full", "exit 0\n#"+strings.Repeat("x", 400<<10)+"\n", "completed", 0)
	tk.req.Dir = rel + "/task"
	_, err = a.Submit(ctx, tk.req)
	require.Error(t, err)
	t.Logf("submit on a full disk: %v", err)
	require.ErrorIs(t, err, plugin.ErrUnavailable)
	require.ErrorContains(t, err, `identity "local" user "bob"`)
	require.Zero(t, a.CommandCounts()[sshpool.Key{Identity: "local", User: "bob"}]["sbatch"], "nothing was submitted")
	jobs, err := a.ListJobs(ctx, plugin.ListRequest{User: "bob"})
	require.NoError(t, err)
	require.Empty(t, jobs, "a submit that staged nothing leaves no job behind")
	requireOnly(t, filepath.Join(dir, "task"))
	found, err := slurmJobs(since, []string{tk.req.Token})
	require.NoError(t, err)
	require.Empty(t, found)
}

// requireOnly checks that dir holds exactly the named entries (no partial or temporary file).
func requireOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) && len(names) == 0 {
		return
	}
	require.NoError(t, err)
	var have []string
	for _, e := range ents {
		have = append(have, e.Name())
	}
	require.ElementsMatch(t, names, have, "entries of %s", dir)
}
