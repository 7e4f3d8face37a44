package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ferryhpc/ferry/plugin"
)

// The management commands: identity, member, creds, keys, audit, pools. They reach the agent on
// its socket only (where the agent knows who calls) and call its Admin half.

// adminTimeout bounds one management command; preflight tests log in as every member.
const adminTimeout = 5 * time.Minute

// adminCall connects as cf says and runs fn with the agent's Admin half, under a ctx that ends on
// Ctrl-C or after adminTimeout.
func (c *cli) adminCall(cf connFlags, fn func(ctx context.Context, a plugin.Admin) error) error {
	cl, err := c.connect(cf)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	return fn(ctx, cl.Admin())
}

// subcommand splits args into a subcommand of the group and its arguments.
func subcommand(group string, args []string, subs ...string) (string, []string, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		return "", nil, helpText(fmt.Sprintf("usage: ferry %s %s [flags]\n\nRun 'ferry %s COMMAND -h' for a command's flags.\n", group, strings.Join(subs, "|"), group))
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usagef("usage: ferry %s %s ... (see ferry help)", group, strings.Join(subs, "|"))
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	return "", nil, usagef("unknown command %q: ferry %s %s", args[0], group, strings.Join(subs, "|"))
}

// oneName parses args with fs and returns the one positional argument (what).
func oneName(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 || pos[0] == "" {
		return "", usagef("usage: %s %s [flags]", fs.Name(), what)
	}
	return pos[0], nil
}

// printJSON writes v as one indented JSON document.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// when formats a time for a table: local, to the minute, or "-".
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// clip shortens s to n runes for a table column.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return dash(s)
}

// ---- identity ----

// maxKeyFile bounds a private key file: the largest RSA keys are a few KiB.
const maxKeyFile = 1 << 20
