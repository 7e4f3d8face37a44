// Package agent is Ferry's job lifecycle and implements contract.Service: it persists jobs, submits
// them through per-user SSH pools, polls each user's jobs with one status query per interval,
// settles ambiguous submits, collects exit codes, stages files and streams state changes. It asks
// internal/identity for each member's login and whether a caller may act. It knows nothing of
// gRPC or HTTP.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/internal/lease"
	"github.com/ferryhpc/ferry/internal/metrics"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// SchedulerFactory returns the adapter for a scheduler kind (identity.SchedulerFactory).
type SchedulerFactory = identity.SchedulerFactory

// Agent is Ferry's long-running core: the job lifecycle. Create it with New, stop it with Close.
// Managed identities, and the permission rule every call goes through, are the embedded
// identity.Registry's: the agent asks it for a member's login and whether a caller may act, and
// serves its methods as the Admin half of the contract.
type Agent struct {
	*identity.Registry

	cfg   config.Config
	log   zerolog.Logger
	store store.Store
	pools *sshpool.Manager
	// With a shared store: the same store as PostgreSQL, and the leases of the identities this
	// agent works (nil otherwise: a single agent works every identity).
	pg     *store.Postgres
	leases *lease.Manager

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards jobs, pollers, watchers, nextW, counts
	jobs map[string]*store.Job
	// byKey indexes jobs by identity and user (which never change for a job), so a ListJobs for
	// one user or identity costs the jobs it returns, not every job the agent holds. Kept in step
	// with jobs by putJobLocked and deleteJobLocked.
	byKey    map[sshpool.Key]map[string]*store.Job
	pollers  map[sshpool.Key]*poller
	watchers map[int]*watcher
	nextW    int
	counts   map[sshpool.Key]map[string]int
	gens     map[sshpool.Key]uint64
	limits   map[string]*rate.Limiter // "u/<identity>/<user>" and "i/<identity>"
	recent   map[sshpool.Key]*window  // commands in the last minute, for `ferry pools`
	batchers map[sshpool.Key]*batcher
	claims   map[string]bool // tokens whose submit a call or a settler is working on
	// notBefore holds back the settling of a submit whose command may still be running on the
	// login node: one whose outcome was just found unknown, or one inherited from the previous
	// holder of its identity (shared store).
	notBefore map[string]time.Time

	metrics *metrics.Metrics
}

// New builds an agent from cfg, opens its store and re-attaches to every unfinished job.
func New(cfg config.Config, log zerolog.Logger, schedulers SchedulerFactory) (*Agent, error) {
	if err := os.MkdirAll(cfg.Agent.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	a := &Agent{
		cfg:       cfg,
		log:       log,
		jobs:      map[string]*store.Job{},
		byKey:     map[sshpool.Key]map[string]*store.Job{},
		pollers:   map[sshpool.Key]*poller{},
		watchers:  map[int]*watcher{},
		counts:    map[sshpool.Key]map[string]int{},
		gens:      map[sshpool.Key]uint64{},
		limits:    map[string]*rate.Limiter{},
		recent:    map[sshpool.Key]*window{},
		batchers:  map[sshpool.Key]*batcher{},
		claims:    map[string]bool{},
		notBefore: map[string]time.Time{},
	}
	if err := a.openStore(cfg); err != nil {
		return nil, err
	}
	st := a.store
	a.metrics = metrics.New(a)
	a.pools = sshpool.NewManager(sshpool.Options{
		MaxSessionsPerConn: cfg.Pool.MaxSessionsPerConn,
		MaxConnsPerUser:    cfg.Pool.MaxConnsPerUser,
		MaxDialsPerHost:    cfg.Pool.MaxDialsPerHost,
		DialTimeout:        cfg.Pool.DialTimeout.Duration,
		KeepaliveInterval:  cfg.Pool.KeepaliveInterval.Duration,
		KeepaliveTimeout:   cfg.Pool.KeepaliveTimeout.Duration,
		IdleTimeout:        cfg.Pool.IdleTimeout.Duration,
		NoDispatcher:       !cfg.Pool.Dispatcher,
	}, log)
	reg, err := identity.Open(cfg, log, st, identity.Deps{Schedulers: schedulers, Pools: a.pools})
	if err != nil {
		a.pools.Close()
		st.Close()
		return nil, err
	}
	a.Registry = reg
	reg.SetJobs(a, a)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if a.leases != nil {
		// Shared store: jobs are resumed identity by identity, as their leases are taken.
		a.leases.SetIdentities(reg.IdentityNames, a.leaseTick)
		a.startLeases(a.leases)
		a.startPruner()
		return a, nil
	}
	if err := a.reattach(); err != nil {
		a.Close()
		return nil, err
	}
	a.startPruner()
	return a, nil
}

// Close stops pollers, closes pools and the store.
func (a *Agent) Close() error {
	a.cancel()
	a.wg.Wait()
	a.pools.Close()
	a.mu.Lock()
	for id, w := range a.watchers {
		close(w.ch)
		delete(a.watchers, id)
	}
	a.mu.Unlock()
	a.Registry.Close()
	return a.store.Close()
}

// PoolManager exposes the pool manager (for stats and metrics).
func (a *Agent) PoolManager() *sshpool.Manager { return a.pools }

// CommandCounts returns how many remote commands were run per (identity, user), by program name.
func (a *Agent) CommandCounts() map[sshpool.Key]map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[sshpool.Key]map[string]int{}
	for k, m := range a.counts {
		c := map[string]int{}
		for n, v := range m {
			c[n] = v
		}
		out[k] = c
	}
	return out
}

// runner adapts an SSH pool to scheduler.Runner: argv is joined by the one quoting function.
type runner struct {
	a    *Agent
	key  sshpool.Key
	pool *sshpool.Pool
}

func (r *runner) Run(ctx context.Context, c scheduler.Command) (scheduler.Result, error) {
	if err := r.a.wait(ctx, r.key); err != nil {
		return scheduler.Result{}, fmt.Errorf("%s: waiting for the command rate limit: %w", r.key, err)
	}
	return r.runPaid(ctx, c)
}

// runPaid is Run for a command whose rate-limit tokens the caller has already taken (a batch of
// submits takes one per submit it carries).
func (r *runner) runPaid(ctx context.Context, c scheduler.Command) (scheduler.Result, error) {
	line, err := scheduler.CommandLine(c)
	if err != nil {
		return scheduler.Result{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	ctx, done, err := r.a.leaseBound(ctx, r.key.Identity)
	if err != nil {
		return scheduler.Result{}, err
	}
	defer done()
	prog := program(c.Argv)
	r.a.mu.Lock()
	m := r.a.counts[r.key]
	if m == nil {
		m = map[string]int{}
		r.a.counts[r.key] = m
	}
	m[prog]++
	w := r.a.recent[r.key]
	if w == nil {
		w = &window{}
		r.a.recent[r.key] = w
	}
	w.add(time.Now())
	r.a.mu.Unlock()
	start := time.Now()
	res, err := r.pool.Exec(ctx, line, c.Stdin)
	took := time.Since(start)
	r.a.LoginOutcome(r.key, err)
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "error"
	case res.ExitCode != 0:
		outcome = "nonzero"
	}
	r.a.metrics.Command(r.key.Identity, r.key.User, prog, outcome, took)
	r.a.log.Debug().Str("identity", r.key.Identity).Str("user", r.key.User).Strs("argv", c.Argv).
		Int("exit", res.ExitCode).Dur("took", took).Err(err).Msg("remote command")
	return scheduler.Result{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, err
}

// wait blocks until both the user's and the identity's command rate allow one more command.
func (a *Agent) wait(ctx context.Context, k sshpool.Key) error {
	a.mu.Lock()
	get := func(name string, perMinute int) *rate.Limiter {
		l := a.limits[name]
		if l == nil {
			l = rate.NewLimiter(rate.Limit(float64(perMinute)/60), a.cfg.Limits.Burst)
			a.limits[name] = l
		}
		return l
	}
	user := get("u/"+k.Identity+"/"+k.User, a.cfg.Limits.UserCommandsPerMinute)
	ident := get("i/"+k.Identity, a.cfg.Limits.IdentityCommandsPerMinute)
	a.mu.Unlock()
	if err := user.Wait(ctx); err != nil {
		return err
	}
	return ident.Wait(ctx)
}

// window counts events in the last minute in one-second buckets.
type window struct {
	buckets [60]int
	stamps  [60]int64
}

func (w *window) add(t time.Time) {
	s := t.Unix()
	i := s % 60
	if w.stamps[i] != s {
		w.stamps[i], w.buckets[i] = s, 0
	}
	w.buckets[i]++
}

func (w *window) count(now time.Time) int {
	n := 0
	for i := range w.buckets {
		if now.Unix()-w.stamps[i] < 60 {
			n += w.buckets[i]
		}
	}
	return n
}

// PoolStats returns every pool's statistics (metrics.Source).
func (a *Agent) PoolStats() []sshpool.Stats { return a.pools.Stats() }

// JobCounts returns the number of known jobs by status (metrics.Source).
func (a *Agent) JobCounts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, j := range a.jobs {
		out[j.Status]++
	}
	return out
}

// CommandsLastMinute returns the scheduler commands run per (identity, user) in the last minute.
func (a *Agent) CommandsLastMinute() map[sshpool.Key]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	out := map[sshpool.Key]int{}
	for k, w := range a.recent {
		out[k] = w.count(now)
	}
	return out
}

// Metrics returns the agent's Prometheus metrics.
func (a *Agent) Metrics() *metrics.Metrics { return a.metrics }

// program returns the command an argv runs, looking through a leading "env VAR=value...".
func program(argv []string) string {
	if len(argv) > 0 && argv[0] == "env" {
		for _, a := range argv[1:] {
			if !strings.Contains(a, "=") {
				return a
			}
		}
	}
	if len(argv) == 0 {
		return ""
	}
	return argv[0]
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(b[:])
}

// toPlugin converts a stored job to the contract type.
func toPlugin(j *store.Job) contract.Job {
	return contract.Job{
		ID: j.ID, Identity: j.Identity, User: j.User, Token: j.Token, Name: j.Name, Dir: j.Dir,
		SchedulerID: j.SchedulerID, Status: j.Status, State: j.State, Reason: j.Reason, Queue: j.Queue,
		Submitted: j.Submitted, Started: j.Started, Ended: j.Ended, ExitCode: j.ExitCode, Error: j.Error,
		Owner: j.Owner, Done: j.Done,
	}
}

// Status returns jobs by Ferry id from the cache, in request order; unknown ids are left out.
// Members see only their own jobs.
func (a *Agent) Status(ctx context.Context, ids []string) ([]contract.Job, error) {
	p, err := a.Authorize(ctx, identity.JobList, "")
	if err != nil {
		return nil, err
	}
	out := make([]contract.Job, 0, len(ids))
	var elsewhere []int // positions of ids this agent does not have (shared store)
	a.mu.Lock()
	for _, id := range ids {
		if j, ok := a.jobs[id]; ok {
			if p.Sees(j.User) {
				out = append(out, toPlugin(j))
			}
		} else if a.pg != nil {
			elsewhere = append(elsewhere, len(out))
			out = append(out, contract.Job{ID: id})
		}
	}
	a.mu.Unlock()
	if len(elsewhere) == 0 {
		return out, nil
	}
	// Jobs of identities other agents work, as they last stored them.
	kept := out[:0]
	next := 0
	for i, j := range out {
		if next < len(elsewhere) && elsewhere[next] == i {
			next++
			if sj, ok := a.storedJob(j.ID); ok && p.Sees(sj.User) {
				kept = append(kept, toPlugin(&sj))
			}
			continue
		}
		kept = append(kept, j)
	}
	return kept, nil
}

// ListJobs lists cached jobs matching req, oldest submission first.
// Members see only their own jobs.
func (a *Agent) ListJobs(ctx context.Context, req contract.ListRequest) ([]contract.Job, error) {
	p, err := a.Authorize(ctx, identity.JobList, "")
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	var out []contract.Job
	for k, jobs := range a.byKey {
		if (req.Identity != "" && k.Identity != req.Identity) || (req.User != "" && k.User != req.User) || !p.Sees(k.User) {
			continue
		}
		for _, j := range jobs {
			if req.ActiveOnly && j.Done {
				continue
			}
			out = append(out, toPlugin(j))
		}
	}
	a.mu.Unlock()
	for _, j := range a.storedJobs(req.Identity) { // other agents' identities (shared store)
		if (req.User != "" && j.User != req.User) || !p.Sees(j.User) || (req.ActiveOnly && j.Done) {
			continue
		}
		if _, mine := a.current(j.ID); mine {
			continue
		}
		out = append(out, toPlugin(&j))
	}
	sort.Slice(out, func(i, k int) bool {
		if !out[i].Submitted.Equal(out[k].Submitted) {
			return out[i].Submitted.Before(out[k].Submitted)
		}
		return out[i].ID < out[k].ID
	})
	return out, nil
}

// putJobLocked adds or replaces j in the cache and its index. a.mu must be held.
func (a *Agent) putJobLocked(j *store.Job) {
	if old, ok := a.jobs[j.ID]; ok {
		a.deleteJobLocked(old.ID)
	}
	a.jobs[j.ID] = j
	k := sshpool.Key{Identity: j.Identity, User: j.User}
	m := a.byKey[k]
	if m == nil {
		m = map[string]*store.Job{}
		a.byKey[k] = m
	}
	m[j.ID] = j
}

// deleteJobLocked removes job id from the cache and its index. a.mu must be held.
func (a *Agent) deleteJobLocked(id string) {
	j, ok := a.jobs[id]
	if !ok {
		return
	}
	delete(a.jobs, id)
	k := sshpool.Key{Identity: j.Identity, User: j.User}
	if m := a.byKey[k]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(a.byKey, k)
		}
	}
}

// update applies fn to the cached job id under the lock, persists it and notifies watchers when
// anything visible changed.
func (a *Agent) update(id string, fn func(j *store.Job)) {
	a.mu.Lock()
	j, ok := a.jobs[id]
	if !ok {
		a.mu.Unlock()
		return
	}
	before := *j
	fn(j)
	changed := visibleChange(&before, j)
	snap := *j
	if changed {
		a.gens[sshpool.Key{Identity: j.Identity, User: j.User}]++
		a.notifyLocked(&snap)
	}
	a.mu.Unlock()
	if !changed && reflect.DeepEqual(before, snap) {
		return // nothing to persist: a poll that changed nothing costs no disk write
	}
	if err := a.store.Put(snap); err != nil {
		a.log.Error().Err(err).Str("job", id).Msg("persist job")
	}
}

func visibleChange(a, b *store.Job) bool {
	return a.Status != b.Status || a.State != b.State || a.Reason != b.Reason || a.Error != b.Error ||
		a.Done != b.Done || (a.ExitCode == nil) != (b.ExitCode == nil) || a.SchedulerID != b.SchedulerID ||
		!a.Started.Equal(b.Started) || !a.Ended.Equal(b.Ended)
}

// reattach loads every job from the store and restarts pollers for unfinished ones.
func (a *Agent) reattach() error {
	jobs, err := a.store.All(nil)
	if err != nil {
		return fmt.Errorf("load jobs: %w", err)
	}
	keys := map[sshpool.Key]bool{}
	var settle []string
	for i := range jobs {
		j := jobs[i]
		if !j.Done && j.SchedulerID == "" {
			// The agent stopped during this submit: settle it by token in the background.
			settle = append(settle, j.ID)
		}
		a.putJobLocked(&j)
		if !j.Done {
			keys[sshpool.Key{Identity: j.Identity, User: j.User}] = true
		}
	}
	for _, id := range settle {
		a.startSettler(id)
	}
	for k := range keys {
		a.log.Info().Str("identity", k.Identity).Str("user", k.User).Msg("re-attaching to jobs")
		a.ensurePoller(k)
	}
	return nil
}
