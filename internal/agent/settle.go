package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// A submit is unsettled when the agent accepted it but does not know whether the scheduler has
// the job: the connection dropped after the submit command started, or the agent stopped during
// it. Such a job keeps its record (status "submitting" or "unknown", no scheduler id) and a
// settler finishes it: it looks the token up, adopts the job if the scheduler has it, and submits
// it otherwise, retrying with backoff for as long as the login node or the controller cannot
// answer. Only a definite answer ends it: the job's id, or a refusal. A launcher that retries with
// the same token meanwhile is told to retry again (contract.ErrUnavailable) or, once settled, gets
// the job.

// settleBackoff bounds the settler's wait between attempts.
var settleBackoff = [2]time.Duration{time.Second, 30 * time.Second}

// claimKey names a token of an identity's user.
func claimKey(identity, user, token string) string { return identity + "\x00" + user + "\x00" + token }

// claim marks the token as being worked on; false if a call or a settler already is.
func (a *Agent) claim(k string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.claims[k] {
		return false
	}
	a.claims[k] = true
	return true
}

func (a *Agent) release(k string) {
	a.mu.Lock()
	delete(a.claims, k)
	a.mu.Unlock()
}

// errTokenBusy is what a Submit with a token already being worked on returns.
func errTokenBusy(identity, user, token string) error {
	return fmt.Errorf("%w: identity %q user %q: a submit with token %q is in progress or being settled; retry with the same token", contract.ErrUnavailable, identity, user, token)
}

// unsettled reports whether j is a submit the agent has not settled.
func unsettled(j *store.Job) bool { return !j.Done && j.SchedulerID == "" }

// startSettler settles job id in the background until it has a scheduler id, was refused, or the
// agent stops.
func (a *Agent) startSettler(id string) {
	a.wg.Add(1)
	go a.settleLoop(id)
}

func (a *Agent) settleLoop(id string) {
	defer a.wg.Done()
	if d := a.settleWait(id); d > 0 {
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(d):
		}
	}
	wait := settleBackoff[0]
	for {
		done, err := a.settleOnce(a.ctx, id)
		if done {
			return
		}
		if err != nil {
			a.log.Warn().Str("job", id).Err(err).Dur("retry_in", wait).Msg("submit not settled yet")
		}
		select {
		case <-a.ctx.Done():
			return // the next start settles it: the record says so
		case <-time.After(wait):
		}
		wait = min(wait*2, settleBackoff[1])
	}
}

// settleOnce makes one attempt at settling job id. done is true when nothing is left to do
// (settled, refused, or the job is gone or already settled by a launcher's retry).
func (a *Agent) settleOnce(ctx context.Context, id string) (done bool, err error) {
	j, ok := a.current(id)
	if !ok || !unsettled(&j) {
		return true, nil // settled, or its identity moved to another agent, which settles it
	}
	ck := claimKey(j.Identity, j.User, j.Token)
	if j.Token != "" {
		if !a.claim(ck) {
			return false, nil // a launcher's retry is settling it right now
		}
		defer a.release(ck)
	}
	return a.settleClaimed(ctx, j)
}

// settleClaimed is settleOnce for a job whose token the caller has claimed.
func (a *Agent) settleClaimed(ctx context.Context, j store.Job) (done bool, err error) {
	id := j.ID
	if wait := a.settleWait(id); wait > 0 {
		return false, fmt.Errorf("the first submit command may still be running on the login node; settling it by its token in %s", wait.Round(time.Second))
	}
	log := a.log.With().Str("identity", j.Identity).Str("user", j.User).Str("job", id).Logger()
	var spec scheduler.JobSpec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		a.refuseSettle(id, fmt.Errorf("stored job spec: %w", err))
		return true, nil
	}
	s, err := a.userSession(j.Identity, j.User)
	if err != nil {
		a.update(id, func(j *store.Job) { j.Error = "submit not settled yet: " + err.Error() })
		return false, err
	}
	jobID, err := a.doSubmit(ctx, s, spec, true)
	switch {
	case err == nil:
		log.Info().Str("scheduler_id", string(jobID)).Msg("submit settled")
		a.settled(id, jobID)
		return true, nil
	case ctx.Err() != nil:
		return true, nil
	case definite(err):
		log.Error().Err(err).Msg("submit refused while settling")
		a.refuseSettle(id, err)
		return true, nil
	default:
		a.update(id, func(j *store.Job) { j.Error = "submit not settled yet: " + err.Error() })
		return false, err
	}
}

// definite reports whether a submit error is an answer (the scheduler refused the job, or it can
// never be looked up) rather than a failure to get one. Unparseable output is not: it is retried.
func definite(err error) bool {
	return errors.Is(err, scheduler.ErrSubmitRejected) || errors.Is(err, errNoLookup)
}

// errNoLookup: the outcome is unknown and the job carries no token to look it up by.
var errNoLookup = errors.New("the job cannot be looked up without a token")

// settled records the scheduler id of a settled submit and starts polling it.
func (a *Agent) settled(id string, jobID scheduler.JobID) {
	var k sshpool.Key
	a.update(id, func(j *store.Job) {
		j.SchedulerID = string(jobID)
		j.Status = string(scheduler.StatusPending)
		j.Error = ""
		k = sshpool.Key{Identity: j.Identity, User: j.User}
	})
	a.ensurePoller(k)
}

func (a *Agent) refuseSettle(id string, err error) {
	a.update(id, func(j *store.Job) {
		j.Status = string(scheduler.StatusFailed)
		j.Error = "submit could not be settled: " + err.Error()
		j.Done = true
	})
}
