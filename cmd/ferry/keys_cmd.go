package main

import (
	"context"
	"fmt"

	"github.com/ferryhpc/ferry/plugin"
)

func (c *cli) keys(args []string) error {
	_, rest, err := subcommand("keys", args, "rotate")
	if err != nil {
		return err
	}
	fs := c.flagSet("keys rotate")
	cf := c.addConnFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNoArgs(fs, rest); err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		n, err := a.RotateKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(c.out, map[string]int{"resealed": n})
		}
		fmt.Fprintf(c.out, "re-sealed %d secrets under a new key-encryption key\n", n)
		return nil
	})
}
