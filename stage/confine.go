package stage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/pkg/sftp"
)

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
