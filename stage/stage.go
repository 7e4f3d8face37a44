// Package stage copies files between the agent's host and a managed identity's work directory over
// SFTP. Paths are confined to the work dir, files are written atomically (temporary name, then
// rename) with an explicit group-writable mode, and directories inherit the work dir's setgid group.
package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Leaser is the one ability staging needs from an SSH pool: an SFTP session lease.
type Leaser interface {
	SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, func(), error)
}

// ErrOutsideWorkDir means a path would escape the work directory.
var ErrOutsideWorkDir = errors.New("path is outside the work directory")

// Options tunes staging.
type Options struct {
	// FileMode is the mode of created files. Default 0664: group-writable so every member of the
	// identity's group can modify what another member staged.
	FileMode os.FileMode
	// DirMode is the mode of created directories. Default 0775 plus setgid (drwxrwsr-x), so new entries keep the group.
	DirMode os.FileMode
}

func (o Options) withDefaults() Options {
	if o.FileMode == 0 {
		o.FileMode = 0o664
	}
	if o.DirMode == 0 {
		o.DirMode = 0o775 | os.ModeSetgid
	}
	return o
}

// Stager stages files for one work directory.
type Stager struct {
	WorkDir string // absolute, cleaned
	opts    Options
}

// New returns a Stager for the absolute work dir.
func New(workDir string, opts Options) (*Stager, error) {
	if !path.IsAbs(workDir) {
		return nil, fmt.Errorf("work dir %q is not absolute", workDir)
	}
	return &Stager{WorkDir: path.Clean(workDir), opts: opts.withDefaults()}, nil
}

// Resolve returns the absolute remote path of rel inside the work dir. rel may be relative to the
// work dir or absolute inside it. It refuses "..", NUL, newlines and anything that lands outside.
func (s *Stager) Resolve(rel string) (string, error) {
	if rel == "" {
		return "", fmt.Errorf("%w: empty path", ErrOutsideWorkDir)
	}
	if strings.ContainsAny(rel, "\x00\n\r") {
		return "", fmt.Errorf("path %q contains a newline or NUL", rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q contains \"..\"", ErrOutsideWorkDir, rel)
		}
	}
	p := rel
	if !path.IsAbs(p) {
		p = path.Join(s.WorkDir, p)
	}
	p = path.Clean(p)
	if p != s.WorkDir && !strings.HasPrefix(p, s.WorkDir+"/") {
		return "", fmt.Errorf("%w: %q is not under %q", ErrOutsideWorkDir, rel, s.WorkDir)
	}
	return p, nil
}

// confine checks that the existing prefix of abs has no symlink leading out of the work dir.
func (s *Stager) confine(cl *sftp.Client, abs string) error {
	real, err := cl.RealPath(s.WorkDir)
	if err != nil {
		return fmt.Errorf("resolve work dir %q: %w", s.WorkDir, err)
	}
	cur := s.WorkDir
	rest := strings.TrimPrefix(strings.TrimPrefix(abs, s.WorkDir), "/")
	if rest == "" {
		return nil
	}
	for _, part := range strings.Split(rest, "/") {
		cur = path.Join(cur, part)
		fi, err := cl.Lstat(cur)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("stat %q: %w", cur, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := cl.RealPath(cur)
			if err != nil {
				return fmt.Errorf("resolve symlink %q: %w", cur, err)
			}
			if target != real && !strings.HasPrefix(target, real+"/") {
				return fmt.Errorf("%w: %q is a symlink to %q", ErrOutsideWorkDir, cur, target)
			}
		}
	}
	return nil
}

// Result counts what a call moved.
type Result struct {
	Files int
	Bytes int64
}

// withClient leases an SFTP session and closes it if ctx ends mid-operation (SFTP calls have no ctx).
func withClient(ctx context.Context, l Leaser, fn func(cl *sftp.Client) error) error {
	cl, release, err := l.SFTP(ctx, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		return err
	}
	defer release()
	stop := context.AfterFunc(ctx, func() { _ = cl.Close() })
	defer stop()
	err = fn(cl)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// MkdirAll creates rel (and parents) inside the work dir with DirMode.
func (s *Stager) MkdirAll(ctx context.Context, l Leaser, rel string) (string, error) {
	abs, err := s.Resolve(rel)
	if err != nil {
		return "", err
	}
	err = withClient(ctx, l, func(cl *sftp.Client) error {
		if err := s.confine(cl, abs); err != nil {
			return err
		}
		return s.mkdirAll(cl, abs)
	})
	return abs, err
}

func (s *Stager) mkdirAll(cl *sftp.Client, abs string) error {
	if abs == s.WorkDir {
		return nil
	}
	fi, err := cl.Stat(abs)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%q exists and is not a directory", abs)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat %q: %w", abs, err)
	}
	if err := s.mkdirAll(cl, path.Dir(abs)); err != nil {
		return err
	}
	if err := cl.Mkdir(abs); err != nil {
		if fi, err2 := cl.Stat(abs); err2 == nil && fi.IsDir() {
			return nil // created concurrently
		}
		return fmt.Errorf("mkdir %q: %w", abs, err)
	}
	if err := cl.Chmod(abs, s.opts.DirMode); err != nil {
		return fmt.Errorf("chmod %q: %w", abs, err)
	}
	return nil
}

// WriteFile writes data to rel atomically with mode (0 means FileMode).
func (s *Stager) WriteFile(ctx context.Context, l Leaser, rel string, data []byte, mode os.FileMode) error {
	abs, err := s.Resolve(rel)
	if err != nil {
		return err
	}
	if mode == 0 {
		mode = s.opts.FileMode
	}
	return withClient(ctx, l, func(cl *sftp.Client) error {
		if err := s.confine(cl, abs); err != nil {
			return err
		}
		if err := s.mkdirAll(cl, path.Dir(abs)); err != nil {
			return err
		}
		_, err := s.put(cl, abs, strings.NewReader(string(data)), mode)
		return err
	})
}

// File is one file for WriteFiles.
type File struct {
	Rel  string
	Data []byte
	Mode os.FileMode // 0 means FileMode
}

// WriteFiles writes files atomically, in order, in one SFTP session (one lease for all: a task's
// script and wrapper cost one session, not two).
func (s *Stager) WriteFiles(ctx context.Context, l Leaser, files []File) error {
	abs := make([]string, len(files))
	for i, f := range files {
		p, err := s.Resolve(f.Rel)
		if err != nil {
			return err
		}
		abs[i] = p
	}
	return withClient(ctx, l, func(cl *sftp.Client) error {
		made := map[string]bool{}
		for i, f := range files {
			if err := s.confine(cl, abs[i]); err != nil {
				return err
			}
			if dir := path.Dir(abs[i]); !made[dir] {
				if err := s.mkdirAll(cl, dir); err != nil {
					return err
				}
				made[dir] = true
			}
			mode := f.Mode
			if mode == 0 {
				mode = s.opts.FileMode
			}
			if _, err := s.put(cl, abs[i], strings.NewReader(string(f.Data)), mode); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadFile reads rel, at most max bytes.
func (s *Stager) ReadFile(ctx context.Context, l Leaser, rel string, max int64) ([]byte, error) {
	abs, err := s.Resolve(rel)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = withClient(ctx, l, func(cl *sftp.Client) error {
		if err := s.confine(cl, abs); err != nil {
			return err
		}
		f, err := cl.Open(abs)
		if err != nil {
			return err
		}
		defer f.Close()
		out, err = io.ReadAll(io.LimitReader(f, max))
		return err
	})
	return out, err
}

// put writes r to abs through a temporary file in the same directory, then renames it into place,
// so a reader never sees a partial file under the real name. On failure the temporary is removed.
func (s *Stager) put(cl *sftp.Client, abs string, r io.Reader, mode os.FileMode) (int64, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(abs), "."+path.Base(abs)+".ferry-"+hex.EncodeToString(rnd[:]))
	f, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return 0, fmt.Errorf("create %q: %w", abs, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = cl.Remove(tmp)
		}
	}()
	// An explicit chmod: the default ACL only caps the group bits at what the creator asked for.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return 0, fmt.Errorf("chmod %q: %w", abs, err)
	}
	n, err := f.ReadFrom(r)
	if err != nil {
		f.Close()
		return n, fmt.Errorf("write %q: %w", abs, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("write %q: %w", abs, err)
	}
	if err := cl.PosixRename(tmp, abs); err != nil {
		return n, fmt.Errorf("rename into %q: %w", abs, err)
	}
	ok = true
	return n, nil
}

// Upload copies the local file or tree at local to rel inside the work dir.
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
	err = withClient(ctx, l, func(cl *sftp.Client) error {
		if err := s.confine(cl, abs); err != nil {
			return err
		}
		if !fi.IsDir() {
			if err := s.mkdirAll(cl, path.Dir(abs)); err != nil {
				return err
			}
			return s.uploadFile(cl, local, abs, &res)
		}
		return filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			relp, err := filepath.Rel(local, p)
			if err != nil {
				return err
			}
			dst := path.Join(abs, filepath.ToSlash(relp))
			switch {
			case d.IsDir():
				return s.mkdirAll(cl, dst)
			case d.Type().IsRegular():
				return s.uploadFile(cl, p, dst, &res)
			default:
				return nil // symlinks and devices are not staged
			}
		})
	})
	return res, err
}

func (s *Stager) uploadFile(cl *sftp.Client, local, abs string, res *Result) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("stage in: %w", err)
	}
	defer f.Close()
	mode := s.opts.FileMode
	if fi, err := f.Stat(); err == nil && fi.Mode()&0o111 != 0 {
		mode |= 0o110 // keep executables executable for owner and group
	}
	n, err := s.put(cl, abs, f, mode)
	if err != nil {
		return err
	}
	res.Files++
	res.Bytes += n
	return nil
}

// Download copies rel (file or tree) from the work dir to the local path, atomically per file.
func (s *Stager) Download(ctx context.Context, l Leaser, rel, local string) (Result, error) {
	var res Result
	abs, err := s.Resolve(rel)
	if err != nil {
		return res, err
	}
	err = withClient(ctx, l, func(cl *sftp.Client) error {
		if err := s.confine(cl, abs); err != nil {
			return err
		}
		fi, err := cl.Stat(abs)
		if err != nil {
			return fmt.Errorf("stage out %q: %w", abs, err)
		}
		if !fi.IsDir() {
			return downloadFile(cl, abs, local, fi.Mode(), &res)
		}
		w := cl.Walk(abs)
		for w.Step() {
			if err := w.Err(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			relp := strings.TrimPrefix(strings.TrimPrefix(w.Path(), abs), "/")
			dst := filepath.Join(local, filepath.FromSlash(relp))
			st := w.Stat()
			switch {
			case st.IsDir():
				if err := os.MkdirAll(dst, 0o755); err != nil {
					return err
				}
			case st.Mode().IsRegular():
				if err := downloadFile(cl, w.Path(), dst, st.Mode(), &res); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return res, err
}

func downloadFile(cl *sftp.Client, abs, local string, mode os.FileMode, res *Result) error {
	src, err := cl.Open(abs)
	if err != nil {
		return fmt.Errorf("stage out %q: %w", abs, err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".ferry-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := src.WriteTo(tmp)
	if err != nil {
		return fmt.Errorf("stage out %q: %w", abs, err)
	}
	if err := tmp.Chmod(mode.Perm()); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return err
	}
	ok = true
	res.Files++
	res.Bytes += n
	return nil
}

// ReadSmall reads each of the small files rels (at most max bytes each) in one SFTP session. Files
// that do not exist are absent from the result; other errors fail the call.
func (s *Stager) ReadSmall(ctx context.Context, l Leaser, rels []string, max int64) (map[string][]byte, error) {
	out := make(map[string][]byte, len(rels))
	err := withClient(ctx, l, func(cl *sftp.Client) error {
		for _, rel := range rels {
			abs, err := s.Resolve(rel)
			if err != nil {
				return err
			}
			f, err := cl.Open(abs)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("open %q: %w", abs, err)
			}
			b, err := io.ReadAll(io.LimitReader(f, max))
			f.Close()
			if err != nil {
				return fmt.Errorf("read %q: %w", abs, err)
			}
			out[rel] = b
		}
		return nil
	})
	return out, err
}
