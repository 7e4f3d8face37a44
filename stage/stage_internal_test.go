package stage

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/sshpool"
)

// alicePool returns a pool for the test cluster's alice.
func alicePool(t *testing.T, c *testcluster.Cluster) *sshpool.Pool {
	t.Helper()
	m := sshpool.NewManager(sshpool.Options{}, zerolog.Nop())
	t.Cleanup(m.Close)
	p, err := m.Pool(sshpool.Key{Identity: "local", User: "alice"}, c.Target(t, "alice"))
	require.NoError(t, err)
	return p
}

// TestSizeChangedSinceListed checks that put and downloadFile move a file's content as it is when
// they read it, whatever size the walk saw: grown (the small path turns into streaming) or shrunk.
func TestSizeChangedSinceListed(t *testing.T) {
	c := testcluster.Require(t)
	p := alicePool(t, c)
	s, err := New(c.WorkDir, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := s.MkdirAll(ctx, p, fmt.Sprintf("stage-test/size-%d", time.Now().UnixNano()))
	require.NoError(t, err)
	defer os.RemoveAll(dir) // the test cluster's work dir is on this host
	data := make([]byte, 100<<10)
	_, _ = rand.Read(data)
	local := t.TempDir()

	for _, tc := range []struct {
		name   string
		size   int64 // what the caller believes
		actual int   // what there is
	}{
		{"grown past a packet", 10, 40 << 10},
		{"grown from empty", 0, 1},
		{"grown by one byte", smallFile, smallFile + 1},
		{"shrunk", 5000, 100},
		{"shrunk to empty", 10, 0},
		{"unknown size", -1, 100},
		{"as listed", 4096, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			abs := filepath.Join(dir, fmt.Sprintf("f-%d-%d", tc.size, tc.actual))
			want := data[:tc.actual]
			err := withClient(ctx, p, cancelGrace, func(cl *sftp.Client) error {
				n, err := s.put(ctx, cl, abs, bytes.NewReader(want), tc.size, 0o664)
				require.EqualValues(t, tc.actual, n)
				return err
			})
			require.NoError(t, err)
			got, err := os.ReadFile(abs)
			require.NoError(t, err)
			require.Equal(t, want, got)
			fi, err := os.Stat(abs)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o664), fi.Mode())

			out := filepath.Join(local, filepath.Base(abs))
			err = withClient(ctx, p, 0, func(cl *sftp.Client) error {
				n, err := downloadFile(ctx, cl, abs, out, tc.size, 0o640)
				require.EqualValues(t, tc.actual, n)
				return err
			})
			require.NoError(t, err)
			got, err = os.ReadFile(out)
			require.NoError(t, err)
			require.Equal(t, want, got)
			fi, err = os.Stat(out)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o640), fi.Mode())
		})
	}
}

// TestWriteFileSpecialModeBits checks that a setgid or sticky bit asked for survives the write
// (a write by a non-root user clears setgid), and that an ordinary mode is exact.
func TestWriteFileSpecialModeBits(t *testing.T) {
	c := testcluster.Require(t)
	p := alicePool(t, c)
	s, err := New(c.WorkDir, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := fmt.Sprintf("stage-test/mode-%d", time.Now().UnixNano())
	defer os.RemoveAll(filepath.Join(c.WorkDir, dir))
	big := make([]byte, 3*smallFile) // streamed, not sent whole
	for _, mode := range []os.FileMode{0o775 | os.ModeSetgid, 0o664 | os.ModeSticky, 0o700, 0o664} {
		for _, data := range [][]byte{[]byte("#!/bin/sh\n"), big} {
			rel := fmt.Sprintf("%s/%o-%d", dir, mode, len(data))
			require.NoError(t, s.WriteFile(ctx, p, rel, data, mode))
			fi, err := os.Stat(filepath.Join(c.WorkDir, rel))
			require.NoError(t, err)
			require.Equal(t, mode, fi.Mode(), "%s", rel)
		}
	}
}
