package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferryhpc/ferry/plugin"
)

func (c *cli) member(args []string) error {
	sub, rest, err := subcommand("member", args, "add", "list", "remove", "invite", "passwd")
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		fs := c.flagSet("member add")
		cf := c.addConnFlags(fs, false)
		role := fs.String("role", "", "owner (manages everything) or member (manages their own credentials)")
		var unix multiFlag
		fs.Var(&unix, "unix-user", "local Unix account that acts as this member on the CLI (repeatable)")
		asJSON := fs.Bool("json", false, "print the member as JSON")
		name, err := oneName(fs, rest, "NAME")
		if err != nil {
			return err
		}
		if *role != plugin.RoleOwner && *role != plugin.RoleMember {
			return usagef("member add %s: --role must be %q or %q", name, plugin.RoleOwner, plugin.RoleMember)
		}
		m := plugin.Member{Name: name, Role: *role, UnixUsers: unix}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			if err := a.AddMember(ctx, m); err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.out, memberJSON(m))
			}
			fmt.Fprintf(c.out, "member %q added as %s\n", m.Name, m.Role)
			return nil
		})
	case "list":
		fs := c.flagSet("member list")
		cf := c.addConnFlags(fs, false)
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		if err := parseNoArgs(fs, rest); err != nil {
			return err
		}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			ms, err := a.ListMembers(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				out := make([]memberView, len(ms))
				for i, m := range ms {
					out[i] = memberJSON(m)
				}
				return printJSON(c.out, out)
			}
			tw := newTable(c.out)
			fmt.Fprintln(tw, "NAME\tROLE\tUNIX USERS")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.Role, dash(strings.Join(m.UnixUsers, ",")))
			}
			return tw.Flush()
		})
	case "invite":
		fs := c.flagSet("member invite")
		cf := c.addConnFlags(fs, false)
		asJSON := fs.Bool("json", false, "print the invitation as JSON")
		name, err := oneName(fs, rest, "NAME")
		if err != nil {
			return err
		}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			inv, err := a.Invite(ctx, name)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.out, map[string]any{"member": inv.Member, "url": inv.URL, "expires": inv.Expires})
			}
			fmt.Fprintf(c.out, "invitation for %q (usable once, until %s):\n%s\n", inv.Member, when(inv.Expires), inv.URL)
			return nil
		})
	case "passwd":
		fs := c.flagSet("member passwd")
		cf := c.addConnFlags(fs, false)
		file := fs.String("password-file", "", "read the new web password from this file (first line) instead of asking")
		name, err := oneName(fs, rest, "NAME")
		if err != nil {
			return err
		}
		var pw []byte
		if *file != "" {
			if pw, err = readPassphraseFile(*file); err != nil {
				return err
			}
		} else {
			if pw, err = c.askSecret("new web password for " + name + ": "); err != nil {
				return err
			}
			again, err := c.askSecret("again: ")
			if err != nil {
				return err
			}
			if string(again) != string(pw) {
				return usagef("member passwd %s: the two passwords differ; nothing was changed", name)
			}
		}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			if err := a.SetPassword(ctx, name, pw); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "web password of %q set; their web sessions were ended\n", name)
			return nil
		})
	default:
		fs := c.flagSet("member remove")
		cf := c.addConnFlags(fs, false)
		name, err := oneName(fs, rest, "NAME")
		if err != nil {
			return err
		}
		return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
			if err := a.RemoveMember(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "member %q removed, with their credentials\n", name)
			return nil
		})
	}
}

// ---- creds ----
