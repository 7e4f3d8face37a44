package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/lease"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/sshpool"
)

// Several agents may share one PostgreSQL store ([store] backend = "postgres"). Each identity's
// work (submits, polls, settles, cancels, staging) is then done by the agent holding its lease
// (internal/lease), and only while it holds it:
//   - every remote command runs under a context that ends with the holding's validity, and is
//     refused without one (runner.runPaid), so nothing reaches a login node for an identity
//     this agent does not hold;
//   - every job write is fenced by the holding's token (store.Postgres.SetFence);
//   - an agent taking an identity loads its jobs from the store, resumes polling them, and settles
//     submits left unsettled by token, after poll.submit_timeout (the longest a submit the old
//     holder started may still be running), so a job is never submitted twice;
//   - an agent losing one drops its jobs from memory and its pollers and settlers stop.
// Reads (job status and lists, audit, identities, members) are served by any agent from the store.

// openStore opens the configured store; for a shared one also the lease manager (not started).
func (a *Agent) openStore(cfg config.Config) error {
	if !cfg.Shared() {
		st, err := store.Open(filepath.Join(cfg.Agent.StateDir, "ferry.db"))
		if err != nil {
			return err
		}
		a.store = st
		return nil
	}
	dsn, err := cfg.StoreDSN()
	if err != nil {
		return err
	}
	pg, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		return err
	}
	m, err := lease.New(pg.Pool(), lease.Options{
		Name: cfg.LeaseName(), Address: cfg.Store.Lease.Address,
		TTL: cfg.Store.Lease.TTL.Duration, Renew: cfg.Store.Lease.Renew.Duration,
		OnAcquire: a.take, OnLose: a.drop,
	}, a.log)
	if err != nil {
		pg.Close()
		return err
	}
	pg.SetFence(m.Fence)
	a.store, a.pg, a.leases = pg, pg, m
	return nil
}

// startLeases runs the lease manager (after the registry is open): each period it reloads the
// registry from the store, renews what this agent holds and takes what is free.
func (a *Agent) startLeases(m *lease.Manager) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		m.Run(a.ctx)
	}()
}

// leaseTick reloads what other agents may have changed.
func (a *Agent) leaseTick() {
	if err := a.Reload(); err != nil {
		a.log.Warn().Err(err).Msg("reload identities from the shared store")
	}
}

// holds reports whether this agent may act for identity now, or says where to go.
func (a *Agent) holds(identityName string) error {
	if a.leases == nil {
		return nil
	}
	if _, ok := a.leases.Held(identityName); ok {
		return nil
	}
	return a.notHere(identityName)
}

// notHere is the answer to a request for an identity this agent does not hold.
func (a *Agent) notHere(identityName string) error {
	within := a.cfg.Store.Lease.TTL.Duration + a.cfg.Store.Lease.Renew.Duration
	if h, ok := a.leases.Where(identityName); ok {
		where := h.Address
		if where == "" {
			where = "(no address configured: set store.lease.address)"
		}
		return fmt.Errorf("%w: identity %q is worked by agent %s at %s: send the request there, or retry here (if that agent is gone, its identities move within %s)",
			contract.ErrUnavailable, identityName, h.Name, where, within)
	}
	if err := a.leases.DBError(); err != nil {
		return fmt.Errorf("%w: identity %q is not worked by this agent, which cannot reach the shared store (%v): send the request to another agent",
			contract.ErrUnavailable, identityName, err)
	}
	return fmt.Errorf("%w: identity %q is not held by any agent at the moment (an agent takes it within %s): retry",
		contract.ErrUnavailable, identityName, within)
}

// take is the lease manager's OnAcquire: load identity's jobs from the store and resume them.
// Without its jobs this agent cannot work the identity: the error gives the lease back.
func (a *Agent) take(identityName string, token int64) error {
	// The previous holder kept its credentials' statuses (a held credential stays held).
	if err := a.ReloadStatusesOf(identityName); err != nil {
		return fmt.Errorf("read its credentials' statuses: %w", err)
	}
	jobs, err := a.pg.JobsOf(identityName)
	if err != nil {
		a.log.Error().Err(err).Str("identity", identityName).Msg("load jobs of a newly held identity")
		return fmt.Errorf("load its jobs: %w", err)
	}
	keys := map[sshpool.Key]bool{}
	var settle []string
	a.mu.Lock()
	for id, j := range a.jobs {
		if j.Identity == identityName {
			a.deleteJobLocked(id)
		}
	}
	for i := range jobs {
		j := jobs[i]
		a.putJobLocked(&j)
		if unsettled(&j) {
			settle = append(settle, j.ID)
		} else if !j.Done {
			keys[sshpool.Key{Identity: j.Identity, User: j.User}] = true
		}
	}
	a.mu.Unlock()
	a.log.Info().Str("identity", identityName).Int64("token", token).Int("jobs", len(jobs)).Int("active", len(keys)).Int("unsettled", len(settle)).
		Msg("working the identity")
	for k := range keys {
		a.ensurePoller(k)
	}
	// A submit the previous holder started may still be running on the login node: looking its
	// token up before it ends could miss it and submit it twice. Wait out the submit timeout.
	wait := a.cfg.Poll.SubmitTimeout.Duration
	a.mu.Lock()
	for _, id := range settle {
		a.notBefore[id] = time.Now().Add(wait)
	}
	a.mu.Unlock()
	for _, id := range settle {
		a.startSettler(id) // it waits for notBefore
	}
	return nil
}

// drop is the lease manager's OnLose: forget identity's jobs; pollers and settlers stop.
func (a *Agent) drop(identityName string) {
	a.mu.Lock()
	n := 0
	for id, j := range a.jobs {
		if j.Identity == identityName {
			a.deleteJobLocked(id)
			n++
		}
	}
	for k, p := range a.pollers {
		if k.Identity == identityName {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
	a.mu.Unlock()
	a.log.Warn().Str("identity", identityName).Int("jobs", n).Msg("stopped working the identity")
}

// leaseBound bounds ctx by what is left of identity's holding (shared store), or refuses.
func (a *Agent) leaseBound(ctx context.Context, identityName string) (context.Context, context.CancelFunc, error) {
	if a.leases == nil {
		return ctx, func() {}, nil
	}
	rem := a.leases.Remaining(identityName)
	if rem <= 0 {
		return nil, nil, a.notHere(identityName)
	}
	c, cancel := context.WithTimeout(ctx, rem)
	return c, cancel, nil
}

// storedJob reads a job this agent does not have in memory (one of an identity another agent
// works), from a shared store.
func (a *Agent) storedJob(id string) (store.Job, bool) {
	if a.pg == nil {
		return store.Job{}, false
	}
	j, err := a.pg.Get(id)
	return j, err == nil
}

// storedJobs lists jobs of identities this agent does not hold, from a shared store.
func (a *Agent) storedJobs(identityName string) []store.Job {
	if a.pg == nil {
		return nil
	}
	var all []store.Job
	var err error
	if identityName != "" {
		if _, ok := a.leases.Held(identityName); ok {
			return nil
		}
		all, err = a.pg.JobsOf(identityName)
	} else {
		all, err = a.pg.JobsExcept(a.leases.HeldNames())
	}
	if err != nil {
		a.log.Warn().Err(err).Msg("read jobs from the shared store")
		return nil
	}
	return all
}

// settleWait is how long a held-back submit (notBefore) must still wait before it is settled.
func (a *Agent) settleWait(id string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.notBefore[id]
	if !ok {
		return 0
	}
	if d := time.Until(t); d > 0 {
		return d
	}
	delete(a.notBefore, id)
	return 0
}

// Health says whether this agent can serve: with a shared store, whether the database answers,
// and which identities it works now (all the registry knows, for a single agent).
func (a *Agent) Health(ctx context.Context) ([]string, error) {
	if a.pg == nil {
		names := a.IdentityNames()
		sort.Strings(names)
		return names, nil
	}
	if err := a.pg.Pool().Ping(ctx); err != nil {
		return nil, fmt.Errorf("the shared store does not answer: %w", err)
	}
	return a.leases.HeldNames(), nil
}
