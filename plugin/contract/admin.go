package contract

import (
	"context"
	"time"
)

// Admin is the management half of the contract: managed identities, organisation members, their
// credentials, preflight checks, key rotation, the audit log and pool statistics. The agent
// implements it beside Service; the same gRPC server carries both. Every call acts for the actor in
// ctx (see WithActor): owners may do everything, members only what concerns themselves.
type Admin interface {
	ListIdentities(ctx context.Context) ([]Identity, error)
	// GetIdentity returns one identity with every member's credential status.
	GetIdentity(ctx context.Context, name string) (Identity, error)
	// ScanHostKey connects to host:port and returns the keys it presents, for an owner to confirm
	// (by fingerprint) before creating an identity or accepting a changed key. Nothing is stored.
	ScanHostKey(ctx context.Context, host string, port int) ([]HostKey, error)
	// ScanHostKeyVia scans host:port as ScanHostKey does, through the bastion via: for a login
	// node only the bastion reaches. via's key logs in to the bastion for this scan only; it is
	// never stored, logged or returned.
	ScanHostKeyVia(ctx context.Context, host string, port int, via JumpScan) ([]HostKey, error)
	// CreateIdentity creates an identity (owners only). spec.KnownHosts must hold the confirmed key.
	CreateIdentity(ctx context.Context, spec IdentitySpec) (Identity, error)
	// EditIdentity changes an identity (owners only). With active jobs it fails with
	// ErrFailedPrecondition listing what may break, unless force is set.
	EditIdentity(ctx context.Context, name string, spec IdentitySpec, force bool) (Identity, error)
	// DeleteIdentity deletes an identity and its credentials (owners only); refused while jobs run.
	DeleteIdentity(ctx context.Context, name string) error
	// TestIdentity logs in as each member with a credential (or only member) and checks the login,
	// the Linux user, the shared group and the work dir.
	TestIdentity(ctx context.Context, name, member string) ([]Check, error)

	ListMembers(ctx context.Context) ([]Member, error)
	AddMember(ctx context.Context, m Member) error       // owners only
	RemoveMember(ctx context.Context, name string) error // owners only; refused while their jobs run

	// SetCredential adds or replaces a member's credential on an identity. The key and passphrase
	// are validated, sealed at rest and never returned.
	SetCredential(ctx context.Context, c CredentialSpec) (Credential, error)
	// DeleteCredential removes a member's credential; refused while their jobs run.
	DeleteCredential(ctx context.Context, identity, member string) error
	// ListCredentials lists credentials (all for owners, one's own for members). identity "" = all.
	ListCredentials(ctx context.Context, identity string) ([]Credential, error)

	// RotateKeys re-seals every secret under a new key-encryption key (owners only); returns how
	// many secrets were re-sealed.
	RotateKeys(ctx context.Context) (int, error)
	// Audit returns audit events matching f (owners: all; members: their own).
	Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// Pools returns per identity and member SSH pool statistics.
	Pools(ctx context.Context) ([]PoolStats, error)

	// SetPassword sets a member's web console password (owners for anyone, e.g. an initial one;
	// members their own). It is hashed with argon2id and never returned.
	SetPassword(ctx context.Context, member string, password []byte) error
	// Invite creates a one-time invitation link for a member to set their own password (owners
	// only). The link's secret is shown only in this answer.
	Invite(ctx context.Context, member string) (Invite, error)
}

// Invite is a one-time invitation to the web console.
type Invite struct {
	Member  string
	URL     string // the link to open: usable once, until Expires
	Expires time.Time
}

// Account is what the console knows of a member's sign-in: whether they have set a password and
// whether an invitation is waiting.
type Account struct {
	Member        string
	Role          string
	HasPassword   bool
	PasswordSetAt time.Time
	InvitePending bool
	InviteExpires time.Time
}

// Token is a personal access token as listed: never its secret, which is shown once at creation.
type Token struct {
	ID       string
	Member   string
	Name     string
	Created  time.Time
	Expires  time.Time
	LastUsed time.Time
}

// Roles of organisation members.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Member is an organisation member.
type Member struct {
	Name string // organisation user name
	Role string // RoleOwner or RoleMember
	// UnixUsers are local Unix accounts whose CLI calls (over the agent's socket) act as this
	// member.
	UnixUsers []string
}

// HostKey is one host key a login node presented.
type HostKey struct {
	Type        string // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"
	Fingerprint string // "SHA256:..."
	KnownHosts  string // the known_hosts line to pin it
}

// IdentitySpec is what an owner sets on an identity.
type IdentitySpec struct {
	Name       string
	Scheduler  string // slurm, pbspro, torque, lsf, sge
	Host       string
	Port       int // 0 means 22
	WorkDir    string
	Group      string
	KnownHosts string // pinned host key line(s)
	JumpHost   string // optional "user@host:port" bastion
}

// Identity is a managed identity as shown to people.
type Identity struct {
	IdentitySpec
	HostKeys  []HostKey
	CreatedBy string
	CreatedAt time.Time
	UpdatedBy string
	UpdatedAt time.Time
	// Members lists every organisation member with their credential status on this identity.
	Members []MemberStatus
	// ActiveJobs counts jobs still tracked on this identity.
	ActiveJobs int
}

// Credential statuses.
const (
	CredMissing  = "missing credentials"
	CredAdded    = "added"
	CredVerified = "verified"
	CredFailing  = "failing"
	CredHeld     = "held" // failing repeatedly: no more logins until the credential changes
)

// MemberStatus is one member's standing on one identity.
type MemberStatus struct {
	Member   string
	Role     string
	Status   string // Cred* constants
	Username string // Linux username, if a credential exists
}

// CredentialSpec is what a member (or an owner for them) submits. Key and Passphrase are secret:
// they are sealed on arrival and never returned or logged.
type CredentialSpec struct {
	Identity   string
	Member     string
	Username   string // Linux username on the login node
	Key        []byte // OpenSSH / PEM / PKCS#8 private key, with its BEGIN/END lines
	Passphrase []byte // optional
	// Certificate is an optional OpenSSH user certificate for Key (KEY-cert.pub), for login nodes
	// that trust a user CA.
	Certificate []byte
}

// Credential describes a stored credential without its secrets.
type Credential struct {
	Identity    string
	Member      string
	Username    string
	KeyType     string // "ed25519", "rsa 4096", ...
	Fingerprint string // SHA256 of the public key
	Encrypted   bool   // the key has a passphrase
	AddedBy     string
	AddedAt     time.Time
	UpdatedAt   time.Time
	Status      string // Cred* constants
	LastOK      time.Time
	LastError   string
	Failures    int
	// CertificateExpires is when the user certificate expires; zero without one.
	CertificateExpires time.Time
}

// Check is one preflight check's outcome.
type Check struct {
	Member string
	Name   string // "login", "username", "group", "work dir", "setgid", "default ACL", "group write"
	OK     bool
	Detail string
	Fix    string // the exact command that fixes a failure
}

// AuditFilter selects audit events; empty fields select all.
type AuditFilter struct {
	Since, Until time.Time
	Actor        string
	Identity     string
	Subject      string
	Action       string // prefix, e.g. "credential."
	Outcome      string
	Limit        int
}

// AuditEvent is one audit record.
type AuditEvent struct {
	Time     time.Time
	Actor    string
	Via      string
	Remote   string // the caller's address on the web front door
	Action   string
	Identity string
	Subject  string
	Target   string
	Outcome  string
	Detail   string
}

// PoolStats is one (identity, member) pool.
type PoolStats struct {
	Identity          string
	User              string
	Connections       int
	Sessions          int
	Waiters           int
	Dials             int64
	DialFailures      int64
	LastError         string
	CommandsPerMinute int
}

// Channels an Actor's call arrives by (Actor.Via).
const (
	// ViaPlugin is the go-plugin channel: a launcher that started or attached to the agent.
	ViaPlugin = "plugin"
	// ViaCLI is the agent's local socket, where the caller's Unix uid names the member.
	ViaCLI = "cli"
	// ViaWeb is the web console, where a session cookie names the member.
	ViaWeb = "web"
	// ViaAPI is the REST API, where a personal access token names the member.
	ViaAPI = "api"
)

type actorKey struct{}

// Actor is who a call acts for: an organisation member, or "" for the trusted launcher itself.
type Actor struct {
	Member string
	Via    string // ViaPlugin, ViaCLI, ViaWeb or ViaAPI: set by the agent's side of the channel, never by the caller
	Remote string // the caller's network address, where the channel knows one (web, API)
}

// WithActor returns ctx carrying the actor. A launcher sets it to the organisation user it acts
// for; the agent's CLI socket sets it from the caller's Unix credentials.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx and whether one was set.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// JumpScan is the bastion ScanHostKeyVia goes through: its address, the known_hosts line(s) the
// owner confirmed for it, and the user and OpenSSH private key (with its passphrase, if any) to log
// in to it with. The key is used for the one scan and never kept.
type JumpScan struct {
	Host       string
	Port       int // 0 means 22
	User       string
	KnownHosts string
	Key        []byte
	Passphrase []byte
}
