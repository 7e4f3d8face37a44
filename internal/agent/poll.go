package agent

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// poller tracks one (identity, user)'s active jobs. It exists only while the user has active jobs.
type poller struct {
	key  sshpool.Key
	kick chan struct{}
}

// ensurePoller starts the poller for k if it is not running, or nudges it.
func (a *Agent) ensurePoller(k sshpool.Key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.pollers[k]; ok {
		select {
		case p.kick <- struct{}{}:
		default:
		}
		return
	}
	if a.ctx.Err() != nil {
		return
	}
	p := &poller{key: k, kick: make(chan struct{}, 1)}
	a.pollers[k] = p
	a.wg.Add(1)
	go a.pollLoop(p)
}

// pollLoop issues at most one status query per poll interval for the user's jobs, and exits when
// the user has no active job left. The interval starts at poll.interval, stretches by half after
// each poll that changed nothing (up to poll.max_interval), and snaps back after a change, a
// submit or a cancel; it is never shorter than poll.interval.
func (a *Agent) pollLoop(p *poller) {
	defer a.wg.Done()
	minI, maxI := a.cfg.Poll.Interval.Duration, a.cfg.Poll.MaxInterval.Duration
	cur := minI
	var last time.Time
	// The first poll comes soon so a new job's first state shows quickly.
	next := time.Now().Add(min(minI, time.Second))
	for {
		t := time.NewTimer(max(time.Until(next), 0))
		select {
		case <-a.ctx.Done():
			t.Stop()
			return
		case <-p.kick:
			t.Stop()
			cur = minI
			if !last.IsZero() && last.Add(minI).Before(next) {
				next = last.Add(minI)
			}
			continue
		case <-t.C:
		}
		jobs := a.activeJobs(p.key)
		if len(jobs) == 0 {
			a.mu.Lock()
			if len(a.activeJobsLocked(p.key)) == 0 {
				delete(a.pollers, p.key)
				a.mu.Unlock()
				return
			}
			a.mu.Unlock()
			continue
		}
		gen := a.generation(p.key)
		last = time.Now()
		a.pollOnce(a.ctx, p.key, jobs)
		if a.generation(p.key) != gen {
			cur = minI
		} else {
			cur = min(cur*3/2, maxI)
		}
		next = last.Add(cur)
	}
}

// generation counts visible job changes of k, so the poller can tell whether a poll changed
// anything.
func (a *Agent) generation(k sshpool.Key) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gens[k]
}

func (a *Agent) activeJobs(k sshpool.Key) []store.Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.activeJobsLocked(k)
}

// activeJobsLocked returns copies of k's unfinished submitted jobs. a.mu must be held.
func (a *Agent) activeJobsLocked(k sshpool.Key) []store.Job {
	var out []store.Job
	for _, j := range a.jobs {
		if !j.Done && j.SchedulerID != "" && j.Identity == k.Identity && j.User == k.User {
			out = append(out, *j)
		}
	}
	return out
}

// pollOnce runs the user's status query (and the accounting query for jobs it no longer lists),
// applies the states, then collects exit codes of jobs that ended.
func (a *Agent) pollOnce(ctx context.Context, k sshpool.Key, jobs []store.Job) {
	s, err := a.userSession(k.Identity, k.User)
	if err != nil {
		a.markStale(jobs, err)
		return
	}
	sched := s.sched
	timeout := a.cfg.Poll.CommandTimeout.Duration
	var live []store.Job
	var ended []store.Job
	for _, j := range jobs {
		if scheduler.Status(j.Status).Final() {
			ended = append(ended, j)
		} else {
			live = append(live, j)
		}
	}
	if len(live) > 0 {
		ids := make([]scheduler.JobID, len(live))
		for i, j := range live {
			ids[i] = scheduler.JobID(j.SchedulerID)
		}
		states, err := a.query(ctx, s, ids, sched.StatusCommand(k.User, ids), sched.ParseStatus, timeout)
		if err != nil {
			// Statuses go stale, never failed, when the query itself fails.
			a.markStale(live, fmt.Errorf("status query failed: %w", err))
			return
		}
		var missing []store.Job
		for _, j := range live {
			if st, ok := states[scheduler.JobID(j.SchedulerID)]; ok {
				a.apply(j.ID, st)
			} else {
				missing = append(missing, j)
			}
		}
		if acct, ok := sched.(scheduler.Accounting); ok && len(missing) > 0 {
			mids := make([]scheduler.JobID, len(missing))
			for i, j := range missing {
				mids[i] = scheduler.JobID(j.SchedulerID)
			}
			astates, err := a.query(ctx, s, mids, acct.AccountingCommand(k.User, mids), acct.ParseAccounting, timeout)
			if err != nil {
				a.markStale(missing, fmt.Errorf("accounting query failed: %w", err))
				missing = nil
			}
			var still []store.Job
			for _, j := range missing {
				if st, ok := astates[scheduler.JobID(j.SchedulerID)]; ok {
					a.apply(j.ID, st)
				} else {
					still = append(still, j)
				}
			}
			missing = still
		}
		now := time.Now().UTC()
		for _, j := range missing {
			a.update(j.ID, func(j *store.Job) {
				if j.LeftQueue.IsZero() {
					j.LeftQueue = now
				}
				if j.FinalSeen.IsZero() {
					j.FinalSeen = now
				}
				j.Reason = "no longer listed by the scheduler"
			})
		}
		for _, j := range a.activeJobs(k) {
			if scheduler.Status(j.Status).Final() || !j.LeftQueue.IsZero() {
				ended = appendUnique(ended, j)
			}
		}
	}
	if len(ended) > 0 {
		a.collectExit(ctx, s, ended)
	}
}

func appendUnique(js []store.Job, j store.Job) []store.Job {
	for _, x := range js {
		if x.ID == j.ID {
			return js
		}
	}
	return append(js, j)
}

// query runs one status-like command and indexes the parsed states by id.
func (a *Agent) query(ctx context.Context, s *session, ids []scheduler.JobID, cmd scheduler.Command, parse func([]byte) ([]scheduler.JobState, error), timeout time.Duration) (map[scheduler.JobID]scheduler.JobState, error) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.run.Run(qctx, cmd)
	if err != nil {
		return nil, err
	}
	if sc, ok := s.sched.(scheduler.StatusChecker); ok {
		if err := sc.CheckStatus(ids, res); err != nil {
			return nil, err
		}
	} else if res.ExitCode != 0 {
		return nil, scheduler.NewCommandError(cmd, res)
	}
	states, err := parse(res.Stdout)
	if err != nil {
		return nil, err
	}
	out := make(map[scheduler.JobID]scheduler.JobState, len(states))
	for _, st := range states {
		out[st.ID] = st
	}
	return out, nil
}

func (a *Agent) markStale(jobs []store.Job, err error) {
	for _, j := range jobs {
		a.update(j.ID, func(j *store.Job) { j.Error = err.Error() })
	}
	if len(jobs) > 0 {
		a.log.Warn().Str("identity", jobs[0].Identity).Str("user", jobs[0].User).Err(err).Msg("job states are stale")
	}
}

// apply records a scheduler-reported state.
func (a *Agent) apply(id string, st scheduler.JobState) {
	now := time.Now().UTC()
	a.update(id, func(j *store.Job) {
		j.State = st.Raw
		j.Status = string(st.Status)
		j.Reason = st.Reason
		j.Error = ""
		if st.Queue != "" {
			j.Queue = st.Queue
		}
		if st.User != "" {
			j.Owner = st.User
		}
		if !st.Started.IsZero() {
			j.Started = st.Started.UTC()
		}
		if !st.Ended.IsZero() {
			j.Ended = st.Ended.UTC()
		}
		if st.ExitCode != nil {
			code := *st.ExitCode
			if st.Signal != 0 && code == 0 {
				code = 128 + st.Signal
			}
			j.AcctExit = &code
		}
		if st.Status.Final() && j.FinalSeen.IsZero() {
			j.FinalSeen = now
		}
	})
}

// collectExit reads .exitcode (and .command.begin) of ended jobs in one SFTP session. A missing
// .exitcode is waited for up to the grace period (NFS may show it late), then accounting's exit
// code is used; a job that never started is finished at once.
func (a *Agent) collectExit(ctx context.Context, s *session, jobs []store.Job) {
	var rels []string
	for _, j := range jobs {
		rels = append(rels, path.Join(j.Dir, scheduler.ExitCodeFile), path.Join(j.Dir, scheduler.BeginFile))
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Poll.CommandTimeout.Duration)
	defer cancel()
	files, err := s.stager.ReadSmall(rctx, s.lease, rels, 64)
	if err != nil {
		a.markStale(jobs, fmt.Errorf("read exit codes: %w", err))
		return
	}
	grace := a.cfg.Poll.ExitCodeGrace.Duration
	jobs = a.acctExits(ctx, s, jobs, files, grace)
	for _, j := range jobs {
		raw, hasExit := files[path.Join(j.Dir, scheduler.ExitCodeFile)]
		_, began := files[path.Join(j.Dir, scheduler.BeginFile)]
		code, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
		switch {
		case hasExit && perr == nil:
			a.finish(j.ID, &code, "")
		case !began && j.Started.IsZero():
			// Never started (cancelled or failed while pending): no .exitcode will come.
			a.finish(j.ID, j.AcctExit, "")
		case time.Since(j.FinalSeen) < grace:
			a.update(j.ID, func(j *store.Job) {
				if !scheduler.Status(j.Status).Final() {
					return
				}
				j.Reason = "waiting for " + scheduler.ExitCodeFile
			})
		case j.AcctExit != nil:
			a.finish(j.ID, j.AcctExit, fmt.Sprintf("%s missing after %s; exit code from scheduler accounting", scheduler.ExitCodeFile, grace))
		default:
			a.finish(j.ID, nil, fmt.Sprintf("%s missing after %s and the scheduler reports no exit code: terminated for an unknown reason", scheduler.ExitCodeFile, grace))
		}
	}
}

// acctExits asks accounting, in one command, for the exit codes of jobs whose .exitcode is still
// missing after the grace period and whose status query gave none (squeue lists a completed job
// for a while after it ended, without its exit code). It returns jobs with their exit codes
// filled in, and without those whose accounting query failed: they stay stale and wait for the
// next poll rather than end as "unknown".
func (a *Agent) acctExits(ctx context.Context, s *session, jobs []store.Job, files map[string][]byte, grace time.Duration) []store.Job {
	acct, ok := s.sched.(scheduler.Accounting)
	if !ok {
		return jobs
	}
	var need []scheduler.JobID
	asked := make([]bool, len(jobs))
	for i, j := range jobs {
		_, hasExit := files[path.Join(j.Dir, scheduler.ExitCodeFile)]
		_, began := files[path.Join(j.Dir, scheduler.BeginFile)]
		if !hasExit && (began || !j.Started.IsZero()) && j.AcctExit == nil && time.Since(j.FinalSeen) >= grace {
			need = append(need, scheduler.JobID(j.SchedulerID))
			asked[i] = true
		}
	}
	if len(need) == 0 {
		return jobs
	}
	states, err := a.query(ctx, s, need, acct.AccountingCommand(s.key.User, need), acct.ParseAccounting, a.cfg.Poll.CommandTimeout.Duration)
	out := jobs[:0:0]
	var stale []store.Job
	for i, j := range jobs {
		switch {
		case !asked[i]:
		case err != nil:
			stale = append(stale, j)
			continue
		default:
			if st, ok := states[scheduler.JobID(j.SchedulerID)]; ok && st.ExitCode != nil {
				a.apply(j.ID, st)
				if c, ok := a.current(j.ID); ok {
					j = c
				}
			}
		}
		out = append(out, j)
	}
	if len(stale) > 0 {
		a.markStale(stale, fmt.Errorf("accounting query for the exit code failed: %w", err))
	}
	return out
}

// finish records the exit code and ends tracking.
func (a *Agent) finish(id string, code *int, note string) {
	a.update(id, func(j *store.Job) {
		j.ExitCode = code
		st := scheduler.Status(j.Status)
		switch {
		case !st.Final():
			// Vanished from both status and accounting: derive the outcome from the exit code.
			if code != nil && *code == 0 {
				j.Status = string(scheduler.StatusCompleted)
			} else {
				j.Status = string(scheduler.StatusFailed)
			}
		case code != nil && *code == 140 && st == scheduler.StatusFailed:
			// The wrapper saw the scheduler's time-limit warning (USR2).
			j.Status = string(scheduler.StatusTimeout)
		case code != nil && *code != 0 && st == scheduler.StatusCompleted:
			j.Status = string(scheduler.StatusFailed)
		}
		if j.CancelRequested && (code == nil || (scheduler.Status(j.Status) != scheduler.StatusCompleted && scheduler.Status(j.Status) != scheduler.StatusTimeout)) {
			// Ferry cancelled it. Grid Engine, for one, reports such a job as failed, and Torque as
			// completed (C) when it was cancelled before its wrapper started (no exit code).
			j.Status = string(scheduler.StatusCancelled)
		}
		if j.Reason == "waiting for "+scheduler.ExitCodeFile {
			j.Reason = ""
		}
		if note != "" {
			j.Error = note
		}
		j.Done = true
	})
}
