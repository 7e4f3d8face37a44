package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferryhpc/ferry/plugin"
)

func (c *cli) creds(args []string) error {
	sub, rest, err := subcommand("creds", args, "add", "edit", "delete", "list")
	if err != nil {
		return err
	}
	switch sub {
	case "add", "edit":
		return c.credsSet(sub, rest)
	case "delete":
		fs := c.flagSet("creds delete")
		cf := c.addConnFlags(fs, false)
		identity := fs.String("identity", "", "identity (required)")
		member := fs.String("member", "", "member (required)")
		if err := parseNoArgs(fs, rest); err != nil {
			return err
		}
		if *identity == "" || *member == "" {
			return usagef("usage: ferry creds delete --identity I --member M")
		}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			if err := a.DeleteCredential(ctx, *identity, *member); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "credential of %q on %q deleted\n", *member, *identity)
			return nil
		})
	default:
		fs := c.flagSet("creds list")
		cf := c.addConnFlags(fs, false)
		identity := fs.String("identity", "", "only this identity")
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		if err := parseNoArgs(fs, rest); err != nil {
			return err
		}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			cs, err := a.ListCredentials(ctx, *identity)
			if err != nil {
				return err
			}
			if *asJSON {
				out := make([]credentialView, len(cs))
				for i, cr := range cs {
					out[i] = credentialJSON(cr)
				}
				return printJSON(c.out, out)
			}
			printCredentials(c.out, cs)
			return nil
		})
	}
}

func printCredentials(w io.Writer, cs []plugin.Credential) {
	tw := newTable(w)
	fmt.Fprintln(tw, "IDENTITY\tMEMBER\tUSERNAME\tTYPE\tFINGERPRINT\tSTATUS\tLAST-OK\tLAST-ERROR")
	for _, cr := range cs {
		typ := dash(cr.KeyType)
		if cr.Encrypted {
			typ += " (passphrase)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cr.Identity, cr.Member, cr.Username, typ,
			dash(cr.Fingerprint), cr.Status, when(cr.LastOK), clip(cr.LastError, 60))
	}
	_ = tw.Flush()
}

// refusePassphraseArg fails if args try to give a passphrase on the command line, without quoting
// it (an error message must not carry the secret either).
func refusePassphraseArg(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name := strings.TrimLeft(a, "-")
		if name, _, _ = strings.Cut(name, "="); strings.HasPrefix(a, "-") && name == "passphrase" {
			return usagef("a passphrase is never taken on the command line (other users see it in ps, and it stays " +
				"in your shell history): use --passphrase-file FILE, the FERRY_PASSPHRASE environment variable, or --ask-passphrase")
		}
	}
	return nil
}

func (c *cli) credsSet(sub string, args []string) error {
	if err := refusePassphraseArg(args); err != nil {
		return err
	}
	fs := c.flagSet("creds " + sub)
	cf := c.addConnFlags(fs, false)
	identity := fs.String("identity", "", "identity (required)")
	member := fs.String("member", "", "member the credential belongs to (required)")
	username := fs.String("username", "", "Linux username on the login node (required)")
	keyFile := fs.String("key-file", "", "private key file, or - to read it from standard input (required)")
	passFile := fs.String("passphrase-file", "", "file holding the key's passphrase (one trailing newline is removed)")
	ask := fs.Bool("ask-passphrase", false, "ask for the key's passphrase on the terminal, without echo")
	asJSON := fs.Bool("json", false, "print the stored credential as JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *identity == "" || *member == "" || *username == "" || *keyFile == "" {
		return usagef("usage: ferry creds %s --identity I --member M --username U --key-file F|- [--passphrase-file F | --ask-passphrase]", sub)
	}
	if *passFile != "" && *ask {
		return usagef("give --passphrase-file or --ask-passphrase, not both")
	}

	key, err := c.readKey(*keyFile)
	if err != nil {
		return err
	}
	defer clear(key)
	pass, err := c.passphrase(*passFile, *ask, fmt.Sprintf("Passphrase for the key of %s on %s: ", *member, *identity), *keyFile == "-")
	if err != nil {
		return err
	}
	defer clear(pass)

	spec := plugin.CredentialSpec{Identity: *identity, Member: *member, Username: *username, Key: key, Passphrase: pass}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		// add must not silently replace, nor edit silently create: say which command was meant.
		existing, err := a.ListCredentials(ctx, *identity)
		if err != nil {
			return err
		}
		have := false
		for _, cr := range existing {
			have = have || (cr.Identity == *identity && cr.Member == *member)
		}
		switch {
		case sub == "add" && have:
			return fmt.Errorf("%q already has a credential on %q: use `ferry creds edit` to replace it", *member, *identity)
		case sub == "edit" && !have:
			return fmt.Errorf("%q has no credential on %q yet: use `ferry creds add`", *member, *identity)
		}
		cr, err := a.SetCredential(ctx, spec)
		if err != nil {
			if len(pass) == 0 && errors.Is(err, plugin.ErrInvalidArgument) && strings.Contains(err.Error(), "passphrase") {
				return fmt.Errorf("%w\n(give the passphrase with --passphrase-file FILE, FERRY_PASSPHRASE or --ask-passphrase)", err)
			}
			return err
		}
		if *asJSON {
			return printJSON(c.out, credentialJSON(cr))
		}
		verb := "added"
		if sub == "edit" {
			verb = "replaced"
		}
		fmt.Fprintf(c.out, "credential of %q on %q %s\n\n", cr.Member, cr.Identity, verb)
		printCredentials(c.out, []plugin.Credential{cr})
		return nil
	})
}

// passphrase returns a key's passphrase: from passFile, else asked on the terminal (ask, with
// prompt; stdinTaken when the key came on standard input), else from FERRY_PASSPHRASE; nil when
// none is given.
func (c *cli) passphrase(passFile string, ask bool, prompt string, stdinTaken bool) ([]byte, error) {
	switch {
	case passFile != "":
		return readPassphraseFile(passFile)
	case ask:
		return c.askPassphrase(prompt, stdinTaken)
	case c.getenv("FERRY_PASSPHRASE") != "":
		return []byte(c.getenv("FERRY_PASSPHRASE")), nil
	}
	return nil, nil
}

// readKey reads the private key from path, or from standard input for "-".
func (c *cli) readKey(path string) ([]byte, error) {
	var (
		r    = c.in
		name = "standard input"
	)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read the key: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	key, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the key from %s: %w", name, err)
	case len(key) > maxKeyFile:
		clear(key)
		return nil, fmt.Errorf("%s is larger than %d KiB: not a private key", name, maxKeyFile>>10)
	case len(key) == 0:
		return nil, fmt.Errorf("%s is empty: no private key", name)
	}
	return key, nil
}

// readPassphraseFile returns the passphrase in path with exactly one trailing line ending ("\n"
// or "\r\n") removed, as an editor or `echo` leaves one; any other whitespace is part of it.
func readPassphraseFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase file: %w", err)
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b, nil
}

// ---- keys, audit, pools ----
