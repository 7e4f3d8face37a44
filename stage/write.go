package stage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"

	"github.com/pkg/sftp"
)

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
	// Remove removes the file instead (a missing one is no error), after the others are in place:
	// a task dir reused for a new submit loses the old run's .exitcode and .command.begin.
	Remove bool
}

// WriteFiles writes files all or nothing, in one SFTP session (one lease for all: a task's script
// and wrapper cost one session, not two). Their directories are made first, each once; then every
// file is written to a temporary at the same time, and only when all of them are complete are they
// renamed into place, so two files cost the round trips of one and a failure to write (a full
// disk, say) leaves none of them.
func (s *Stager) WriteFiles(ctx context.Context, l Leaser, all []File) error {
	var files []File
	var goneAbs []string // the files to remove
	for _, f := range all {
		if !f.Remove {
			files = append(files, f)
			continue
		}
		p, err := s.Resolve(f.Rel)
		if err != nil {
			return err
		}
		goneAbs = append(goneAbs, p)
	}
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
			return err
		}
		// Remove never follows a symlink (it removes the link), so no confinement check is needed,
		// and the removals go out together: one round trip for all of them.
		return parallel(ctx, s.opts.Concurrency, len(goneAbs), func(ctx context.Context, i int) error {
			if err := cl.Remove(goneAbs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %q: %w", goneAbs[i], err)
			}
			return nil
		})
	})
}

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
