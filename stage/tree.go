package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
)

// Upload copies the local file or tree at local to rel inside the work dir. A tree is walked
// first (symlinks and devices are skipped), its directories are created, parents first, then its
// files are uploaded Options.Concurrency at a time, each atomically as WriteFile does. The first
// failure stops the rest and is returned, with what was uploaded so far in Result; files already
// in place stay, and no temporary is left for the others (see cancelGrace for a dead connection).
// Uploading again over an existing tree replaces its files and keeps its directories.
func (s *Stager) Upload(ctx context.Context, l Leaser, local, rel string) (Result, error) {
	var res Result
	abs, err := s.Resolve(rel)
	if err != nil {
		return res, err
	}
	fi, err := os.Stat(local)
	if err != nil {
		return res, fmt.Errorf("stage in: %w", err)
	}
	if !fi.IsDir() {
		err = withClient(ctx, l, cancelGrace, func(cl *sftp.Client) error {
			if err := s.ensureDir(cl, path.Dir(abs)); err != nil {
				return err
			}
			if err := s.confineFile(cl, abs); err != nil {
				return err
			}
			n, err := s.uploadFile(ctx, cl, local, abs)
			if err == nil {
				res = Result{Files: 1, Bytes: n}
			}
			return err
		})
		return res, err
	}
	type file struct{ local, rel string }
	var dirs []string
	var files []file
	err = filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		relp, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		relp = filepath.ToSlash(relp)
		switch {
		case d.IsDir():
			if relp != "." {
				dirs = append(dirs, relp)
			}
		case d.Type().IsRegular():
			files = append(files, file{p, relp})
		}
		return nil // symlinks and devices are not staged
	})
	if err != nil {
		return res, fmt.Errorf("stage in: %w", err)
	}
	err = withClient(ctx, l, cancelGrace, func(cl *sftp.Client) error {
		if err := s.ensureDir(cl, abs); err != nil {
			return err
		}
		if err := s.mkdirTree(ctx, cl, abs, dirs); err != nil {
			return err
		}
		return s.transfer(ctx, len(files), &res, func(ctx context.Context, i int) (int64, error) {
			return s.uploadFile(ctx, cl, files[i].local, path.Join(abs, files[i].rel))
		})
	})
	return res, err
}

// uploadFile puts the local file at abs with FileMode, plus execute for owner and group when the
// local file has an execute bit.
func (s *Stager) uploadFile(ctx context.Context, cl *sftp.Client, local, abs string) (int64, error) {
	f, err := os.Open(local)
	if err != nil {
		return 0, fmt.Errorf("stage in: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stage in: %w", err)
	}
	mode := s.opts.FileMode
	if fi.Mode()&0o111 != 0 {
		mode |= 0o110 // keep executables executable for owner and group
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() {
		size = -1
	}
	return s.put(ctx, cl, abs, f, size, mode)
}

// remoteFile is a regular file found by walkRemote.
type remoteFile struct {
	rel  string // slash-separated, relative to the walked root
	size int64
	mode os.FileMode
}

// walkRemote lists the tree at abs, the directories of one depth at once. It returns the
// directories (parents first) and the regular files, relative to abs; symlinks and other entries
// are skipped, as Upload skips them locally.
func (s *Stager) walkRemote(ctx context.Context, cl *sftp.Client, abs string) ([]string, []remoteFile, error) {
	var dirs []string
	var files []remoteFile
	level := []string{"."}
	for len(level) > 0 {
		lists := make([][]os.FileInfo, len(level))
		err := parallel(ctx, s.opts.Concurrency, len(level), func(ctx context.Context, i int) error {
			dir := path.Join(abs, level[i])
			fis, err := cl.ReadDirContext(ctx, dir)
			if err != nil {
				return fmt.Errorf("stage out %q: %w", dir, err)
			}
			lists[i] = fis
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		var next []string
		for i, fis := range lists {
			for _, fi := range fis {
				name := fi.Name()
				if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
					continue // not from a sane server; never a way out of the local destination
				}
				rel := path.Join(level[i], name)
				switch {
				case fi.IsDir():
					dirs = append(dirs, rel)
					next = append(next, rel)
				case fi.Mode().IsRegular():
					files = append(files, remoteFile{rel, fi.Size(), fi.Mode()})
				}
			}
		}
		level = next
	}
	return dirs, files, nil
}

// Download copies rel (file or tree) from the work dir to the local path, atomically per file. A
// tree is listed first, its directories are created locally, then its files are downloaded
// Options.Concurrency at a time. The first failure stops the rest and is returned, with what was
// downloaded so far in Result; no local temporary is left behind.
func (s *Stager) Download(ctx context.Context, l Leaser, rel, local string) (Result, error) {
	var res Result
	abs, err := s.Resolve(rel)
	if err != nil {
		return res, err
	}
	err = withClient(ctx, l, 0, func(cl *sftp.Client) error {
		if err := s.confine(cl, abs); err != nil {
			return err
		}
		fi, err := cl.Stat(abs)
		if err != nil {
			return fmt.Errorf("stage out %q: %w", abs, err)
		}
		if !fi.IsDir() {
			size := fi.Size()
			if !fi.Mode().IsRegular() {
				size = -1
			}
			n, err := downloadFile(ctx, cl, abs, local, size, fi.Mode())
			if err == nil {
				res = Result{Files: 1, Bytes: n}
			}
			return err
		}
		dirs, files, err := s.walkRemote(ctx, cl, abs)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(local, 0o755); err != nil {
			return err
		}
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(local, filepath.FromSlash(d)), 0o755); err != nil {
				return err
			}
		}
		return s.transfer(ctx, len(files), &res, func(ctx context.Context, i int) (int64, error) {
			f := files[i]
			return downloadFile(ctx, cl, path.Join(abs, f.rel), filepath.Join(local, filepath.FromSlash(f.rel)), f.size, f.mode)
		})
	})
	return res, err
}

// downloadFile copies the remote file abs, of size bytes when it was listed (-1: unknown), to local
// through a temporary file in local's directory, with mode's permission bits.
func downloadFile(ctx context.Context, cl *sftp.Client, abs, local string, size int64, mode os.FileMode) (int64, error) {
	src, err := cl.Open(abs)
	if err != nil {
		return 0, fmt.Errorf("stage out %q: %w", abs, err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".ferry-*")
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var n int64
	if size >= 0 && size <= smallFile {
		n, err = readWhole(src, tmp, size)
	} else {
		n, err = src.WriteTo(tmp)
	}
	if err != nil {
		return n, fmt.Errorf("stage out %q: %w", abs, err)
	}
	if err := ctx.Err(); err != nil {
		return n, err
	}
	if err := tmp.Chmod(mode.Perm()); err != nil {
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return n, err
	}
	ok = true
	return n, nil
}

// readWhole copies src, listed at size bytes (at most smallFile), to w with two reads in flight at
// once, one round trip: the size bytes, and one byte past them, which finds EOF unless the file has
// grown since (then the rest is copied after). A file that has shrunk is copied as it is now.
func readWhole(src *sftp.File, w io.Writer, size int64) (int64, error) {
	var probe [1]byte
	var pn int
	var perr error
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		pn, perr = src.ReadAt(probe[:], size)
	}()
	buf := make([]byte, size)
	var n int
	var err error
	if size > 0 {
		n, err = src.ReadAt(buf, 0)
	}
	<-probed
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if perr != nil && !errors.Is(perr, io.EOF) {
		return 0, perr
	}
	if _, err := w.Write(buf[:n]); err != nil {
		return 0, err
	}
	if n < len(buf) || pn == 0 {
		return int64(n), nil
	}
	if _, err := src.Seek(size, io.SeekStart); err != nil {
		return int64(n), err
	}
	m, err := src.WriteTo(w)
	return int64(n) + m, err
}
