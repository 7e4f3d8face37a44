package plugin

// This file is the only place where Go types and wire (proto) types meet. Rules, both directions:
//   - The zero time.Time travels as an unset Timestamp and comes back zero; any other time comes
//     back as the same instant in UTC (time.Time.Equal holds, the Location does not survive).
//   - A zero time.Duration travels as an unset Duration and comes back zero.
//   - A nil *int exit code travels as an unset optional int32 and comes back nil.
//   - Empty maps and slices come back nil.

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

func timeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromPB(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func durationToPB(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func durationFromPB(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// exitCodeToPB converts an exit code; codes outside int32 (which no POSIX exit status or signal
// number reaches) saturate rather than wrap.
func exitCodeToPB(c *int) *int32 {
	if c == nil {
		return nil
	}
	v := int32(max(math.MinInt32, min(math.MaxInt32, *c)))
	return &v
}

func exitCodeFromPB(c *int32) *int {
	if c == nil {
		return nil
	}
	v := int(*c)
	return &v
}

func stringsOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func envOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// resourcesToPB converts r; it fails with ErrInvalidArgument if CPUs does not fit the wire's int32.
func resourcesToPB(r Resources) (*ferryv1.Resources, error) {
	if r.CPUs < math.MinInt32 || r.CPUs > math.MaxInt32 {
		return nil, fmt.Errorf("%w: resources: %d CPUs is out of range", ErrInvalidArgument, r.CPUs)
	}
	return &ferryv1.Resources{
		Cpus:     int32(r.CPUs),
		MemoryMb: r.MemoryMB,
		Time:     durationToPB(r.Time),
		Queue:    r.Queue,
		Account:  r.Account,
		Extra:    stringsOrNil(r.Extra),
	}, nil
}

func resourcesFromPB(r *ferryv1.Resources) Resources {
	if r == nil {
		return Resources{}
	}
	return Resources{
		CPUs:     int(r.GetCpus()),
		MemoryMB: r.GetMemoryMb(),
		Time:     durationFromPB(r.GetTime()),
		Queue:    r.GetQueue(),
		Account:  r.GetAccount(),
		Extra:    stringsOrNil(r.GetExtra()),
	}
}

// submitRequestToPB converts r; it fails with ErrInvalidArgument if a field does not fit the wire.
func submitRequestToPB(r SubmitRequest) (*ferryv1.SubmitRequest, error) {
	res, err := resourcesToPB(r.Resources)
	if err != nil {
		return nil, err
	}
	return &ferryv1.SubmitRequest{
		Identity:  r.Identity,
		User:      r.User,
		Token:     r.Token,
		Name:      r.Name,
		Dir:       r.Dir,
		Script:    r.Script,
		Env:       envOrNil(r.Env),
		Resources: res,
	}, nil
}

func submitRequestFromPB(r *ferryv1.SubmitRequest) SubmitRequest {
	var script []byte
	if len(r.GetScript()) > 0 {
		script = r.GetScript()
	}
	return SubmitRequest{
		Identity:  r.GetIdentity(),
		User:      r.GetUser(),
		Token:     r.GetToken(),
		Name:      r.GetName(),
		Dir:       r.GetDir(),
		Script:    script,
		Env:       envOrNil(r.GetEnv()),
		Resources: resourcesFromPB(r.GetResources()),
	}
}

func jobToPB(j Job) *ferryv1.Job {
	return &ferryv1.Job{
		Id:          j.ID,
		Identity:    j.Identity,
		User:        j.User,
		Token:       j.Token,
		Name:        j.Name,
		Dir:         j.Dir,
		SchedulerId: j.SchedulerID,
		Status:      j.Status,
		State:       j.State,
		Reason:      j.Reason,
		Queue:       j.Queue,
		Submitted:   timeToPB(j.Submitted),
		Started:     timeToPB(j.Started),
		Ended:       timeToPB(j.Ended),
		ExitCode:    exitCodeToPB(j.ExitCode),
		Error:       j.Error,
		Owner:       j.Owner,
		Done:        j.Done,
	}
}

func jobFromPB(j *ferryv1.Job) Job {
	if j == nil {
		return Job{}
	}
	return Job{
		ID:          j.GetId(),
		Identity:    j.GetIdentity(),
		User:        j.GetUser(),
		Token:       j.GetToken(),
		Name:        j.GetName(),
		Dir:         j.GetDir(),
		SchedulerID: j.GetSchedulerId(),
		Status:      j.GetStatus(),
		State:       j.GetState(),
		Reason:      j.GetReason(),
		Queue:       j.GetQueue(),
		Submitted:   timeFromPB(j.GetSubmitted()),
		Started:     timeFromPB(j.GetStarted()),
		Ended:       timeFromPB(j.GetEnded()),
		ExitCode:    exitCodeFromPB(j.ExitCode),
		Error:       j.GetError(),
		Owner:       j.GetOwner(),
		Done:        j.GetDone(),
	}
}

func jobsToPB(jobs []Job) []*ferryv1.Job {
	if len(jobs) == 0 {
		return nil
	}
	out := make([]*ferryv1.Job, len(jobs))
	for i, j := range jobs {
		out[i] = jobToPB(j)
	}
	return out
}

func jobsFromPB(jobs []*ferryv1.Job) []Job {
	if len(jobs) == 0 {
		return nil
	}
	out := make([]Job, len(jobs))
	for i, j := range jobs {
		out[i] = jobFromPB(j)
	}
	return out
}

func watchRequestToPB(r WatchRequest) *ferryv1.WatchRequest {
	return &ferryv1.WatchRequest{Identity: r.Identity, User: r.User, Ids: stringsOrNil(r.IDs)}
}

func watchRequestFromPB(r *ferryv1.WatchRequest) WatchRequest {
	return WatchRequest{Identity: r.GetIdentity(), User: r.GetUser(), IDs: stringsOrNil(r.GetIds())}
}

func jobEventToPB(e JobEvent) *ferryv1.JobEvent {
	return &ferryv1.JobEvent{Job: jobToPB(e.Job)}
}

func jobEventFromPB(e *ferryv1.JobEvent) JobEvent {
	return JobEvent{Job: jobFromPB(e.GetJob())}
}

func cancelResultsToPB(rs []CancelResult) []*ferryv1.CancelResult {
	if len(rs) == 0 {
		return nil
	}
	out := make([]*ferryv1.CancelResult, len(rs))
	for i, r := range rs {
		out[i] = &ferryv1.CancelResult{Id: r.ID, Error: r.Error}
	}
	return out
}

func cancelResultsFromPB(rs []*ferryv1.CancelResult) []CancelResult {
	if len(rs) == 0 {
		return nil
	}
	out := make([]CancelResult, len(rs))
	for i, r := range rs {
		out[i] = CancelResult{ID: r.GetId(), Error: r.GetError()}
	}
	return out
}

func stageFilesToPB(fs []StageFile) []*ferryv1.StageFile {
	if len(fs) == 0 {
		return nil
	}
	out := make([]*ferryv1.StageFile, len(fs))
	for i, f := range fs {
		out[i] = &ferryv1.StageFile{LocalPath: f.Local, RemotePath: f.Remote}
	}
	return out
}

func stageFilesFromPB(fs []*ferryv1.StageFile) []StageFile {
	if len(fs) == 0 {
		return nil
	}
	out := make([]StageFile, len(fs))
	for i, f := range fs {
		out[i] = StageFile{Local: f.GetLocalPath(), Remote: f.GetRemotePath()}
	}
	return out
}

func stageInRequestToPB(r StageRequest) *ferryv1.StageInRequest {
	return &ferryv1.StageInRequest{Identity: r.Identity, User: r.User, Files: stageFilesToPB(r.Files)}
}

func stageInRequestFromPB(r *ferryv1.StageInRequest) StageRequest {
	return StageRequest{Identity: r.GetIdentity(), User: r.GetUser(), Files: stageFilesFromPB(r.GetFiles())}
}

func stageOutRequestToPB(r StageRequest) *ferryv1.StageOutRequest {
	return &ferryv1.StageOutRequest{Identity: r.Identity, User: r.User, Files: stageFilesToPB(r.Files)}
}

func stageOutRequestFromPB(r *ferryv1.StageOutRequest) StageRequest {
	return StageRequest{Identity: r.GetIdentity(), User: r.GetUser(), Files: stageFilesFromPB(r.GetFiles())}
}

func stageInResponseToPB(r StageResult) *ferryv1.StageInResponse {
	return &ferryv1.StageInResponse{Files: int64(r.Files), Bytes: r.Bytes}
}

func stageInResponseFromPB(r *ferryv1.StageInResponse) StageResult {
	return StageResult{Files: int(r.GetFiles()), Bytes: r.GetBytes()}
}

func stageOutResponseToPB(r StageResult) *ferryv1.StageOutResponse {
	return &ferryv1.StageOutResponse{Files: int64(r.Files), Bytes: r.Bytes}
}

func stageOutResponseFromPB(r *ferryv1.StageOutResponse) StageResult {
	return StageResult{Files: int(r.GetFiles()), Bytes: r.GetBytes()}
}

func listRequestToPB(r ListRequest) *ferryv1.ListJobsRequest {
	return &ferryv1.ListJobsRequest{Identity: r.Identity, User: r.User, ActiveOnly: r.ActiveOnly}
}

func listRequestFromPB(r *ferryv1.ListJobsRequest) ListRequest {
	return ListRequest{Identity: r.GetIdentity(), User: r.GetUser(), ActiveOnly: r.GetActiveOnly()}
}

func infoToPB(i Info) *ferryv1.InfoResponse {
	return &ferryv1.InfoResponse{Version: i.Version, ProtocolVersion: uint32(i.ProtocolVersion)}
}

func infoFromPB(r *ferryv1.InfoResponse) Info {
	return Info{Version: r.GetVersion(), ProtocolVersion: int(r.GetProtocolVersion())}
}
