package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane). About 30 ms on
// the test machine; a stored hash records its own parameters, so raising them later leaves
// existing passwords valid.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password length bounds, in characters. Long passphrases are welcome; the upper bound only
// stops a sign-in request from making the agent hash megabytes.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// CheckPassword says what is wrong with a new password, or nil.
func CheckPassword(pw []byte) error {
	if !utf8.Valid(pw) {
		return errors.New("the password is not valid UTF-8 text")
	}
	n := utf8.RuneCount(pw)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("the password must be at least %d characters (it has %d)", MinPasswordLen, n)
	case n > MaxPasswordLen:
		return fmt.Errorf("the password must be at most %d characters", MaxPasswordLen)
	}
	return nil
}

// hashPassword returns the argon2id hash of pw in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash, unpadded base64).
func hashPassword(pw []byte) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey(pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches the PHC-format hash (in constant time once the hash
// is parsed). A malformed hash never matches.
func verifyPassword(hash string, pw []byte) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 || t > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey(pw, salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when a sign-in names no account, so that the answer takes as
// long as for a wrong password and does not tell which members have accounts.
var dummyHash = func() string {
	h, err := hashPassword([]byte("ferry: no such account"))
	if err != nil {
		panic(err)
	}
	return h
}()
