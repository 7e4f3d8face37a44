package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

// Failover is a Service over several agents that share one store (see docs/deployment.md): each
// call goes to the agent it last reached, and moves on to the next when that agent is down or
// answers that it does not work the call's identity (ErrUnavailable), until one answers or the
// call's context ends. It is what a launcher given a list of agents uses.
//
// Only calls that are safe to repeat are retried: Submit with a Token (the agents settle a submit
// by its token, never twice), Status, ListJobs, Cancel, and staging (which overwrites). A Submit
// without a Token is sent once. Watch moves to another agent only before its first event.
type Failover struct {
	files  []string
	logger hclog.Logger
	// Within bounds the retries of one call whose context has no deadline (default 2 minutes:
	// longer than a takeover, which takes at most the lease ttl plus one renewal).
	Within time.Duration

	mu   sync.Mutex
	cur  int
	cl   *conn // the current agent's connection; nil until attached
	done bool
}

// conn is one attachment, closed once it is retired and no call is using it: a call that fails
// on one agent must not cut the other calls still in flight there (a cut submit is an ambiguous
// one).
type conn struct {
	cl       *Client
	k        int
	inflight int
	retired  bool
}

// AttachAny returns a Failover over the agents whose reattach files are given, in order of
// preference. It connects lazily: an agent that is down now is tried again later.
func AttachAny(reattachFiles []string, logger hclog.Logger) (*Failover, error) {
	if len(reattachFiles) == 0 {
		return nil, fmt.Errorf("attach to ferry agents: %w: no reattach file", ErrInvalidArgument)
	}
	return &Failover{files: append([]string(nil), reattachFiles...), logger: logger, Within: 2 * time.Minute}, nil
}

// Close disconnects from the current agent (calls in flight there end).
func (f *Failover) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = true
	if f.cl != nil {
		f.cl.cl.Close()
		f.cl = nil
	}
}

// acquire returns the current agent's connection, attaching to the next agent that answers, and
// counts the caller in it; release counts it out.
func (f *Failover) acquire() (*conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil, fmt.Errorf("%w: the failover client is closed", ErrUnavailable)
	}
	if f.cl == nil {
		var errs []error
		for i := 0; i < len(f.files) && f.cl == nil; i++ {
			k := (f.cur + i) % len(f.files)
			cl, err := Attach(f.files[k], f.logger)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.cur, f.cl = k, &conn{cl: cl, k: k}
		}
		if f.cl == nil {
			return nil, fmt.Errorf("%w: no agent answers: %w", ErrUnavailable, errors.Join(errs...))
		}
	}
	f.cl.inflight++
	return f.cl, nil
}

func (f *Failover) release(c *conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.inflight--
	if c.retired && c.inflight == 0 {
		c.cl.Close()
	}
}

// next gives up on c's agent (if it is still the current one) so the next call tries another;
// c is closed when its last call ends.
func (f *Failover) next(c *conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cl != c {
		return
	}
	f.cl = nil
	c.retired = true
	f.cur = (c.k + 1) % len(f.files)
}

// do runs call on agents in turn until it succeeds, fails with an error other than
// ErrUnavailable, or ctx (bounded by Within) ends.
func (f *Failover) do(ctx context.Context, retry bool, call func(ctx context.Context, s Service) error) error {
	if _, ok := ctx.Deadline(); !ok && f.Within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.Within)
		defer cancel()
	}
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		c, err := f.acquire()
		if err == nil {
			err = call(ctx, c.cl.Service())
			if err != nil && errors.Is(err, ErrUnavailable) {
				f.next(c)
			}
			f.release(c)
			if err == nil || !errors.Is(err, ErrUnavailable) || !retry {
				return err
			}
		}
		if attempt > 0 && attempt%len(f.files) == 0 {
			// Every agent said no: wait before the next round (a takeover in progress).
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (and no agent answered within the call's time: %v)", err, ctx.Err())
			case <-time.After(wait):
			}
			wait = min(wait*2, 2*time.Second)
		} else if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		}
	}
}

// Submit submits req, on another agent if need be when it carries a Token.
func (f *Failover) Submit(ctx context.Context, req SubmitRequest) (Job, error) {
	var j Job
	err := f.do(ctx, req.Token != "", func(ctx context.Context, s Service) (err error) {
		j, err = s.Submit(ctx, req)
		return err
	})
	return j, err
}

// Status returns jobs by id; any agent answers from the shared store.
func (f *Failover) Status(ctx context.Context, ids []string) ([]Job, error) {
	var out []Job
	err := f.do(ctx, true, func(ctx context.Context, s Service) (err error) {
		out, err = s.Status(ctx, ids)
		return err
	})
	return out, err
}

// ListJobs lists jobs.
func (f *Failover) ListJobs(ctx context.Context, req ListRequest) ([]Job, error) {
	var out []Job
	err := f.do(ctx, true, func(ctx context.Context, s Service) (err error) {
		out, err = s.ListJobs(ctx, req)
		return err
	})
	return out, err
}

// Cancel cancels jobs; a job whose agent did not answer is retried on the next agent.
func (f *Failover) Cancel(ctx context.Context, ids []string) ([]CancelResult, error) {
	var out []CancelResult
	err := f.do(ctx, true, func(ctx context.Context, s Service) (err error) {
		out, err = s.Cancel(ctx, ids)
		return err
	})
	return out, err
}

// StageIn copies files in.
func (f *Failover) StageIn(ctx context.Context, req StageRequest) (StageResult, error) {
	var out StageResult
	err := f.do(ctx, true, func(ctx context.Context, s Service) (err error) {
		out, err = s.StageIn(ctx, req)
		return err
	})
	return out, err
}

// StageOut copies files out.
func (f *Failover) StageOut(ctx context.Context, req StageRequest) (StageResult, error) {
	var out StageResult
	err := f.do(ctx, true, func(ctx context.Context, s Service) (err error) {
		out, err = s.StageOut(ctx, req)
		return err
	})
	return out, err
}

// Watch streams job changes from one agent; it moves to another only before the first event.
func (f *Failover) Watch(ctx context.Context, req WatchRequest, fn func(JobEvent) error) error {
	started := false
	return f.do(ctx, true, func(ctx context.Context, s Service) error {
		if started {
			return nil
		}
		err := s.Watch(ctx, req, func(e JobEvent) error { started = true; return fn(e) })
		if started && errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("watch ended after its first event: %v", err) // not retried
		}
		return err
	})
}

var _ Service = (*Failover)(nil)
