package identity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/credcheck"
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
		if _, _, _, err := config.ParseJump(spec.JumpHost); err != nil {
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
	var d net.Dialer
	return reg.scan(ctx, host, port, d.DialContext)
}

// ScanHostKeyVia scans host:port through the bastion via, for a login node only the bastion
// reaches: it logs in to the bastion with via's key, checking the bastion's key against the
// known_hosts line(s) the owner confirmed for it, and scans the login node through it. The key is
// used for this scan only, never stored or logged.
func (reg *Registry) ScanHostKeyVia(ctx context.Context, host string, port int, via contract.JumpScan) ([]contract.HostKey, error) {
	if _, err := reg.Authorize(ctx, IdentityScan, ""); err != nil {
		return nil, err
	}
	if via.Port == 0 {
		via.Port = 22
	}
	if !config.ValidHost(via.Host) || via.Port < 1 || via.Port > 65535 {
		return nil, fmt.Errorf("%w: invalid jump host %q or port %d", contract.ErrInvalidArgument, via.Host, via.Port)
	}
	if err := credcheck.ValidateUsername(via.User); err != nil {
		return nil, fmt.Errorf("%w: jump host user: %v", contract.ErrInvalidArgument, err)
	}
	hk, err := sshpool.KeysForHost(via.KnownHosts, via.Host, via.Port)
	if err != nil {
		return nil, fmt.Errorf("%w: the jump host's pinned key: %v (scan and confirm the jump host's key first)", contract.ErrInvalidArgument, err)
	}
	if _, err := credcheck.ValidateKey(via.Key, via.Passphrase); err != nil {
		return nil, fmt.Errorf("%w: jump host key: %v", contract.ErrInvalidArgument, err)
	}
	signer, err := sshpool.ParsePrivateKey(via.Key, via.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: jump host key: %v", contract.ErrInvalidArgument, err)
	}
	dctx, cancel := context.WithTimeout(ctx, reg.cfg.Pool.DialTimeout.Duration)
	defer cancel()
	var d net.Dialer
	jc, err := sshpool.DialJump(dctx, d.DialContext, sshpool.Target{Host: via.Host, Port: via.Port, HostKeys: hk, User: via.User, Signer: signer},
		reg.cfg.Pool.DialTimeout.Duration)
	var hke *sshpool.HostKeyError
	switch {
	case errors.As(err, &hke):
		return nil, fmt.Errorf("%w: %v", contract.ErrFailedPrecondition, err)
	case errors.Is(err, sshpool.ErrAuth):
		return nil, fmt.Errorf("%w: %v", contract.ErrPermissionDenied, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", contract.ErrUnavailable, err)
	}
	defer jc.Close()
	return reg.scan(ctx, host, port, jc.DialContext)
}

// scan asks host:port, reached with dial, for each host key algorithm in turn.
func (reg *Registry) scan(ctx context.Context, host string, port int, dial func(ctx context.Context, network, addr string) (net.Conn, error)) ([]contract.HostKey, error) {
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
		k, err := scanOne(ctx, dial, addr, alg, reg.cfg.Pool.DialTimeout.Duration)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") ||
				strings.Contains(err.Error(), "ssh: rejected") {
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

func scanOne(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr, alg string, timeout time.Duration) (ssh.PublicKey, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// A connection through a bastion has no deadlines: closing it ends a stalled handshake.
	stop := context.AfterFunc(dctx, func() { _ = nc.Close() })
	defer stop()
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
	spec.Scheduler = config.CanonicalScheduler(spec.Scheduler)
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
	spec.Scheduler = config.CanonicalScheduler(spec.Scheduler)
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
