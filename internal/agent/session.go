package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/pkg/sftp"

	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

// session is what one call needs to act as one member on one identity: the member's login from
// the registry, and the pool, runner and SFTP leaser built on it.
type session struct {
	key    sshpool.Key
	sched  scheduler.Scheduler
	stager *stage.Stager
	pool   *sshpool.Pool
	run    *runner
	lease  stage.Leaser
}

// userSession asks the registry for member's login on identity (no permission check: the caller
// has authorized the operation, or it is the agent's own background work) and opens its pool.
func (a *Agent) userSession(identityName, member string) (*session, error) {
	l, err := a.Login(identityName, member)
	if err != nil {
		return nil, err
	}
	return a.sessionFor(l)
}

// sessionFor opens the pool of a login the registry resolved.
func (a *Agent) sessionFor(l identity.Login) (*session, error) {
	pool, err := a.pools.Pool(l.Key, l.Target)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", contract.ErrUnavailable, err)
	}
	r := &runner{a: a, key: l.Key, pool: pool}
	return &session{key: l.Key, sched: l.Sched, stager: l.Stager, pool: pool, run: r,
		lease: &leaser{a: a, key: l.Key, pool: pool}}, nil
}

// act authorizes act for member and opens member's session on identity, in one call to the
// registry. A refusal is audited as auditAction.
func (a *Agent) act(ctx context.Context, act identity.Action, auditAction, identityName, member string) (identity.Principal, *session, error) {
	p, l, err := a.Act(ctx, act, identityName, member)
	if err != nil {
		if isDenied(err) && auditAction != "" {
			a.Audited(p, auditAction, identityName, member, "", err, "")
		}
		return p, nil, err
	}
	s, err := a.sessionFor(l)
	return p, s, err
}

// Connect logs member in on identity for the registry's preflight test (identity.Connector).
func (a *Agent) Connect(identityName, member string) (scheduler.Runner, stage.Leaser, error) {
	s, err := a.userSession(identityName, member)
	if err != nil {
		return nil, nil, err
	}
	return s.run, s.lease, nil
}

// ActiveJobs lists active jobs on identity (and of member, if set), one "id (user, status)" each
// (identity.ActiveJobs).
// With a shared store it also counts the jobs of identities other agents work.
func (a *Agent) ActiveJobs(identityName, member string) []string {
	match := func(j *store.Job) bool {
		return !j.Done && (identityName == "" || j.Identity == identityName) && (member == "" || j.User == member)
	}
	var out []string
	seen := map[string]bool{}
	a.mu.Lock()
	for _, j := range a.jobs {
		if match(j) {
			seen[j.ID] = true
			out = append(out, fmt.Sprintf("%s (%s, %s)", j.ID, j.User, j.Status))
		}
	}
	a.mu.Unlock()
	for _, j := range a.storedJobs(identityName) {
		if match(&j) && !seen[j.ID] {
			out = append(out, fmt.Sprintf("%s (%s, %s)", j.ID, j.User, j.Status))
		}
	}
	sort.Strings(out)
	return out
}

// leaser records login outcomes of SFTP leases, like runner does for commands.
type leaser struct {
	a    *Agent
	key  sshpool.Key
	pool *sshpool.Pool
}

func (l *leaser) SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, func(), error) {
	if err := l.a.holds(l.key.Identity); err != nil {
		return nil, nil, err
	}
	cl, release, err := l.pool.SFTP(ctx, opts...)
	l.a.LoginOutcome(l.key, err)
	return cl, release, err
}

// Pools returns per (identity, member) pool statistics with commands per minute.
func (a *Agent) Pools(ctx context.Context) ([]contract.PoolStats, error) {
	p, err := a.Authorize(ctx, identity.PoolsRead, "")
	if err != nil {
		return nil, err
	}
	perMin := a.CommandsLastMinute()
	var out []contract.PoolStats
	for _, s := range a.pools.Stats() {
		if !p.Sees(s.Key.User) {
			continue
		}
		out = append(out, contract.PoolStats{Identity: s.Key.Identity, User: s.Key.User, Connections: s.Conns, Sessions: s.Sessions,
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

func isDenied(err error) bool { return errors.Is(err, contract.ErrPermissionDenied) }
