package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/credcheck"
	"github.com/ferryhpc/ferry/internal/secrets"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

// identity is a managed identity ready for use: its record plus the adapter, stager and pinned
// host keys built from it. Replaced whole on edit.
type identity struct {
	rec      store.Identity
	sched    scheduler.Scheduler
	stager   *stage.Stager
	hostKeys sshpool.HostKeys
	jump     *jumpHost
}

// jumpHost is an identity's bastion. An empty user means each member's own username.
type jumpHost struct {
	user     string
	host     string
	port     int
	hostKeys sshpool.HostKeys
}

// parseJump reads "[user@]host[:port]".
func parseJump(s string) (user, host string, port int, err error) {
	port = 22
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
		if err := credcheck.ValidateUsername(user); err != nil {
			return "", "", 0, fmt.Errorf("jump host user: %v", err)
		}
	}
	host = s
	if h, p, e := net.SplitHostPort(s); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", "", 0, fmt.Errorf("jump host port %q must be 1-65535", p)
		}
	}
	if !config.ValidHost(host) {
		return "", "", 0, fmt.Errorf("jump host %q is not a hostname or IP address", host)
	}
	return user, host, port, nil
}

type credKey struct{ identity, member string }

// credential is a member's credential with its key parsed once.
type credential struct {
	rec    store.Credential
	signer ssh.Signer
	err    error // why the credential is unusable (cannot unseal or parse)
}

// session is what one call needs to act as one member on one identity.
type session struct {
	id    *identity
	key   sshpool.Key
	pool  *sshpool.Pool
	run   *runner
	lease stage.Leaser
}

func (a *Agent) buildIdentity(rec store.Identity) (*identity, error) {
	var sched scheduler.Scheduler
	var err error
	if rec.CommandDir != "" || rec.PBSHistory {
		// Site settings need the full registry; the injected factory serves the defaults.
		sched, err = schedulers.NewWithOptions(rec.Scheduler, a.cfg.Poll, schedulers.Options{CommandDir: rec.CommandDir, PBSHistory: rec.PBSHistory})
	} else {
		sched, err = a.schedulers(rec.Scheduler, a.cfg.Poll)
	}
	if err != nil {
		return nil, err
	}
	hk, err := sshpool.ParseKnownHosts(rec.KnownHosts)
	if err != nil {
		return nil, err
	}
	var jump *jumpHost
	if rec.JumpHost != "" {
		// With a bastion, known_hosts must pin both hosts, each by its own line.
		user, host, port, err := parseJump(rec.JumpHost)
		if err != nil {
			return nil, err
		}
		jk, err := sshpool.KeysForHost(rec.KnownHosts, host, port)
		if err != nil {
			return nil, fmt.Errorf("jump host: %w", err)
		}
		if hk, err = sshpool.KeysForHost(rec.KnownHosts, rec.Host, rec.Port); err != nil {
			return nil, fmt.Errorf("login node: %w", err)
		}
		jump = &jumpHost{user: user, host: host, port: port, hostKeys: jk}
	}
	stg, err := stage.New(rec.WorkDir, a.stageOpts)
	if err != nil {
		return nil, err
	}
	return &identity{rec: rec, sched: sched, stager: stg, hostKeys: hk, jump: jump}, nil
}

// sealAD binds a sealed secret to its record, so blobs cannot be swapped between records.
func sealAD(identity, member, what string) []byte {
	return []byte("ferry/credential/" + identity + "/" + member + "/" + what)
}

// unseal opens a credential's secrets and parses its key.
func (a *Agent) unseal(rec store.Credential) (ssh.Signer, error) {
	key, err := a.kek.Open(rec.Key, sealAD(rec.Identity, rec.Member, "key"))
	if err != nil {
		return nil, fmt.Errorf("unseal key: %w", err)
	}
	defer secrets.Zero(key)
	var pass []byte
	if len(rec.Passphrase) > 0 {
		if pass, err = a.kek.Open(rec.Passphrase, sealAD(rec.Identity, rec.Member, "passphrase")); err != nil {
			return nil, fmt.Errorf("unseal passphrase: %w", err)
		}
		defer secrets.Zero(pass)
	}
	signer, err := sshpool.ParsePrivateKey(key, pass)
	if err != nil || len(rec.Certificate) == 0 {
		return signer, err
	}
	return sshpool.WithCertificate(signer, rec.Certificate)
}

// seed applies the configuration's members, identities and credentials that the store lacks. The
// store is authoritative afterwards.
func (a *Agent) seed() error {
	now := time.Now().UTC()
	for _, m := range a.cfg.Members {
		if _, err := a.store.GetMember(m.Name); errors.Is(err, store.ErrNotFound) {
			if err := a.store.PutMember(store.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}); err != nil {
				return err
			}
		}
	}
	for _, ic := range a.cfg.Identities {
		if _, err := a.store.GetIdentity(ic.Name); errors.Is(err, store.ErrNotFound) {
			rec := store.Identity{Name: ic.Name, Scheduler: ic.Scheduler, Host: ic.Host, Port: ic.Port, WorkDir: ic.WorkDir,
				Group: ic.Group, KnownHosts: ic.KnownHosts, CommandDir: ic.SchedulerCommandDir, PBSHistory: ic.PBSHistory,
				CreatedBy: "config", CreatedAt: now}
			if _, err := a.buildIdentity(rec); err != nil {
				return fmt.Errorf("identity %q: %w", ic.Name, err)
			}
			if err := a.store.PutIdentity(rec); err != nil {
				return err
			}
		}
		for _, cc := range ic.Credentials {
			if _, err := a.store.GetMember(cc.User); errors.Is(err, store.ErrNotFound) {
				if err := a.store.PutMember(store.Member{Name: cc.User, Role: plugin.RoleMember}); err != nil {
					return err
				}
			}
			if _, err := a.store.GetCredential(ic.Name, cc.User); !errors.Is(err, store.ErrNotFound) {
				continue
			}
			key, pass, err := readSeedSecrets(cc)
			if err == nil {
				_, err = a.putCredential(plugin.CredentialSpec{Identity: ic.Name, Member: cc.User, Username: cc.User, Key: key, Passphrase: pass}, "config", false)
			}
			if err != nil {
				// One member's bad credential must not stop the agent serving the others.
				a.log.Error().Str("identity", ic.Name).Str("user", cc.User).Err(err).Msg("credential from config not loaded")
			}
		}
	}
	return nil
}

func readSeedSecrets(cc config.Credential) ([]byte, []byte, error) {
	key, err := os.ReadFile(cc.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read key file: %w", err)
	}
	var pass []byte
	switch {
	case cc.PassphraseFile != "":
		b, err := os.ReadFile(cc.PassphraseFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read passphrase file: %w", err)
		}
		pass = credcheck.TrimNewline(b)
	case cc.PassphraseEnv != "":
		v, ok := os.LookupEnv(cc.PassphraseEnv)
		if !ok {
			return nil, nil, fmt.Errorf("passphrase environment variable %s is not set", cc.PassphraseEnv)
		}
		pass = []byte(v)
	}
	return key, pass, nil
}

// loadRegistry loads members, identities and credentials from the store into memory.
func (a *Agent) loadRegistry() error {
	members, err := a.store.Members()
	if err != nil {
		return err
	}
	ids, err := a.store.Identities()
	if err != nil {
		return err
	}
	creds, err := a.store.Credentials()
	if err != nil {
		return err
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	for _, m := range members {
		a.members[m.Name] = m
	}
	for _, rec := range ids {
		id, err := a.buildIdentity(rec)
		if err != nil {
			return fmt.Errorf("identity %q: %w", rec.Name, err)
		}
		a.ids[rec.Name] = id
	}
	for _, rec := range creds {
		c := &credential{rec: rec}
		c.signer, c.err = a.unseal(rec)
		if c.err != nil {
			a.log.Error().Str("identity", rec.Identity).Str("user", rec.Member).Err(c.err).Msg("credential unusable")
		}
		a.creds[credKey{rec.Identity, rec.Member}] = c
	}
	return nil
}

// putCredential validates, seals and stores a credential, replacing any previous one (which
// clears a held state), and makes it live.
func (a *Agent) putCredential(spec plugin.CredentialSpec, by string, replace bool) (store.Credential, error) {
	if err := credcheck.ValidateUsername(spec.Username); err != nil {
		return store.Credential{}, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	info, err := credcheck.ValidateKey(spec.Key, spec.Passphrase)
	if err != nil {
		return store.Credential{}, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	signer, err := sshpool.ParsePrivateKey(spec.Key, spec.Passphrase)
	if err != nil {
		return store.Credential{}, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
	}
	now := time.Now().UTC()
	rec := store.Credential{Identity: spec.Identity, Member: spec.Member, Username: spec.Username,
		KeyType: keyType(info), Fingerprint: info.Fingerprint, Encrypted: info.Encrypted,
		AddedBy: by, AddedAt: now, UpdatedAt: now}
	if len(spec.Certificate) > 0 {
		cert, err := checkCertificate(spec.Certificate, spec.Username, now)
		if err != nil {
			return store.Credential{}, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
		}
		if signer, err = sshpool.WithCertificate(signer, spec.Certificate); err != nil {
			return store.Credential{}, fmt.Errorf("%w: %v", plugin.ErrInvalidArgument, err)
		}
		rec.Certificate = spec.Certificate
		if cert.ValidBefore != ssh.CertTimeInfinity {
			rec.CertExpires = time.Unix(int64(cert.ValidBefore), 0).UTC()
		}
		rec.KeyType += " + certificate"
	}
	if old, err := a.store.GetCredential(spec.Identity, spec.Member); err == nil {
		if !replace {
			return store.Credential{}, fmt.Errorf("%w: member %q already has a credential on %q", plugin.ErrAlreadyExists, spec.Member, spec.Identity)
		}
		rec.AddedBy, rec.AddedAt = old.AddedBy, old.AddedAt
	}
	a.idmu.Lock()
	defer a.idmu.Unlock()
	if rec.Key, err = a.kek.Seal(spec.Key, sealAD(spec.Identity, spec.Member, "key")); err != nil {
		return store.Credential{}, err
	}
	if len(spec.Passphrase) > 0 {
		if rec.Passphrase, err = a.kek.Seal(spec.Passphrase, sealAD(spec.Identity, spec.Member, "passphrase")); err != nil {
			return store.Credential{}, err
		}
	}
	if err := a.store.PutCredential(rec); err != nil {
		return store.Credential{}, err
	}
	a.creds[credKey{spec.Identity, spec.Member}] = &credential{rec: rec, signer: signer}
	return rec, nil
}

// checkCertificate refuses a certificate that cannot log username in now.
func checkCertificate(b []byte, username string, now time.Time) (*ssh.Certificate, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("certificate: %v", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("certificate: this is a public key, not a certificate (the KEY-cert.pub file)")
	}
	if cert.CertType != ssh.UserCert {
		return nil, errors.New("certificate: a host certificate cannot log in a user")
	}
	if len(cert.ValidPrincipals) > 0 && !slices.Contains(cert.ValidPrincipals, username) {
		return nil, fmt.Errorf("certificate: it is valid for %s, not for %q", strings.Join(cert.ValidPrincipals, ", "), username)
	}
	if t := uint64(now.Unix()); t < cert.ValidAfter || (cert.ValidBefore != ssh.CertTimeInfinity && t >= cert.ValidBefore) {
		return nil, errors.New("certificate: it is expired or not yet valid")
	}
	return cert, nil
}

func keyType(info credcheck.Info) string {
	if info.Type == "ed25519" {
		return info.Type
	}
	return fmt.Sprintf("%s %d", info.Type, info.Bits)
}

// userSession resolves identity and member to a pool, refusing members without a usable
// credential and credentials held or backing off after authentication failures. Errors name both.
func (a *Agent) userSession(identityName, member string) (*session, error) {
	a.idmu.RLock()
	id, ok := a.ids[identityName]
	cr := a.creds[credKey{identityName, member}]
	var crErr error
	var rec store.Credential
	if cr != nil {
		// loginOutcome rewrites cr.rec under idmu: copy it while holding the lock.
		crErr, rec = cr.err, cr.rec
	}
	a.idmu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: identity %q is not configured", plugin.ErrNotFound, identityName)
	}
	if cr == nil {
		return nil, fmt.Errorf("%w: identity %q has no credential for user %q (missing credentials)", plugin.ErrFailedPrecondition, identityName, member)
	}
	if crErr != nil {
		return nil, fmt.Errorf("%w: identity %q user %q: credential unusable: %v", plugin.ErrFailedPrecondition, identityName, member, crErr)
	}
	if rec.Held {
		return nil, fmt.Errorf("%w: identity %q user %q: credential held after %d failed logins (last: %s); no login is attempted until it is updated (ferry creds edit)",
			plugin.ErrFailedPrecondition, identityName, member, rec.Failures, rec.LastError)
	}
	if rec.Failures > 0 {
		wait := a.cfg.Credentials.Backoff.Duration << (rec.Failures - 1)
		if next := rec.LastFailure.Add(wait); time.Now().Before(next) {
			return nil, fmt.Errorf("%w: identity %q user %q: login failed %s ago (%s); next attempt after %s",
				plugin.ErrUnavailable, identityName, member, time.Since(rec.LastFailure).Round(time.Second), rec.LastError, next.Format(time.RFC3339))
		}
	}
	key := sshpool.Key{Identity: identityName, User: member}
	target := sshpool.Target{Host: id.rec.Host, Port: id.rec.Port, HostKeys: id.hostKeys, User: rec.Username, Signer: cr.signer}
	if j := id.jump; j != nil {
		user := j.user
		if user == "" {
			user = rec.Username
		}
		target.Jump = &sshpool.Target{Host: j.host, Port: j.port, HostKeys: j.hostKeys, User: user, Signer: cr.signer}
	}
	pool, err := a.pools.Pool(key, target)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", plugin.ErrUnavailable, err)
	}
	r := &runner{a: a, key: key, pool: pool}
	return &session{id: id, key: key, pool: pool, run: r, lease: &leaser{a: a, key: key, pool: pool}}, nil
}

// leaser records login outcomes of SFTP leases, like runner does for commands.
type leaser struct {
	a    *Agent
	key  sshpool.Key
	pool *sshpool.Pool
}

func (l *leaser) SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, func(), error) {
	cl, release, err := l.pool.SFTP(ctx, opts...)
	l.a.loginOutcome(l.key, err)
	return cl, release, err
}

// loginOutcome updates a credential's status after a pool operation: an authentication failure
// counts towards holding the credential; any success marks it verified.
func (a *Agent) loginOutcome(k sshpool.Key, err error) {
	authFail := errors.Is(err, sshpool.ErrAuth)
	if err != nil && !authFail {
		return // not about the credential
	}
	a.idmu.Lock()
	cr := a.creds[credKey{k.Identity, k.User}]
	if cr == nil {
		a.idmu.Unlock()
		return
	}
	now := time.Now().UTC()
	rec := cr.rec
	if authFail {
		rec.Failures++
		rec.LastFailure = now
		rec.LastError = err.Error()
		rec.Held = rec.Failures >= a.cfg.Credentials.MaxFailures
	} else {
		if rec.Verified && rec.Failures == 0 && now.Sub(rec.LastOK) < time.Minute {
			a.idmu.Unlock()
			return // nothing worth a write
		}
		rec.Verified, rec.LastOK, rec.Failures, rec.LastError, rec.Held = true, now, 0, "", false
	}
	cr.rec = rec
	perr := a.store.PutCredential(rec)
	a.idmu.Unlock()
	if perr != nil {
		a.log.Error().Err(perr).Msg("persist credential status")
	}
	if authFail {
		a.log.Warn().Str("identity", k.Identity).Str("user", k.User).Int("failures", rec.Failures).Bool("held", rec.Held).Msg("login refused")
		a.record(audit.Event{Actor: "agent", Via: audit.ViaAgent, Action: audit.ActionLoginFailure, Identity: k.Identity,
			Subject: k.User, Outcome: audit.OutcomeError, Detail: fmt.Sprintf("failure %d: %s", rec.Failures, rec.LastError)})
		if rec.Held {
			a.pools.Drop(k)
		}
	}
}

// record writes an audit event; a failure to audit is logged, never fatal to the operation.
func (a *Agent) record(e audit.Event) {
	if err := a.audit.Record(e); err != nil {
		a.log.Error().Err(err).Str("action", e.Action).Msg("audit record failed")
	}
}

// credStatus is the status shown for a credential record.
func credStatus(rec store.Credential) string {
	switch {
	case rec.Held:
		return plugin.CredHeld
	case rec.Failures > 0:
		return plugin.CredFailing
	case rec.Verified:
		return plugin.CredVerified
	default:
		return plugin.CredAdded
	}
}
