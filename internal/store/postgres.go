package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the store in a PostgreSQL database, for several agents sharing one state. Each
// record is one row: its key columns plus the record as JSONB (the same JSON as Bolt's), so both
// stores hold the same thing and a record type gains a field without a migration. Schema changes
// are migrations (migrations below), applied in order at Open under an advisory lock, so agents
// starting together apply each one once.
type Postgres struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	fence   func(identity string) (holder string, token int64, ok bool)
}

// ErrFenced is what a fenced write fails with when the writer does not hold the job's identity:
// its lease ran out, or another agent's newer holding exists.
var ErrFenced = errors.New("this agent no longer holds the identity's lease")

// SetFence makes every job write conditional on the writer's lease of the job's identity (see
// internal/lease): fence returns the holder's name and token, or ok false when the agent does
// not hold it. The write happens only if the leases table still names that holder and token
// and the lease has not expired, in the same statement; otherwise it fails with ErrFenced and
// changes nothing. Set it before the store is shared; nil turns fencing off.
func (p *Postgres) SetFence(fence func(identity string) (holder string, token int64, ok bool)) {
	p.fence = fence
}

// migrations are the schema's versions, in order; migration i+1 is migrations[i]. Never edit one
// that has shipped: add the next.
var migrations = []string{
	// 1: every record the single-agent store holds.
	`CREATE TABLE jobs (
		id       text PRIMARY KEY,
		identity text NOT NULL,
		username text NOT NULL,
		token    text NOT NULL DEFAULT '',
		seq      bigserial,
		doc      jsonb NOT NULL
	);
	CREATE INDEX jobs_by_token ON jobs (identity, username, token) WHERE token <> '';
	CREATE TABLE identities (name text PRIMARY KEY, doc jsonb NOT NULL);
	CREATE TABLE members (name text PRIMARY KEY, doc jsonb NOT NULL);
	CREATE TABLE credentials (identity text NOT NULL, member text NOT NULL, doc jsonb NOT NULL, PRIMARY KEY (identity, member));
	CREATE TABLE web_accounts (member text PRIMARY KEY, doc jsonb NOT NULL);
	CREATE TABLE web_sessions (id text PRIMARY KEY, member text NOT NULL, doc jsonb NOT NULL);
	CREATE TABLE web_tokens (id text PRIMARY KEY, member text NOT NULL, doc jsonb NOT NULL);
	CREATE TABLE web_invites (id text PRIMARY KEY, member text NOT NULL, doc jsonb NOT NULL);`,
	// 2: the audit trail, shared by every agent; and the leases that give one agent at a time
	// an identity's work (internal/lease).
	`CREATE TABLE audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), doc jsonb NOT NULL);
	CREATE TABLE leases (
		identity text PRIMARY KEY,
		holder   text NOT NULL,
		address  text NOT NULL DEFAULT '',
		token    bigint NOT NULL,
		expires  timestamptz NOT NULL,
		acquired timestamptz NOT NULL DEFAULT now()
	);`,
	// 3: a version of the registry (members, identities, and how credentials log in), bumped by
	// triggers, so agents re-read the registry only when it changed. A credential's status alone
	// (last login, failures, held) does not bump it: those writes are frequent, and the agent
	// working the identity keeps them itself.
	`CREATE TABLE registry_version (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
	INSERT INTO registry_version VALUES (1, 0);
	CREATE FUNCTION ferry_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE registry_version SET version = version + 1 WHERE id = 1;
		RETURN NULL;
	END $$;
	CREATE TRIGGER members_changed AFTER INSERT OR UPDATE OR DELETE ON members
		FOR EACH ROW EXECUTE FUNCTION ferry_registry_changed();
	CREATE TRIGGER identities_changed AFTER INSERT OR UPDATE OR DELETE ON identities
		FOR EACH ROW EXECUTE FUNCTION ferry_registry_changed();
	CREATE TRIGGER credentials_added AFTER INSERT OR DELETE ON credentials
		FOR EACH ROW EXECUTE FUNCTION ferry_registry_changed();
	CREATE TRIGGER credentials_login_changed AFTER UPDATE ON credentials
		FOR EACH ROW WHEN (
			OLD.doc->'username' IS DISTINCT FROM NEW.doc->'username' OR
			OLD.doc->'key' IS DISTINCT FROM NEW.doc->'key' OR
			OLD.doc->'passphrase' IS DISTINCT FROM NEW.doc->'passphrase' OR
			OLD.doc->'certificate' IS DISTINCT FROM NEW.doc->'certificate' OR
			OLD.doc->'updated_at' IS DISTINCT FROM NEW.doc->'updated_at')
		EXECUTE FUNCTION ferry_registry_changed();`,
}

// migrationLock is the advisory lock key under which migrations run ("ferry" in ASCII).
const migrationLock = 0x6665727279

// OpenPostgres connects to the database at dsn (a postgres:// URL or key=value string) and
// applies the migrations it lacks. It fails if the database cannot be reached within 15 s, or if
// it holds a newer schema than this agent knows (an older agent must not write to it).
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: cannot reach %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	p := &Postgres{pool: pool, timeout: 30 * time.Second}
	if err := p.migrate(cctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// SchemaVersion is the number of migrations this agent knows.
func SchemaVersion() int { return len(migrations) }

func (p *Postgres) migrate(ctx context.Context) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres store: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres store: migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS ferry_schema (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres store: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM ferry_schema`).Scan(&have); err != nil {
		return fmt.Errorf("postgres store: migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("postgres store: the database has schema version %d, newer than this agent's %d: upgrade the agent", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("postgres store: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ferry_schema (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("postgres store: migration %d: %w", v, err)
		}
	}
	return tx.Commit(ctx)
}

// Pool is the connection pool (for leases, which share the database).
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Close closes the pool.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

func (p *Postgres) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.timeout)
}

func (p *Postgres) exec(sql string, args ...any) error {
	ctx, cancel := p.ctx()
	defer cancel()
	_, err := p.pool.Exec(ctx, sql, args...)
	return err
}

// getDoc decodes the doc column of the one row sql selects into v, or fails with ErrNotFound.
func (p *Postgres) getDoc(v any, sql string, args ...any) error {
	ctx, cancel := p.ctx()
	defer cancel()
	var b []byte
	if err := p.pool.QueryRow(ctx, sql, args...).Scan(&b); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}
	return json.Unmarshal(b, v)
}

// listDocs decodes the doc column of every row sql selects.
func listDocs[T any](p *Postgres, sql string, args ...any) ([]T, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	rows, err := p.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var x T
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func doc(v any) ([]byte, error) { return json.Marshal(v) }

// Put inserts or replaces a job; with a fence set, only under the writer's lease.
func (p *Postgres) Put(j Job) error {
	b, err := doc(j)
	if err != nil {
		return err
	}
	const upsert = ` ON CONFLICT (id) DO UPDATE SET identity = EXCLUDED.identity, username = EXCLUDED.username,
		token = EXCLUDED.token, doc = EXCLUDED.doc, seq = nextval('jobs_seq_seq')`
	if p.fence == nil {
		return p.exec(`INSERT INTO jobs (id, identity, username, token, doc) VALUES ($1, $2, $3, $4, $5)`+upsert,
			j.ID, j.Identity, j.User, j.Token, b)
	}
	holder, token, ok := p.fence(j.Identity)
	if !ok {
		return fmt.Errorf("job %s on identity %q: %w", j.ID, j.Identity, ErrFenced)
	}
	ctx, cancel := p.ctx()
	defer cancel()
	tag, err := p.pool.Exec(ctx, `INSERT INTO jobs (id, identity, username, token, doc)
		SELECT $1, $2, $3, $4, $5 WHERE EXISTS (
			SELECT 1 FROM leases WHERE identity = $2 AND holder = $6 AND token = $7 AND expires > now())`+upsert,
		j.ID, j.Identity, j.User, j.Token, b, holder, token)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("job %s on identity %q (token %d): %w", j.ID, j.Identity, token, ErrFenced)
	}
	return nil
}

// JobsOf returns the jobs of one identity, oldest put first.
func (p *Postgres) JobsOf(identity string) ([]Job, error) {
	return listDocs[Job](p, `SELECT doc FROM jobs WHERE identity = $1 ORDER BY seq`, identity)
}

// Delete removes a job.
func (p *Postgres) Delete(id string) error { return p.exec(`DELETE FROM jobs WHERE id = $1`, id) }

// Get returns the job with id.
func (p *Postgres) Get(id string) (Job, error) {
	var j Job
	err := p.getDoc(&j, `SELECT doc FROM jobs WHERE id = $1`, id)
	return j, err
}

// ByToken returns the job last put with the launcher's token for identity and user.
func (p *Postgres) ByToken(identity, user, token string) (Job, error) {
	var j Job
	if token == "" {
		return j, ErrNotFound
	}
	err := p.getDoc(&j, `SELECT doc FROM jobs WHERE identity = $1 AND username = $2 AND token = $3 ORDER BY seq DESC LIMIT 1`, identity, user, token)
	return j, err
}

// All returns every job keep accepts (nil: all), oldest put first.
func (p *Postgres) All(keep func(Job) bool) ([]Job, error) {
	all, err := listDocs[Job](p, `SELECT doc FROM jobs ORDER BY seq`)
	if err != nil || keep == nil {
		return all, err
	}
	out := all[:0]
	for _, j := range all {
		if keep(j) {
			out = append(out, j)
		}
	}
	return out, nil
}

func (p *Postgres) upsert(table, keyCols string, keys []any, v any) error {
	b, err := doc(v)
	if err != nil {
		return err
	}
	args := append(append([]any{}, keys...), b)
	ph := ""
	for i := range keys {
		ph += fmt.Sprintf("$%d, ", i+1)
	}
	return p.exec(fmt.Sprintf(`INSERT INTO %s (%s, doc) VALUES (%s$%d) ON CONFLICT (%s) DO UPDATE SET doc = EXCLUDED.doc`,
		table, keyCols, ph, len(keys)+1, pkOf(table)), args...)
}

// pkOf names a table's primary key columns.
func pkOf(table string) string {
	switch table {
	case "credentials":
		return "identity, member"
	case "identities", "members":
		return "name"
	case "web_accounts":
		return "member"
	}
	return "id"
}

// PutIdentity inserts or replaces an identity.
func (p *Postgres) PutIdentity(i Identity) error {
	return p.upsert("identities", "name", []any{i.Name}, i)
}

// GetIdentity returns the identity called name.
func (p *Postgres) GetIdentity(name string) (Identity, error) {
	var i Identity
	if err := p.getDoc(&i, `SELECT doc FROM identities WHERE name = $1`, name); err != nil {
		return i, fmt.Errorf("identity %q: %w", name, err)
	}
	return i, nil
}

// Identities returns every identity.
func (p *Postgres) Identities() ([]Identity, error) {
	return listDocs[Identity](p, `SELECT doc FROM identities ORDER BY name`)
}

// DeleteIdentity removes an identity and its credentials in one transaction.
func (p *Postgres) DeleteIdentity(name string) error {
	ctx, cancel := p.ctx()
	defer cancel()
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE identity = $1`, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM identities WHERE name = $1`, name)
		return err
	})
}

// PutMember inserts or replaces a member.
func (p *Postgres) PutMember(m Member) error { return p.upsert("members", "name", []any{m.Name}, m) }

// GetMember returns the member called name.
func (p *Postgres) GetMember(name string) (Member, error) {
	var m Member
	if err := p.getDoc(&m, `SELECT doc FROM members WHERE name = $1`, name); err != nil {
		return m, fmt.Errorf("member %q: %w", name, err)
	}
	return m, nil
}

// Members returns every member.
func (p *Postgres) Members() ([]Member, error) {
	return listDocs[Member](p, `SELECT doc FROM members ORDER BY name`)
}

// DeleteMember removes a member.
func (p *Postgres) DeleteMember(name string) error {
	return p.exec(`DELETE FROM members WHERE name = $1`, name)
}

// PutCredential inserts or replaces a credential.
func (p *Postgres) PutCredential(c Credential) error {
	return p.upsert("credentials", "identity, member", []any{c.Identity, c.Member}, c)
}

// GetCredential returns member's credential on identity.
func (p *Postgres) GetCredential(identity, member string) (Credential, error) {
	var c Credential
	if err := p.getDoc(&c, `SELECT doc FROM credentials WHERE identity = $1 AND member = $2`, identity, member); err != nil {
		return c, fmt.Errorf("credential of %q on %q: %w", member, identity, err)
	}
	return c, nil
}

// Credentials returns every credential.
func (p *Postgres) Credentials() ([]Credential, error) {
	return listDocs[Credential](p, `SELECT doc FROM credentials ORDER BY identity, member`)
}

// CredentialsOf returns the credentials on one identity.
func (p *Postgres) CredentialsOf(identity string) ([]Credential, error) {
	return listDocs[Credential](p, `SELECT doc FROM credentials WHERE identity = $1 ORDER BY member`, identity)
}

// DeleteCredential removes member's credential on identity.
func (p *Postgres) DeleteCredential(identity, member string) error {
	return p.exec(`DELETE FROM credentials WHERE identity = $1 AND member = $2`, identity, member)
}

// PutAccount inserts or replaces a web account.
func (p *Postgres) PutAccount(a Account) error {
	return p.upsert("web_accounts", "member", []any{a.Member}, a)
}

// GetAccount returns member's web account.
func (p *Postgres) GetAccount(member string) (Account, error) {
	var a Account
	if err := p.getDoc(&a, `SELECT doc FROM web_accounts WHERE member = $1`, member); err != nil {
		return a, fmt.Errorf("web account of %q: %w", member, err)
	}
	return a, nil
}

// Accounts returns every web account.
func (p *Postgres) Accounts() ([]Account, error) {
	return listDocs[Account](p, `SELECT doc FROM web_accounts ORDER BY member`)
}

// PutSession inserts or replaces a session.
func (p *Postgres) PutSession(x Session) error {
	return p.upsert("web_sessions", "id, member", []any{x.ID, x.Member}, x)
}

// GetSession returns the session with id.
func (p *Postgres) GetSession(id string) (Session, error) {
	var x Session
	err := p.getDoc(&x, `SELECT doc FROM web_sessions WHERE id = $1`, id)
	return x, err
}

// DeleteSession removes a session.
func (p *Postgres) DeleteSession(id string) error {
	return p.exec(`DELETE FROM web_sessions WHERE id = $1`, id)
}

// Sessions returns every session.
func (p *Postgres) Sessions() ([]Session, error) {
	return listDocs[Session](p, `SELECT doc FROM web_sessions`)
}

// PutToken inserts or replaces an access token.
func (p *Postgres) PutToken(t AccessToken) error {
	return p.upsert("web_tokens", "id, member", []any{t.ID, t.Member}, t)
}

// GetToken returns the access token with id.
func (p *Postgres) GetToken(id string) (AccessToken, error) {
	var t AccessToken
	err := p.getDoc(&t, `SELECT doc FROM web_tokens WHERE id = $1`, id)
	return t, err
}

// DeleteToken removes an access token.
func (p *Postgres) DeleteToken(id string) error {
	return p.exec(`DELETE FROM web_tokens WHERE id = $1`, id)
}

// AccessTokens returns every access token.
func (p *Postgres) AccessTokens() ([]AccessToken, error) {
	return listDocs[AccessToken](p, `SELECT doc FROM web_tokens`)
}

// PutInvite stores an invitation.
func (p *Postgres) PutInvite(i Invite) error {
	return p.upsert("web_invites", "id, member", []any{i.ID, i.Member}, i)
}

// Invites returns every invitation.
func (p *Postgres) Invites() ([]Invite, error) {
	return listDocs[Invite](p, `SELECT doc FROM web_invites`)
}

// UseInvite marks the invitation used at now, in one transaction holding its row.
func (p *Postgres) UseInvite(id string, now time.Time) (Invite, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	var inv Invite
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var b []byte
		if err := tx.QueryRow(ctx, `SELECT doc FROM web_invites WHERE id = $1 FOR UPDATE`, id).Scan(&b); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if err := json.Unmarshal(b, &inv); err != nil {
			return err
		}
		switch {
		case !inv.UsedAt.IsZero():
			return ErrUsed
		case !now.Before(inv.Expires):
			return ErrExpired
		}
		inv.UsedAt = now
		nb, err := doc(inv)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE web_invites SET doc = $2 WHERE id = $1`, id, nb)
		return err
	})
	return inv, err
}

// DeleteWebOf removes member's web account, sessions, tokens and invitations in one transaction.
func (p *Postgres) DeleteWebOf(member string) error {
	ctx, cancel := p.ctx()
	defer cancel()
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for _, t := range []string{"web_accounts", "web_sessions", "web_tokens", "web_invites"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE member = $1`, member); err != nil {
				return err
			}
		}
		return nil
	})
}

// RegistryVersion is a number that changes whenever a member, an identity or how a credential
// logs in changes (migration 3's triggers), for any agent.
func (p *Postgres) RegistryVersion() (int64, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	var v int64
	err := p.pool.QueryRow(ctx, `SELECT version FROM registry_version WHERE id = 1`).Scan(&v)
	return v, err
}

// JobsExcept returns the jobs of every identity but those named, oldest put first.
func (p *Postgres) JobsExcept(identities []string) ([]Job, error) {
	return listDocs[Job](p, `SELECT doc FROM jobs WHERE NOT (identity = ANY(coalesce($1::text[], '{}'))) ORDER BY seq`, identities)
}

// AppendAudit appends one audit record.
func (p *Postgres) AppendAudit(record []byte) error {
	return p.exec(`INSERT INTO audit (doc) VALUES ($1)`, record)
}

// AuditRecords calls fn with every audit record, oldest first, until fn fails.
func (p *Postgres) AuditRecords(fn func(record []byte) error) error {
	ctx, cancel := p.ctx()
	defer cancel()
	rows, err := p.pool.Query(ctx, `SELECT doc FROM audit ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

var (
	_ Store     = (*Postgres)(nil)
	_ AuditSink = (*Postgres)(nil)
	_ Versioned = (*Postgres)(nil)
)
