package credcheck

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxUsernameLen is the longest username accepted: the 32 bytes of utmp's ut_user and useradd's
// default limit.
const MaxUsernameLen = 32

// ValidateUsername checks that s is a portable Linux login name, ^[a-z_][a-z0-9_-]{0,31}$, and not
// root. The error wraps ErrInvalidUsername and explains the first problem found; it does not
// repeat s.
func ValidateUsername(s string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidUsername, fmt.Sprintf(format, args...))
	}
	switch {
	case s == "":
		return bad("no username given")
	case strings.TrimSpace(s) == "":
		return bad("the username is only spaces")
	case strings.TrimSpace(s) != s:
		return bad("it has leading or trailing spaces; remove them")
	case strings.ContainsAny(s, " \t"):
		return bad("it contains a space; a username is a single word, such as alice or a_smith")
	case strings.ContainsRune(s, '@'):
		return bad("it looks like an email address; give the Linux username you log in to the cluster with (the NAME in ssh NAME@login-node)")
	case strings.EqualFold(s, "root"):
		return bad("logging in as root is not allowed; give the member's own account")
	case len(s) > MaxUsernameLen:
		return bad("it is %d characters long; the limit is %d", len(s), MaxUsernameLen)
	case strings.HasSuffix(s, "$"):
		return bad("it ends in '$', which marks a Samba machine account; those cannot log in over SSH")
	case strings.ContainsRune(s, '.'):
		return bad("it contains '.'; some systems allow it, but chown and other tools read user.group as a user and a group, so Ferry refuses dotted names")
	case strings.ToLower(s) != s:
		return bad("it contains uppercase letters; Linux usernames are lower case")
	case s[0] >= '0' && s[0] <= '9':
		return bad("it starts with a digit; tools would take a numeric name for a UID, so a username starts with a letter or '_'")
	case s[0] == '-':
		return bad("it starts with '-'; commands would read it as an option")
	}
	for i, r := range s {
		pos := utf8.RuneCountInString(s[:i]) + 1 // in characters, as a person counts
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
		case r >= utf8.RuneSelf:
			return bad("it contains a non-ASCII character at position %d; only a-z, 0-9, '_' and '-' are allowed", pos)
		case r < 0x20 || r == 0x7f:
			return bad("it contains a control character at position %d; only a-z, 0-9, '_' and '-' are allowed", pos)
		default:
			return bad("it contains %q at position %d; only a-z, 0-9, '_' and '-' are allowed", r, pos)
		}
	}
	return nil
}
