package credcheck

import (
	"bytes"
	"fmt"
)

// MaxPassphraseLen is the longest passphrase accepted, in bytes. OpenSSH reads passphrases into a
// 1024-byte buffer, so a longer one cannot be the key's.
const MaxPassphraseLen = 1024

// ValidatePassphrase checks a key passphrase. An empty passphrase is valid (no passphrase). It
// refuses NUL bytes (OpenSSH passphrases are C strings, so the key's cannot contain one), newlines
// and other control characters (paste artefacts: strip one trailing newline with TrimNewline
// first), and more than MaxPassphraseLen bytes. The error wraps ErrInvalidPassphrase and never
// contains the passphrase.
func ValidatePassphrase(p []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPassphrase, fmt.Sprintf(format, args...))
	}
	if len(p) > MaxPassphraseLen {
		return bad("it is %d bytes; the limit is %d", len(p), MaxPassphraseLen)
	}
	for i, c := range p {
		switch {
		case c == 0:
			return bad("it contains a NUL byte at position %d; an OpenSSH passphrase cannot, so this is not the key's passphrase", i+1)
		case c == '\n' || c == '\r':
			if len(bytes.Trim(p[i:], "\r\n")) == 0 {
				return bad("it ends with a line break, probably copied along with it; remove it")
			}
			return bad("it contains a line break at position %d; a passphrase is one line", i+1)
		case c < 0x20 || c == 0x7f:
			return bad("it contains a control character (0x%02x) at position %d, which cannot be typed at a passphrase prompt; check what was pasted", c, i+1)
		}
	}
	return nil
}

// TrimNewline returns p without one trailing "\n" or "\r\n", the line break that `echo` and
// editors add to a passphrase file. Only one is removed: a passphrase may itself end in
// whitespace, and more line breaks are an error for ValidatePassphrase to report.
func TrimNewline(p []byte) []byte {
	if q, ok := bytes.CutSuffix(p, []byte("\r\n")); ok {
		return q
	}
	q, _ := bytes.CutSuffix(p, []byte("\n"))
	return q
}
