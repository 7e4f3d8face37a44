// Package contract is Ferry's contract without its transport: the Service and Admin interfaces,
// their Go types, the error conditions and the actor a call acts for. It imports no gRPC and no
// HTTP, so the packages that implement it (the agent, managed identities) and every front door
// (package plugin's gRPC shims, the CLI socket, the web API) share one set of types. Package
// plugin re-exports all of it under the same names.
package contract

import (
	"context"
	"errors"
	"time"
)

// Service is what Ferry offers a launcher. Every call names the managed identity and the Linux user
// (the member's credential) it acts for.
type Service interface {
	// Submit stages nothing: it writes the task script and wrapper into the task directory and
	// submits it as the user. Retrying with the same Token returns the same job.
	Submit(ctx context.Context, req SubmitRequest) (Job, error)
	// Status returns the jobs with the given Ferry job ids, from the agent's cache (no remote call).
	Status(ctx context.Context, ids []string) ([]Job, error)
	// Watch calls fn with every state change of the selected jobs until ctx ends or fn fails. The
	// current state of each selected active job is sent first.
	Watch(ctx context.Context, req WatchRequest, fn func(JobEvent) error) error
	// Cancel cancels jobs; a job that already ended is not an error.
	Cancel(ctx context.Context, ids []string) ([]CancelResult, error)
	// StageIn copies local files (on the agent's host) into the identity's work dir as the user.
	StageIn(ctx context.Context, req StageRequest) (StageResult, error)
	// StageOut copies files from the work dir to local paths on the agent's host.
	StageOut(ctx context.Context, req StageRequest) (StageResult, error)
	// ListJobs lists jobs known to the agent, filtered.
	ListJobs(ctx context.Context, req ListRequest) ([]Job, error)
}

// Resources mirrors scheduler.Resources on the wire.
type Resources struct {
	CPUs     int
	MemoryMB int64
	Time     time.Duration
	Queue    string
	Account  string
	Extra    []string
}

// SubmitRequest is one task to submit.
type SubmitRequest struct {
	Identity string
	User     string
	// Token is the launcher's idempotency token (unique per task attempt).
	Token string
	Name  string
	// Dir is the task directory, relative to the identity's work dir (created if missing).
	Dir string
	// Script is the task's shell script (written as .command.sh, run with /bin/sh unless it has a #!).
	Script    []byte
	Env       map[string]string
	Resources Resources
}

// Job is Ferry's view of one task.
type Job struct {
	ID          string // Ferry's job id
	Identity    string
	User        string
	Token       string
	Name        string
	Dir         string // absolute task dir on the login node
	SchedulerID string
	Status      string // scheduler.Status values
	State       string // the scheduler's own state code
	Reason      string // why it waits / why it ended
	Queue       string
	Submitted   time.Time
	Started     time.Time
	Ended       time.Time
	ExitCode    *int
	Error       string // last error tracking this job (stale status, submit failure)
	Owner       string // Linux user the scheduler reports for the job
	// Done means Ferry has stopped tracking the job: Status and ExitCode are final. ExitCode may
	// stay nil for a job that never ran (cancelled while pending) or whose code is unknown.
	Done bool
}

// JobEvent is one state change.
type JobEvent struct {
	Job Job
}

// WatchRequest selects jobs to watch. Empty fields select everything.
type WatchRequest struct {
	Identity string
	User     string
	IDs      []string
}

// ListRequest filters ListJobs. Empty fields select everything.
type ListRequest struct {
	Identity   string
	User       string
	ActiveOnly bool
}

// CancelResult is the outcome of cancelling one job.
type CancelResult struct {
	ID    string
	Error string // empty on success
}

// StageFile is one file or tree to copy. Local is a path on the agent's host; Remote is relative to
// the identity's work dir.
type StageFile struct {
	Local  string
	Remote string
}

// StageRequest is a set of copies for one identity and user.
type StageRequest struct {
	Identity string
	User     string
	Files    []StageFile
}

// StageResult reports what a stage call moved.
type StageResult struct {
	Files int
	Bytes int64
}

// Errors mapped to gRPC status codes at the shim boundary (see errors.go).
var (
	ErrNotFound           = errors.New("not found")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnavailable        = errors.New("unavailable")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnimplemented means the agent does not serve the call: an Admin call to an agent whose
	// implementation has no Admin half, or an agent older than the launcher.
	ErrUnimplemented = errors.New("not implemented by the ferry agent")
)
