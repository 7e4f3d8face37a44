// Package stage copies files between the agent's host and a managed identity's work directory over
// SFTP. Paths are confined to the work dir, files are written atomically (temporary name, then
// rename) with an explicit group-writable mode, and directories inherit the work dir's setgid group.
// A tree moves many files at once on its one SFTP session (Options.Concurrency), so a tree of small
// files costs a few round trips per batch of files rather than per file.
package stage

import (
	"bytes"
	"cmp"
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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// Concurrency is how many files (and directories) Upload and Download of a tree move at once
	// on their one SFTP session, whose requests pkg/sftp multiplexes. Default 64: through 10 ms of
	// round-trip time a tree of 2,000 small files then takes 2-3 s rather than over a minute, and
	// 128 halves that again. Each file in flight holds one SFTP handle on the server (and, over
	// 32 KiB, up to 64 writes of 32 KiB); some servers cap handles per session (at 128, say), so
	// lower it if uploads fail to create files under load; 1 moves one file at a time.
	Concurrency int
}

// defaultConcurrency is Options.Concurrency's default.
const defaultConcurrency = 64

func (o Options) withDefaults() Options {
	if o.FileMode == 0 {
		o.FileMode = 0o664
	}
	if o.DirMode == 0 {
		o.DirMode = 0o775 | os.ModeSetgid
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
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
			if err := s.checkLink(cl, cur, &real); err != nil {
				return err
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

// cancelGrace is how long a cancelled call that writes remote temporaries keeps its SFTP session
// open, so that the work in flight stops at its next request and removes its temporary. On a live
// connection that takes a round trip or two; on a dead one the session is closed after cancelGrace,
// which bounds the wait but may leave the temporaries of the files in flight behind.
const cancelGrace = 2 * time.Second

// withClient leases an SFTP session for fn. SFTP calls take no ctx, so when ctx ends the session is
// closed under fn: at once when grace is 0, else after grace (see cancelGrace), so fn should check
// ctx between requests. When ctx has ended, withClient returns ctx's error.
func withClient(ctx context.Context, l Leaser, grace time.Duration, fn func(cl *sftp.Client) error) error {
	cl, release, err := l.SFTP(ctx, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		return err
	}
	defer release()
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		if grace > 0 {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
		_ = cl.Close()
	}()
	err = fn(cl)
	close(done)
	<-watched
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// parallel calls fn(ctx, i) for every i in [0, n), at most limit at a time. The first error cancels
// the ctx of the calls in flight, starts no more, and is returned once every call has returned.
// When ctx ends first, no more calls start and parallel returns ctx's error.
func parallel(ctx context.Context, limit, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error // set once, before cancel, by the first call that fails
		wg    sync.WaitGroup
	)
	for range min(max(limit, 1), n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() {
						first = err
						cancel()
					})
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// transfer moves n files with move, Options.Concurrency at a time (see parallel), adding each
// moved file and its bytes to res. res is the caller's again once transfer returns: parallel has
// waited for every call.
func (s *Stager) transfer(ctx context.Context, n int, res *Result, move func(ctx context.Context, i int) (int64, error)) error {
	var mu sync.Mutex
	return parallel(ctx, s.opts.Concurrency, n, func(ctx context.Context, i int) error {
		b, err := move(ctx, i)
		if err != nil {
			return err
		}
		mu.Lock()
		res.Files++
		res.Bytes += b
		mu.Unlock()
		return nil
	})
}

// MkdirAll creates rel (and parents) inside the work dir with DirMode.
func (s *Stager) MkdirAll(ctx context.Context, l Leaser, rel string) (string, error) {
	abs, err := s.Resolve(rel)
	if err != nil {
		return "", err
	}
	err = withClient(ctx, l, 0, func(cl *sftp.Client) error {
		return s.ensureDir(cl, abs)
	})
	return abs, err
}

// ensureDir makes dir, inside the work dir, exist as a directory, in one walk down from the work
// dir: an existing component must be a directory, and one that is a symlink must resolve inside
// the work dir (ErrOutsideWorkDir otherwise); the first missing component and all below it are
// created with DirMode. One round trip per existing component and two per created one, where a
// confine walk and then a mkdir walk took twice that.
func (s *Stager) ensureDir(cl *sftp.Client, dir string) error {
	rest := strings.TrimPrefix(strings.TrimPrefix(dir, s.WorkDir), "/")
	if rest == "" {
		return nil
	}
	parts := strings.Split(rest, "/")
	cur, real := s.WorkDir, ""
	for i, part := range parts {
		cur = path.Join(cur, part)
		fi, err := cl.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			// cur and everything below it are missing.
			for _, part := range parts[i+1:] {
				if err := s.mkdir(cl, cur); err != nil {
					return err
				}
				cur = path.Join(cur, part)
			}
			return s.mkdir(cl, cur)
		}
		if err != nil {
			return fmt.Errorf("stat %q: %w", cur, err)
		}
		if err := s.requireDir(cl, cur, fi, &real); err != nil {
			return err
		}
	}
	return nil
}

// requireDir checks that p, which Lstat described as fi, can be used as a directory: a symlink
// must resolve inside the work dir (checkLink) and to a directory.
func (s *Stager) requireDir(cl *sftp.Client, p string, fi os.FileInfo, real *string) error {
	if fi.Mode()&os.ModeSymlink != 0 {
		if err := s.checkLink(cl, p, real); err != nil {
			return err
		}
		var err error
		if fi, err = cl.Stat(p); err != nil {
			return fmt.Errorf("stat %q: %w", p, err)
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("%q exists and is not a directory", p)
	}
	return nil
}

// checkLink returns ErrOutsideWorkDir unless the symlink p resolves inside the work dir. *real is
// the work dir's real path, resolved on first use.
func (s *Stager) checkLink(cl *sftp.Client, p string, real *string) error {
	if *real == "" {
		r, err := cl.RealPath(s.WorkDir)
		if err != nil {
			return fmt.Errorf("resolve work dir %q: %w", s.WorkDir, err)
		}
		*real = r
	}
	target, err := cl.RealPath(p)
	if err != nil {
		return fmt.Errorf("resolve symlink %q: %w", p, err)
	}
	if target != *real && !strings.HasPrefix(target, *real+"/") {
		return fmt.Errorf("%w: %q is a symlink to %q", ErrOutsideWorkDir, p, target)
	}
	return nil
}

// confineFile refuses to write abs when it is a symlink leading out of the work dir (the rename
// would replace the link, not follow it, but the caller named a path that leads out); a missing
// abs is fine. Its directory has been through ensureDir.
func (s *Stager) confineFile(cl *sftp.Client, abs string) error {
	fi, err := cl.Lstat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %q: %w", abs, err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return nil
	}
	real := ""
	return s.checkLink(cl, abs, &real)
}

// mkdir creates abs, whose parent exists and is confined (ensureDir, or a tree below its root),
// with DirMode: a mkdir and a chmod, without a stat first. A directory that exists already (made
// concurrently) is kept as it is, as ensureDir keeps one; a symlink there is followed only if it
// stays inside the work dir and leads to a directory (requireDir).
func (s *Stager) mkdir(cl *sftp.Client, abs string) error {
	if err := cl.Mkdir(abs); err != nil {
		fi, err2 := cl.Lstat(abs)
		if err2 != nil {
			return fmt.Errorf("mkdir %q: %w", abs, err)
		}
		real := ""
		return s.requireDir(cl, abs, fi, &real)
	}
	if err := cl.Chmod(abs, s.opts.DirMode); err != nil {
		return fmt.Errorf("chmod %q: %w", abs, err)
	}
	return nil
}

// mkdirTree creates the directories rels (slash-separated, relative to abs, which exists), a
// parent before its children: the directories of one depth at once.
func (s *Stager) mkdirTree(ctx context.Context, cl *sftp.Client, abs string, rels []string) error {
	depth := func(rel string) int { return strings.Count(rel, "/") }
	rels = slices.Clone(rels)
	slices.SortStableFunc(rels, func(a, b string) int { return cmp.Compare(depth(a), depth(b)) })
	for len(rels) > 0 {
		k := 1
		for k < len(rels) && depth(rels[k]) == depth(rels[0]) {
			k++
		}
		level := rels[:k]
		err := parallel(ctx, s.opts.Concurrency, len(level), func(ctx context.Context, i int) error {
			return s.mkdir(cl, path.Join(abs, level[i]))
		})
		if err != nil {
			return err
		}
		rels = rels[k:]
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
	return withClient(ctx, l, cancelGrace, func(cl *sftp.Client) error {
		if err := s.ensureDir(cl, path.Dir(abs)); err != nil {
			return err
		}
		if err := s.confineFile(cl, abs); err != nil {
			return err
		}
		_, err := s.put(ctx, cl, abs, bytes.NewReader(data), int64(len(data)), mode)
		return err
	})
}

// File is one file for WriteFiles.
type File struct {
	Rel  string
	Data []byte
	Mode os.FileMode // 0 means FileMode
}

// WriteFiles writes files all or nothing, in one SFTP session (one lease for all: a task's script
// and wrapper cost one session, not two). Their directories are made first, each once; then every
// file is written to a temporary at the same time, and only when all of them are complete are they
// renamed into place, so two files cost the round trips of one and a failure to write (a full
// disk, say) leaves none of them.
func (s *Stager) WriteFiles(ctx context.Context, l Leaser, files []File) error {
	abs := make([]string, len(files))
	var dirs []string
	for i, f := range files {
		p, err := s.Resolve(f.Rel)
		if err != nil {
			return err
		}
		abs[i] = p
		if d := path.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return withClient(ctx, l, cancelGrace, func(cl *sftp.Client) error {
		for _, d := range dirs {
			if err := s.ensureDir(cl, d); err != nil {
				return err
			}
		}
		tmps := make([]string, len(files))
		removeTemps := func() {
			for _, t := range tmps {
				if t != "" {
					_ = cl.Remove(t)
				}
			}
		}
		err := parallel(ctx, s.opts.Concurrency, len(files), func(ctx context.Context, i int) error {
			if err := s.confineFile(cl, abs[i]); err != nil {
				return err
			}
			mode := files[i].Mode
			if mode == 0 {
				mode = s.opts.FileMode
			}
			tmp, _, err := s.putTemp(ctx, cl, abs[i], bytes.NewReader(files[i].Data), int64(len(files[i].Data)), mode)
			tmps[i] = tmp
			return err
		})
		if err != nil {
			removeTemps()
			return err
		}
		err = parallel(ctx, s.opts.Concurrency, len(files), func(ctx context.Context, i int) error {
			if err := cl.PosixRename(tmps[i], abs[i]); err != nil {
				return fmt.Errorf("rename into %q: %w", abs[i], err)
			}
			tmps[i] = ""
			return nil
		})
		if err != nil {
			removeTemps()
		}
		return err
	})
}

// ReadFile reads rel, at most max bytes.
func (s *Stager) ReadFile(ctx context.Context, l Leaser, rel string, max int64) ([]byte, error) {
	abs, err := s.Resolve(rel)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = withClient(ctx, l, 0, func(cl *sftp.Client) error {
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

// smallFile is the size up to which a file moves whole, read into memory: one SFTP write (or one
// read) of at most pkg/sftp's default packet size.
const smallFile = 32 << 10

// put writes r to abs through a temporary file in the same directory, then renames it into place,
// so a reader never sees a partial file under the real name; the temporary's mode is set explicitly
// to mode before the rename. size is what the caller expects r to hold (-1: unknown); up to
// smallFile, the content is read first and sent with the mode in one round trip. On failure, or
// when ctx ends, the temporary is removed (if the session still answers) and nothing is renamed.
func (s *Stager) put(ctx context.Context, cl *sftp.Client, abs string, r io.Reader, size int64, mode os.FileMode) (int64, error) {
	tmp, n, err := s.putTemp(ctx, cl, abs, r, size, mode)
	if err != nil {
		return n, err
	}
	if err := cl.PosixRename(tmp, abs); err != nil {
		_ = cl.Remove(tmp)
		return n, fmt.Errorf("rename into %q: %w", abs, err)
	}
	return n, nil
}

// putTemp is put without the rename: it returns the complete temporary, which the caller renames
// to abs or removes. On failure there is no temporary left (if the session still answers).
func (s *Stager) putTemp(ctx context.Context, cl *sftp.Client, abs string, r io.Reader, size int64, mode os.FileMode) (string, int64, error) {
	var whole []byte // the entire content, if it is small
	if size >= 0 && size <= smallFile {
		buf := make([]byte, size+1)
		n, err := io.ReadFull(r, buf)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			whole = buf[:n]
		case err != nil:
			return "", 0, fmt.Errorf("read the source of %q: %w", abs, err)
		default: // it has grown since the caller looked: stream it
			r = io.MultiReader(bytes.NewReader(buf), r)
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(abs), "."+path.Base(abs)+".ferry-"+hex.EncodeToString(rnd[:]))
	f, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", 0, fmt.Errorf("create %q: %w", abs, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close() // os.ErrClosed if closed already
			_ = cl.Remove(tmp)
		}
	}()
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	var n int64
	if whole != nil {
		if n, err = writeWhole(f, abs, whole, mode); err != nil {
			return "", n, err
		}
	} else {
		// An explicit chmod: the default ACL only caps the group bits at what the creator asked for.
		// Special bits go after the write, which would clear them.
		special := mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0
		if !special {
			if err := f.Chmod(mode); err != nil {
				return "", 0, fmt.Errorf("chmod %q: %w", abs, err)
			}
		}
		// ReadFromWithConcurrency, as ReadFrom would pick for a big *os.File, but the reader stops at
		// ctx's end.
		if n, err = f.ReadFromWithConcurrency(ctxReader{ctx, r}, 0); err != nil {
			return "", n, writeErr(abs, err)
		}
		if special {
			if err := f.Chmod(mode); err != nil {
				return "", n, fmt.Errorf("chmod %q: %w", abs, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return "", n, err
	}
	if err := f.Close(); err != nil {
		return "", n, writeErr(abs, err)
	}
	if err := ctx.Err(); err != nil {
		return "", n, err
	}
	ok = true
	return tmp, n, nil
}

// writeWhole writes data (at most a packet) to the new file f and sets its mode explicitly (the
// default ACL only caps the group bits at what the creator asked for). Both requests are in flight
// at once, one round trip rather than two, except with a setuid, setgid or sticky bit: those are
// set after the write, which would clear them.
func writeWhole(f *sftp.File, abs string, data []byte, mode os.FileMode) (int64, error) {
	special := mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0
	chmodErr := make(chan error, 1)
	if !special {
		go func() { chmodErr <- f.Chmod(mode) }()
	}
	var n int
	var err error
	if len(data) > 0 {
		n, err = f.WriteAt(data, 0)
	}
	if special {
		if err != nil {
			return int64(n), writeErr(abs, err)
		}
		chmodErr <- f.Chmod(mode)
	}
	if cerr := <-chmodErr; cerr != nil {
		return int64(n), fmt.Errorf("chmod %q: %w", abs, cerr)
	}
	if err != nil {
		return int64(n), writeErr(abs, err)
	}
	return int64(n), nil
}

// ctxReader reads r until ctx ends, then fails with ctx's error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writeErr names the file of a failed write. SFTP servers answer a full disk or an exceeded quota
// with a bare SSH_FX_FAILURE ("Failure"), so that case says what it most likely is.
func writeErr(abs string, err error) error {
	var se *sftp.StatusError
	if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure {
		return fmt.Errorf("write %q: %w (the file system may be full or the user's quota exceeded; SFTP reports only \"Failure\")", abs, err)
	}
	return fmt.Errorf("write %q: %w", abs, err)
}

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

// ReadSmall reads each of the small files rels (at most max bytes each) in one SFTP session. Files
// that do not exist are absent from the result; other errors fail the call.
func (s *Stager) ReadSmall(ctx context.Context, l Leaser, rels []string, max int64) (map[string][]byte, error) {
	out := make(map[string][]byte, len(rels))
	err := withClient(ctx, l, 0, func(cl *sftp.Client) error {
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
