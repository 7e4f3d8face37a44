package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func newKEK(t *testing.T) *KEK {
	t.Helper()
	k, err := NewKEK()
	require.NoError(t, err)
	return k
}

func TestSealOpen(t *testing.T) {
	k := newKEK(t)
	other := newKEK(t)
	plaintext := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
	ad := []byte("identity/hpc1/alice/key")
	sealed, err := k.Seal(plaintext, ad)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(sealed), "v1:"+k.ID()+":"), "sealed %q", sealed)
	require.Len(t, k.ID(), 8)

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		// Change one base64 character to another valid one so the damage reaches GCM.
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return b
	}
	cases := []struct {
		name    string
		kek     *KEK
		sealed  []byte
		ad      []byte
		wantMsg string // empty: opens
	}{
		{"round trip", k, sealed, ad, ""},
		{"wrong associated data", k, sealed, []byte("identity/hpc1/bob/key"), "authentication failed"},
		{"no associated data", k, sealed, nil, "authentication failed"},
		{"tampered ciphertext byte", k, flip(len(sealed) - 10), ad, "authentication failed"},
		{"tampered nonce byte", k, flip(len("v1:") + 8 + 1 + 2), ad, "authentication failed"},
		{"wrong KEK", other, sealed, ad, "sealed with KEK " + k.ID()},
		{"tampered KEK id", k, append([]byte("v1:"+other.ID()), sealed[len("v1:")+8:]...), ad, "sealed with KEK " + other.ID()},
		{"truncated", k, sealed[:len(sealed)-8], ad, "ErrDecrypt"},
		{"too short", k, sealed[:len("v1:")+8+1+4], ad, "malformed"},
		{"unknown version", k, append([]byte("v2"), sealed[2:]...), ad, `unknown sealed format version "v2"`},
		{"not sealed", k, []byte("hunter2"), ad, "not a sealed secret"},
		{"empty", k, nil, ad, "not a sealed secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.kek.Open(tc.sealed, tc.ad)
			if tc.wantMsg == "" {
				require.NoError(t, err)
				require.Equal(t, plaintext, pt)
				return
			}
			require.ErrorIs(t, err, ErrDecrypt)
			if tc.wantMsg != "ErrDecrypt" {
				require.ErrorContains(t, err, tc.wantMsg)
			}
			require.NotContains(t, err.Error(), "OPENSSH")
			require.Nil(t, pt)
		})
	}
}

func TestSealedNeverContainsPlaintext(t *testing.T) {
	k := newKEK(t)
	plaintext := []byte("correct horse battery staple")
	a, err := k.Seal(plaintext, nil)
	require.NoError(t, err)
	b, err := k.Seal(plaintext, nil)
	require.NoError(t, err)
	require.NotEqual(t, a, b, "each seal uses a fresh nonce")
	for _, s := range [][]byte{a, b} {
		require.NotContains(t, string(s), string(plaintext))
		raw, err := base64.StdEncoding.DecodeString(string(s[len("v1:")+8+1:]))
		require.NoError(t, err)
		require.False(t, bytes.Contains(raw, plaintext), "ciphertext holds plaintext")
		require.False(t, bytes.Contains(raw, plaintext[:8]), "ciphertext holds a plaintext fragment")
	}
	// Nor does the KEK itself appear in its printed forms.
	require.Equal(t, "KEK "+k.ID(), fmt.Sprint(k))
	require.Equal(t, "KEK "+k.ID(), fmt.Sprintf("%#v", k))
	require.NotContains(t, fmt.Sprintf("%v %+v %s", k, k, k), string(k.encode()))
}

func TestSealEmptyPlaintext(t *testing.T) {
	k := newKEK(t)
	s, err := k.Seal(nil, []byte("ad"))
	require.NoError(t, err)
	pt, err := k.Open(s, []byte("ad"))
	require.NoError(t, err)
	require.Empty(t, pt)
}

func TestReseal(t *testing.T) {
	old, nw := newKEK(t), newKEK(t)
	ad := []byte("identity/hpc1/alice/passphrase")
	sealed, err := old.Seal([]byte("s3cret"), ad)
	require.NoError(t, err)

	re, err := Reseal(old, nw, sealed, ad)
	require.NoError(t, err)
	id, err := SealedKEKID(re)
	require.NoError(t, err)
	require.Equal(t, nw.ID(), id)
	pt, err := nw.Open(re, ad)
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(pt))
	_, err = old.Open(re, ad)
	require.ErrorIs(t, err, ErrDecrypt)

	t.Run("re-run after an interrupted rotation keeps the blob", func(t *testing.T) {
		again, err := Reseal(old, nw, re, ad)
		require.NoError(t, err)
		require.Equal(t, re, again)
	})
	t.Run("wrong associated data is not resealed", func(t *testing.T) {
		_, err := Reseal(old, nw, sealed, []byte("identity/hpc1/bob/passphrase"))
		require.ErrorIs(t, err, ErrDecrypt)
	})
	t.Run("blob from a third KEK", func(t *testing.T) {
		third := newKEK(t)
		s, err := third.Seal([]byte("x"), ad)
		require.NoError(t, err)
		_, err = Reseal(old, nw, s, ad)
		require.ErrorIs(t, err, ErrDecrypt)
	})
}

func TestZero(t *testing.T) {
	b := []byte("passphrase")
	Zero(b)
	require.Equal(t, make([]byte, len("passphrase")), b)
	Zero(nil) // no panic
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, mode))
	require.NoError(t, os.Chmod(path, mode)) // independent of the umask
}

func TestLoadOrCreateKEK(t *testing.T) {
	envKEK := newKEK(t)
	fileKEK := newKEK(t)
	good := string(fileKEK.encode()) + "\n"
	raw := bytes.Repeat([]byte{0xA5}, KEKSize)

	cases := []struct {
		name    string
		env     *string // nil: unset
		file    *string // nil: absent
		mode    os.FileMode
		wantID  string // "" with wantErr
		wantErr string
	}{
		{name: "env wins over file", env: ptr(string(envKEK.encode())), file: &good, mode: 0o600, wantID: envKEK.ID()},
		{name: "env wins over a bad file", env: ptr(string(envKEK.encode())), file: ptr("junk"), mode: 0o644, wantID: envKEK.ID()},
		{name: "file", file: &good, mode: 0o600, wantID: fileKEK.ID()},
		{name: "file without newline", file: ptr(string(fileKEK.encode())), mode: 0o400, wantID: fileKEK.ID()},
		{name: "file readable by group and world", file: &good, mode: 0o644, wantErr: "has mode 0644, which lets other users read or change it; run: chmod 600 "},
		{name: "file readable by group", file: &good, mode: 0o640, wantErr: "chmod 600"},
		{name: "file writable by world", file: &good, mode: 0o602, wantErr: "chmod 600"},
		{name: "file too short", file: ptr(base64.StdEncoding.EncodeToString(make([]byte, 16))), mode: 0o600, wantErr: "decodes to 16 bytes, want 32"},
		{name: "file not base64", file: ptr("not base64 at all!"), mode: 0o600, wantErr: "not valid standard base64"},
		{name: "file of raw bytes", file: ptr(string(raw)), mode: 0o600, wantErr: "holds 32 raw bytes, not base64 text"},
		{name: "env too long", env: ptr(base64.StdEncoding.EncodeToString(make([]byte, 48))), wantErr: "environment variable FERRY_TEST_KEK: decodes to 48 bytes, want 32"},
		{name: "env not base64", env: ptr("%%%"), wantErr: "environment variable FERRY_TEST_KEK: not valid standard base64"},
		{name: "env set but empty", env: ptr(""), file: &good, mode: 0o600, wantErr: "FERRY_TEST_KEK is set but empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const env = "FERRY_TEST_KEK"
			if tc.env != nil {
				t.Setenv(env, *tc.env)
			} else {
				t.Setenv(env, "x")
				require.NoError(t, os.Unsetenv(env))
			}
			path := filepath.Join(t.TempDir(), "kek")
			if tc.file != nil {
				writeFile(t, path, []byte(*tc.file), tc.mode)
			}
			k, err := LoadOrCreateKEK(path, env)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), string(fileKEK.encode()))
				require.NotContains(t, err.Error(), string(envKEK.encode()))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantID, k.ID())
		})
	}
}

func TestLoadOrCreateKEKCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ferry")
	path := filepath.Join(dir, "kek")
	k, err := LoadOrCreateKEK(path, "")
	require.NoError(t, err)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	text, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, text, 45, "44 base64 characters and a newline")
	require.Equal(t, string(k.encode())+"\n", string(text))

	again, err := LoadOrCreateKEK(path, "")
	require.NoError(t, err)
	require.Equal(t, k.ID(), again.ID(), "a second load reuses the file")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}

func TestLoadOrCreateKEKRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreateKEK(path, "")
			if err == nil {
				ids[i] = k.ID()
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "racing creators agree on one KEK")
	}
	require.NotEmpty(t, ids[0])
}

func TestWriteKEKFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	old, nw := newKEK(t), newKEK(t)
	require.NoError(t, WriteKEKFile(path, old))
	require.NoError(t, WriteKEKFile(path, nw))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	k, err := LoadOrCreateKEK(path, "")
	require.NoError(t, err)
	require.Equal(t, nw.ID(), k.ID())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	t.Run("unwritable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions")
		}
		ro := filepath.Join(t.TempDir(), "ro")
		require.NoError(t, os.Mkdir(ro, 0o500))
		err := WriteKEKFile(filepath.Join(ro, "kek"), nw)
		require.Error(t, err)
		require.True(t, errors.Is(err, os.ErrPermission), "got %v", err)
	})
}

func ptr(s string) *string { return &s }
