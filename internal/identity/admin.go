package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"net"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/credcheck"
	"github.com/ferryhpc/ferry/internal/secrets"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/sshpool"
)


func validateSpec(spec contract.IdentitySpec) error {
	c := config.Default()
	c.Identities = []config.Identity{{Name: spec.Name, Scheduler: spec.Scheduler, Host: spec.Host, Port: spec.Port,
		WorkDir: spec.WorkDir, Group: spec.Group, KnownHosts: spec.KnownHosts}}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	if spec.Group == "" {
		return fmt.Errorf("%w: identity %q: group is required (the Linux group shared by its members)", contract.ErrInvalidArgument, spec.Name)
	}
	if _, err := sshpool.ParseKnownHosts(spec.KnownHosts); err != nil {
		return fmt.Errorf("%w: identity %q: %v", contract.ErrInvalidArgument, spec.Name, err)
	}
	if spec.JumpHost != "" {
		if _, _, _, err := parseJump(spec.JumpHost); err != nil {
			return fmt.Errorf("%w: identity %q: %v", contract.ErrInvalidArgument, spec.Name, err)
		}
	}
	return nil
}

func (reg *Registry) identityView(id *identity) contract.Identity {
	r := id.rec
	v := contract.Identity{
		IdentitySpec: contract.IdentitySpec{Name: r.Name, Scheduler: r.Scheduler, Host: r.Host, Port: r.Port, WorkDir: r.WorkDir,
			Group: r.Group, KnownHosts: r.KnownHosts, JumpHost: r.JumpHost},
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt,
	}
	for _, k := range id.hostKeys {
		v.HostKeys = append(v.HostKeys, contract.HostKey{Type: k.Type(), Fingerprint: ssh.FingerprintSHA256(k)})
	}
	var names []string
	for n := range reg.members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ms := contract.MemberStatus{Member: n, Role: reg.members[n].Role, Status: contract.CredMissing}
		if c := reg.creds[credKey{r.Name, n}]; c != nil {
			ms.Status, ms.Username = credStatus(c.rec), c.rec.Username
		}
		v.Members = append(v.Members, ms)
	}
	return v
}

// ListIdentities lists every identity (any member may see them).
func (reg *Registry) ListIdentities(ctx context.Context) ([]contract.Identity, error) {
	if _, err := reg.Authorize(ctx, IdentityList, ""); err != nil {
		return nil, err
	}
	reg.mu.RLock()
	var out []contract.Identity
	for _, id := range reg.ids {
		out = append(out, reg.identityView(id))
	}
	reg.mu.RUnlock()
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	for i := range out {
		out[i].ActiveJobs = len(reg.activeJobsOf(out[i].Name, ""))
	}
	return out, nil
}

// GetIdentity returns one identity with its members' credential status.
func (reg *Registry) GetIdentity(ctx context.Context, name string) (contract.Identity, error) {
	if _, err := reg.Authorize(ctx, IdentityList, ""); err != nil {
		return contract.Identity{}, err
	}
	reg.mu.RLock()
	id, ok := reg.ids[name]
	var v contract.Identity
	if ok {
		v = reg.identityView(id)
	}
	reg.mu.RUnlock()
	if !ok {
		return v, fmt.Errorf("%w: identity %q", contract.ErrNotFound, name)
	}
	v.ActiveJobs = len(reg.activeJobsOf(name, ""))
	return v, nil
}

// ScanHostKey connects to host:port and returns the host keys it presents, without trusting or
// storing any. Each key algorithm is asked for separately so every key type is shown.
func (reg *Registry) ScanHostKey(ctx context.Context, host string, port int) ([]contract.HostKey, error) {
	if _, err := reg.Authorize(ctx, IdentityScan, ""); err != nil {
		return nil, err
	}
	if port == 0 {
		port = 22
	}
	if !config.ValidHost(host) || port < 1 || port > 65535 {
		return nil, fmt.Errorf("%w: invalid host %q or port %d", contract.ErrInvalidArgument, host, port)
	}
	addr := sshpool.HostPort(host, port)
	known := "[" + host + "]:" + fmt.Sprint(port)
	if port == 22 {
		known = host
	}
	var out []contract.HostKey
	for _, alg := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512} {
		k, err := scanOne(ctx, addr, alg, reg.cfg.Pool.DialTimeout.Duration)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
				return nil, fmt.Errorf("%w: scan %s: %v", contract.ErrUnavailable, addr, err)
			}
			continue // the server has no key of this type
		}
		out = append(out, contract.HostKey{Type: k.Type(), Fingerprint: ssh.FingerprintSHA256(k),
			KnownHosts: known + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s offered no usable host key", contract.ErrUnavailable, addr)
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
func (reg *Registry) CreateIdentity(ctx context.Context, spec contract.IdentitySpec) (v contract.Identity, err error) {
	p, err := reg.Authorize(ctx, IdentityCreate, "")
	defer func() { reg.Audited(p, audit.ActionIdentityCreate, spec.Name, "", "", err, "") }()
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
		Group: spec.Group, KnownHosts: spec.KnownHosts, JumpHost: spec.JumpHost, CreatedBy: p.Name, CreatedAt: now}
	id, err := reg.buildIdentity(rec)
	if err != nil {
		return v, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, exists := reg.ids[spec.Name]; exists {
		return v, fmt.Errorf("%w: identity %q", contract.ErrAlreadyExists, spec.Name)
	}
	if err := reg.store.PutIdentity(rec); err != nil {
		return v, err
	}
	reg.ids[spec.Name] = id
	return reg.identityView(id), nil
}

// EditIdentity changes an identity (owners only). With active jobs it needs force, since a new
// host, work dir or scheduler can break them.
func (reg *Registry) EditIdentity(ctx context.Context, name string, spec contract.IdentitySpec, force bool) (v contract.Identity, err error) {
	p, err := reg.Authorize(ctx, IdentityEdit, "")
	defer func() { reg.Audited(p, audit.ActionIdentityEdit, name, "", "", err, "") }()
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
	if active := reg.activeJobsOf(name, ""); len(active) > 0 && !force {
		return v, fmt.Errorf("%w: identity %q has %d active job(s): %s. Changing the host, port, work dir, group or scheduler may make Ferry lose track of them or make them fail; repeat with --force to change it anyway",
			contract.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	old, ok := reg.ids[name]
	if !ok {
		return v, fmt.Errorf("%w: identity %q", contract.ErrNotFound, name)
	}
	rec := old.rec
	rec.Scheduler, rec.Host, rec.Port, rec.WorkDir, rec.Group, rec.KnownHosts, rec.JumpHost =
		spec.Scheduler, spec.Host, spec.Port, spec.WorkDir, spec.Group, spec.KnownHosts, spec.JumpHost
	rec.UpdatedBy, rec.UpdatedAt = p.Name, time.Now().UTC()
	id, err := reg.buildIdentity(rec)
	if err != nil {
		return v, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	if err := reg.store.PutIdentity(rec); err != nil {
		return v, err
	}
	reg.ids[name] = id
	for k := range reg.creds {
		if k.identity == name {
			reg.drop(sshpool.Key{Identity: name, User: k.member}) // next use dials the new target
		}
	}
	return reg.identityView(id), nil
}

// DeleteIdentity removes an identity and its credentials (owners only); refused while jobs run.
func (reg *Registry) DeleteIdentity(ctx context.Context, name string) (err error) {
	p, err := reg.Authorize(ctx, IdentityDelete, "")
	defer func() { reg.Audited(p, audit.ActionIdentityDelete, name, "", "", err, "") }()
	if err != nil {
		return err
	}
	if active := reg.activeJobsOf(name, ""); len(active) > 0 {
		return fmt.Errorf("%w: identity %q has %d active job(s): %s; cancel them or wait for them to end",
			contract.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, ok := reg.ids[name]; !ok {
		return fmt.Errorf("%w: identity %q", contract.ErrNotFound, name)
	}
	if err := reg.store.DeleteIdentity(name); err != nil {
		return err
	}
	delete(reg.ids, name)
	for k := range reg.creds {
		if k.identity == name {
			delete(reg.creds, k)
			reg.drop(sshpool.Key{Identity: name, User: k.member})
		}
	}
	return nil
}

// ListMembers lists the organisation's members.
func (reg *Registry) ListMembers(ctx context.Context) ([]contract.Member, error) {
	if _, err := reg.Authorize(ctx, MemberList, ""); err != nil {
		return nil, err
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	var out []contract.Member
	for _, m := range reg.members {
		out = append(out, contract.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// AddMember adds or updates a member (owners only).
func (reg *Registry) AddMember(ctx context.Context, m contract.Member) (err error) {
	p, err := reg.Authorize(ctx, MemberAdd, "")
	defer func() { reg.Audited(p, audit.ActionMemberAdd, "", m.Name, "", err, "role "+m.Role) }()
	if err != nil {
		return err
	}
	c := config.Default()
	c.Members = []config.Member{{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	for _, u := range m.UnixUsers {
		if err := credcheck.ValidateUsername(u); err != nil && u != "root" {
			return fmt.Errorf("%w: unix user: %v", contract.ErrInvalidArgument, err)
		}
	}
	rec := store.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if err := reg.store.PutMember(rec); err != nil {
		return err
	}
	reg.members[m.Name] = rec
	return nil
}

// RemoveMember removes a member and their credentials (owners only); refused while their jobs run.
func (reg *Registry) RemoveMember(ctx context.Context, name string) (err error) {
	p, err := reg.Authorize(ctx, MemberRemove, "")
	defer func() { reg.Audited(p, audit.ActionMemberRemove, "", name, "", err, "") }()
	if err != nil {
		return err
	}
	if active := reg.activeJobsOf("", name); len(active) > 0 {
		return fmt.Errorf("%w: member %q has %d active job(s): %s", contract.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, ok := reg.members[name]; !ok {
		return fmt.Errorf("%w: member %q", contract.ErrNotFound, name)
	}
	for k := range reg.creds {
		if k.member == name {
			if err := reg.store.DeleteCredential(k.identity, k.member); err != nil {
				return err
			}
			delete(reg.creds, k)
			reg.drop(sshpool.Key{Identity: k.identity, User: name})
		}
	}
	if err := reg.store.DeleteMember(name); err != nil {
		return err
	}
	delete(reg.members, name)
	return nil
}

func credView(rec store.Credential) contract.Credential {
	return contract.Credential{Identity: rec.Identity, Member: rec.Member, Username: rec.Username, KeyType: rec.KeyType,
		Fingerprint: rec.Fingerprint, Encrypted: rec.Encrypted, AddedBy: rec.AddedBy, AddedAt: rec.AddedAt,
		UpdatedAt: rec.UpdatedAt, Status: credStatus(rec), LastOK: rec.LastOK, LastError: rec.LastError, Failures: rec.Failures,
		CertificateExpires: rec.CertExpires}
}

// SetCredential adds or replaces a member's credential (owners for anyone, members their own).
func (reg *Registry) SetCredential(ctx context.Context, spec contract.CredentialSpec) (c contract.Credential, err error) {
	defer secrets.Zero(spec.Passphrase)
	action := audit.ActionCredentialAdd
	p, err := reg.Authorize(ctx, CredentialSet, spec.Member)
	defer func() { reg.Audited(p, action, spec.Identity, spec.Member, "", err, "") }()
	if err != nil {
		return c, err
	}
	reg.mu.RLock()
	_, idOK := reg.ids[spec.Identity]
	_, memOK := reg.members[spec.Member]
	_, exists := reg.creds[credKey{spec.Identity, spec.Member}]
	reg.mu.RUnlock()
	switch {
	case !idOK:
		return c, fmt.Errorf("%w: identity %q", contract.ErrNotFound, spec.Identity)
	case !memOK:
		return c, fmt.Errorf("%w: %q is not a member of the organisation", contract.ErrNotFound, spec.Member)
	}
	if exists {
		action = audit.ActionCredentialUpdate
	}
	rec, err := reg.putCredential(spec, p.Name, true)
	if err != nil {
		return c, err
	}
	reg.drop(sshpool.Key{Identity: spec.Identity, User: spec.Member})
	return credView(rec), nil
}

// DeleteCredential removes a member's credential; refused while their jobs on it run.
func (reg *Registry) DeleteCredential(ctx context.Context, identity, member string) (err error) {
	p, err := reg.Authorize(ctx, CredentialDelete, member)
	defer func() { reg.Audited(p, audit.ActionCredentialDelete, identity, member, "", err, "") }()
	if err != nil {
		return err
	}
	if active := reg.activeJobsOf(identity, member); len(active) > 0 {
		return fmt.Errorf("%w: %q has %d active job(s) on %q: %s", contract.ErrFailedPrecondition, member, len(active), identity, strings.Join(active, ", "))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, ok := reg.creds[credKey{identity, member}]; !ok {
		return fmt.Errorf("%w: %q has no credential on %q", contract.ErrNotFound, member, identity)
	}
	if err := reg.store.DeleteCredential(identity, member); err != nil {
		return err
	}
	delete(reg.creds, credKey{identity, member})
	reg.drop(sshpool.Key{Identity: identity, User: member})
	return nil
}

// ListCredentials lists credentials without secrets: all for owners, their own for members.
func (reg *Registry) ListCredentials(ctx context.Context, identity string) ([]contract.Credential, error) {
	p, err := reg.Authorize(ctx, CredentialList, "")
	if err != nil {
		return nil, err
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	var out []contract.Credential
	for k, c := range reg.creds {
		if (identity != "" && k.identity != identity) || (!p.Sees(k.member)) {
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
func (reg *Registry) RotateKeys(ctx context.Context) (n int, err error) {
	p, err := reg.Authorize(ctx, KeysRotate, "")
	defer func() { reg.Audited(p, audit.ActionKeysRotate, "", "", "", err, fmt.Sprintf("%d secrets re-sealed", n)) }()
	if err != nil {
		return 0, err
	}
	if reg.cfg.Agent.KEKEnv != "" && envSet(reg.cfg.Agent.KEKEnv) {
		return 0, fmt.Errorf("%w: the key-encryption key comes from $%s; rotate it where it is managed", contract.ErrFailedPrecondition, reg.cfg.Agent.KEKEnv)
	}
	next, err := secrets.NewKEK()
	if err != nil {
		return 0, err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var resealed []store.Credential
	for _, c := range reg.creds {
		rec := c.rec
		if rec.Key, err = secrets.Reseal(reg.kek, next, rec.Key, sealAD(rec.Identity, rec.Member, "key")); err != nil {
			return 0, fmt.Errorf("re-seal key of %q on %q: %w", rec.Member, rec.Identity, err)
		}
		n++
		if len(rec.Passphrase) > 0 {
			if rec.Passphrase, err = secrets.Reseal(reg.kek, next, rec.Passphrase, sealAD(rec.Identity, rec.Member, "passphrase")); err != nil {
				return 0, fmt.Errorf("re-seal passphrase of %q on %q: %w", rec.Member, rec.Identity, err)
			}
			n++
		}
		resealed = append(resealed, rec)
	}
	// Records first, key file last: a crash in between leaves records that only the new key opens,
	// so keep the old key file as a backup until the new one is written.
	kekFile := reg.kekFile
	if err := secrets.WriteKEKFile(kekFile+".next", next); err != nil {
		return 0, err
	}
	for _, rec := range resealed {
		if err := reg.store.PutCredential(rec); err != nil {
			return 0, err
		}
		reg.creds[credKey{rec.Identity, rec.Member}].rec = rec
	}
	if err := secrets.WriteKEKFile(kekFile, next); err != nil {
		return 0, err
	}
	_ = os.Remove(kekFile + ".next")
	reg.kek = next
	return n, nil
}

// Audit returns audit events: all for owners, a member's own (as actor or subject) otherwise.
func (reg *Registry) Audit(ctx context.Context, f contract.AuditFilter) ([]contract.AuditEvent, error) {
	p, err := reg.Authorize(ctx, AuditRead, "")
	if err != nil {
		return nil, err
	}
	path := reg.auditPath
	var out []contract.AuditEvent
	err = audit.Scan(path, audit.Filter{Since: f.Since, Until: f.Until, Actor: f.Actor, Identity: f.Identity, Subject: f.Subject,
		Action: f.Action, Outcome: f.Outcome}, func(e audit.Event) error {
		if !p.Sees(e.Actor) && !p.Sees(e.Subject) {
			return nil
		}
		out = append(out, contract.AuditEvent{Time: e.Time, Actor: e.Actor, Via: e.Via, Action: e.Action, Identity: e.Identity,
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

