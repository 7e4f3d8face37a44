package agent

import (
	"time"
)

// pruneEvery is how often finished jobs older than store.keep_finished are forgotten.
const pruneEvery = time.Hour

// startPruner forgets finished jobs past the retention ([store] keep_finished; 0 keeps them).
func (a *Agent) startPruner() {
	keep := a.cfg.Store.KeepFinished.Duration
	if keep <= 0 {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(pruneEvery)
		defer t.Stop()
		for {
			a.prune(time.Now().Add(-keep))
			select {
			case <-a.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// prune forgets the finished jobs this agent works that ended before cutoff: from memory and the
// store. (With a shared store, each identity's holder prunes its jobs.)
func (a *Agent) prune(cutoff time.Time) int {
	var old []string
	a.mu.Lock()
	for id, j := range a.jobs {
		end := j.Ended
		if end.IsZero() {
			end = j.Submitted
		}
		if j.Done && end.Before(cutoff) {
			old = append(old, id)
		}
	}
	a.mu.Unlock()
	n := 0
	for _, id := range old {
		if err := a.store.Delete(id); err != nil {
			a.log.Warn().Err(err).Str("job", id).Msg("prune finished job")
			continue
		}
		a.mu.Lock()
		a.deleteJobLocked(id)
		a.mu.Unlock()
		n++
	}
	if n > 0 {
		a.log.Info().Int("jobs", n).Time("ended_before", cutoff).Msg("forgot finished jobs past store.keep_finished")
	}
	return n
}
