package store

import "time"

// Store is what the agent persists and reads back. Every method is safe for concurrent use. Get
// methods fail with an error wrapping ErrNotFound for a missing record; Delete methods of a
// missing record succeed. Records are returned as stored (times in UTC).
type Store interface {
	// Jobs. Put inserts or replaces a job and indexes its token; ByToken finds a job by the
	// launcher's token for (identity, user); All returns the jobs keep accepts (nil: all).
	Put(j Job) error
	Delete(id string) error
	Get(id string) (Job, error)
	ByToken(identity, user, token string) (Job, error)
	All(keep func(Job) bool) ([]Job, error)

	PutIdentity(i Identity) error
	GetIdentity(name string) (Identity, error)
	Identities() ([]Identity, error)
	// DeleteIdentity removes an identity and all its credentials at once.
	DeleteIdentity(name string) error

	PutMember(m Member) error
	GetMember(name string) (Member, error)
	Members() ([]Member, error)
	DeleteMember(name string) error

	PutCredential(c Credential) error
	GetCredential(identity, member string) (Credential, error)
	Credentials() ([]Credential, error)
	DeleteCredential(identity, member string) error

	// The web front door's records.
	PutAccount(a Account) error
	GetAccount(member string) (Account, error)
	Accounts() ([]Account, error)
	PutSession(x Session) error
	GetSession(id string) (Session, error)
	DeleteSession(id string) error
	Sessions() ([]Session, error)
	PutToken(t AccessToken) error
	GetToken(id string) (AccessToken, error)
	DeleteToken(id string) error
	AccessTokens() ([]AccessToken, error)
	PutInvite(i Invite) error
	Invites() ([]Invite, error)
	// UseInvite marks an invitation used, atomically: of two concurrent calls one wins, the other
	// gets ErrUsed. ErrNotFound, ErrUsed or ErrExpired leave the record as it was.
	UseInvite(id string, now time.Time) (Invite, error)
	// DeleteWebOf removes a member's account, sessions, tokens and invitations at once.
	DeleteWebOf(member string) error

	Close() error
}

var _ Store = (*Bolt)(nil)

// AuditSink is a store that also keeps the audit trail, so that several agents sharing it share
// one trail (Postgres). Records are opaque JSON (internal/audit's Encode), returned oldest first.
type AuditSink interface {
	AppendAudit(record []byte) error
	AuditRecords(fn func(record []byte) error) error
}

// Versioned is a store shared by several agents that tells when the registry (members,
// identities, credentials' logins) changed, so an agent re-reads it only then (Postgres).
type Versioned interface {
	RegistryVersion() (int64, error)
}
