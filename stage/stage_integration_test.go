package stage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

func pool(t testing.TB, c *testcluster.Cluster, m *sshpool.Manager, name string) *sshpool.Pool {
	t.Helper()
	return poolAt(t, c, m, name, c.Host, c.Port)
}

// poolAt returns name's pool for the login node reached at host:port (the test cluster's sshd,
// or a proxy in front of it).
func poolAt(t testing.TB, c *testcluster.Cluster, m *sshpool.Manager, name, host string, port int) *sshpool.Pool {
	t.Helper()
	// A proxy forwards to the cluster's sshd, so the pinned host key is the cluster's whatever
	// the address (the pool pins keys, not host patterns).
	tg := c.Target(t, name)
	tg.Host, tg.Port = host, port
	p, err := m.Pool(sshpool.Key{Identity: fmt.Sprintf("local-%d", port), User: name}, tg)
	require.NoError(t, err)
	return p
}

// aliceStager returns the test cluster (skipping when it is absent), a manager closed when the
// test ends, alice's pool on it and a Stager for the cluster's work dir with default options.
func aliceStager(t *testing.T) (*testcluster.Cluster, *sshpool.Manager, *sshpool.Pool, *stage.Stager) {
	t.Helper()
	c := testcluster.Require(t)
	m := sshpool.NewManager(sshpool.Options{}, zerolog.Nop())
	t.Cleanup(m.Close)
	s, err := stage.New(c.WorkDir, stage.Options{})
	require.NoError(t, err)
	return c, m, pool(t, c, m, "alice"), s
}

func exec(t testing.TB, p *sshpool.Pool, line string) string {
	t.Helper()
	res, err := p.Exec(context.Background(), line, nil)
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, "%s: %s", line, res.Stderr)
	return strings.TrimSpace(string(res.Stdout))
}

func TestUploadOwnershipAndGroupWrite(t *testing.T) {
	c, m, alice, s := aliceStager(t)
	bob := pool(t, c, m, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	local := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(local, "sub", "deep"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(local, "a.txt"), []byte("alpha"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(local, "sub", "deep", "b.txt"), []byte("beta"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(local, "run.sh"), []byte("#!/bin/sh\n"), 0o700))

	rel := fmt.Sprintf("stage-test/%d", time.Now().UnixNano())
	res, err := s.Upload(ctx, alice, local, rel)
	require.NoError(t, err)
	require.Equal(t, 3, res.Files)
	require.EqualValues(t, 5+4+10, res.Bytes)

	abs := c.WorkDir + "/" + rel
	defer exec(t, alice, "rm -rf "+abs)
	// Owner is the user, group the shared group, mode explicit and group-writable whatever the
	// local mode was (0600 locally).
	require.Equal(t, "alice:ferryshare 664", exec(t, alice, "stat -c '%U:%G %a' "+abs+"/a.txt"))
	require.Equal(t, "alice:ferryshare 664", exec(t, alice, "stat -c '%U:%G %a' "+abs+"/sub/deep/b.txt"))
	require.Equal(t, "alice:ferryshare 774", exec(t, alice, "stat -c '%U:%G %a' "+abs+"/run.sh"))
	require.Equal(t, "alice:ferryshare 2775", exec(t, alice, "stat -c '%U:%G %a' "+abs+"/sub/deep"))
	// No temporary file is left behind.
	require.Equal(t, "", exec(t, alice, "find "+abs+" -name '.*ferry-*'"))
	// Another member can modify what alice staged.
	exec(t, bob, "echo more >> "+abs+"/a.txt")
	require.Equal(t, "alphamore", strings.ReplaceAll(exec(t, alice, "cat "+abs+"/a.txt"), "\n", ""))

	// Download round-trips.
	out := t.TempDir()
	dres, err := s.Download(ctx, bob, rel, out)
	require.NoError(t, err)
	require.Equal(t, 3, dres.Files)
	b, err := os.ReadFile(filepath.Join(out, "sub", "deep", "b.txt"))
	require.NoError(t, err)
	require.Equal(t, "beta", string(b))
}

func TestPathsOutsideWorkDirRefused(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	ctx := context.Background()
	for _, rel := range []string{"../etc/x", "/etc/passwd", "a/../../x", "", "a\nb"} {
		err := s.WriteFile(ctx, alice, rel, []byte("x"), 0)
		require.Error(t, err, "%q", rel)
	}
	// A symlink inside the work dir that points out of it is refused.
	link := fmt.Sprintf("escape-%d", time.Now().UnixNano())
	exec(t, alice, "ln -s /tmp "+c.WorkDir+"/"+link)
	defer exec(t, alice, "rm -f "+c.WorkDir+"/"+link)
	err := s.WriteFile(ctx, alice, link+"/owned", []byte("x"), 0)
	require.ErrorIs(t, err, stage.ErrOutsideWorkDir)
	_, err = os.Stat("/tmp/owned")
	require.True(t, os.IsNotExist(err))
}

// TestWriteFilesMakesConfinedDirs writes a task's two files the way the agent does, into
// directories that do not exist yet, and checks what ensureDir promises: the new directories are
// group-owned and setgid, an existing directory is used as it is, a symlink inside the work dir is
// followed, one leading out is refused and a file in the way is an error, and nothing is written
// outside.
func TestWriteFilesMakesConfinedDirs(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := fmt.Sprintf("writefiles-%d", time.Now().UnixNano())
	abs := c.WorkDir + "/" + root
	defer exec(t, alice, "rm -rf "+abs)

	files := func(dir string) []stage.File {
		return []stage.File{
			{Rel: dir + "/.command.sh", Data: []byte("echo hi\n")},
			{Rel: dir + "/.command.run", Data: []byte("#!/bin/sh\n"), Mode: 0o775},
		}
	}
	require.NoError(t, s.WriteFiles(ctx, alice, files(root+"/a/b/c")))
	require.Equal(t, "alice:ferryshare 2775", exec(t, alice, "stat -c '%U:%G %a' "+abs+"/a "+abs+"/a/b "+abs+"/a/b/c | sort -u"))
	require.Equal(t, "alice:ferryshare 664 echo hi", exec(t, alice, "cd "+abs+"/a/b/c && echo $(stat -c '%U:%G %a' .command.sh) $(cat .command.sh)"))
	require.Equal(t, "775", exec(t, alice, "stat -c %a "+abs+"/a/b/c/.command.run"))

	// An existing directory keeps its mode; only the missing one below it is made.
	exec(t, alice, "chmod 2770 "+abs+"/a/b")
	require.NoError(t, s.WriteFiles(ctx, alice, files(root+"/a/b/d")))
	require.Equal(t, "2770 2775", exec(t, alice, "echo $(stat -c %a "+abs+"/a/b "+abs+"/a/b/d)"))

	// A symlink that stays inside the work dir is followed.
	exec(t, alice, "ln -s a/b "+abs+"/inside")
	require.NoError(t, s.WriteFiles(ctx, alice, files(root+"/inside/e")))
	require.Equal(t, "echo hi", exec(t, alice, "cat "+abs+"/a/b/e/.command.sh"))

	// One that leads out is refused, and nothing is made behind it.
	out, err := os.MkdirTemp("", "ferry-escape-") // not t.TempDir, whose parent alice cannot enter
	require.NoError(t, err)
	defer os.RemoveAll(out)
	require.NoError(t, os.Chmod(out, 0o777))
	exec(t, alice, "ln -s "+out+" "+abs+"/escape")
	err = s.WriteFiles(ctx, alice, files(root+"/escape/f"))
	require.ErrorIs(t, err, stage.ErrOutsideWorkDir)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	require.Empty(t, entries)

	// A file that is a symlink leading out is refused, and the other file is not written either.
	exec(t, alice, "mkdir "+abs+"/leaf && ln -s "+out+"/stolen "+abs+"/leaf/.command.sh")
	err = s.WriteFiles(ctx, alice, files(root+"/leaf"))
	require.ErrorIs(t, err, stage.ErrOutsideWorkDir)
	require.Equal(t, ".command.sh", exec(t, alice, "ls -A "+abs+"/leaf"), "all or nothing")
	entries, err = os.ReadDir(out)
	require.NoError(t, err)
	require.Empty(t, entries)

	// A file where a directory should be is an error naming it.
	exec(t, alice, "touch "+abs+"/plain")
	err = s.WriteFiles(ctx, alice, files(root+"/plain/g"))
	require.ErrorContains(t, err, abs+"/plain\" exists and is not a directory")
}

// TestWriteFilesRemoves: a File with Remove set is removed in the same call (a reused task dir
// loses its old run's .exitcode and .command.begin), a missing one is no error, and a symlink is
// removed itself, never what it points to.
func TestWriteFilesRemoves(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := fmt.Sprintf("writeremove-%d", time.Now().UnixNano())
	abs := c.WorkDir + "/" + root
	defer exec(t, alice, "rm -rf "+abs)
	exec(t, alice, "mkdir -p "+abs+" && cd "+abs+" && echo 3 > .exitcode && echo keep > target && ln -s target .command.begin")
	require.NoError(t, s.WriteFiles(ctx, alice, []stage.File{
		{Rel: root + "/.command.run", Data: []byte("#!/bin/sh\n")},
		{Rel: root + "/.exitcode", Remove: true},
		{Rel: root + "/.command.begin", Remove: true},
		{Rel: root + "/never-there", Remove: true},
	}))
	require.Equal(t, ".command.run target keep", exec(t, alice, "cd "+abs+" && echo $(ls -A) $(cat target)"))
}
