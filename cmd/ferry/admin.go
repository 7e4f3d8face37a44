package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
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

func (c *cli) identity(args []string) error {
	sub, rest, err := subcommand("identity", args, "add", "edit", "list", "show", "delete", "test")
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		return c.identityAdd(rest)
	case "edit":
		return c.identityEdit(rest)
	case "list":
		return c.identityList(rest)
	case "show":
		return c.identityShow(rest)
	case "delete":
		return c.identityDelete(rest)
	default:
		return c.identityTest(rest)
	}
}

// specFlags are the identity settings flags shared by identity add and edit.
type specFlags struct {
	scheduler, host, workDir, group, jump *string
	port                                  *int
	knownHosts, knownHostsFile            *string
	yes                                   *bool
}

func addSpecFlags(fs *flag.FlagSet) specFlags {
	return specFlags{
		scheduler:      fs.String("scheduler", "", "batch system: slurm, pbspro, torque, lsf or sge"),
		host:           fs.String("host", "", "login node host name or IP address"),
		port:           fs.Int("port", 0, "login node SSH port (default 22)"),
		workDir:        fs.String("workdir", "", "absolute path of the shared work directory on the cluster"),
		group:          fs.String("group", "", "shared Linux group that owns the work directory"),
		jump:           fs.String("jump", "", "bastion every login goes through, USER@HOST:PORT"),
		knownHosts:     fs.String("known-hosts", "", "pin this known_hosts line instead of scanning the host key"),
		knownHostsFile: fs.String("known-hosts-file", "", "pin the known_hosts line(s) in this file instead of scanning"),
		yes:            fs.Bool("yes", false, "trust the scanned host key without asking (check its fingerprint yourself!)"),
	}
}

// pinned returns the known_hosts text from --known-hosts or --known-hosts-file, "" if neither.
func (sf specFlags) pinned() (string, error) {
	switch {
	case *sf.knownHosts != "" && *sf.knownHostsFile != "":
		return "", usagef("give --known-hosts or --known-hosts-file, not both")
	case *sf.knownHostsFile != "":
		b, err := os.ReadFile(*sf.knownHostsFile)
		if err != nil {
			return "", fmt.Errorf("read known hosts: %w", err)
		}
		text := strings.TrimSpace(string(b))
		if text == "" {
			return "", fmt.Errorf("known hosts file %s is empty", *sf.knownHostsFile)
		}
		return text, nil
	}
	return strings.TrimSpace(*sf.knownHosts), nil
}

// trustScannedKey scans host:port, shows each key's type and fingerprint, and asks whether to
// trust them (or, with yes, trusts them with a warning). It returns the known_hosts lines to pin.
func (c *cli) trustScannedKey(ctx context.Context, a plugin.Admin, host string, port int, yes bool) (string, error) {
	if port == 0 {
		port = 22
	}
	keys, err := a.ScanHostKey(ctx, host, port)
	if err != nil {
		return "", fmt.Errorf("fetch the host key of %s:%d: %w (or pin it with --known-hosts)", host, port, err)
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("%s:%d presented no host key", host, port)
	}
	fmt.Fprintf(c.errOut, "The login node %s:%d presents:\n", host, port)
	lines := make([]string, len(keys))
	for i, k := range keys {
		fmt.Fprintf(c.errOut, "  %-22s %s\n", k.Type, k.Fingerprint)
		lines[i] = k.KnownHosts
	}
	if yes {
		fmt.Fprintln(c.errOut, "warning: trusting this host key without confirmation (--yes); compare the fingerprints above "+
			"with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the login node")
	} else {
		ok, err := c.confirm("Trust this host key?")
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errors.New("host key not trusted; nothing was changed (check the fingerprint, or pin a key with --known-hosts)")
		}
	}
	return strings.Join(lines, "\n"), nil
}

func (c *cli) identityAdd(args []string) error {
	fs := c.flagSet("identity add")
	cf := c.addConnFlags(fs, false)
	sf := addSpecFlags(fs)
	asJSON := fs.Bool("json", false, "print the created identity as JSON")
	name, err := oneName(fs, args, "NAME")
	if err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct {
		flag string
		val  *string
	}{{"--scheduler", sf.scheduler}, {"--host", sf.host}, {"--workdir", sf.workDir}, {"--group", sf.group}} {
		if *f.val == "" {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 {
		return usagef("identity add %s: missing %s", name, strings.Join(missing, ", "))
	}
	known, err := sf.pinned()
	if err != nil {
		return err
	}
	spec := plugin.IdentitySpec{
		Name: name, Scheduler: *sf.scheduler, Host: *sf.host, Port: *sf.port,
		WorkDir: *sf.workDir, Group: *sf.group, JumpHost: *sf.jump, KnownHosts: known,
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		if spec.KnownHosts == "" {
			if spec.KnownHosts, err = c.trustScannedKey(ctx, a, spec.Host, spec.Port, *sf.yes); err != nil {
				return err
			}
		}
		id, err := a.CreateIdentity(ctx, spec)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(c.out, identityJSON(id))
		}
		fmt.Fprintf(c.out, "identity %q created\n\n", id.Name)
		printIdentity(c.out, id)
		return nil
	})
}

func (c *cli) identityEdit(args []string) error {
	fs := c.flagSet("identity edit")
	cf := c.addConnFlags(fs, false)
	sf := addSpecFlags(fs)
	force := fs.Bool("force", false, "edit even while the identity has active jobs (they may break)")
	accept := fs.Bool("accept-host-key", false, "scan the login node's host key again and pin it (after a key change)")
	asJSON := fs.Bool("json", false, "print the edited identity as JSON")
	name, err := oneName(fs, args, "NAME")
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known, err := sf.pinned()
	if err != nil {
		return err
	}
	if known != "" && *accept {
		return usagef("give --known-hosts(-file) or --accept-host-key, not both")
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		cur, err := a.GetIdentity(ctx, name)
		if err != nil {
			return err
		}
		spec := cur.IdentitySpec
		for flagName, apply := range map[string]func(){
			"scheduler": func() { spec.Scheduler = *sf.scheduler },
			"host":      func() { spec.Host = *sf.host },
			"port":      func() { spec.Port = *sf.port },
			"workdir":   func() { spec.WorkDir = *sf.workDir },
			"group":     func() { spec.Group = *sf.group },
			"jump":      func() { spec.JumpHost = *sf.jump },
		} {
			if set[flagName] {
				apply()
			}
		}
		moved := spec.Host != cur.Host || spec.Port != cur.Port
		switch {
		case known != "":
			spec.KnownHosts = known
		case *accept || moved:
			// A new host (or a re-keyed one) is trusted only after its key is confirmed.
			if spec.KnownHosts, err = c.trustScannedKey(ctx, a, spec.Host, spec.Port, *sf.yes); err != nil {
				return err
			}
		}
		id, err := a.EditIdentity(ctx, name, spec, *force)
		if errors.Is(err, plugin.ErrFailedPrecondition) && !*force {
			return fmt.Errorf("%w\n(pass --force to edit anyway)", err)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(c.out, identityJSON(id))
		}
		fmt.Fprintf(c.out, "identity %q updated\n\n", id.Name)
		printIdentity(c.out, id)
		return nil
	})
}

func (c *cli) identityList(args []string) error {
	fs := c.flagSet("identity list")
	cf := c.addConnFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		ids, err := a.ListIdentities(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]identityView, len(ids))
			for i, id := range ids {
				out[i] = identityJSON(id)
			}
			return printJSON(c.out, out)
		}
		tw := newTable(c.out)
		fmt.Fprintln(tw, "NAME\tSCHEDULER\tHOST\tWORK DIR\tGROUP\tACTIVE JOBS\tVERIFIED")
		for _, id := range ids {
			verified := 0
			for _, m := range id.Members {
				if m.Status == plugin.CredVerified {
					verified++
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\n", id.Name, id.Scheduler, hostPort(id.IdentitySpec),
				id.WorkDir, id.Group, id.ActiveJobs, verified, len(id.Members))
		}
		return tw.Flush()
	})
}

func hostPort(s plugin.IdentitySpec) string {
	port := s.Port
	if port == 0 {
		port = 22
	}
	return fmt.Sprintf("%s:%d", s.Host, port)
}

func (c *cli) identityShow(args []string) error {
	fs := c.flagSet("identity show")
	cf := c.addConnFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	name, err := oneName(fs, args, "NAME")
	if err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		id, err := a.GetIdentity(ctx, name)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(c.out, identityJSON(id))
		}
		printIdentity(c.out, id)
		return nil
	})
}

// printIdentity prints an identity's settings, host keys and member table for people.
func printIdentity(w io.Writer, id plugin.Identity) {
	tw := newTable(w)
	by := func(t time.Time, who string) string {
		if t.IsZero() {
			return "-"
		}
		if who == "" {
			return when(t)
		}
		return when(t) + " by " + who
	}
	for _, row := range [][2]string{
		{"Identity", id.Name},
		{"Scheduler", id.Scheduler},
		{"Host", hostPort(id.IdentitySpec)},
		{"Jump host", dash(id.JumpHost)},
		{"Work dir", id.WorkDir},
		{"Group", id.Group},
		{"Active jobs", strconv.Itoa(id.ActiveJobs)},
		{"Created", by(id.CreatedAt, id.CreatedBy)},
		{"Updated", by(id.UpdatedAt, id.UpdatedBy)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "Host keys:")
	if len(id.HostKeys) == 0 {
		fmt.Fprintln(w, "  (none pinned)")
	}
	tw = newTable(w)
	for _, k := range id.HostKeys {
		fmt.Fprintf(tw, "  %s\t%s\n", k.Type, k.Fingerprint)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "MEMBER\tROLE\tSTATUS\tUSERNAME")
	for _, m := range id.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Member, m.Role, m.Status, dash(m.Username))
	}
	_ = tw.Flush()
}

func (c *cli) identityDelete(args []string) error {
	fs := c.flagSet("identity delete")
	cf := c.addConnFlags(fs, false)
	name, err := oneName(fs, args, "NAME")
	if err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		if err := a.DeleteIdentity(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "identity %q deleted, with its credentials\n", name)
		return nil
	})
}

func (c *cli) identityTest(args []string) error {
	fs := c.flagSet("identity test")
	cf := c.addConnFlags(fs, false)
	member := fs.String("user", "", "test only this member (default: every member with a credential)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	name, err := oneName(fs, args, "NAME")
	if err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		checks, err := a.TestIdentity(ctx, name, *member)
		if err != nil {
			return err
		}
		failed := 0
		for _, ch := range checks {
			if !ch.OK {
				failed++
			}
		}
		if *asJSON {
			out := make([]checkView, len(checks))
			for i, ch := range checks {
				out[i] = checkView{Member: ch.Member, Check: ch.Name, OK: ch.OK, Detail: ch.Detail, Fix: ch.Fix}
			}
			if err := printJSON(c.out, out); err != nil {
				return err
			}
		} else {
			tw := newTable(c.out)
			fmt.Fprintln(tw, "MEMBER\tCHECK\tRESULT\tDETAIL")
			for _, ch := range checks {
				result := "ok"
				if !ch.OK {
					result = "FAIL"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Member, ch.Name, result, clip(ch.Detail, 80))
			}
			_ = tw.Flush()
			if failed > 0 {
				fmt.Fprintln(c.out, "\nTo fix:")
				for _, ch := range checks {
					if ch.OK {
						continue
					}
					fix := ch.Fix
					if fix == "" {
						fix = "(no single command: " + dash(ch.Detail) + ")"
					}
					fmt.Fprintf(c.out, "  %s, %s:\n    %s\n", ch.Member, ch.Name, strings.ReplaceAll(fix, "\n", "\n    "))
				}
			}
		}
		switch {
		case len(checks) == 0:
			return fmt.Errorf("no checks ran on %q: no member has a credential there (add one with `ferry creds add`)", name)
		case failed > 0:
			return fmt.Errorf("%d of %d checks failed on %q", failed, len(checks), name)
		}
		return nil
	})
}

// ---- member ----

func (c *cli) member(args []string) error {
	sub, rest, err := subcommand("member", args, "add", "list", "remove")
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

// maxKeyFile bounds a private key file: the largest RSA keys are a few KiB.
const maxKeyFile = 1 << 20

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
	var pass []byte
	switch {
	case *passFile != "":
		pass, err = readPassphraseFile(*passFile)
	case *ask:
		pass, err = c.askPassphrase(fmt.Sprintf("Passphrase for the key of %s on %s: ", *member, *identity), *keyFile == "-")
	case c.getenv("FERRY_PASSPHRASE") != "":
		pass = []byte(c.getenv("FERRY_PASSPHRASE"))
	}
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

// parseSince reads an audit time bound: a duration back from now ("24h", "90m", "7d"), an RFC 3339
// time, or a date (local midnight).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("invalid time %q: use a duration back from now (24h, 7d) or a time (2026-03-01 or 2026-03-01T10:00:00Z)", s)
}

func (c *cli) audit(args []string) error {
	fs := c.flagSet("audit")
	cf := c.addConnFlags(fs, false)
	since := fs.String("since", "", "only events after this: a duration back from now (24h, 7d) or a time")
	until := fs.String("until", "", "only events before this: a duration back from now or a time")
	var f plugin.AuditFilter
	fs.StringVar(&f.Actor, "actor", "", "only events by this member")
	fs.StringVar(&f.Identity, "identity", "", "only events about this identity")
	fs.StringVar(&f.Subject, "subject", "", "only events for this member")
	fs.StringVar(&f.Action, "action", "", `only actions starting with this ("credential.")`)
	fs.StringVar(&f.Outcome, "outcome", "", "only this outcome (ok, denied, error)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many events, the latest (default: the agent's)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	now := time.Now()
	var err error
	if f.Since, err = parseSince(*since, now); err != nil {
		return err
	}
	if f.Until, err = parseSince(*until, now); err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		evs, err := a.Audit(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]auditView, len(evs))
			for i, e := range evs {
				out[i] = auditJSON(e)
			}
			return printJSON(c.out, out)
		}
		tw := newTable(c.out)
		fmt.Fprintln(tw, "TIME\tACTOR\tVIA\tACTION\tIDENTITY\tSUBJECT\tTARGET\tOUTCOME\tDETAIL")
		for _, e := range evs {
			actor := e.Actor
			if actor == "" {
				actor = "(launcher)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"),
				actor, dash(e.Via), e.Action, dash(e.Identity), dash(e.Subject), dash(e.Target), e.Outcome, clip(e.Detail, 60))
		}
		return tw.Flush()
	})
}

func (c *cli) pools(args []string) error {
	fs := c.flagSet("pools")
	cf := c.addConnFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		ps, err := a.Pools(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]poolView, len(ps))
			for i, p := range ps {
				out[i] = poolView(p)
			}
			return printJSON(c.out, out)
		}
		tw := newTable(c.out)
		fmt.Fprintln(tw, "IDENTITY\tUSER\tCONNS\tSESSIONS\tWAITERS\tDIALS\tFAILURES\tCMDS/MIN\tLAST-ERROR")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Identity, p.User, p.Connections, p.Sessions,
				p.Waiters, p.Dials, p.DialFailures, p.CommandsPerMinute, clip(p.LastError, 60))
		}
		return tw.Flush()
	})
}

// ---- JSON shapes (never any key material) ----

type hostKeyView struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
}

type memberStatusView struct {
	Member   string `json:"member"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	Username string `json:"username,omitempty"`
}

type identityView struct {
	Name       string             `json:"name"`
	Scheduler  string             `json:"scheduler"`
	Host       string             `json:"host"`
	Port       int                `json:"port"`
	WorkDir    string             `json:"work_dir"`
	Group      string             `json:"group"`
	JumpHost   string             `json:"jump_host,omitempty"`
	KnownHosts string             `json:"known_hosts,omitempty"`
	HostKeys   []hostKeyView      `json:"host_keys"`
	CreatedBy  string             `json:"created_by,omitempty"`
	CreatedAt  string             `json:"created_at,omitempty"`
	UpdatedBy  string             `json:"updated_by,omitempty"`
	UpdatedAt  string             `json:"updated_at,omitempty"`
	ActiveJobs int                `json:"active_jobs"`
	Members    []memberStatusView `json:"members"`
}

func identityJSON(id plugin.Identity) identityView {
	v := identityView{
		Name: id.Name, Scheduler: id.Scheduler, Host: id.Host, Port: id.Port, WorkDir: id.WorkDir, Group: id.Group,
		JumpHost: id.JumpHost, KnownHosts: id.KnownHosts, CreatedBy: id.CreatedBy, CreatedAt: ts(id.CreatedAt),
		UpdatedBy: id.UpdatedBy, UpdatedAt: ts(id.UpdatedAt), ActiveJobs: id.ActiveJobs,
		HostKeys: []hostKeyView{}, Members: []memberStatusView{},
	}
	if v.Port == 0 {
		v.Port = 22
	}
	for _, k := range id.HostKeys {
		v.HostKeys = append(v.HostKeys, hostKeyView{Type: k.Type, Fingerprint: k.Fingerprint})
	}
	for _, m := range id.Members {
		v.Members = append(v.Members, memberStatusView(m))
	}
	return v
}

type memberView struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	UnixUsers []string `json:"unix_users"`
}

func memberJSON(m plugin.Member) memberView {
	v := memberView{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
	if v.UnixUsers == nil {
		v.UnixUsers = []string{}
	}
	return v
}

type credentialView struct {
	Identity    string `json:"identity"`
	Member      string `json:"member"`
	Username    string `json:"username"`
	KeyType     string `json:"key_type"`
	Fingerprint string `json:"fingerprint"`
	Encrypted   bool   `json:"encrypted"`
	AddedBy     string `json:"added_by,omitempty"`
	AddedAt     string `json:"added_at,omitempty"`
	UpdatedAt   string `json:"updated_at,omitempty"`
	Status      string `json:"status"`
	LastOK      string `json:"last_ok,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	Failures    int    `json:"failures"`
}

func credentialJSON(c plugin.Credential) credentialView {
	return credentialView{
		Identity: c.Identity, Member: c.Member, Username: c.Username, KeyType: c.KeyType, Fingerprint: c.Fingerprint,
		Encrypted: c.Encrypted, AddedBy: c.AddedBy, AddedAt: ts(c.AddedAt), UpdatedAt: ts(c.UpdatedAt),
		Status: c.Status, LastOK: ts(c.LastOK), LastError: c.LastError, Failures: c.Failures,
	}
}

type checkView struct {
	Member string `json:"member"`
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

type auditView struct {
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Via      string `json:"via,omitempty"`
	Action   string `json:"action"`
	Identity string `json:"identity,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Target   string `json:"target,omitempty"`
	Outcome  string `json:"outcome"`
	Detail   string `json:"detail,omitempty"`
}

func auditJSON(e plugin.AuditEvent) auditView {
	return auditView{Time: e.Time.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Via: e.Via, Action: e.Action,
		Identity: e.Identity, Subject: e.Subject, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail}
}

type poolView struct {
	Identity          string `json:"identity"`
	User              string `json:"user"`
	Connections       int    `json:"connections"`
	Sessions          int    `json:"sessions"`
	Waiters           int    `json:"waiters"`
	Dials             int64  `json:"dials"`
	DialFailures      int64  `json:"dial_failures"`
	LastError         string `json:"last_error,omitempty"`
	CommandsPerMinute int    `json:"commands_per_minute"`
}
