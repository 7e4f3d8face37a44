package agent

import (
	"context"
	"fmt"

	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// watchBuffer is how many events a slow watcher may lag before its stream is ended.
const watchBuffer = 4096

type watcher struct {
	req      contract.WatchRequest
	ids      map[string]bool
	ch       chan contract.JobEvent
	overflow bool // guarded by Agent.mu
}

func (w *watcher) match(j *store.Job) bool {
	if w.req.Identity != "" && j.Identity != w.req.Identity {
		return false
	}
	if w.req.User != "" && j.User != w.req.User {
		return false
	}
	return len(w.ids) == 0 || w.ids[j.ID]
}

// notifyLocked sends j to every matching watcher. a.mu must be held. A watcher whose buffer is full
// is ended (it must resync with Status) rather than silently missing events.
func (a *Agent) notifyLocked(j *store.Job) {
	for id, w := range a.watchers {
		if !w.match(j) {
			continue
		}
		select {
		case w.ch <- contract.JobEvent{Job: toPlugin(j)}:
		default:
			w.overflow = true
			close(w.ch)
			delete(a.watchers, id)
		}
	}
}

// Watch streams state changes of the selected jobs to fn, starting with the current state of each
// selected job that is still active (or, for explicit ids, every selected job).
// Members watch only their own jobs.
func (a *Agent) Watch(ctx context.Context, req contract.WatchRequest, fn func(contract.JobEvent) error) error {
	p, err := a.Authorize(ctx, identity.JobWatch, req.User)
	if err != nil {
		return err
	}
	if !p.Owner {
		req.User = p.Name
	}
	w := &watcher{req: req, ids: map[string]bool{}, ch: make(chan contract.JobEvent, watchBuffer)}
	for _, id := range req.IDs {
		w.ids[id] = true
	}
	a.mu.Lock()
	var initial []contract.JobEvent
	for _, j := range a.jobs {
		if w.match(j) && (!j.Done || len(w.ids) > 0) {
			initial = append(initial, contract.JobEvent{Job: toPlugin(j)})
		}
	}
	id := a.nextW
	a.nextW++
	a.watchers[id] = w
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if _, ok := a.watchers[id]; ok {
			delete(a.watchers, id)
			close(w.ch)
		}
		a.mu.Unlock()
	}()
	for _, ev := range initial {
		if err := fn(ev); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.ctx.Done():
			return fmt.Errorf("%w: agent shutting down", contract.ErrUnavailable)
		case ev, ok := <-w.ch:
			if !ok {
				a.mu.Lock()
				over := w.overflow
				a.mu.Unlock()
				if over {
					return fmt.Errorf("%w: watch stream fell behind; resync with Status and watch again", contract.ErrUnavailable)
				}
				return fmt.Errorf("%w: agent shutting down", contract.ErrUnavailable)
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}
