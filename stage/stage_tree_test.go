package stage_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

// treeFile is one file makeTree wrote.
type treeFile struct {
	data []byte
	exec bool
}

// makeTree writes n files of assorted sizes (empty, one packet, just over, several packets) and
// local modes (0600, 0644, some executable) into nested directories under dir, and returns them by
// slash-separated path.
func makeTree(t *testing.T, dir string, n int) map[string]treeFile {
	t.Helper()
	sizes := []int{0, 1, 100, 4 << 10, 32<<10 - 1, 32 << 10, 32<<10 + 1, 100 << 10}
	files := map[string]treeFile{}
	for i := 0; i < n; i++ {
		var rel string
		switch i % 4 {
		case 0:
			rel = fmt.Sprintf("f%04d.dat", i)
		case 1:
			rel = fmt.Sprintf("d%d/f%04d.dat", i%5, i)
		default:
			rel = fmt.Sprintf("d%d/e%d/g%d/f%04d.dat", i%5, i%3, i%2, i)
		}
		data := make([]byte, sizes[i%len(sizes)])
		_, _ = rand.Read(data)
		mode := os.FileMode(0o644)
		if i%3 == 0 {
			mode = 0o600
		}
		if i%17 == 0 {
			mode = 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, data, mode))
		files[rel] = treeFile{data, mode&0o111 != 0}
	}
	// An empty directory is staged too.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty", "deeper"), 0o700))
	return files
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// remoteTree lists abs as user p: every entry's type, owner:group and mode, and every file's md5.
func remoteTree(t *testing.T, p *sshpool.Pool, abs string) (entries map[string]string, sums map[string]string) {
	t.Helper()
	entries, sums = map[string]string{}, map[string]string{}
	for _, line := range strings.Split(exec(t, p, "cd "+abs+" && find . -mindepth 1 -printf '%y %u:%g %m %P\\n'"), "\n") {
		f := strings.SplitN(line, " ", 4)
		require.Len(t, f, 4, "find line %q", line)
		entries[f[3]] = f[0] + " " + f[1] + " " + f[2]
	}
	for _, line := range strings.Split(exec(t, p, "cd "+abs+" && find . -type f -exec md5sum {} +"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		require.True(t, ok, "md5sum line %q", line)
		sums[strings.TrimPrefix(name, "./")] = sum
	}
	return entries, sums
}

// localTemps returns the staging temporaries under dir.
func localTemps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".ferry-") {
			out = append(out, p)
		}
		return nil
	}))
	return out
}

// countFiles counts the regular files under dir, temporaries aside.
func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}

// TestUploadDownloadTree stages a tree of 300 files in nested directories and checks every file's
// content, owner, group and mode and every directory's mode on the login node, then downloads it
// back and checks it locally, with the default concurrency and a small one.
func TestUploadDownloadTree(t *testing.T) {
	c := testcluster.Require(t)
	m := sshpool.NewManager(sshpool.Options{}, zerolog.Nop())
	defer m.Close()
	alice, bob := pool(t, c, m, "alice"), pool(t, c, m, "bob")
	local := t.TempDir()
	files := makeTree(t, local, 300)
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.data))
	}
	for _, conc := range []int{0, 3} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			s, err := stage.New(c.WorkDir, stage.Options{Concurrency: conc})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rel := fmt.Sprintf("stage-test/tree-%d", time.Now().UnixNano())
			abs := c.WorkDir + "/" + rel
			defer exec(t, alice, "rm -rf "+abs)

			res, err := s.Upload(ctx, alice, local, rel)
			require.NoError(t, err)
			require.Equal(t, stage.Result{Files: len(files), Bytes: bytes}, res)

			entries, sums := remoteTree(t, alice, abs)
			want := map[string]string{"empty": "d alice:ferryshare 2775", "empty/deeper": "d alice:ferryshare 2775"}
			for rel, f := range files {
				mode := "664"
				if f.exec {
					mode = "774"
				}
				want[rel] = "f alice:ferryshare " + mode
				for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
					want[d] = "d alice:ferryshare 2775"
				}
				require.Equal(t, md5hex(f.data), sums[rel], "content of %s", rel)
			}
			// Exactly the tree: no temporary file, nothing missing.
			require.Equal(t, want, entries)

			// Another member downloads it back: same contents, the remote modes, no temporaries.
			out := filepath.Join(t.TempDir(), "out")
			dres, err := s.Download(ctx, bob, rel, out)
			require.NoError(t, err)
			require.Equal(t, res, dres)
			for rel, f := range files {
				p := filepath.Join(out, filepath.FromSlash(rel))
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				require.Equal(t, md5hex(f.data), md5hex(b), "content of %s", rel)
				fi, err := os.Stat(p)
				require.NoError(t, err)
				wantMode := os.FileMode(0o664)
				if f.exec {
					wantMode = 0o774
				}
				require.Equal(t, wantMode, fi.Mode().Perm(), "mode of %s", rel)
			}
			fi, err := os.Stat(filepath.Join(out, "empty", "deeper"))
			require.NoError(t, err)
			require.True(t, fi.IsDir())
			require.Empty(t, localTemps(t, out))

			// Uploading again over the tree replaces the files and keeps the directories.
			res, err = s.Upload(ctx, alice, local, rel)
			require.NoError(t, err)
			require.Equal(t, len(files), res.Files)
			entries, _ = remoteTree(t, alice, abs)
			require.Equal(t, want, entries)
		})
	}
}

// TestUploadTreeFailureLeavesNoTemporaries makes one entry of the destination conflict with the
// tree and checks that Upload fails naming it and leaves no temporary file anywhere.
func TestUploadTreeFailureLeavesNoTemporaries(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	local := t.TempDir()
	files := makeTree(t, local, 200)
	for _, tc := range []struct {
		name    string
		prepare string // shell commands run in the destination before the upload
		errHas  string
	}{
		// The rename of d1/f0121.dat onto a non-empty directory fails after its temporary has been
		// written.
		{"directory where a file goes", "mkdir -p d1/f0121.dat/x", "rename into"},
		// A file where a directory goes: mkdir fails before any file of that directory.
		{"file where a directory goes", "mkdir -p d2 && touch d2/e0", "exists and is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rel := fmt.Sprintf("stage-test/fail-%d", time.Now().UnixNano())
			abs := c.WorkDir + "/" + rel
			defer exec(t, alice, "rm -rf "+abs)
			exec(t, alice, "mkdir -p "+abs+" && cd "+abs+" && "+tc.prepare)
			res, err := s.Upload(ctx, alice, local, rel)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.errHas)
			require.Less(t, res.Files, len(files))
			require.Equal(t, "", exec(t, alice, "find "+abs+" -name '.*ferry-*'"))
		})
	}
}

// TestUploadTreeCancel cancels an upload once some files are in place and checks that it returns
// promptly with the context's error and leaves no temporary file, big files in flight included.
func TestUploadTreeCancel(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	local := t.TempDir()
	files := makeTree(t, local, 1000)
	big := make([]byte, 8<<20)
	_, _ = rand.Read(big)
	for i := 0; i < 3; i++ { // "a" sorts first: these are in flight when the cancel comes
		require.NoError(t, os.WriteFile(filepath.Join(local, fmt.Sprintf("a-big-%d.bin", i)), big, 0o644))
	}
	rel := fmt.Sprintf("stage-test/cancel-%d", time.Now().UnixNano())
	abs := c.WorkDir + "/" + rel
	defer exec(t, alice, "rm -rf "+abs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The test cluster's work dir is on this host: watch it for the first files to appear.
	cancelled := make(chan time.Time, 1)
	go func() {
		defer func() { cancelled <- time.Now(); cancel() }()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if countFiles(abs) >= 20 {
				return
			}
		}
	}()
	res, err := s.Upload(ctx, alice, local, rel)
	returned := time.Now()
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, res.Files, len(files)+3, "the upload finished before the cancel")
	late := returned.Sub(<-cancelled)
	bigs, _ := filepath.Glob(filepath.Join(abs, "a-big-*"))
	t.Logf("returned %v after the cancel, with %d of %d files in place (%d big)", late, res.Files, len(files)+3, len(bigs))
	require.Less(t, late, 2*time.Second, "Upload returned late after the cancel")
	require.Equal(t, "", exec(t, alice, "find "+abs+" -name '.*ferry-*'"))
}

// TestDownloadTreeFailureAndCancel checks that a download that fails (a directory where a file
// goes) or is cancelled midway returns the error promptly and leaves no local temporary.
func TestDownloadTreeFailureAndCancel(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	local := t.TempDir()
	files := makeTree(t, local, 1000)
	rel := fmt.Sprintf("stage-test/down-%d", time.Now().UnixNano())
	defer exec(t, alice, "rm -rf "+c.WorkDir+"/"+rel)
	ctx := context.Background()
	_, err := s.Upload(ctx, alice, local, rel)
	require.NoError(t, err)

	t.Run("failure", func(t *testing.T) {
		out := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(out, "d1", "f0121.dat", "x"), 0o755))
		res, err := s.Download(ctx, alice, rel, out)
		require.Error(t, err)
		require.Contains(t, err.Error(), "f0121.dat")
		require.Less(t, res.Files, len(files))
		require.Empty(t, localTemps(t, out))
	})
	t.Run("cancel", func(t *testing.T) {
		out := t.TempDir()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancelled := make(chan time.Time, 1)
		go func() {
			defer func() { cancelled <- time.Now(); cancel() }()
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if countFiles(out) >= 20 {
					return
				}
			}
		}()
		res, err := s.Download(ctx, alice, rel, out)
		returned := time.Now()
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, res.Files, len(files), "the download finished before the cancel")
		late := returned.Sub(<-cancelled)
		t.Logf("returned %v after the cancel, with %d of %d files in place", late, res.Files, len(files))
		require.Less(t, late, 2*time.Second, "Download returned late after the cancel")
		require.Empty(t, localTemps(t, out))
	})
}

// TestUploadTreeSymlinkedDirectory checks that a directory of the destination that is a symlink is
// followed when it stays inside the work dir and refused when it leads out, for every directory of
// a tree, not only its root.
func TestUploadTreeSymlinkedDirectory(t *testing.T) {
	c, _, alice, s := aliceStager(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("owned-%d", time.Now().UnixNano())
	local := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(local, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(local, "sub", name), []byte("x"), 0o644))
	rel := fmt.Sprintf("stage-test/link-%d", time.Now().UnixNano())
	abs := c.WorkDir + "/" + rel
	defer exec(t, alice, "rm -rf "+abs)

	exec(t, alice, "mkdir -p "+abs+"/inside && ln -s /tmp "+abs+"/sub")
	_, err := s.Upload(ctx, alice, local, rel)
	require.ErrorIs(t, err, stage.ErrOutsideWorkDir)
	_, err = os.Stat(filepath.Join("/tmp", name))
	require.True(t, os.IsNotExist(err), "the upload wrote through the symlink")

	exec(t, alice, "rm "+abs+"/sub && ln -s inside "+abs+"/sub")
	res, err := s.Upload(ctx, alice, local, rel)
	require.NoError(t, err)
	require.Equal(t, 1, res.Files)
	require.Equal(t, "x", exec(t, alice, "cat "+abs+"/inside/"+name))
	names := strings.Fields(exec(t, alice, "ls -A "+abs+"/inside"))
	sort.Strings(names)
	require.Equal(t, []string{name}, names)
}
