package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The KEK file holds the KEK as one line of standard base64 (44 characters) and a newline. Text,
// not raw bytes, because the same string then works in the environment variable, survives editors
// and configuration management, and `cat` does not spray binary on a terminal. Raw 32-byte files
// are refused with an explanation rather than guessed at.

// LoadOrCreateKEK returns the KEK from the environment variable named env when it is set (standard
// base64; env "" disables the lookup), else from the file at path. A missing file is created with
// a fresh random KEK, mode 0600, in a directory created 0700 if absent; creation never replaces a
// file another process created first. A file with any group or world permission bits is refused,
// as are a variable set to "" and a value that does not decode to 32 bytes. Errors name the
// variable or path but never contain key material.
func LoadOrCreateKEK(path string, env string) (*KEK, error) {
	if env != "" {
		if v, ok := os.LookupEnv(env); ok {
			// An empty variable is refused, not ignored: falling back to a new file would seal
			// new secrets under a KEK nobody meant to use.
			if v == "" {
				return nil, fmt.Errorf("KEK: environment variable %s is set but empty; set it to the base64 KEK or unset it to use %s", env, path)
			}
			k, err := decodeKEK([]byte(v))
			if err != nil {
				return nil, fmt.Errorf("KEK from environment variable %s: %w", env, err)
			}
			return k, nil
		}
	}
	if path == "" {
		return nil, errors.New("KEK: no file path given")
	}
	k, err := readKEKFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	return createKEKFile(path)
}

// readKEKFile reads and checks the KEK file at path. A missing file yields an error wrapping
// fs.ErrNotExist.
func readKEKFile(path string) (*KEK, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("KEK file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("KEK file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("KEK file %s has mode %04o, which lets other users read or change it; run: chmod 600 %s (and consider rotating the KEK if others could read it)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("KEK file: %w", err)
	}
	defer Zero(b)
	k, err := decodeKEK(b)
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: %w", path, err)
	}
	return k, nil
}

// decodeKEK decodes the base64 text form, tolerating surrounding whitespace (a trailing newline).
func decodeKEK(text []byte) (*KEK, error) {
	t := bytes.TrimSpace(text)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(t)))
	defer Zero(raw)
	n, err := base64.StdEncoding.Decode(raw, t)
	if err != nil {
		if len(text) == KEKSize {
			return nil, fmt.Errorf("holds %d raw bytes, not base64 text; convert it with: base64 -w0 < FILE", KEKSize)
		}
		return nil, errors.New("not valid standard base64 (want 44 characters, as made by: head -c 32 /dev/urandom | base64)")
	}
	if n != KEKSize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", n, KEKSize)
	}
	return KEKFromBytes(raw[:n])
}

// createKEKFile makes a fresh KEK and publishes it at path without ever replacing an existing
// file: it writes a complete temporary file and hard-links it into place, so a concurrent reader
// never sees a half-written KEK and two racing creators agree on one KEK.
func createKEKFile(path string) (*KEK, error) {
	dir := filepath.Dir(path)
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	k, err := NewKEK()
	if err != nil {
		return nil, err
	}
	tmp, err := writeTemp(dir, k)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race; use its KEK.
			return readKEKFile(path)
		}
		return nil, fmt.Errorf("create KEK file %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return k, nil
}

// WriteKEKFile atomically replaces (or creates) the KEK file at path with k, mode 0600: it writes a
// synced temporary file in the same directory and renames it over path, so a crash leaves either
// the old KEK or the new one, never a mix. For `ferry keys rotate`: write the new KEK only after
// every blob has been resealed, and keep the old KEK until that write has succeeded.
func WriteKEKFile(path string, k *KEK) error {
	dir := filepath.Dir(path)
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, k)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write KEK file %s: %w", path, err)
	}
	return syncDir(dir)
}

// mkdirPrivate creates dir with mode 0700 if it does not exist. An existing directory is left as
// it is: it may be shared, such as /etc/ferry.
func mkdirPrivate(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create KEK directory: %w", err)
	}
	// MkdirAll is subject to the umask; make the leaf exactly 0700.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("create KEK directory: %w", err)
	}
	return nil
}

// writeTemp writes k's file form to a new synced 0600 temporary file in dir and returns its path.
func writeTemp(dir string, k *KEK) (string, error) {
	f, err := os.CreateTemp(dir, ".kek-*.tmp")
	if err != nil {
		return "", fmt.Errorf("write KEK file: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("write KEK file: %w", err)
	}
	// CreateTemp already uses 0600; Chmod makes it explicit and independent of that detail.
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	text := append(k.encode(), '\n')
	defer Zero(text)
	if _, err := f.Write(text); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write KEK file: %w", err)
	}
	return name, nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync KEK directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync KEK directory: %w", err)
	}
	return nil
}
