// Package secrets seals private keys and passphrases at rest under a key-encryption key (KEK) with
// AES-256-GCM, and loads, creates and rotates that KEK.
//
// A sealed blob is text, safe to store in bbolt, JSON or TOML:
//
//	v1:<kek id>:<base64 std(nonce || ciphertext || tag)>
//
// The KEK id is the first 8 hex digits of SHA-256 of the KEK: it tells a rotation which KEK sealed a
// blob and reveals nothing useful about the KEK. Every blob is bound to associated data naming its
// record (for example "identity/alice/key") so a blob copied onto another record does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// KEKSize is the length of a KEK in bytes (AES-256).
const KEKSize = 32

// nonceSize is the GCM standard nonce length. Random 96-bit nonces are safe for well over 2^32
// seals under one KEK, far beyond the number of credentials Ferry stores.
const nonceSize = 12

// version1 prefixes every blob sealed by this package.
const version1 = "v1"

// ErrDecrypt means a sealed blob did not open: wrong KEK, wrong associated data, or a damaged or
// tampered blob. Errors wrapping it never contain plaintext or key material.
var ErrDecrypt = errors.New("cannot decrypt sealed secret")

// KEK is a key-encryption key. It is safe for concurrent use. Its String method prints only its id,
// so a KEK that reaches a log or an error does not leak.
type KEK struct {
	key  [KEKSize]byte
	id   string
	aead cipher.AEAD
}

// NewKEK returns a KEK of fresh random bytes. It fails only if the system random source fails.
func NewKEK() (*KEK, error) {
	var b [KEKSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate KEK: %w", err)
	}
	defer Zero(b[:])
	return KEKFromBytes(b[:])
}

// KEKFromBytes returns a KEK holding a copy of b, which must be KEKSize bytes. The caller may Zero b
// afterwards.
func KEKFromBytes(b []byte) (*KEK, error) {
	if len(b) != KEKSize {
		return nil, fmt.Errorf("KEK is %d bytes, want %d", len(b), KEKSize)
	}
	k := &KEK{}
	copy(k.key[:], b)
	sum := sha256.Sum256(k.key[:])
	k.id = hex.EncodeToString(sum[:4])
	block, err := aes.NewCipher(k.key[:])
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	k.aead, err = cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	return k, nil
}

// ID returns the KEK's id: the first 8 hex digits of SHA-256 of the key.
func (k *KEK) ID() string { return k.id }

// String returns "KEK <id>" and never the key.
func (k *KEK) String() string { return "KEK " + k.id }

// GoString is String, so that %#v does not print the key either.
func (k *KEK) GoString() string { return k.String() }

// encode returns the KEK in the file and environment format: standard base64, no newline.
func (k *KEK) encode() []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(KEKSize))
	base64.StdEncoding.Encode(out, k.key[:])
	return out
}

// header is the authenticated prefix of a blob sealed by k.
func (k *KEK) header() string { return version1 + ":" + k.id + ":" }

// aad binds the blob's header and the caller's associated data. The header has a fixed length, so
// the concatenation is unambiguous.
func (k *KEK) aad(associatedData []byte) []byte {
	h := k.header()
	out := make([]byte, 0, len(h)+len(associatedData))
	out = append(out, h...)
	return append(out, associatedData...)
}

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce and returns
// "v1:<kek id>:<base64(nonce||ciphertext)>". associatedData is authenticated but not stored: Open
// needs the same bytes. Seal fails only if the system random source fails.
func (k *KEK) Seal(plaintext, associatedData []byte) ([]byte, error) {
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	buf = k.aead.Seal(buf, buf[:nonceSize], plaintext, k.aad(associatedData))
	h := k.header()
	out := make([]byte, len(h)+base64.StdEncoding.EncodedLen(len(buf)))
	copy(out, h)
	base64.StdEncoding.Encode(out[len(h):], buf)
	return out, nil
}

// Open decrypts a blob sealed by Seal with the same KEK and associated data. Every failure wraps
// ErrDecrypt; the message says only whether the blob is malformed or was sealed by another KEK (by
// id). The caller owns the plaintext and should Zero it after use.
func (k *KEK) Open(sealed, associatedData []byte) ([]byte, error) {
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	if id != k.id {
		return nil, fmt.Errorf("%w: sealed with KEK %s, this is KEK %s", ErrDecrypt, id, k.id)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n, err := base64.StdEncoding.Decode(raw, body)
	if err != nil || n < nonceSize+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: malformed sealed secret", ErrDecrypt)
	}
	raw = raw[:n]
	pt, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], k.aad(associatedData))
	if err != nil {
		// GCM cannot tell a wrong associated data from a tampered blob, and neither may we.
		return nil, fmt.Errorf("%w: authentication failed (tampered blob or wrong record)", ErrDecrypt)
	}
	return pt, nil
}

// SealedKEKID returns the id of the KEK that sealed the blob, without decrypting it. Errors wrap
// ErrDecrypt.
func SealedKEKID(sealed []byte) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

// split parses "v1:<id>:<body>".
func split(sealed []byte) (id string, body []byte, err error) {
	s := string(sealed[:min(len(sealed), len(version1)+1+8+1)])
	if !strings.HasPrefix(s, version1+":") {
		if i := strings.IndexByte(s, ':'); i > 0 && i <= 4 && strings.HasPrefix(s, "v") {
			return "", nil, fmt.Errorf("%w: unknown sealed format version %q", ErrDecrypt, s[:i])
		}
		return "", nil, fmt.Errorf("%w: not a sealed secret", ErrDecrypt)
	}
	rest := sealed[len(version1)+1:]
	if len(rest) < 9 || rest[8] != ':' {
		return "", nil, fmt.Errorf("%w: malformed sealed secret", ErrDecrypt)
	}
	id = string(rest[:8])
	if _, err := hex.DecodeString(id); err != nil {
		return "", nil, fmt.Errorf("%w: malformed sealed secret", ErrDecrypt)
	}
	return id, rest[9:], nil
}

// Reseal opens a blob with old and seals its plaintext with new under the same associated data, for
// KEK rotation. A blob already sealed by new (it opens with new) is returned unchanged, so an
// interrupted rotation can be run again. The plaintext is zeroed before returning. Errors wrap
// ErrDecrypt when the blob opens with neither KEK.
func Reseal(old, new *KEK, sealed, associatedData []byte) ([]byte, error) {
	if id, err := SealedKEKID(sealed); err == nil && id == new.id && id != old.id {
		pt, err := new.Open(sealed, associatedData)
		if err != nil {
			return nil, err
		}
		Zero(pt)
		return sealed, nil
	}
	pt, err := old.Open(sealed, associatedData)
	if err != nil {
		return nil, err
	}
	defer Zero(pt)
	return new.Seal(pt, associatedData)
}

// Zero overwrites b with zeros. Use it on plaintext keys and passphrases as soon as they are no
// longer needed. It is best effort: copies the Go runtime or a string conversion made elsewhere are
// not reached.
func Zero(b []byte) {
	clear(b)
	// Keep b alive past the clear so the compiler cannot treat it as a dead store.
	runtime.KeepAlive(b)
}
