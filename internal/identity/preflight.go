package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/stage"
)

// TestIdentity logs in as each member that has a credential on the identity (or only member) and
// checks what running jobs as them needs: the key is accepted, the login is the configured Linux
// user, the user is in the identity's group, and the work dir exists, belongs to the group, has
// setgid and the default ACL, and a file one member creates there is writable by another. Each
// failed check carries the command that fixes it.
func (reg *Registry) TestIdentity(ctx context.Context, name, member string) ([]contract.Check, error) {
	if _, err := reg.Authorize(ctx, IdentityTest, member); err != nil {
		return nil, err
	}
	reg.mu.RLock()
	id, ok := reg.ids[name]
	var members []string
	for k := range reg.creds {
		if k.identity == name && (member == "" || k.member == member) {
			members = append(members, k.member)
		}
	}
	reg.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: identity %q", contract.ErrNotFound, name)
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: no member has a credential on identity %q", contract.ErrFailedPrecondition, name)
	}
	sort.Strings(members)
	rec := id.rec
	var checks []contract.Check
	add := func(m, check string, ok bool, detail, fix string) {
		if ok {
			fix = ""
		}
		checks = append(checks, contract.Check{Member: m, Name: check, OK: ok, Detail: detail, Fix: fix})
	}
	recipe := fmt.Sprintf("chgrp -R %s %s; chmod -R g+wxs %s; setfacl -Rdm g::rwX %s", rec.Group, rec.WorkDir, rec.WorkDir, rec.WorkDir)
	var loggedIn []string
	for _, m := range members {
		run0, _, err := reg.connect(name, m)
		if err != nil {
			add(m, "login", false, err.Error(), "ferry creds edit --identity "+name+" --member "+m+" --key-file KEY")
			continue
		}
		username := reg.usernameOf(name, m)
		run := func(argv ...string) (string, int, error) {
			res, err := run0.Run(ctx, scheduler.Command{Argv: argv})
			return strings.TrimSpace(string(res.Stdout)), res.ExitCode, err
		}
		who, _, err := run("id", "-un")
		if err != nil {
			add(m, "login", false, err.Error(), fmt.Sprintf("append the credential's public key to ~%s/.ssh/authorized_keys on %s, or fix the key: ferry creds edit --identity %s --member %s --key-file KEY", username, rec.Host, name, m))
			continue
		}
		add(m, "login", true, "key accepted", "")
		loggedIn = append(loggedIn, m)
		add(m, "username", who == username, pick(who == username, fmt.Sprintf("logged in as %q", who), fmt.Sprintf("logged in as %q, expected %q", who, username)),
			fmt.Sprintf("ferry creds edit --identity %s --member %s --username %s", name, m, who))
		groups, _, err := run("id", "-Gn")
		inGroup := err == nil && slices.Contains(strings.Fields(groups), rec.Group)
		add(m, "group", inGroup, pick(inGroup, fmt.Sprintf("member of %s (groups: %s)", rec.Group, groups), fmt.Sprintf("not a member of %s (groups: %s)", rec.Group, groups)), fmt.Sprintf("usermod -aG %s %s   # as root on %s; takes effect at the next login", rec.Group, username, rec.Host))
		st, code, err := run("stat", "-c", "%G %a %F", rec.WorkDir)
		if err != nil || code != 0 {
			add(m, "work dir", false, fmt.Sprintf("%s is not accessible", rec.WorkDir), fmt.Sprintf("mkdir -p %s; %s", rec.WorkDir, recipe))
			continue
		}
		f := strings.SplitN(st, " ", 3)
		isDir := len(f) == 3 && f[2] == "directory"
		add(m, "work dir", isDir, pick(isDir, rec.WorkDir+" is a directory", fmt.Sprintf("%s is not a directory (%s)", rec.WorkDir, st)), fmt.Sprintf("mkdir -p %s; %s", rec.WorkDir, recipe))
		if !isDir {
			continue
		}
		add(m, "work dir group", f[0] == rec.Group, pick(f[0] == rec.Group, "owned by group "+f[0], fmt.Sprintf("owned by group %s, expected %s", f[0], rec.Group)), fmt.Sprintf("chgrp -R %s %s", rec.Group, rec.WorkDir))
		mode, _ := strconv.ParseUint(f[1], 8, 32)
		setgid := mode&0o2000 != 0 && mode&0o070 == 0o070
		add(m, "setgid", setgid, pick(setgid, "mode "+f[1]+": setgid, group rwx", "mode "+f[1]+": needs setgid and group rwx"), fmt.Sprintf("chmod -R g+wxs %s", rec.WorkDir))
		acl, code, err := run("getfacl", "-p", rec.WorkDir)
		switch {
		case err != nil || code == 127:
			add(m, "default ACL", false, "getfacl is not installed on the login node", "apt-get install acl   # or your distribution's acl package; then: setfacl -Rdm g::rwX "+rec.WorkDir)
		default:
			hasACL := strings.Contains(acl, "default:group::rwx")
			detail := "no default:group::rwx entry"
			if hasACL {
				detail = "default:group::rwx is set"
			}
			add(m, "default ACL", hasACL, detail, fmt.Sprintf("setfacl -Rdm g::rwX %s", rec.WorkDir))
		}
	}
	if len(loggedIn) > 0 {
		checks = append(checks, reg.groupWriteCheck(ctx, id, loggedIn)...)
	}
	return checks, nil
}

func (reg *Registry) usernameOf(identity, member string) string {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	if c := reg.creds[credKey{identity, member}]; c != nil {
		return c.rec.Username
	}
	return member
}

// groupWriteCheck creates a file over SFTP as the first member and appends to it as another, the
// way jobs of different members share the work dir. With a single member, it checks the created
// file's group and mode instead.
func (reg *Registry) groupWriteCheck(ctx context.Context, id *identity, members []string) []contract.Check {
	rec := id.rec
	creator := members[0]
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	rel := ".ferry-preflight-" + creator + "-" + hex.EncodeToString(rnd[:])
	abs := path.Join(rec.WorkDir, rel)
	fix := fmt.Sprintf("chgrp -R %s %s; chmod -R g+wxs %s; setfacl -Rdm g::rwX %s", rec.Group, rec.WorkDir, rec.WorkDir, rec.WorkDir)
	run, lease, err := reg.connect(rec.Name, creator)
	if err != nil {
		return []contract.Check{{Member: creator, Name: "group write", Detail: err.Error()}}
	}
	if err := id.stager.WriteFile(ctx, lease, rel, []byte("ferry preflight\n"), 0); err != nil {
		return []contract.Check{{Member: creator, Name: "group write", Detail: "cannot create a file in the work dir: " + err.Error(), Fix: fix}}
	}
	defer func() {
		_, _ = run.Run(context.WithoutCancel(ctx), scheduler.Command{Argv: []string{"rm", "-f", abs}})
	}()
	if len(members) < 2 {
		res, err := run.Run(ctx, scheduler.Command{Argv: []string{"stat", "-c", "%G %a", abs}})
		st := strings.TrimSpace(string(res.Stdout))
		ok := err == nil && strings.HasPrefix(st, rec.Group+" ") && len(st) >= 2 && strings.ContainsAny(st[len(st)-2:len(st)-1], "67")
		if ok {
			fix = ""
		}
		return []contract.Check{{Member: creator, Name: "group write", OK: ok,
			Detail: "created file is " + st + " (only one member has a credential: another member's write was not tried)", Fix: fix}}
	}
	other := members[1]
	_, lease2, err := reg.connect(rec.Name, other)
	if err == nil {
		c, release, lerr := lease2.SFTP(ctx)
		err = lerr
		if lerr == nil {
			f, oerr := c.OpenFile(abs, os.O_WRONLY|os.O_APPEND)
			if oerr == nil {
				_, oerr = f.Write([]byte("written by " + other + "\n"))
				if cerr := f.Close(); oerr == nil {
					oerr = cerr
				}
			}
			release()
			err = oerr
		}
	}
	ok := err == nil
	detail := fmt.Sprintf("%s created %s; %s appended to it", creator, rel, other)
	if !ok {
		detail = fmt.Sprintf("%s created %s; %s could not write it: %v", creator, rel, other, err)
	}
	if ok {
		fix = ""
	}
	return []contract.Check{{Member: other, Name: "group write", OK: ok, Detail: detail, Fix: fix}}
}

// connect logs member in on identity through the job lifecycle's Connector.
func (reg *Registry) connect(identity, member string) (scheduler.Runner, stage.Leaser, error) {
	if reg.deps.Connect == nil {
		return nil, nil, fmt.Errorf("%w: no connector to log %q in on %q", contract.ErrUnavailable, member, identity)
	}
	return reg.deps.Connect.Connect(identity, member)
}

// pick returns ok's text when the check passed, else fail's: an ok row says what passed, a failed
// one what is wrong.
func pick(passed bool, ok, fail string) string {
	if passed {
		return ok
	}
	return fail
}
