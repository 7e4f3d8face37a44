package plugin_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/ferryhpc/ferry/plugin"
)

// fakeService is a plugin.Service for the shim tests. It records every call and its arguments and
// answers with canned values; err, when set, is returned by every method instead. Status with the
// id "missing" fails with ErrNotFound, so a subprocess agent can be made to fail on demand.
type fakeService struct {
	version string // returned by Version (the Versioner ability)
	log     hclog.Logger

	// Canned answers.
	job     plugin.Job
	jobs    []plugin.Job
	results []plugin.CancelResult
	stage   plugin.StageResult
	events  []plugin.JobEvent
	// watchEnd, if set, makes Watch return it after sending events instead of waiting for ctx;
	// watchReturnNil makes it return nil there.
	watchEnd       error
	watchReturnNil bool
	err            error

	adminAnswers // canned answers of the Admin methods (fake_admin_test.go)

	// watchDone receives what Watch returned, so tests can see the agent's side end.
	watchDone chan error

	mu        sync.Mutex // guards the fields below
	calls     []string
	submitReq plugin.SubmitRequest
	ids       []string
	watchReq  plugin.WatchRequest
	stageReq  plugin.StageRequest
	listReq   plugin.ListRequest
	actors    map[string]seenActor // by method name
	admin     adminArgs
}

var _ plugin.Service = (*fakeService)(nil)

func newFake() *fakeService {
	return &fakeService{version: "v9.9.9-test", log: hclog.NewNullLogger(), watchDone: make(chan error, 1)}
}

func (f *fakeService) Version() string { return f.version }

func (f *fakeService) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

// seenActor is the actor a call's ctx carried, as the implementation saw it.
type seenActor struct {
	actor plugin.Actor
	ok    bool // an actor was set at all
}

// recordCtx records a call and the actor in its ctx.
func (f *fakeService) recordCtx(ctx context.Context, name string) {
	a, ok := plugin.ActorFrom(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	if f.actors == nil {
		f.actors = map[string]seenActor{}
	}
	f.actors[name] = seenActor{a, ok}
}

// Actor returns the actor the last call of method name saw.
func (f *fakeService) Actor(name string) seenActor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.actors[name]
}

func (f *fakeService) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeService) Submit(ctx context.Context, req plugin.SubmitRequest) (plugin.Job, error) {
	f.recordCtx(ctx, "Submit")
	f.mu.Lock()
	f.submitReq = req
	f.mu.Unlock()
	f.log.Info("fake submit", "token", req.Token, "user", req.User)
	if f.err != nil {
		return plugin.Job{}, f.err
	}
	return f.job, nil
}

func (f *fakeService) Status(ctx context.Context, ids []string) ([]plugin.Job, error) {
	f.recordCtx(ctx, "Status")
	f.mu.Lock()
	f.ids = ids
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if slices.Contains(ids, "missing") {
		return nil, fmt.Errorf("status of job %q: %w", "missing", plugin.ErrNotFound)
	}
	return f.jobs, nil
}

func (f *fakeService) Watch(ctx context.Context, req plugin.WatchRequest, fn func(plugin.JobEvent) error) (err error) {
	f.recordCtx(ctx, "Watch")
	f.mu.Lock()
	f.watchReq = req
	f.mu.Unlock()
	defer func() {
		select {
		case f.watchDone <- err:
		default: // a test that watches more than once reads only the first result
		}
	}()
	if f.err != nil {
		return f.err
	}
	for _, ev := range f.events {
		if err := fn(ev); err != nil {
			return err
		}
	}
	switch {
	case f.watchReturnNil:
		return nil
	case f.watchEnd != nil:
		return f.watchEnd
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return fmt.Errorf("fake watch: context not cancelled within a minute")
	}
}

func (f *fakeService) Cancel(ctx context.Context, ids []string) ([]plugin.CancelResult, error) {
	f.recordCtx(ctx, "Cancel")
	f.mu.Lock()
	f.ids = ids
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.results, nil
}

func (f *fakeService) StageIn(ctx context.Context, req plugin.StageRequest) (plugin.StageResult, error) {
	f.recordCtx(ctx, "StageIn")
	f.mu.Lock()
	f.stageReq = req
	f.mu.Unlock()
	if f.err != nil {
		return plugin.StageResult{}, f.err
	}
	return f.stage, nil
}

func (f *fakeService) StageOut(ctx context.Context, req plugin.StageRequest) (plugin.StageResult, error) {
	f.recordCtx(ctx, "StageOut")
	f.mu.Lock()
	f.stageReq = req
	f.mu.Unlock()
	if f.err != nil {
		return plugin.StageResult{}, f.err
	}
	return f.stage, nil
}

func (f *fakeService) ListJobs(ctx context.Context, req plugin.ListRequest) ([]plugin.Job, error) {
	f.recordCtx(ctx, "ListJobs")
	f.mu.Lock()
	f.listReq = req
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.jobs, nil
}

func intPtr(v int) *int { return &v }

// fullJob has every field set, including a zero exit code (set, not nil) and times with
// nanoseconds.
func fullJob() plugin.Job {
	return plugin.Job{
		ID:          "fj-1",
		Identity:    "lab-a",
		User:        "alice",
		Token:       "tok-1",
		Name:        "align (sample 1)",
		Dir:         "/scratch/lab-a/work/ab/cdef",
		SchedulerID: "1234.server",
		Status:      "completed",
		State:       "CD",
		Reason:      "None",
		Queue:       "debug",
		Submitted:   time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC),
		Started:     time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC),
		Ended:       time.Date(2026, 3, 1, 11, 30, 0, 1, time.UTC),
		ExitCode:    intPtr(0),
		Error:       "status stale: ssh: connection lost",
		Owner:       "alice",
		Done:        true,
	}
}

// pendingJob is a job that has not started: zero times and no exit code.
func pendingJob() plugin.Job {
	return plugin.Job{ID: "fj-2", Identity: "lab-a", User: "bob", Status: "pending", State: "PD", Reason: "Priority"}
}

// failedJob is a job with a signal exit code and only some times set.
func failedJob() plugin.Job {
	return plugin.Job{
		ID:        "fj-3",
		Status:    "failed",
		Submitted: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC),
		Ended:     time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
		ExitCode:  intPtr(137),
	}
}
