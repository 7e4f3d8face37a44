package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/user"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/credcheck"
	"github.com/ferryhpc/ferry/internal/secrets"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/sshpool"
)

var _ plugin.Admin = (*Agent)(nil)

// principal is who a call acts for, resolved to a role.
type principal struct {
	name  string // member name, "root", or "launcher"
	via   string
	owner bool
}

// caller resolves the actor in ctx. No actor means a trusted in-process caller or a launcher that
// acts for the whole organisation (it holds the authenticated plugin channel): owner rights.
func (a *Agent) caller(ctx context.Context) (principal, error) {
	act, ok := plugin.ActorFrom(ctx)
	if !ok || (act.Member == "" && act.Via != "cli") {
		via := audit.ViaPlugin
		if ok && act.Via != "" {
			via = act.Via
		}
		return principal{name: "launcher", via: via, owner: true}, nil
	}
	via := act.Via
	if via != audit.ViaCLI {
		via = audit.ViaPlugin
	}
	if act.Member == "root" && via == audit.ViaCLI {
		return principal{name: "root", via: via, owner: true}, nil
	}
	a.idmu.RLock()
	m, known := a.members[act.Member]
	a.idmu.RUnlock()
	if !known {
		return principal{}, fmt.Errorf("%w: %q is not a member of the organisation", plugin.ErrPermissionDenied, act.Member)
	}
	return principal{name: m.Name, via: via, owner: m.Role == plugin.RoleOwner}, nil
}

// may returns the principal if it may act for member (owners for anyone, members for themselves).
func (a *Agent) may(ctx context.Context, member string) (principal, error) {
	p, err := a.caller(ctx)
	if err != nil {
		return p, err
	}
	if !p.owner && p.name != member {
		return p, fmt.Errorf("%w: %q may act only for themselves, not for %q", plugin.ErrPermissionDenied, p.name, member)
	}
	return p, nil
}

// ownerOnly returns the principal if it is an owner.
func (a *Agent) ownerOnly(ctx context.Context, what string) (principal, error) {
	p, err := a.caller(ctx)
	if err != nil {
		return p, err
	}
	if !p.owner {
		return p, fmt.Errorf("%w: only organisation owners may %s", plugin.ErrPermissionDenied, what)
	}
	return p, nil
}

func (a *Agent) audited(p principal, action, identity, subject, target string, err error, detail string) {
	out := audit.OutcomeOK
	switch {
	case errors.Is(err, plugin.ErrPermissionDenied):
		out = audit.OutcomeDenied
	case err != nil:
		out = audit.OutcomeError
	}
	if err != nil && detail == "" {
		detail = err.Error()
	}
	via := p.via
	if via == "" {
		via = audit.ViaPlugin
	}
	name := p.name
	if name == "" {
		name = "unknown"
	}
	a.record(audit.Event{Actor: name, Via: via, Action: action, Identity: identity, Subject: subject, Target: target, Outcome: out, Detail: detail})
}

// ResolveUnixUser maps the Unix uid of a CLI caller to an actor: root is an owner (bootstrap);
// other accounts act as the member whose unix_users list them.
func (a *Agent) ResolveUnixUser(uid uint32) (plugin.Actor, error) {
	if uid == 0 {
		return plugin.Actor{Member: "root", Via: audit.ViaCLI}, nil
	}
	u, err := user.LookupId(fmt.Sprint(uid))
	if err != nil {
		return plugin.Actor{}, fmt.Errorf("%w: uid %d has no account name", plugin.ErrPermissionDenied, uid)
	}
	a.idmu.RLock()
	defer a.idmu.RUnlock()
	for _, m := range a.members {
		if slices.Contains(m.UnixUsers, u.Username) {
			return plugin.Actor{Member: m.Name, Via: audit.ViaCLI}, nil
		}
	}
	return plugin.Actor{}, fmt.Errorf("%w: unix user %q is not mapped to an organisation member (an owner can add it: ferry member add NAME --unix-user %s)", plugin.ErrPermissionDenied, u.Username, u.Username)
}

// activeJobsOf lists active jobs on identity (and of member, if set).
func (a *Agent) activeJobsOf(identity, member string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, j := range a.jobs {
		if !j.Done && (identity == "" || j.Identity == identity) && (member == "" || j.User == member) {
			out = append(out, fmt.Sprintf("%s (%s, %s)", j.ID, j.User, j.Status))
		}
	}
	sort.Strings(out)
	return out
}

func validateSpec(spec plugin.IdentitySpec) error {
	c := config.Default()
	c.Identities = []config.Identity{{Name: spec.Name, Scheduler: spec.Scheduler, Host: spec.Host, Port: spec.Port,
		WorkDir: spec.WorkDir, Group: spec.Group, KnownHosts: spec.KnownHosts}}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	if spec.Group == "" {
		return fmt.Errorf("%w: identity %q: group is required (the Linux group shared by its members)", plugin.ErrInvalidArgument, spec.Name)
	}
	if _, err := sshpool.ParseKnownHosts(spec.KnownHosts); err != nil {
		return fmt.Errorf("%w: identity %q: %v", plugin.ErrInvalidArgument, spec.Name, err)
	}
	if spec.JumpHost != "" {
		if _, _, _, err := parseJump(spec.JumpHost); err != nil {
			return fmt.Errorf("%w: identity %q: %v", plugin.ErrInvalidArgument, spec.Name, err)
		}
	}
	return nil
}

func (a *Agent) identityView(id *identity) plugin.Identity {
	r := id.rec
	v := plugin.Identity{
		IdentitySpec: plugin.IdentitySpec{Name: r.Name, Scheduler: r.Scheduler, Host: r.Host, Port: r.Port, WorkDir: r.WorkDir,
			Group: r.Group, KnownHosts: r.KnownHosts, JumpHost: r.JumpHost},
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt,
	}
	for _, k := range id.hostKeys {
		v.HostKeys = append(v.HostKeys, plugin.HostKey{Type: k.Type(), Fingerprint: ssh.FingerprintSHA256(k)})
	}
	var names []string
	for n := range a.members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ms := plugin.MemberStatus{Member: n, Role: a.members[n].Role, Status: plugin.CredMissing}
		if c := a.creds[credKey{r.Name, n}]; c != nil {
			ms.Status, ms.Username = credStatus(c.rec), c.rec.Username
		}
		v.Members = append(v.Members, ms)
	}
	return v
}

// ListIdentities lists every identity (any member may see them).
func (a *Agent) ListIdentities(ctx context.Context) ([]plugin.Identity, error) {
	if _, err := a.caller(ctx); err != nil {
		return nil, err
	}
	a.idmu.RLock()
	var out []plugin.Identity
	for _, id := range a.ids {
		out = append(out, a.identityView(id))
	}
	a.idmu.RUnlock()
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	for i := range out {
		out[i].ActiveJobs = len(a.activeJobsOf(out[i].Name, ""))
	}
	return out, nil
}

// GetIdentity returns one identity with its members' credential status.
func (a *Agent) GetIdentity(ctx context.Context, name string) (plugin.Identity, error) {
	if _, err := a.caller(ctx); err != nil {
		return plugin.Identity{}, err
	}
	a.idmu.RLock()
	id, ok := a.ids[name]
	var v plugin.Identity
	if ok {
		v = a.identityView(id)
	}
	a.idmu.RUnlock()
	if !ok {
		return v, fmt.Errorf("%w: identity %q", plugin.ErrNotFound, name)
	}
	v.ActiveJobs = len(a.activeJobsOf(name, ""))
	return v, nil
}

// ScanHostKey connects to host:port and returns the host keys it presents, without trusting or
// storing any. Each key algorithm is asked for separately so every key type is shown.
func (a *Agent) ScanHostKey(ctx context.Context, host string, port int) ([]plugin.HostKey, error) {
	if _, err := a.ownerOnly(ctx, "scan host keys"); err != nil {
		return nil, err
	}
	if port == 0 {
		port = 22
	}
	if !config.ValidHost(host) || port < 1 || port > 65535 {
		return nil, fmt.Errorf("%w: invalid host %q or port %d", plugin.ErrInvalidArgument, host, port)
	}
	addr := sshpool.HostPort(host, port)
	known := "[" + host + "]:" + fmt.Sprint(port)
	if port == 22 {
		known = host
	}
	var out []plugin.HostKey
	for _, alg := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512} {
		k, err := scanOne(ctx, addr, alg, a.cfg.Pool.DialTimeout.Duration)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
				return nil, fmt.Errorf("%w: scan %s: %v", plugin.ErrUnavailable, addr, err)
			}
			continue // the server has no key of this type
		}
		out = append(out, plugin.HostKey{Type: k.Type(), Fingerprint: ssh.FingerprintSHA256(k),
			KnownHosts: known + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s offered no usable host key", plugin.ErrUnavailable, addr)
	}
	return out, nil
}

var errScanned = errors.New("host key captured")

func scanOne(ctx context.Context, addr, alg string, timeout time.Duration) (ssh.PublicKey, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	var got ssh.PublicKey
	_, _, _, err = ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:              "ferry-scan",
		HostKeyAlgorithms: []string{alg},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			got = k
			return errScanned
		},
	})
	if got != nil {
		return got, nil
	}
	return nil, err
}

// CreateIdentity registers an identity (owners only).
func (a *Agent) CreateIdentity(ctx context.Context, spec plugin.IdentitySpec) (v plugin.Identity, err error) {
	p, err := a.ownerOnly(ctx, "create identities")
	defer func() { a.audited(p, audit.ActionIdentityCreate, spec.Name, "", "", err, "") }()
	if err != nil {
		return v, err
	}
	if spec.Port == 0 {
		spec.Port = 22
	}
	if err := validateSpec(spec); err != nil {
		return v, err
	}
	now := time.Now().UTC()
	rec := store.Identity{Name: spec.Name, Scheduler: spec.Scheduler, Host: spec.Host, Port: spec.Port, WorkDir: spec.WorkDir,
		Group: spec.Group, KnownHosts: spec.KnownHosts, JumpHost: spec.JumpHost, CreatedBy: p.name, CreatedAt: now}
	id, err := a.buildIdentity(rec)
	if err != nil {
		return v, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	if _, exists := a.ids[spec.Name]; exists {
		return v, fmt.Errorf("%w: identity %q", plugin.ErrAlreadyExists, spec.Name)
	}
	if err := a.store.PutIdentity(rec); err != nil {
		return v, err
	}
	a.ids[spec.Name] = id
	return a.identityView(id), nil
}

// EditIdentity changes an identity (owners only). With active jobs it needs force, since a new
// host, work dir or scheduler can break them.
func (a *Agent) EditIdentity(ctx context.Context, name string, spec plugin.IdentitySpec, force bool) (v plugin.Identity, err error) {
	p, err := a.ownerOnly(ctx, "edit identities")
	defer func() { a.audited(p, audit.ActionIdentityEdit, name, "", "", err, "") }()
	if err != nil {
		return v, err
	}
	spec.Name = name
	if spec.Port == 0 {
		spec.Port = 22
	}
	if err := validateSpec(spec); err != nil {
		return v, err
	}
	if active := a.activeJobsOf(name, ""); len(active) > 0 && !force {
		return v, fmt.Errorf("%w: identity %q has %d active job(s): %s. Changing the host, port, work dir, group or scheduler may make Ferry lose track of them or make them fail; repeat with --force to change it anyway",
			plugin.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	old, ok := a.ids[name]
	if !ok {
		return v, fmt.Errorf("%w: identity %q", plugin.ErrNotFound, name)
	}
	rec := old.rec
	rec.Scheduler, rec.Host, rec.Port, rec.WorkDir, rec.Group, rec.KnownHosts, rec.JumpHost =
		spec.Scheduler, spec.Host, spec.Port, spec.WorkDir, spec.Group, spec.KnownHosts, spec.JumpHost
	rec.UpdatedBy, rec.UpdatedAt = p.name, time.Now().UTC()
	id, err := a.buildIdentity(rec)
	if err != nil {
		return v, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	if err := a.store.PutIdentity(rec); err != nil {
		return v, err
	}
	a.ids[name] = id
	for k := range a.creds {
		if k.identity == name {
			a.pools.Drop(sshpool.Key{Identity: name, User: k.member}) // next use dials the new target
		}
	}
	return a.identityView(id), nil
}

// DeleteIdentity removes an identity and its credentials (owners only); refused while jobs run.
func (a *Agent) DeleteIdentity(ctx context.Context, name string) (err error) {
	p, err := a.ownerOnly(ctx, "delete identities")
	defer func() { a.audited(p, audit.ActionIdentityDelete, name, "", "", err, "") }()
	if err != nil {
		return err
	}
	if active := a.activeJobsOf(name, ""); len(active) > 0 {
		return fmt.Errorf("%w: identity %q has %d active job(s): %s; cancel them or wait for them to end",
			plugin.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	if _, ok := a.ids[name]; !ok {
		return fmt.Errorf("%w: identity %q", plugin.ErrNotFound, name)
	}
	if err := a.store.DeleteIdentity(name); err != nil {
		return err
	}
	delete(a.ids, name)
	for k := range a.creds {
		if k.identity == name {
			delete(a.creds, k)
			a.pools.Drop(sshpool.Key{Identity: name, User: k.member})
		}
	}
	return nil
}

// ListMembers lists the organisation's members.
func (a *Agent) ListMembers(ctx context.Context) ([]plugin.Member, error) {
	if _, err := a.caller(ctx); err != nil {
		return nil, err
	}
	a.idmu.RLock()
	defer a.idmu.RUnlock()
	var out []plugin.Member
	for _, m := range a.members {
		out = append(out, plugin.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// AddMember adds or updates a member (owners only).
func (a *Agent) AddMember(ctx context.Context, m plugin.Member) (err error) {
	p, err := a.ownerOnly(ctx, "add members")
	defer func() { a.audited(p, audit.ActionMemberAdd, "", m.Name, "", err, "role "+m.Role) }()
	if err != nil {
		return err
	}
	c := config.Default()
	c.Members = []config.Member{{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	for _, u := range m.UnixUsers {
		if err := credcheck.ValidateUsername(u); err != nil && u != "root" {
			return fmt.Errorf("%w: unix user: %v", plugin.ErrInvalidArgument, err)
		}
	}
	rec := store.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	if err := a.store.PutMember(rec); err != nil {
		return err
	}
	a.members[m.Name] = rec
	return nil
}

// RemoveMember removes a member and their credentials (owners only); refused while their jobs run.
func (a *Agent) RemoveMember(ctx context.Context, name string) (err error) {
	p, err := a.ownerOnly(ctx, "remove members")
	defer func() { a.audited(p, audit.ActionMemberRemove, "", name, "", err, "") }()
	if err != nil {
		return err
	}
	if active := a.activeJobsOf("", name); len(active) > 0 {
		return fmt.Errorf("%w: member %q has %d active job(s): %s", plugin.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	if _, ok := a.members[name]; !ok {
		return fmt.Errorf("%w: member %q", plugin.ErrNotFound, name)
	}
	for k := range a.creds {
		if k.member == name {
			if err := a.store.DeleteCredential(k.identity, k.member); err != nil {
				return err
			}
			delete(a.creds, k)
			a.pools.Drop(sshpool.Key{Identity: k.identity, User: name})
		}
	}
	if err := a.store.DeleteMember(name); err != nil {
		return err
	}
	delete(a.members, name)
	return nil
}

func credView(rec store.Credential) plugin.Credential {
	return plugin.Credential{Identity: rec.Identity, Member: rec.Member, Username: rec.Username, KeyType: rec.KeyType,
		Fingerprint: rec.Fingerprint, Encrypted: rec.Encrypted, AddedBy: rec.AddedBy, AddedAt: rec.AddedAt,
		UpdatedAt: rec.UpdatedAt, Status: credStatus(rec), LastOK: rec.LastOK, LastError: rec.LastError, Failures: rec.Failures,
		CertificateExpires: rec.CertExpires}
}

// SetCredential adds or replaces a member's credential (owners for anyone, members their own).
func (a *Agent) SetCredential(ctx context.Context, spec plugin.CredentialSpec) (c plugin.Credential, err error) {
	defer secrets.Zero(spec.Passphrase)
	action := audit.ActionCredentialAdd
	p, err := a.may(ctx, spec.Member)
	defer func() { a.audited(p, action, spec.Identity, spec.Member, "", err, "") }()
	if err != nil {
		return c, err
	}
	a.idmu.RLock()
	_, idOK := a.ids[spec.Identity]
	_, memOK := a.members[spec.Member]
	_, exists := a.creds[credKey{spec.Identity, spec.Member}]
	a.idmu.RUnlock()
	switch {
	case !idOK:
		return c, fmt.Errorf("%w: identity %q", plugin.ErrNotFound, spec.Identity)
	case !memOK:
		return c, fmt.Errorf("%w: %q is not a member of the organisation", plugin.ErrNotFound, spec.Member)
	}
	if exists {
		action = audit.ActionCredentialUpdate
	}
	rec, err := a.putCredential(spec, p.name, true)
	if err != nil {
		return c, err
	}
	a.pools.Drop(sshpool.Key{Identity: spec.Identity, User: spec.Member})
	return credView(rec), nil
}

// DeleteCredential removes a member's credential; refused while their jobs on it run.
func (a *Agent) DeleteCredential(ctx context.Context, identity, member string) (err error) {
	p, err := a.may(ctx, member)
	defer func() { a.audited(p, audit.ActionCredentialDelete, identity, member, "", err, "") }()
	if err != nil {
		return err
	}
	if active := a.activeJobsOf(identity, member); len(active) > 0 {
		return fmt.Errorf("%w: %q has %d active job(s) on %q: %s", plugin.ErrFailedPrecondition, member, len(active), identity, strings.Join(active, ", "))
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	if _, ok := a.creds[credKey{identity, member}]; !ok {
		return fmt.Errorf("%w: %q has no credential on %q", plugin.ErrNotFound, member, identity)
	}
	if err := a.store.DeleteCredential(identity, member); err != nil {
		return err
	}
	delete(a.creds, credKey{identity, member})
	a.pools.Drop(sshpool.Key{Identity: identity, User: member})
	return nil
}

// ListCredentials lists credentials without secrets: all for owners, their own for members.
func (a *Agent) ListCredentials(ctx context.Context, identity string) ([]plugin.Credential, error) {
	p, err := a.caller(ctx)
	if err != nil {
		return nil, err
	}
	a.idmu.RLock()
	defer a.idmu.RUnlock()
	var out []plugin.Credential
	for k, c := range a.creds {
		if (identity != "" && k.identity != identity) || (!p.owner && k.member != p.name) {
			continue
		}
		out = append(out, credView(c.rec))
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].Identity != out[k].Identity {
			return out[i].Identity < out[k].Identity
		}
		return out[i].Member < out[k].Member
	})
	return out, nil
}

// RotateKeys re-seals every secret under a fresh key-encryption key and writes the new key file
// only after every record is re-sealed (owners only).
func (a *Agent) RotateKeys(ctx context.Context) (n int, err error) {
	p, err := a.ownerOnly(ctx, "rotate keys")
	defer func() { a.audited(p, audit.ActionKeysRotate, "", "", "", err, fmt.Sprintf("%d secrets re-sealed", n)) }()
	if err != nil {
		return 0, err
	}
	if a.cfg.Agent.KEKEnv != "" && envSet(a.cfg.Agent.KEKEnv) {
		return 0, fmt.Errorf("%w: the key-encryption key comes from $%s; rotate it where it is managed", plugin.ErrFailedPrecondition, a.cfg.Agent.KEKEnv)
	}
	next, err := secrets.NewKEK()
	if err != nil {
		return 0, err
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	var resealed []store.Credential
	for _, c := range a.creds {
		rec := c.rec
		if rec.Key, err = secrets.Reseal(a.kek, next, rec.Key, sealAD(rec.Identity, rec.Member, "key")); err != nil {
			return 0, fmt.Errorf("re-seal key of %q on %q: %w", rec.Member, rec.Identity, err)
		}
		n++
		if len(rec.Passphrase) > 0 {
			if rec.Passphrase, err = secrets.Reseal(a.kek, next, rec.Passphrase, sealAD(rec.Identity, rec.Member, "passphrase")); err != nil {
				return 0, fmt.Errorf("re-seal passphrase of %q on %q: %w", rec.Member, rec.Identity, err)
			}
			n++
		}
		resealed = append(resealed, rec)
	}
	// Records first, key file last: a crash in between leaves records that only the new key opens,
	// so keep the old key file as a backup until the new one is written.
	kekFile := a.cfg.Agent.KEKFile
	if kekFile == "" {
		kekFile = a.cfg.Agent.StateDir + "/kek"
	}
	if err := secrets.WriteKEKFile(kekFile+".next", next); err != nil {
		return 0, err
	}
	for _, rec := range resealed {
		if err := a.store.PutCredential(rec); err != nil {
			return 0, err
		}
		a.creds[credKey{rec.Identity, rec.Member}].rec = rec
	}
	if err := secrets.WriteKEKFile(kekFile, next); err != nil {
		return 0, err
	}
	removeQuiet(kekFile + ".next")
	a.kek = next
	return n, nil
}

// Audit returns audit events: all for owners, a member's own (as actor or subject) otherwise.
func (a *Agent) Audit(ctx context.Context, f plugin.AuditFilter) ([]plugin.AuditEvent, error) {
	p, err := a.caller(ctx)
	if err != nil {
		return nil, err
	}
	path := a.cfg.Agent.AuditLog
	if path == "" {
		path = a.cfg.Agent.StateDir + "/audit.log"
	}
	var out []plugin.AuditEvent
	err = audit.Scan(path, audit.Filter{Since: f.Since, Until: f.Until, Actor: f.Actor, Identity: f.Identity, Subject: f.Subject,
		Action: f.Action, Outcome: f.Outcome}, func(e audit.Event) error {
		if !p.owner && e.Actor != p.name && e.Subject != p.name {
			return nil
		}
		out = append(out, plugin.AuditEvent{Time: e.Time, Actor: e.Actor, Via: e.Via, Action: e.Action, Identity: e.Identity,
			Subject: e.Subject, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail})
		return nil
	})
	if err != nil && !errors.Is(err, audit.ErrTruncated) {
		return nil, err
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

// Pools returns per (identity, member) pool statistics with commands per minute.
func (a *Agent) Pools(ctx context.Context) ([]plugin.PoolStats, error) {
	p, err := a.caller(ctx)
	if err != nil {
		return nil, err
	}
	perMin := a.CommandsLastMinute()
	var out []plugin.PoolStats
	for _, s := range a.pools.Stats() {
		if !p.owner && s.Key.User != p.name {
			continue
		}
		out = append(out, plugin.PoolStats{Identity: s.Key.Identity, User: s.Key.User, Connections: s.Conns, Sessions: s.Sessions,
			Waiters: s.Waiters, Dials: s.Dials, DialFailures: s.DialFailures, LastError: s.LastError, CommandsPerMinute: perMin[s.Key]})
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].Identity != out[k].Identity {
			return out[i].Identity < out[k].Identity
		}
		return out[i].User < out[k].User
	})
	return out, nil
}
