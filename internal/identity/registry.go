// Package identity is Ferry's managed identities: organisation members, identities (login node,
// pinned host keys, optional jump host, work dir, group, scheduler) and members' credentials with
// their statuses, sealed at rest through internal/secrets and validated through internal/credcheck;
// the in-use checks, the preflight test, and the audit of these actions. It owns the permission
// rule (rule.go): every front door (the go-plugin channel, the CLI socket, the web API) and the job
// lifecycle ask Registry whether an actor may do an action, through the same calls. It knows
// nothing of gRPC or HTTP.
package identity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/credcheck"
	"github.com/ferryhpc/ferry/internal/secrets"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

// SchedulerFactory returns the adapter for a scheduler kind with the given options.
type SchedulerFactory func(kind string, opts schedulers.Options) (scheduler.Scheduler, error)

// ActiveJobs is what the registry asks the job lifecycle before changing what running jobs use:
// the active jobs on identity (every identity if "") of member (every member if ""), one line each.
type ActiveJobs interface {
	ActiveJobs(identity, member string) []string
}

// Dropper closes the connections of one member on one identity (their credential or identity
// changed, or the credential is held); sshpool.Manager is one.
type Dropper interface {
	Drop(key sshpool.Key)
}

// Connector logs a member in on an identity for the preflight test, the way jobs log in (the job
// lifecycle's rate limits and counters apply).
type Connector interface {
	Connect(identity, member string) (scheduler.Runner, stage.Leaser, error)
}

// Deps is what the registry needs from the job lifecycle beside it. Jobs and Connect may be set
// after Open (the agent is built around its registry) but before the first call that needs them.
type Deps struct {
	Schedulers SchedulerFactory
	Pools      Dropper
	Jobs       ActiveJobs
	Connect    Connector
}

// Registry holds the organisation's members, identities and credentials. Create it with Open;
// it is safe for concurrent use.
type Registry struct {
	cfg       config.Config
	log       zerolog.Logger
	store     store.Store
	deps      Deps
	stageOpts stage.Options
	audit     *audit.Log
	auditPath string
	kekFile   string

	mu      sync.RWMutex // guards kek, ids, creds, members, version, loaded
	kek     *secrets.KEK
	version int64 // the shared store's registry version last reloaded (store.Versioned)
	loaded  bool  // version is set
	ids     map[string]*identity
	creds   map[credKey]*credential
	members map[string]store.Member
}

// Open loads the key-encryption key (creating it on first start), opens the audit log, seeds the
// store from cfg's [[member]] and [[identity]] sections where it lacks them, and loads every
// member, identity and credential. The store stays the caller's to close; Close closes the audit
// log.
func Open(cfg config.Config, log zerolog.Logger, st store.Store, deps Deps) (*Registry, error) {
	fileMode, _ := config.ParseMode(cfg.Stage.FileMode)
	dirMode, _ := config.ParseMode(cfg.Stage.DirMode)
	reg := &Registry{
		cfg: cfg, log: log, store: st, deps: deps,
		stageOpts: stage.Options{FileMode: goMode(fileMode), DirMode: goMode(dirMode)},
		auditPath: cfg.Agent.AuditLog, kekFile: cfg.Agent.KEKFile,
		ids: map[string]*identity{}, creds: map[credKey]*credential{}, members: map[string]store.Member{},
	}
	if reg.deps.Schedulers == nil {
		reg.deps.Schedulers = schedulers.New
	}
	if reg.kekFile == "" {
		reg.kekFile = filepath.Join(cfg.Agent.StateDir, "kek")
	}
	if reg.auditPath == "" {
		reg.auditPath = filepath.Join(cfg.Agent.StateDir, "audit.log")
	}
	var err error
	if reg.kek, err = secrets.LoadOrCreateKEK(reg.kekFile, cfg.Agent.KEKEnv); err != nil {
		return nil, err
	}
	if reg.audit, err = audit.Open(reg.auditPath); err != nil {
		return nil, err
	}
	if err := reg.seed(); err != nil {
		reg.audit.Close()
		return nil, err
	}
	if err := reg.loadRegistry(); err != nil {
		reg.audit.Close()
		return nil, err
	}
	if err := reg.checkKEK(); err != nil {
		reg.audit.Close()
		return nil, err
	}
	return reg, nil
}

// checkKEK refuses to start with a shared store whose credentials this agent's key-encryption
// key opens none of: every agent on one database needs the same KEK (the same kek_file content
// or $FERRY_KEK), and an agent with another would mark every credential unusable.
func (reg *Registry) checkKEK() error {
	if !reg.cfg.Shared() {
		return nil
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	n, bad := 0, 0
	for _, c := range reg.creds {
		n++
		if c.err != nil && strings.HasPrefix(c.err.Error(), "unseal") {
			bad++
		}
	}
	if n > 0 && bad == n {
		return fmt.Errorf("this agent's key-encryption key (%s or $%s) opens none of the %d credentials in the shared store: every agent on one database needs the same key; copy it from the first agent", reg.kekFile, reg.cfg.Agent.KEKEnv, n)
	}
	return nil
}

// SetJobs sets the job lifecycle's side of Deps (in-use checks and preflight logins).
func (reg *Registry) SetJobs(jobs ActiveJobs, connect Connector) {
	reg.deps.Jobs, reg.deps.Connect = jobs, connect
}

// Close closes the audit log.
func (reg *Registry) Close() error { return reg.audit.Close() }

// StageOptions are the modes files and directories are staged with (from [stage]).
func (reg *Registry) StageOptions() stage.Options { return reg.stageOpts }

func (reg *Registry) drop(k sshpool.Key) {
	if reg.deps.Pools != nil {
		reg.deps.Pools.Drop(k)
	}
}

// activeJobsOf lists active jobs on identity (and of member, if set).
func (reg *Registry) activeJobsOf(identity, member string) []string {
	if reg.deps.Jobs == nil {
		return nil
	}
	return reg.deps.Jobs.ActiveJobs(identity, member)
}

// goMode converts a Unix permission word (with setuid/setgid/sticky bits) to an os.FileMode.
func goMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

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

type credKey struct{ identity, member string }

// credential is a member's credential with its key parsed once.
type credential struct {
	rec    store.Credential
	signer ssh.Signer
	err    error // why the credential is unusable (cannot unseal or parse)
}

// Login is what one job operation needs to act as one member on one identity: the pool key, the
// SSH target (host, pinned keys, the member's signer, any jump host) and the identity's adapter
// and stager. It holds no secret beyond the parsed signer, which never leaves the process.
type Login struct {
	Key      sshpool.Key
	Target   sshpool.Target
	Identity store.Identity
	Sched    scheduler.Scheduler
	Stager   *stage.Stager
}

func (reg *Registry) buildIdentity(rec store.Identity) (*identity, error) {
	sched, err := reg.deps.Schedulers(rec.Scheduler, schedulers.Options{SignalLead: reg.cfg.Poll.SignalLead.Duration,
		CommandDir: rec.CommandDir, PBSHistory: rec.PBSHistory})
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
		user, host, port, err := config.ParseJump(rec.JumpHost)
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
	stg, err := stage.New(rec.WorkDir, reg.stageOpts)
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
func (reg *Registry) unseal(rec store.Credential) (ssh.Signer, error) {
	key, err := reg.kek.Open(rec.Key, sealAD(rec.Identity, rec.Member, "key"))
	if err != nil {
		return nil, fmt.Errorf("unseal key: %w", err)
	}
	defer secrets.Zero(key)
	var pass []byte
	if len(rec.Passphrase) > 0 {
		if pass, err = reg.kek.Open(rec.Passphrase, sealAD(rec.Identity, rec.Member, "passphrase")); err != nil {
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
func (reg *Registry) seed() error {
	now := time.Now().UTC()
	for _, m := range reg.cfg.Members {
		if _, err := reg.store.GetMember(m.Name); errors.Is(err, store.ErrNotFound) {
			if err := reg.store.PutMember(store.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}); err != nil {
				return err
			}
		}
	}
	for _, ic := range reg.cfg.Identities {
		if _, err := reg.store.GetIdentity(ic.Name); errors.Is(err, store.ErrNotFound) {
			rec := store.Identity{Name: ic.Name, Scheduler: ic.Scheduler, Host: ic.Host, Port: ic.Port, WorkDir: ic.WorkDir,
				Group: ic.Group, KnownHosts: ic.KnownHosts, CommandDir: ic.SchedulerCommandDir, PBSHistory: ic.PBSHistory,
				CreatedBy: "config", CreatedAt: now}
			if _, err := reg.buildIdentity(rec); err != nil {
				return fmt.Errorf("identity %q: %w", ic.Name, err)
			}
			if err := reg.store.PutIdentity(rec); err != nil {
				return err
			}
		}
		for _, cc := range ic.Credentials {
			if _, err := reg.store.GetMember(cc.User); errors.Is(err, store.ErrNotFound) {
				if err := reg.store.PutMember(store.Member{Name: cc.User, Role: contract.RoleMember}); err != nil {
					return err
				}
			}
			if _, err := reg.store.GetCredential(ic.Name, cc.User); !errors.Is(err, store.ErrNotFound) {
				continue
			}
			key, pass, err := readSeedSecrets(cc)
			if err == nil {
				_, err = reg.putCredential(contract.CredentialSpec{Identity: ic.Name, Member: cc.User, Username: cc.User, Key: key, Passphrase: pass}, "config", false)
			}
			if err != nil {
				// One member's bad credential must not stop the agent serving the others.
				reg.log.Error().Str("identity", ic.Name).Str("user", cc.User).Err(err).Msg("credential from config not loaded")
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
func (reg *Registry) loadRegistry() error {
	members, err := reg.store.Members()
	if err != nil {
		return err
	}
	ids, err := reg.store.Identities()
	if err != nil {
		return err
	}
	creds, err := reg.store.Credentials()
	if err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, m := range members {
		reg.members[m.Name] = m
	}
	for _, rec := range ids {
		id, err := reg.buildIdentity(rec)
		if err != nil {
			return fmt.Errorf("identity %q: %w", rec.Name, err)
		}
		reg.ids[rec.Name] = id
	}
	for _, rec := range creds {
		c := &credential{rec: rec}
		c.signer, c.err = reg.unseal(rec)
		if c.err != nil {
			reg.log.Error().Str("identity", rec.Identity).Str("user", rec.Member).Err(c.err).Msg("credential unusable")
		}
		reg.creds[credKey{rec.Identity, rec.Member}] = c
	}
	return nil
}

// putCredential validates, seals and stores a credential, replacing any previous one (which
// clears a held state), and makes it live.
func (reg *Registry) putCredential(spec contract.CredentialSpec, by string, replace bool) (store.Credential, error) {
	if err := credcheck.ValidateUsername(spec.Username); err != nil {
		return store.Credential{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	info, err := credcheck.ValidateKey(spec.Key, spec.Passphrase)
	if err != nil {
		return store.Credential{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	signer, err := sshpool.ParsePrivateKey(spec.Key, spec.Passphrase)
	if err != nil {
		return store.Credential{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	now := time.Now().UTC()
	rec := store.Credential{Identity: spec.Identity, Member: spec.Member, Username: spec.Username,
		KeyType: keyType(info), Fingerprint: info.Fingerprint, Encrypted: info.Encrypted,
		AddedBy: by, AddedAt: now, UpdatedAt: now}
	if len(spec.Certificate) > 0 {
		cert, err := checkCertificate(spec.Certificate, spec.Username, now)
		if err != nil {
			return store.Credential{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
		}
		if signer, err = sshpool.WithCertificate(signer, spec.Certificate); err != nil {
			return store.Credential{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
		}
		rec.Certificate = spec.Certificate
		if cert.ValidBefore != ssh.CertTimeInfinity {
			rec.CertExpires = time.Unix(int64(cert.ValidBefore), 0).UTC()
		}
		rec.KeyType += " + certificate"
	}
	if old, err := reg.store.GetCredential(spec.Identity, spec.Member); err == nil {
		if !replace {
			return store.Credential{}, fmt.Errorf("%w: member %q already has a credential on %q", contract.ErrAlreadyExists, spec.Member, spec.Identity)
		}
		rec.AddedBy, rec.AddedAt = old.AddedBy, old.AddedAt
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if rec.Key, err = reg.kek.Seal(spec.Key, sealAD(spec.Identity, spec.Member, "key")); err != nil {
		return store.Credential{}, err
	}
	if len(spec.Passphrase) > 0 {
		if rec.Passphrase, err = reg.kek.Seal(spec.Passphrase, sealAD(spec.Identity, spec.Member, "passphrase")); err != nil {
			return store.Credential{}, err
		}
	}
	if err := reg.store.PutCredential(rec); err != nil {
		return store.Credential{}, err
	}
	reg.creds[credKey{spec.Identity, spec.Member}] = &credential{rec: rec, signer: signer}
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

// Login resolves identity and member to what a pool needs, refusing members without a usable
// credential and credentials held or backing off after authentication failures. Errors name both.
// It checks no permission: callers first ask Authorize (or use Act, which does both).
func (reg *Registry) Login(identityName, member string) (Login, error) {
	reg.mu.RLock()
	id, ok := reg.ids[identityName]
	cr := reg.creds[credKey{identityName, member}]
	var crErr error
	var rec store.Credential
	if cr != nil {
		// loginOutcome rewrites cr.rec under idmu: copy it while holding the lock.
		crErr, rec = cr.err, cr.rec
	}
	reg.mu.RUnlock()
	if !ok {
		return Login{}, fmt.Errorf("%w: identity %q is not configured", contract.ErrNotFound, identityName)
	}
	if cr == nil {
		return Login{}, fmt.Errorf("%w: identity %q has no credential for user %q (missing credentials)", contract.ErrFailedPrecondition, identityName, member)
	}
	if crErr != nil {
		return Login{}, fmt.Errorf("%w: identity %q user %q: credential unusable: %v", contract.ErrFailedPrecondition, identityName, member, crErr)
	}
	if rec.Held {
		return Login{}, fmt.Errorf("%w: identity %q user %q: credential held after %d failed logins (last: %s); no login is attempted until it is updated (ferry creds edit)",
			contract.ErrFailedPrecondition, identityName, member, rec.Failures, rec.LastError)
	}
	if rec.Failures > 0 {
		wait := reg.cfg.Credentials.Backoff.Duration << (rec.Failures - 1)
		if next := rec.LastFailure.Add(wait); time.Now().Before(next) {
			return Login{}, fmt.Errorf("%w: identity %q user %q: login failed %s ago (%s); next attempt after %s",
				contract.ErrUnavailable, identityName, member, time.Since(rec.LastFailure).Round(time.Second), rec.LastError, next.Format(time.RFC3339))
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
	return Login{Key: key, Target: target, Identity: id.rec, Sched: id.sched, Stager: id.stager}, nil
}

// LoginOutcome updates a credential's status after a pool operation: an authentication failure
// counts towards holding the credential; any success marks it verified.
func (reg *Registry) LoginOutcome(k sshpool.Key, err error) {
	authFail := errors.Is(err, sshpool.ErrAuth)
	if err != nil && !authFail {
		return // not about the credential
	}
	reg.mu.Lock()
	cr := reg.creds[credKey{k.Identity, k.User}]
	if cr == nil {
		reg.mu.Unlock()
		return
	}
	now := time.Now().UTC()
	rec := cr.rec
	if authFail {
		rec.Failures++
		rec.LastFailure = now
		rec.LastError = err.Error()
		rec.Held = rec.Failures >= reg.cfg.Credentials.MaxFailures
	} else {
		if rec.Verified && rec.Failures == 0 && now.Sub(rec.LastOK) < time.Minute {
			reg.mu.Unlock()
			return // nothing worth a write
		}
		rec.Verified, rec.LastOK, rec.Failures, rec.LastError, rec.Held = true, now, 0, "", false
	}
	cr.rec = rec
	perr := reg.store.PutCredential(rec)
	reg.mu.Unlock()
	if perr != nil {
		reg.log.Error().Err(perr).Msg("persist credential status")
	}
	if authFail {
		reg.log.Warn().Str("identity", k.Identity).Str("user", k.User).Int("failures", rec.Failures).Bool("held", rec.Held).Msg("login refused")
		reg.record(audit.Event{Actor: "agent", Via: audit.ViaAgent, Action: audit.ActionLoginFailure, Identity: k.Identity,
			Subject: k.User, Outcome: audit.OutcomeError, Detail: fmt.Sprintf("failure %d: %s", rec.Failures, rec.LastError)})
		if rec.Held {
			reg.drop(k)
		}
	}
}

// record writes an audit event; a failure to audit is logged, never fatal to the operation.
// With a shared store (PostgreSQL) the record also goes there, where every agent reads it; the
// local file keeps this agent's records even while the database is unreachable.
func (reg *Registry) record(e audit.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := reg.audit.Record(e); err != nil {
		reg.log.Error().Err(err).Str("action", e.Action).Msg("audit record failed")
	}
	if sink, ok := reg.store.(store.AuditSink); ok {
		line, err := audit.Encode(e)
		if err == nil {
			err = sink.AppendAudit(line)
		}
		if err != nil {
			reg.log.Error().Err(err).Str("action", e.Action).Msg("audit record to the shared store failed")
		}
	}
}

// credStatus is the status shown for a credential record.
func credStatus(rec store.Credential) string {
	switch {
	case rec.Held:
		return contract.CredHeld
	case rec.Failures > 0:
		return contract.CredFailing
	case rec.Verified:
		return contract.CredVerified
	default:
		return contract.CredAdded
	}
}
