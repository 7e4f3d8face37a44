package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// confirm asks question on the terminal and reports whether the answer was yes. It reads the
// answer from the controlling terminal if there is one, else from standard input (so a script can
// pipe "y"); no answer (end of input) is no.
func (c *cli) confirm(question string) (bool, error) {
	var (
		r io.Reader = c.in
		w           = c.errOut
	)
	if tty, err := c.openTTY(); err == nil {
		defer tty.Close()
		r, w = tty, tty
	}
	fmt.Fprintf(w, "%s [y/N] ", question)
	line, err := readLine(r)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	if errors.Is(err, io.EOF) && line == "" {
		fmt.Fprintln(w)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// readLine reads up to and including the next newline one byte at a time, so that a second
// question finds its own answer still unread (a buffered reader would swallow it).
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for {
		n, err := r.Read(c[:])
		if n == 1 {
			b.WriteByte(c[0])
			if c[0] == '\n' {
				return b.String(), nil
			}
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// askPassphrase reads a passphrase without echo from a terminal: standard input if it is one and
// is not already used for the key, else the controlling terminal. It fails if there is none.
func (c *cli) askPassphrase(prompt string, stdinTaken bool) ([]byte, error) {
	if f, ok := c.in.(*os.File); ok && !stdinTaken && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.errOut, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errOut)
		return p, err
	}
	tty, err := c.openTTY()
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			_ = tty.Close()
		}
		return nil, usagef("--ask-passphrase needs a terminal; use --passphrase-file FILE or the FERRY_PASSPHRASE environment variable")
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}

// askSecret reads a secret without echo from the controlling terminal (or standard input if it
// is one). It fails if there is no terminal.
func (c *cli) askSecret(prompt string) ([]byte, error) {
	if f, ok := c.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.errOut, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errOut)
		return p, err
	}
	tty, err := c.openTTY()
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			_ = tty.Close()
		}
		return nil, usagef("a password needs a terminal to be typed at; use --password-file FILE")
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}
