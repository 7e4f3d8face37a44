package scheduler

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnquotable means an argument cannot be passed safely to every login shell Ferry supports.
var ErrUnquotable = errors.New("argument cannot be quoted for a remote login shell")

// Quote returns the POSIX single-quoted form of s, safe in sh, bash, dash, zsh and tcsh as a single
// word. It fails on NUL and newline (tcsh has no portable quoting for a newline inside quotes) and on
// '!' (csh-family history expansion reaches inside single quotes in interactive shells).
func Quote(s string) (string, error) {
	if strings.ContainsAny(s, "\x00\n\r") {
		return "", fmt.Errorf("%w: %q contains a newline or NUL", ErrUnquotable, s)
	}
	if strings.ContainsRune(s, '!') {
		return "", fmt.Errorf("%w: %q contains '!'", ErrUnquotable, s)
	}
	// A bare word starting with '=' is directory-stack substitution in csh-family shells
	// ("=1", "=-"): quote it.
	if s != "" && s[0] != '=' && strings.IndexFunc(s, needsQuote) < 0 {
		return s, nil
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

func needsQuote(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	switch r {
	case '-', '_', '.', '/', ',', ':', '=', '+', '@', '%':
		return false
	}
	return true
}

// CommandLine joins c into the single command line the remote login shell runs: each argv element
// quoted with Quote, prefixed by "cd DIR &&" when c.Dir is set. It is the only place Ferry builds a
// remote command line.
func CommandLine(c Command) (string, error) {
	if len(c.Argv) == 0 {
		return "", errors.New("empty command")
	}
	var b strings.Builder
	if c.Dir != "" {
		q, err := Quote(c.Dir)
		if err != nil {
			return "", err
		}
		b.WriteString("cd ")
		b.WriteString(q)
		b.WriteString(" && ")
	}
	for i, a := range c.Argv {
		q, err := Quote(a)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(q)
	}
	return b.String(), nil
}
