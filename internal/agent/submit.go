package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// Submit writes the task and its wrapper into the task dir and submits it as the user. A request
// with a Token already seen for that identity and user returns the job it created.
func (a *Agent) Submit(ctx context.Context, req contract.SubmitRequest) (contract.Job, error) {
	if req.Token != "" && !tokenRE.MatchString(req.Token) {
		return contract.Job{}, fmt.Errorf("%w: token %q must be 1-128 letters, digits, '.', '_', ':' or '-'", contract.ErrInvalidArgument, req.Token)
	}
	if len(req.Script) == 0 {
		return contract.Job{}, fmt.Errorf("%w: %v", contract.ErrInvalidArgument, scheduler.ErrEmptyScript)
	}
	p, s, err := a.act(ctx, identity.JobSubmit, audit.ActionJobSubmit, req.Identity, req.User)
	if err != nil {
		return contract.Job{}, err
	}
	if req.Token != "" {
		// One call at a time per token: a second concurrent call (a launcher retrying after its
		// own timeout) is told to retry rather than racing the first into a second job.
		ck := claimKey(req.Identity, req.User, req.Token)
		if !a.claim(ck) {
			return contract.Job{}, errTokenBusy(req.Identity, req.User, req.Token)
		}
		defer a.release(ck)
		if j, err := a.store.ByToken(req.Identity, req.User, req.Token); err == nil {
			return a.resubmitted(ctx, j)
		}
	}
	id := newID()
	rel := req.Dir
	if rel == "" {
		rel = path.Join("ferry", req.User, id)
	}
	dir, err := s.stager.Resolve(rel)
	if err != nil {
		return contract.Job{}, fmt.Errorf("%w: identity %q user %q: %v", contract.ErrInvalidArgument, req.Identity, req.User, err)
	}
	if req.Dir != "" {
		// The work dir is shared by the identity's group: keep one task dir to one job at a time,
		// and a member out of other members' task dirs (their scripts and .exitcode live there).
		dk := "dir\x00" + req.Identity + "\x00" + dir
		if !a.claim(dk) {
			return contract.Job{}, fmt.Errorf("%w: identity %q user %q: another submit into %s is in progress", contract.ErrUnavailable, req.Identity, req.User, dir)
		}
		defer a.release(dk)
		if err := a.dirFree(req.Identity, req.User, dir); err != nil {
			a.Audited(p, audit.ActionJobSubmit, req.Identity, req.User, "", err, "")
			return contract.Job{}, err
		}
	}
	spec := scheduler.JobSpec{
		Name: req.Name, Dir: dir, Token: req.Token, Env: req.Env,
		Resources: scheduler.Resources{
			CPUs: req.Resources.CPUs, MemoryMB: req.Resources.MemoryMB, Time: req.Resources.Time,
			Queue: req.Resources.Queue, Account: req.Resources.Account, Extra: req.Resources.Extra,
		},
	}
	script, err := s.sched.Render(spec)
	if err != nil {
		return contract.Job{}, fmt.Errorf("%w: identity %q user %q: %v", contract.ErrInvalidArgument, req.Identity, req.User, err)
	}
	if _, err := scheduler.CommandLine(s.sched.SubmitCommand(spec)); err != nil {
		return contract.Job{}, fmt.Errorf("%w: identity %q user %q: %v", contract.ErrInvalidArgument, req.Identity, req.User, err)
	}
	log := a.log.With().Str("identity", req.Identity).Str("user", req.User).Str("job", id).Logger()

	// Stage the task and wrapper. Nothing is submitted yet, so a failure here loses nothing.
	if err := s.stager.WriteFiles(ctx, s.lease, []stage.File{
		{Rel: path.Join(dir, scheduler.TaskFile), Data: req.Script},
		{Rel: path.Join(dir, scheduler.RunFile), Data: script},
		// A reused task dir must not show an old run's start or exit code: the poller and the
		// settling of an ambiguous submit read them as this job's.
		{Rel: path.Join(dir, scheduler.BeginFile), Remove: true},
		{Rel: path.Join(dir, scheduler.ExitCodeFile), Remove: true},
	}); err != nil {
		return contract.Job{}, stageErr(req.Identity, req.User, err)
	}

	specJSON, _ := json.Marshal(spec)
	j := &store.Job{
		ID: id, Identity: req.Identity, User: req.User, Token: req.Token, Name: req.Name, Dir: dir,
		Status: statusSubmitting, Submitted: time.Now().UTC(), Spec: specJSON,
	}
	// Persisted before the submit runs: if the agent dies mid-submit, the restarted agent finds
	// the record and settles it by token instead of losing or duplicating the job.
	if err := a.store.Put(*j); err != nil {
		return contract.Job{}, fmt.Errorf("persist job: %w", err)
	}
	a.mu.Lock()
	a.putJobLocked(j)
	a.mu.Unlock()

	jobID, err := a.doSubmit(ctx, s, spec, false)
	if err != nil {
		log.Warn().Err(err).Msg("submit failed")
		code := contract.ErrUnavailable
		if errors.Is(err, scheduler.ErrSubmitRejected) || errors.Is(err, scheduler.ErrParse) {
			code = contract.ErrInvalidArgument
		}
		if errors.Is(err, sshpool.ErrOutcomeUnknown) {
			// The job may exist: keep the record, and settle it in the background (adopt it if
			// the scheduler has it, else submit it), so a retry with the same token returns it.
			a.update(id, func(j *store.Job) {
				j.Status = string(scheduler.StatusUnknown)
				j.Error = "submit outcome unknown: " + err.Error()
			})
			// The submit command may still be running on the login node (a cut connection or
			// a cancelled call does not stop it): give it time to finish before the settler
			// looks its token up, or the lookup could miss it and submit it again.
			a.mu.Lock()
			a.notBefore[id] = time.Now().Add(ambiguousGrace)
			a.mu.Unlock()
			a.startSettler(id)
		} else {
			// The submit certainly did not create a job: forget it, so a retry submits afresh.
			a.forget(id)
		}
		err = fmt.Errorf("%w: submit job %q as %q on identity %q: %v", code, req.Name, req.User, req.Identity, err)
		a.Audited(p, audit.ActionJobSubmit, req.Identity, req.User, id, err, "")
		return contract.Job{}, err
	}
	a.update(id, func(j *store.Job) {
		j.SchedulerID = string(jobID)
		j.Status = string(scheduler.StatusPending)
		j.Error = ""
	})
	log.Info().Str("scheduler_id", string(jobID)).Msg("job submitted")
	a.Audited(p, audit.ActionJobSubmit, req.Identity, req.User, id, nil, "scheduler id "+string(jobID))
	a.ensurePoller(s.key)
	a.mu.Lock()
	out := toPlugin(a.jobs[id])
	a.mu.Unlock()
	return out, nil
}

// ambiguousGrace is how long a submit whose outcome is unknown waits before its token is looked
// up: long enough for an sbatch whose connection was cut to reach the controller.
var ambiguousGrace = 5 * time.Second

// statusSubmitting marks a job whose submit has not settled yet.
const statusSubmitting = "submitting"

// doSubmit runs the submit command and returns the job id. When the outcome is unknown and the job
// carries a token the scheduler can look up, it asks the scheduler whether the job exists before
// submitting again, so a job is never submitted twice. lookupFirst starts with that question (used
// by a restarted agent for a submit it did not see finish).
func (a *Agent) doSubmit(ctx context.Context, s *session, spec scheduler.JobSpec, lookupFirst bool) (scheduler.JobID, error) {
	lookup, canLookup := s.sched.(scheduler.TokenLookup)
	canLookup = canLookup && spec.Token != ""
	if lookupFirst && !canLookup {
		return "", fmt.Errorf("%w: %w: %w", sshpool.ErrOutcomeUnknown, errNoLookup, lastOr(spec.Token))
	}
	cmd := s.sched.SubmitCommand(spec)
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			case <-ctx.Done():
				return "", fmt.Errorf("%w: %w (last error: %v)", sshpool.ErrOutcomeUnknown, ctx.Err(), lastErr)
			}
		}
		if canLookup && (attempt > 0 || lookupFirst) {
			id, found, err := a.lookupToken(ctx, s, lookup, spec.Token)
			if err != nil {
				a.log.Warn().Err(err).Str("identity", s.key.Identity).Str("user", s.key.User).Str("token", spec.Token).
					Msg("token lookup failed; the submit stays unsettled")
				lastErr = err
				continue
			}
			if found {
				a.log.Info().Str("identity", s.key.Identity).Str("user", s.key.User).Str("token", spec.Token).
					Str("scheduler_id", string(id)).Msg("ambiguous submit settled: the job exists")
				return id, nil
			}
			// Not listed: a job that already ran may have been forgotten (Grid Engine forgets a
			// job the moment it ends). Its task dir tells: the wrapper records its start and id.
			id, ran, err := a.ranInDir(ctx, s, spec.Dir)
			if err != nil {
				lastErr = err
				continue
			}
			if ran {
				if id == "" {
					return "", fmt.Errorf("%w: the job ran (%s in %s) but the scheduler no longer lists it and its id was not recorded", sshpool.ErrOutcomeUnknown, scheduler.BeginFile, spec.Dir)
				}
				a.log.Info().Str("identity", s.key.Identity).Str("user", s.key.User).Str("token", spec.Token).
					Str("scheduler_id", string(id)).Msg("ambiguous submit settled: the job already ran (task dir)")
				return id, nil
			}
		}
		res, err := a.runSubmit(ctx, s, cmd)
		if err != nil {
			lastErr = err
			if !canLookup || !errors.Is(err, sshpool.ErrOutcomeUnknown) {
				// Never started (nothing to settle), or started with no way to check: report.
				return "", err
			}
			continue
		}
		if res.ExitCode != 0 {
			cerr := scheduler.NewCommandError(cmd, res)
			switch classify(s.sched, res) {
			case scheduler.FailureUnavailable:
				// The controller could not be reached: certainly no job. Retryable.
				return "", fmt.Errorf("%w: %v", scheduler.ErrUnavailable, cerr)
			case scheduler.FailureAmbiguous:
				// The controller got the request and its answer was lost: look before retrying.
				lastErr = fmt.Errorf("%w: %v", sshpool.ErrOutcomeUnknown, cerr)
				if !canLookup {
					return "", lastErr
				}
				continue
			}
			return "", fmt.Errorf("%w: %v", scheduler.ErrSubmitRejected, cerr)
		}
		id, perr := s.sched.ParseSubmit(res.Stdout)
		if perr != nil && canLookup {
			// The scheduler accepted something, but its answer is garbage: the job may exist.
			lastErr = fmt.Errorf("%w: %w", sshpool.ErrOutcomeUnknown, perr)
			continue
		}
		return id, perr
	}
	return "", fmt.Errorf("%w: %v", sshpool.ErrOutcomeUnknown, lastErr)
}

// dirFree refuses a task dir that belongs to another user's job, or to a live job of user's.
func (a *Agent) dirFree(identity, user, dir string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, j := range a.jobs {
		if j.Identity != identity || j.Dir != dir {
			continue
		}
		if j.User != user {
			return fmt.Errorf("%w: identity %q user %q: task dir %s belongs to job %s of user %q", contract.ErrPermissionDenied, identity, user, dir, j.ID, j.User)
		}
		if !j.Done {
			return fmt.Errorf("%w: identity %q user %q: task dir %s is in use by live job %s; use a new dir per task", contract.ErrInvalidArgument, identity, user, dir, j.ID)
		}
	}
	return nil
}

// classify reads a failed submit with the adapter's FailureClassifier, if it has one.
func classify(sched scheduler.Scheduler, res scheduler.Result) scheduler.Failure {
	if fc, ok := sched.(scheduler.FailureClassifier); ok {
		return fc.ClassifyFailure(res)
	}
	return scheduler.FailureRejected
}

func lastOr(token string) error {
	if token == "" {
		return errors.New("the submit carried no token")
	}
	return errors.New("the scheduler adapter cannot look jobs up by token")
}

// resubmitted answers a Submit whose token already has a job: the job, once its submit is
// settled; while it is not, one settling attempt within this call (the caller holds the claim).
func (a *Agent) resubmitted(ctx context.Context, j store.Job) (contract.Job, error) {
	if c, ok := a.current(j.ID); ok {
		j = c
	}
	if unsettled(&j) {
		if _, err := a.settleClaimed(ctx, j); err != nil {
			return contract.Job{}, fmt.Errorf("%w: submit job %q as %q on identity %q: the first submit's outcome is still unknown: %v", contract.ErrUnavailable, j.Name, j.User, j.Identity, err)
		}
		if c, ok := a.current(j.ID); ok {
			j = c
		}
	}
	return toPlugin(&j), nil
}

// current returns a copy of the agent's record of job id.
func (a *Agent) current(id string) (store.Job, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if j, ok := a.jobs[id]; ok {
		return *j, true
	}
	return store.Job{}, false
}

// ranInDir reports whether the job of task dir dir has started (the wrapper wrote BeginFile or
// ExitCodeFile; Submit removes both from a reused dir before it submits) and the scheduler id the
// wrapper recorded, if any.
func (a *Agent) ranInDir(ctx context.Context, s *session, dir string) (scheduler.JobID, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Poll.CommandTimeout.Duration)
	defer cancel()
	begin, exit := path.Join(dir, scheduler.BeginFile), path.Join(dir, scheduler.ExitCodeFile)
	files, err := s.stager.ReadSmall(rctx, s.lease, []string{begin, exit}, 256)
	if err != nil {
		return "", false, fmt.Errorf("read the task dir: %w", err)
	}
	b, began := files[begin]
	_, exited := files[exit]
	id := strings.TrimSpace(string(b))
	if strings.ContainsAny(id, " \t\n\x00") {
		id = ""
	}
	return scheduler.JobID(id), began || exited, nil
}

// lookupToken asks the scheduler for the user's job carrying token.
func (a *Agent) lookupToken(ctx context.Context, s *session, lookup scheduler.TokenLookup, token string) (scheduler.JobID, bool, error) {
	qctx, cancel := context.WithTimeout(ctx, a.cfg.Poll.CommandTimeout.Duration)
	defer cancel()
	lc := lookup.LookupCommand(s.key.User)
	res, err := s.run.Run(qctx, lc)
	if err != nil {
		return "", false, err
	}
	if check, ok := lookup.(scheduler.LookupChecker); ok {
		if err := check.CheckLookup(res); err != nil {
			return "", false, err
		}
	} else if res.ExitCode != 0 {
		return "", false, scheduler.NewCommandError(lc, res)
	}
	return lookup.ParseLookup(res.Stdout, token)
}

// forget removes a job that never reached the scheduler.
func (a *Agent) forget(id string) {
	a.mu.Lock()
	a.deleteJobLocked(id)
	a.mu.Unlock()
	if err := a.store.Delete(id); err != nil {
		a.log.Error().Err(err).Str("job", id).Msg("forget job")
	}
}

func stageErr(identity, user string, err error) error {
	code := contract.ErrUnavailable
	if errors.Is(err, stage.ErrOutsideWorkDir) {
		code = contract.ErrInvalidArgument
	}
	who := fmt.Sprintf("identity %q user %q", identity, user)
	if strings.Contains(err.Error(), who) { // pool errors already name both
		return fmt.Errorf("%w: %v", code, err)
	}
	return fmt.Errorf("%w: %s: %v", code, who, err)
}

// Cancel cancels jobs, one scheduler command per user and batch.
func (a *Agent) Cancel(ctx context.Context, ids []string) ([]contract.CancelResult, error) {
	type group struct {
		identity, user string
		jobs           []store.Job
	}
	groups := map[string]*group{}
	var order []string
	results := make(map[string]string, len(ids))
	var missing []string
	p, err := a.Caller(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	for _, id := range ids {
		j, ok := a.jobs[id]
		if !ok {
			results[id] = "job not found"
			missing = append(missing, id)
			continue
		}
		denied := identity.Allow(p, identity.JobCancel, j.User)
		switch {
		case denied != nil:
			results[id] = denied.Error()
			a.Audited(p, audit.ActionJobCancel, j.Identity, j.User, id, denied, "")
		case j.Done || scheduler.Status(j.Status).Final():
			results[id] = "" // already ended: not an error
		case j.SchedulerID == "":
			results[id] = "job is still being submitted; retry"
		default:
			k := j.Identity + "\x00" + j.User
			g := groups[k]
			if g == nil {
				g = &group{identity: j.Identity, user: j.User}
				groups[k] = g
				order = append(order, k)
			}
			g.jobs = append(g.jobs, *j)
		}
	}
	a.mu.Unlock()
	for _, id := range missing {
		// A job of an identity another agent works (shared store): say where to go.
		if sj, ok := a.storedJob(id); ok && identity.Allow(p, identity.JobCancel, sj.User) == nil {
			results[id] = a.notHere(sj.Identity).Error()
		}
	}
	for _, k := range order {
		g := groups[k]
		s, err := a.userSession(g.identity, g.user)
		for start := 0; start < len(g.jobs); start += a.cfg.Poll.CancelBatch {
			batch := g.jobs[start:min(start+a.cfg.Poll.CancelBatch, len(g.jobs))]
			var sids []scheduler.JobID
			for _, j := range batch {
				sids = append(sids, scheduler.JobID(j.SchedulerID))
			}
			berr := err
			if berr == nil {
				cmd := s.sched.CancelCommand(sids)
				var res scheduler.Result
				res, berr = s.run.Run(ctx, cmd)
				if berr == nil {
					berr = s.sched.CheckCancel(sids, res)
				}
			}
			for _, j := range batch {
				if berr != nil {
					results[j.ID] = berr.Error()
					continue
				}
				results[j.ID] = ""
				a.update(j.ID, func(j *store.Job) { j.Reason, j.CancelRequested = "cancel requested", true })
				a.Audited(p, audit.ActionJobCancel, j.Identity, j.User, j.ID, nil, "")
			}
		}
		a.ensurePoller(sshpool.Key{Identity: g.identity, User: g.user})
	}
	out := make([]contract.CancelResult, 0, len(ids))
	for _, id := range ids {
		out = append(out, contract.CancelResult{ID: id, Error: results[id]})
	}
	return out, nil
}

// StageIn copies local files into the work dir as the user.
func (a *Agent) StageIn(ctx context.Context, req contract.StageRequest) (contract.StageResult, error) {
	return a.stageFiles(ctx, req, true)
}

// StageOut copies work-dir files to local paths.
func (a *Agent) StageOut(ctx context.Context, req contract.StageRequest) (contract.StageResult, error) {
	return a.stageFiles(ctx, req, false)
}

func (a *Agent) stageFiles(ctx context.Context, req contract.StageRequest, in bool) (contract.StageResult, error) {
	_, s, err := a.act(ctx, identity.JobStage, "", req.Identity, req.User)
	if err != nil {
		return contract.StageResult{}, err
	}
	var total contract.StageResult
	for _, f := range req.Files {
		if f.Local == "" || !strings.HasPrefix(f.Local, "/") {
			return total, fmt.Errorf("%w: local path %q must be absolute", contract.ErrInvalidArgument, f.Local)
		}
		var r stage.Result
		if in {
			r, err = s.stager.Upload(ctx, s.lease, f.Local, f.Remote)
		} else {
			r, err = s.stager.Download(ctx, s.lease, f.Remote, f.Local)
		}
		total.Files += r.Files
		total.Bytes += r.Bytes
		if err != nil {
			return total, stageErr(req.Identity, req.User, err)
		}
	}
	return total, nil
}
