package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/plugin"
)

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
		scheduler:      fs.String("scheduler", "", "batch system: "+config.SchedulerNames()),
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

// checkScheduler turns an alias into its kind and refuses an unknown scheduler name.
func checkScheduler(s *string) error {
	k := config.CanonicalScheduler(*s)
	if !slices.Contains(config.Schedulers, k) {
		return usagef("unknown --scheduler %q: use one of %s", *s, config.SchedulerNames())
	}
	*s = k
	return nil
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

// jumpScan reads --jump ([USER@]HOST[:PORT]) and the key to log in to the jump host with, for
// scanning the login node's host key through it.
func (c *cli) jumpScan(jump, keyFile, passFile string) (*plugin.JumpScan, error) {
	user, host, port, err := config.ParseJump(jump)
	if err != nil {
		return nil, usagef("--jump %q: %v", jump, err)
	}
	if user == "" {
		return nil, usagef("--jump %q: give USER@HOST[:PORT], the user you log in to the jump host as, to scan the login node's key through it (or pin it with --known-hosts)", jump)
	}
	if keyFile == "" {
		return nil, usagef("--jump without --known-hosts: give --jump-key FILE, your key for %s, so the login node's host key can be scanned through it (it is used once and not stored), or pin the login node's key with --known-hosts", host)
	}
	key, err := c.readKey(keyFile)
	if err != nil {
		return nil, err
	}
	pass, err := c.passphrase(passFile, false, "", false)
	if err != nil {
		clear(key)
		return nil, err
	}
	return &plugin.JumpScan{Host: host, Port: port, User: user, Key: key, Passphrase: pass}, nil
}

// trustScannedKeyVia is trustScannedKey for a login node scanned through the jump host via.
func (c *cli) trustScannedKeyVia(ctx context.Context, a plugin.Admin, host string, port int, via plugin.JumpScan, yes bool) (string, error) {
	if port == 0 {
		port = 22
	}
	keys, err := a.ScanHostKeyVia(ctx, host, port, via)
	if err != nil {
		return "", fmt.Errorf("fetch the host key of %s:%d through %s: %w (or pin it with --known-hosts)", host, port, via.Host, err)
	}
	return c.confirmKeys(keys, fmt.Sprintf("%s:%d (through %s)", host, port, via.Host), yes)
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
	return c.confirmKeys(keys, fmt.Sprintf("%s:%d", host, port), yes)
}

// confirmKeys shows the scanned keys of where and asks whether to trust them (or, with yes,
// trusts them with a warning); it returns their known_hosts lines.
func (c *cli) confirmKeys(keys []plugin.HostKey, where string, yes bool) (string, error) {
	if len(keys) == 0 {
		return "", fmt.Errorf("%s presented no host key", where)
	}
	fmt.Fprintf(c.errOut, "%s presents:\n", where)
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
	if err := refusePassphraseArg(args); err != nil {
		return err
	}
	fs := c.flagSet("identity add")
	cf := c.addConnFlags(fs, false)
	sf := addSpecFlags(fs)
	jumpKey := fs.String("jump-key", "", "with --jump and no pinned key: your private key for the jump host (or - for standard input), used once to scan the login node's key through it, never stored")
	jumpPass := fs.String("jump-passphrase-file", "", "file holding --jump-key's passphrase (else FERRY_PASSPHRASE)")
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
	// Refused here, before the login node's host key is scanned and trusted for nothing.
	if err := checkScheduler(sf.scheduler); err != nil {
		return err
	}
	known, err := sf.pinned()
	if err != nil {
		return err
	}
	spec := plugin.IdentitySpec{
		Name: name, Scheduler: *sf.scheduler, Host: *sf.host, Port: *sf.port,
		WorkDir: *sf.workDir, Group: *sf.group, JumpHost: *sf.jump, KnownHosts: known,
	}
	var via *plugin.JumpScan
	if spec.KnownHosts == "" && spec.JumpHost != "" {
		if via, err = c.jumpScan(spec.JumpHost, *jumpKey, *jumpPass); err != nil {
			return err
		}
		defer clear(via.Key)
		defer clear(via.Passphrase)
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		switch {
		case spec.KnownHosts == "" && via != nil:
			// The jump host is reachable: scan and confirm its key, then the login node's through it.
			if via.KnownHosts, err = c.trustScannedKey(ctx, a, via.Host, via.Port, *sf.yes); err != nil {
				return err
			}
			login, err := c.trustScannedKeyVia(ctx, a, spec.Host, spec.Port, *via, *sf.yes)
			if err != nil {
				return err
			}
			spec.KnownHosts = via.KnownHosts + "\n" + login
		case spec.KnownHosts == "":
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
	if set["scheduler"] {
		if err := checkScheduler(sf.scheduler); err != nil {
			return err
		}
	}
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
