package credcheck

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxUsernameLen is the longest username accepted: the 32 bytes of utmp's ut_user and useradd's
// default limit.
const MaxUsernameLen = 32

// ValidateUsername checks that s can be a login name on the cluster: what OpenSSH, Slurm, PBS,
// LSF and Grid Engine accept and directory services (Active Directory, LDAP through SSSD) hand
// out: ASCII letters (either case), digits, '.', '_' and '-', at most MaxUsernameLen bytes. It
// refuses only what cannot be a login or would be unsafe on a command line: "." and "..", a
// leading '.' or '-', an all-digit name (tools read it as a UID), root, an email address, blanks,
// control and non-ASCII characters. Ferry never builds "user.group" strings, so a dot is safe.
// The error wraps ErrInvalidUsername and explains the first problem found; it does not repeat s.
func ValidateUsername(s string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidUsername, fmt.Sprintf(format, args...))
	}
	const allowed = "only letters, digits, '.', '_' and '-' are allowed"
	switch {
	case s == "":
		return bad("no username given")
	case strings.TrimSpace(s) == "":
		return bad("the username is only spaces")
	case strings.TrimSpace(s) != s:
		return bad("it has leading or trailing spaces; remove them")
	case strings.ContainsAny(s, " \t"):
		return bad("it contains a space; a username is a single word, such as alice or john.smith")
	case strings.ContainsRune(s, '@'):
		return bad("it looks like an email address; give the Linux username you log in to the cluster with (the NAME in ssh NAME@login-node)")
	case strings.EqualFold(s, "root"):
		return bad("logging in as root is not allowed; give the member's own account")
	case len(s) > MaxUsernameLen:
		return bad("it is %d characters long; the limit is %d", len(s), MaxUsernameLen)
	case strings.HasSuffix(s, "$"):
		return bad("it ends in '$', which marks a Samba machine account; those cannot log in over SSH")
	case s == "." || s == "..":
		return bad("%q names a directory, not a user", s)
	case s[0] == '.':
		return bad("it starts with '.'; a login name does not")
	case s[0] == '-':
		return bad("it starts with '-'; commands would read it as an option")
	case strings.Trim(s, "0123456789") == "":
		return bad("it is all digits; tools would take it for a UID, so a username has a letter, '.', '_' or '-' in it")
	}
	for i, r := range s {
		pos := utf8.RuneCountInString(s[:i]) + 1 // in characters, as a person counts
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		case r >= utf8.RuneSelf:
			return bad("it contains a non-ASCII character at position %d; %s", pos, allowed)
		case r < 0x20 || r == 0x7f:
			return bad("it contains a control character at position %d; %s", pos, allowed)
		default:
			return bad("it contains %q at position %d; %s", r, pos, allowed)
		}
	}
	return nil
}
