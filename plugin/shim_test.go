package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
)

// These tests call a fakeService through both shims over a real in-process gRPC connection
// (go-plugin's TestPluginGRPCConn, via plugintest.Client), as a launcher would.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestInfo(t *testing.T) {
	t.Run("versioner", func(t *testing.T) {
		c := plugintest.Client(t, newFake())
		info, err := c.Info(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, plugin.Info{Version: "v9.9.9-test", ProtocolVersion: 1}, info)
	})
	t.Run("build info", func(t *testing.T) {
		// Embedding the interface hides the fake's Version method.
		c := plugintest.Client(t, struct{ plugin.Service }{newFake()})
		info, err := c.Info(testCtx(t))
		require.NoError(t, err)
		assert.NotEmpty(t, info.Version)
		assert.Equal(t, int(plugin.Handshake.ProtocolVersion), info.ProtocolVersion)
	})
}

func TestSubmitRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  plugin.SubmitRequest
		job  plugin.Job
	}{
		{
			name: "every field",
			req: plugin.SubmitRequest{
				Identity: "lab-a",
				User:     "alice",
				Token:    "run-7/task-3/attempt-1",
				Name:     "align (sample 1)",
				Dir:      "ab/cdef0123",
				Script:   []byte("#!/bin/bash\necho 'hi' $HOME\n\x00\xff"),
				Env:      map[string]string{"A": "1", "EMPTY": "", "QUOTED": "it's $(x)\nnext"},
				Resources: plugin.Resources{
					CPUs:     8,
					MemoryMB: 64 << 10,
					Time:     90*time.Minute + 500*time.Millisecond,
					Queue:    "long",
					Account:  "proj-42",
					Extra:    []string{"--qos=high", "-l gres=gpu:1", "--qos=high"},
				},
			},
			job: fullJob(),
		},
		{
			name: "zero values",
			req:  plugin.SubmitRequest{Identity: "lab-a", User: "bob", Token: "t"},
			job:  pendingJob(),
		},
		{
			name: "signal exit code and partial times",
			req:  plugin.SubmitRequest{Identity: "lab-a", User: "bob", Token: "t", Resources: plugin.Resources{Time: -time.Second}},
			job:  failedJob(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.job = tt.job
			c := plugintest.Client(t, f)

			job, err := c.Submit(testCtx(t), tt.req)
			require.NoError(t, err)
			assert.Equal(t, tt.job, job)
			assert.Equal(t, tt.req, f.submitReq)
			assert.Equal(t, []string{"Submit"}, f.Calls())
		})
	}
}

func TestJobExitCodeNilVersusZero(t *testing.T) {
	f := newFake()
	f.jobs = []plugin.Job{{ID: "nil"}, {ID: "zero", ExitCode: intPtr(0)}, {ID: "neg", ExitCode: intPtr(-1)}}
	c := plugintest.Client(t, f)
	jobs, err := c.Status(testCtx(t), []string{"nil", "zero", "neg"})
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	assert.Nil(t, jobs[0].ExitCode)
	require.NotNil(t, jobs[1].ExitCode)
	assert.Equal(t, 0, *jobs[1].ExitCode)
	require.NotNil(t, jobs[2].ExitCode)
	assert.Equal(t, -1, *jobs[2].ExitCode)
}

func TestTimesComeBackAsSameInstantInUTC(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	local := time.Date(2026, 7, 1, 12, 0, 0, 42, zone)
	f := newFake()
	f.jobs = []plugin.Job{{ID: "j", Submitted: local, Started: time.Unix(0, 0)}}
	c := plugintest.Client(t, f)
	jobs, err := c.Status(testCtx(t), []string{"j"})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.True(t, jobs[0].Submitted.Equal(local), "got %v, want %v", jobs[0].Submitted, local)
	assert.Equal(t, time.UTC, jobs[0].Submitted.Location())
	// The Unix epoch is a set time, not "unset".
	assert.False(t, jobs[0].Started.IsZero())
	assert.True(t, jobs[0].Started.Equal(time.Unix(0, 0)))
	assert.True(t, jobs[0].Ended.IsZero())
}

func TestStatusRoundTrip(t *testing.T) {
	f := newFake()
	f.jobs = []plugin.Job{fullJob(), pendingJob(), failedJob()}
	c := plugintest.Client(t, f)

	jobs, err := c.Status(testCtx(t), []string{"fj-1", "fj-2", "fj-3", "unknown"})
	require.NoError(t, err)
	assert.Equal(t, f.jobs, jobs)
	assert.Equal(t, []string{"fj-1", "fj-2", "fj-3", "unknown"}, f.ids)

	f.jobs = nil
	jobs, err = c.Status(testCtx(t), nil)
	require.NoError(t, err)
	assert.Empty(t, jobs)
	assert.Nil(t, f.ids)
}

func TestCancelRoundTrip(t *testing.T) {
	f := newFake()
	f.results = []plugin.CancelResult{
		{ID: "fj-1"},
		{ID: "fj-2", Error: "scancel: Access/permission denied"},
		{ID: "fj-3"},
	}
	c := plugintest.Client(t, f)

	results, err := c.Cancel(testCtx(t), []string{"fj-1", "fj-2", "fj-3"})
	require.NoError(t, err)
	assert.Equal(t, f.results, results)
	assert.Equal(t, []string{"fj-1", "fj-2", "fj-3"}, f.ids)
	assert.Equal(t, []string{"Cancel"}, f.Calls())
}

func TestStageRoundTrip(t *testing.T) {
	req := plugin.StageRequest{
		Identity: "lab-a",
		User:     "alice",
		Files: []plugin.StageFile{
			{Local: "/data/in/reads_1.fq.gz", Remote: "ab/cdef/reads_1.fq.gz"},
			{Local: "/data/ref", Remote: "shared/ref"},
		},
	}
	for _, rpc := range []string{"StageIn", "StageOut"} {
		t.Run(rpc, func(t *testing.T) {
			f := newFake()
			f.stage = plugin.StageResult{Files: 1234, Bytes: 5 << 40}
			c := plugintest.Client(t, f)

			call := c.StageIn
			if rpc == "StageOut" {
				call = c.StageOut
			}
			res, err := call(testCtx(t), req)
			require.NoError(t, err)
			assert.Equal(t, f.stage, res)
			assert.Equal(t, req, f.stageReq)
			assert.Equal(t, []string{rpc}, f.Calls())

			res, err = call(testCtx(t), plugin.StageRequest{Identity: "lab-a", User: "alice"})
			require.NoError(t, err)
			assert.Equal(t, f.stage, res)
			assert.Nil(t, f.stageReq.Files)
		})
	}
}

func TestListJobsRoundTrip(t *testing.T) {
	for _, req := range []plugin.ListRequest{
		{},
		{Identity: "lab-a", User: "alice", ActiveOnly: true},
	} {
		t.Run(fmt.Sprintf("%+v", req), func(t *testing.T) {
			f := newFake()
			f.jobs = []plugin.Job{pendingJob(), fullJob()}
			c := plugintest.Client(t, f)

			jobs, err := c.ListJobs(testCtx(t), req)
			require.NoError(t, err)
			assert.Equal(t, f.jobs, jobs)
			assert.Equal(t, req, f.listReq)
		})
	}
}

func TestWatchStreamsUntilContextCancelled(t *testing.T) {
	f := newFake()
	f.events = []plugin.JobEvent{{Job: pendingJob()}, {Job: fullJob()}, {Job: failedJob()}}
	c := plugintest.Client(t, f)
	req := plugin.WatchRequest{Identity: "lab-a", User: "alice", IDs: []string{"fj-1", "fj-2", "fj-3"}}

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var got []plugin.JobEvent
	err := c.Watch(ctx, req, func(ev plugin.JobEvent) error {
		got = append(got, ev)
		if len(got) == len(f.events) {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, f.events, got)
	assert.Equal(t, req, f.watchReq)

	// The agent's side must see the cancellation and end too.
	select {
	case err := <-f.watchDone:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's Watch did not end after the launcher cancelled")
	}
}

func TestWatchStopsWhenCallbackFails(t *testing.T) {
	f := newFake()
	f.events = []plugin.JobEvent{{Job: pendingJob()}, {Job: fullJob()}, {Job: failedJob()}}
	c := plugintest.Client(t, f)

	stop := errors.New("launcher has enough")
	n := 0
	err := c.Watch(testCtx(t), plugin.WatchRequest{}, func(plugin.JobEvent) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 2, n)
	assert.Equal(t, plugin.WatchRequest{}, f.watchReq)
	select {
	case <-f.watchDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's Watch did not end after the launcher stopped watching")
	}
}

func TestWatchEndedByAgent(t *testing.T) {
	t.Run("error", func(t *testing.T) {
		f := newFake()
		f.events = []plugin.JobEvent{{Job: pendingJob()}}
		f.watchEnd = fmt.Errorf("watch jobs of %q: %w", "lab-a", plugin.ErrPermissionDenied)
		c := plugintest.Client(t, f)
		n := 0
		err := c.Watch(testCtx(t), plugin.WatchRequest{}, func(plugin.JobEvent) error { n++; return nil })
		require.ErrorIs(t, err, plugin.ErrPermissionDenied)
		assert.Equal(t, f.watchEnd.Error(), err.Error())
		assert.Equal(t, 1, n)
	})
	t.Run("nil", func(t *testing.T) {
		f := newFake()
		f.watchReturnNil = true
		c := plugintest.Client(t, f)
		err := c.Watch(testCtx(t), plugin.WatchRequest{}, func(plugin.JobEvent) error { return nil })
		require.ErrorIs(t, err, plugin.ErrUnavailable)
	})
}

// sentinels are the errors the shims map to status codes and back.
var sentinels = []struct {
	err  error
	code codes.Code
}{
	{plugin.ErrNotFound, codes.NotFound},
	{plugin.ErrInvalidArgument, codes.InvalidArgument},
	{plugin.ErrPermissionDenied, codes.PermissionDenied},
	{plugin.ErrUnavailable, codes.Unavailable},
	{plugin.ErrAlreadyExists, codes.AlreadyExists},
	{plugin.ErrFailedPrecondition, codes.FailedPrecondition},
	{plugin.ErrUnimplemented, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// callEvery calls every Service method once and returns each call's error by method name.
func callEvery(ctx context.Context, s plugin.Service) map[string]error {
	errs := map[string]error{}
	_, errs["Submit"] = s.Submit(ctx, plugin.SubmitRequest{Token: "t"})
	_, errs["Status"] = s.Status(ctx, []string{"x"})
	errs["Watch"] = s.Watch(ctx, plugin.WatchRequest{}, func(plugin.JobEvent) error { return nil })
	_, errs["Cancel"] = s.Cancel(ctx, []string{"x"})
	_, errs["StageIn"] = s.StageIn(ctx, plugin.StageRequest{})
	_, errs["StageOut"] = s.StageOut(ctx, plugin.StageRequest{})
	_, errs["ListJobs"] = s.ListJobs(ctx, plugin.ListRequest{})
	return errs
}

func TestSentinelErrorsMapBackToThemselves(t *testing.T) {
	for _, s := range sentinels {
		t.Run(s.code.String(), func(t *testing.T) {
			f := newFake()
			f.err = fmt.Errorf("submit job %q as %q: %w", "t", "alice", s.err)
			c := plugintest.Client(t, f)

			for rpc, err := range callEvery(testCtx(t), c) {
				require.Error(t, err, rpc)
				assert.ErrorIs(t, err, s.err, rpc)
				assert.Equal(t, f.err.Error(), err.Error(), rpc)
				assert.Equal(t, s.code, status.Code(err), rpc)
				for _, other := range sentinels {
					if other.err != s.err {
						assert.NotErrorIs(t, err, other.err, rpc)
					}
				}
			}
		})
	}
}

func TestUnmappedErrorKeepsItsMessage(t *testing.T) {
	f := newFake()
	f.err = errors.New(`submit job "t": sbatch: error: Batch job submission failed: Invalid partition name specified`)
	c := plugintest.Client(t, f)

	for rpc, err := range callEvery(testCtx(t), c) {
		require.Error(t, err, rpc)
		assert.Equal(t, f.err.Error(), err.Error(), rpc)
		assert.Equal(t, codes.Unknown, status.Code(err), rpc)
		for _, s := range sentinels {
			assert.NotErrorIs(t, err, s.err, rpc)
		}
	}
}

func TestCallerDeadline(t *testing.T) {
	c := plugintest.Client(t, newFake())
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for rpc, err := range callEvery(ctx, c) {
		assert.ErrorIs(t, err, context.DeadlineExceeded, rpc)
	}
}

func TestSubmitRefusesCPUsOutOfRange(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("int is 32 bits here: no CPU count can be out of range")
	}
	tooMany := int64(math.MaxInt32) + 1
	f := newFake()
	c := plugintest.Client(t, f)
	_, err := c.Submit(testCtx(t), plugin.SubmitRequest{Resources: plugin.Resources{CPUs: int(tooMany)}})
	require.ErrorIs(t, err, plugin.ErrInvalidArgument)
	assert.Empty(t, f.Calls(), "the agent must not be called")
}
