// Package stage copies files between the agent's host and a managed identity's work directory over
// SFTP. Paths are confined to the work dir, files are written atomically (temporary name, then
// rename) with an explicit group-writable mode, and directories inherit the work dir's setgid group.
// A tree moves many files at once on its one SFTP session (Options.Concurrency), so a tree of small
// files costs a few round trips per batch of files rather than per file.
package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
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

// smallFile is the size up to which a file moves whole, read into memory: one SFTP write (or one
// read) of at most pkg/sftp's default packet size.
const smallFile = 32 << 10
