// Package lease gives each managed identity's work to one agent at a time, among agents sharing
// one PostgreSQL database. A lease is a row of the leases table (created by the store's
// migrations): the identity, its holder, the holder's address, a fencing token and an expiry in
// the database's clock.
//
// The rules, which the tests check on a real server:
//   - Acquire succeeds only on a free or expired lease (or one this agent's name already holds,
//     for a restarted agent) and increments the token, so every holding has a token larger than
//     any before it. Writes fenced by a token (store.Postgres.SetFence) fail once a newer holding
//     exists.
//   - The holder renews every Renew. It counts its lease valid until the time it sent its last
//     successful renewal, plus TTL, less a margin: the database counts from when the renewal
//     committed, later, so the holder stops before the database lets anyone else start.
//   - When the holder cannot renew (the database is unreachable, or the row now names another
//     holder), it stops acting for the identity at the end of its validity at the latest
//     (OnLose), whether or not the database answers.
//   - Close releases held leases (expires them now), so a clean stop hands over at once.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Options configures a Manager.
type Options struct {
	Name    string        // this agent's name; unique among the agents
	Address string        // where others are sent for identities this agent holds
	TTL     time.Duration // lease lifetime without renewal
	Renew   time.Duration // renewal and acquisition period
	// Identities lists the identities to hold (all the store knows). Called each period.
	Identities func() []string
	// OnAcquire is called when this agent takes an identity, with the holding's token; OnLose
	// when it stops holding one. Both run on the manager's goroutine, never concurrently. An
	// error from OnAcquire (the agent cannot work the identity) gives the lease back at once,
	// so another agent, or this one next period, takes it.
	OnAcquire func(identity string, token int64) error
	OnLose    func(identity string)
	// Tick, when set, runs at the start of each period (the agent reloads its registry there).
	Tick func()
}

// Holder is who holds an identity, as this agent last read the table.
type Holder struct {
	Identity string
	Name     string
	Address  string
	Token    int64
	Expires  time.Time
}

type holding struct {
	token int64
	valid time.Time // monotonic: this agent acts only before it
}

// Manager holds and renews this agent's leases. Create it with New, run it with Run.
type Manager struct {
	pool *pgxpool.Pool
	opts Options
	log  zerolog.Logger

	mu     sync.Mutex
	held   map[string]*holding
	others map[string]Holder // the last seen holder of identities this agent does not hold
	dbErr  error             // the last database call's error (nil: it answered)
}

// New returns a manager on pool (which the caller keeps and closes after Close).
func New(pool *pgxpool.Pool, opts Options, log zerolog.Logger) (*Manager, error) {
	switch {
	case opts.Name == "":
		return nil, errors.New("lease: the agent needs a name")
	case opts.TTL < 3*time.Second || opts.Renew <= 0 || 2*opts.Renew > opts.TTL:
		return nil, fmt.Errorf("lease: ttl %s and renew %s: renew must be positive and at most half the ttl, and the ttl at least 3s", opts.TTL, opts.Renew)
	}
	return &Manager{pool: pool, opts: opts, log: log.With().Str("agent", opts.Name).Logger(),
		held: map[string]*holding{}, others: map[string]Holder{}}, nil
}

// margin is how long before its computed end a holding stops being used: the time the last
// renewal's answer may have taken to arrive is already excluded (validity counts from its send).
func (m *Manager) margin() time.Duration { return min(m.opts.TTL/10, 2*time.Second) }

// SetIdentities sets Options.Identities and Options.Tick, for a caller that builds what they
// read after the manager (before Run).
func (m *Manager) SetIdentities(identities func() []string, tick func()) {
	m.opts.Identities, m.opts.Tick = identities, tick
}

// Held returns the token of identity's holding if this agent holds it and may act now.
func (m *Manager) Held(identity string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.held[identity]
	if !ok || !time.Now().Before(h.valid) {
		return 0, false
	}
	return h.token, true
}

// Remaining is how long this agent may still act for identity (0 if it does not hold it).
func (m *Manager) Remaining(identity string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.held[identity]; ok {
		return max(time.Until(h.valid), 0)
	}
	return 0
}

// HeldNames lists the identities this agent holds now.
func (m *Manager) HeldNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []string
	for n, h := range m.held {
		if now.Before(h.valid) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Where says who else holds identity, as last read (ok false if nobody or unknown).
func (m *Manager) Where(identity string) (Holder, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.others[identity]
	return h, ok
}

// DBError is the last database call's error, nil when it answered.
func (m *Manager) DBError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dbErr
}

func (m *Manager) noteDB(err error) {
	m.mu.Lock()
	m.dbErr = err
	m.mu.Unlock()
}

// Fence is the store's fence (store.Postgres.SetFence): this agent's name and the token of its
// holding of identity, if it holds it now.
func (m *Manager) Fence(identity string) (string, int64, bool) {
	t, ok := m.Held(identity)
	return m.opts.Name, t, ok
}

// Run renews, acquires and gives up leases until ctx ends, then releases what it holds.
func (m *Manager) Run(ctx context.Context) {
	m.step(ctx)
	t := time.NewTicker(m.opts.Renew)
	defer t.Stop()
	for {
		// Held already refuses a holding past its validity; the timer also stops what works
		// under it (OnLose) on time, between periods.
		var expire <-chan time.Time
		var timer *time.Timer
		if next := m.nextExpiry(); !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), 0))
			expire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			m.step(ctx)
		case <-expire:
			m.expire()
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			m.release()
			return
		}
	}
}

// nextExpiry is when the earliest holding runs out.
func (m *Manager) nextExpiry() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for _, h := range m.held {
		if next.IsZero() || h.valid.Before(next) {
			next = h.valid
		}
	}
	return next
}

// expire gives up every holding whose validity has passed.
func (m *Manager) expire() {
	now := time.Now()
	m.mu.Lock()
	var gone []string
	for n, h := range m.held {
		if !now.Before(h.valid) {
			gone = append(gone, n)
			delete(m.held, n)
		}
	}
	m.mu.Unlock()
	for _, n := range gone {
		m.log.Warn().Str("identity", n).Msg("lease not renewed in time: stopped acting for the identity")
		if m.opts.OnLose != nil {
			m.opts.OnLose(n)
		}
	}
}

// step is one period: give up what ran out, renew what is held, try to take what is free.
func (m *Manager) step(ctx context.Context) {
	m.expire()
	if m.opts.Tick != nil {
		m.opts.Tick()
	}
	want := map[string]bool{}
	if m.opts.Identities != nil {
		for _, n := range m.opts.Identities() {
			want[n] = true
		}
	}
	m.mu.Lock()
	var renew []string
	tokens := map[string]int64{}
	for n, h := range m.held {
		renew = append(renew, n)
		tokens[n] = h.token
	}
	m.mu.Unlock()
	sort.Strings(renew)
	var keep []string
	for _, n := range renew {
		if !want[n] {
			m.give(ctx, n, tokens[n], "the identity was removed")
			continue
		}
		keep = append(keep, n)
	}
	m.renew(ctx, keep, tokens)
	var free []string
	for n := range want {
		if _, ok := m.Held(n); !ok {
			free = append(free, n)
		}
	}
	sort.Strings(free)
	for _, n := range free {
		m.acquire(ctx, n)
	}
	m.readOthers(ctx)
}

// call bounds one database call by what is left of the period.
func (m *Manager) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.opts.Renew)
}

// renew renews the holdings of names, in one statement.
func (m *Manager) renew(ctx context.Context, names []string, tokens map[string]int64) {
	if len(names) == 0 {
		return
	}
	toks := make([]int64, len(names))
	for i, n := range names {
		toks[i] = tokens[n]
	}
	sent := time.Now()
	cctx, cancel := m.call(ctx)
	defer cancel()
	rows, err := m.pool.Query(cctx, `UPDATE leases l SET expires = now() + $2::interval, address = $3
		FROM unnest($4::text[], $5::bigint[]) AS u(identity, token)
		WHERE l.identity = u.identity AND l.token = u.token AND l.holder = $1
		RETURNING l.identity`, m.opts.Name, interval(m.opts.TTL), m.opts.Address, names, toks)
	renewed := map[string]bool{}
	if err == nil {
		for rows.Next() {
			var n string
			if err = rows.Scan(&n); err != nil {
				break
			}
			renewed[n] = true
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	m.noteDB(err)
	if err != nil {
		// Keep acting until the validity already earned runs out (Held and Run's timer end it).
		m.log.Warn().Err(err).Strs("identities", names).Msg("lease renewal failed")
		return
	}
	var lost []string
	m.mu.Lock()
	for _, n := range names {
		h, ok := m.held[n]
		switch {
		case !ok || h.token != tokens[n]:
		case renewed[n]:
			h.valid = sent.Add(m.opts.TTL - m.margin())
		default:
			delete(m.held, n)
			lost = append(lost, n)
		}
	}
	m.mu.Unlock()
	for _, n := range lost {
		m.log.Warn().Str("identity", n).Int64("token", tokens[n]).Msg("lease taken by another agent: stopped acting for the identity")
		if m.opts.OnLose != nil {
			m.opts.OnLose(n)
		}
	}
}

func (m *Manager) acquire(ctx context.Context, n string) {
	sent := time.Now()
	cctx, cancel := m.call(ctx)
	defer cancel()
	var token int64
	err := m.pool.QueryRow(cctx, `INSERT INTO leases (identity, holder, address, token, expires)
		VALUES ($1, $2, $3, 1, now() + $4::interval)
		ON CONFLICT (identity) DO UPDATE SET holder = EXCLUDED.holder, address = EXCLUDED.address,
			token = leases.token + 1, expires = EXCLUDED.expires, acquired = now()
		WHERE leases.expires < now() OR leases.holder = EXCLUDED.holder
		RETURNING token`, n, m.opts.Name, m.opts.Address, interval(m.opts.TTL)).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		m.noteDB(nil)
		return // held by another agent
	}
	m.noteDB(err)
	if err != nil {
		m.log.Warn().Err(err).Str("identity", n).Msg("lease acquisition failed")
		return
	}
	m.mu.Lock()
	m.held[n] = &holding{token: token, valid: sent.Add(m.opts.TTL - m.margin())}
	delete(m.others, n)
	m.mu.Unlock()
	m.log.Info().Str("identity", n).Int64("token", token).Msg("lease acquired: acting for the identity")
	if m.opts.OnAcquire != nil {
		if err := m.opts.OnAcquire(n, token); err != nil {
			m.give(ctx, n, token, "could not start working it: "+err.Error())
		}
	}
}

// give releases one holding (OnLose first, so nothing acts under it when another agent starts).
func (m *Manager) give(ctx context.Context, n string, token int64, why string) {
	m.mu.Lock()
	delete(m.held, n)
	m.mu.Unlock()
	if m.opts.OnLose != nil {
		m.opts.OnLose(n)
	}
	cctx, cancel := m.call(ctx)
	defer cancel()
	if _, err := m.pool.Exec(cctx, `UPDATE leases SET expires = now() - interval '1 millisecond'
		WHERE identity = $1 AND holder = $2 AND token = $3`, n, m.opts.Name, token); err != nil {
		m.log.Warn().Err(err).Str("identity", n).Msg("lease release failed; it expires by itself")
		return
	}
	m.log.Info().Str("identity", n).Str("why", why).Msg("lease released")
}

// release gives up every holding (at Close).
func (m *Manager) release() {
	m.mu.Lock()
	held := make(map[string]int64, len(m.held))
	for n, h := range m.held {
		held[n] = h.token
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.Renew)
	defer cancel()
	for n, t := range held {
		m.give(ctx, n, t, "the agent is stopping")
	}
}

// readOthers records who holds the identities this agent does not.
func (m *Manager) readOthers(ctx context.Context) {
	cctx, cancel := m.call(ctx)
	defer cancel()
	rows, err := m.pool.Query(cctx, `SELECT identity, holder, address, token, expires FROM leases WHERE holder <> $1 AND expires > now()`, m.opts.Name)
	if err != nil {
		return
	}
	defer rows.Close()
	others := map[string]Holder{}
	for rows.Next() {
		var h Holder
		if err := rows.Scan(&h.Identity, &h.Name, &h.Address, &h.Token, &h.Expires); err != nil {
			return
		}
		others[h.Identity] = h
	}
	if rows.Err() != nil {
		return
	}
	m.mu.Lock()
	m.others = others
	m.mu.Unlock()
}

// All lists every lease row (for `ferry pools`-style views and tests).
func All(ctx context.Context, pool *pgxpool.Pool) ([]Holder, error) {
	rows, err := pool.Query(ctx, `SELECT identity, holder, address, token, expires FROM leases ORDER BY identity`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Holder
	for rows.Next() {
		var h Holder
		if err := rows.Scan(&h.Identity, &h.Name, &h.Address, &h.Token, &h.Expires); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func interval(d time.Duration) string { return fmt.Sprintf("%d milliseconds", d.Milliseconds()) }
