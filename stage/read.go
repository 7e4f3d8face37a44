package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pkg/sftp"
)

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
