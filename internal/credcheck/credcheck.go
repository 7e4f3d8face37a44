// Package credcheck validates the parts of a managed-identity credential as a careful admin would
// before storing them: a Linux username, an SSH private key and its passphrase. Every problem gets
// its own message saying what is wrong and what to do, with the line number when it is about one
// line of a pasted key. Errors never contain key material, passphrases or the username itself (a
// password typed into the username field must not reach a log).
package credcheck

import (
	"errors"
	"fmt"
)

// Sentinel kinds. A *KeyError unwraps to one of the first five; username and passphrase errors
// wrap ErrInvalidUsername and ErrInvalidPassphrase.
var (
	// ErrPassphraseNeeded means the key is encrypted and no passphrase was given.
	ErrPassphraseNeeded = errors.New("this key needs its passphrase")
	// ErrBadPassphrase means the passphrase does not decrypt the key.
	ErrBadPassphrase = errors.New("incorrect passphrase")
	// ErrWeakKey means the key is of a kind or size that is no longer safe (DSA, RSA < 2048).
	ErrWeakKey = errors.New("weak key")
	// ErrUnsupported means the input is something other than a usable private key, or a key in
	// a form Ferry cannot read (public key, certificate, PuTTY, PKCS#8-encrypted, FIDO ...).
	ErrUnsupported = errors.New("unsupported key")
	// ErrMalformed means the paste is damaged: missing or extra lines, spaces, truncation.
	ErrMalformed = errors.New("malformed key")
	// ErrInvalidUsername means the username cannot be a Linux login name Ferry will use.
	ErrInvalidUsername = errors.New("invalid username")
	// ErrInvalidPassphrase means the passphrase contains bytes no key passphrase can contain.
	ErrInvalidPassphrase = errors.New("invalid passphrase")
)

// KeyError is a problem with a private key. Kind is one of ErrPassphraseNeeded, ErrBadPassphrase,
// ErrWeakKey, ErrUnsupported or ErrMalformed and is what errors.Is matches. Line is the 1-based
// line of the input the problem is on, or 0 when it is not about one line. Msg never contains key
// material.
type KeyError struct {
	Kind error
	Line int
	Msg  string
}

// Error returns "line N: Msg", or Msg when Line is 0.
func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Unwrap returns Kind.
func (e *KeyError) Unwrap() error { return e.Kind }

func keyErr(kind error, line int, format string, args ...any) *KeyError {
	return &KeyError{Kind: kind, Line: line, Msg: fmt.Sprintf(format, args...)}
}
