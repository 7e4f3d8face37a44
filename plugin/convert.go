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

// jobsToPB converts jobs with a handful of allocations instead of five per job (the message, three
// timestamps, the exit code): a Status of 1,000 jobs otherwise spends more time allocating and
// collecting than encoding. The messages live in one backing array and are never copied.
func jobsToPB(jobs []Job) []*ferryv1.Job {
	if len(jobs) == 0 {
		return nil
	}
	out := make([]*ferryv1.Job, len(jobs))
	msgs := make([]ferryv1.Job, len(jobs))
	times := make([]timestamppb.Timestamp, 0, 3*len(jobs))
	codes := make([]int32, 0, len(jobs))
	ts := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		times = append(times, timestamppb.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())})
		return &times[len(times)-1]
	}
	for i := range jobs {
		j := &jobs[i]
		m := &msgs[i]
		m.Id, m.Identity, m.User, m.Token, m.Name, m.Dir = j.ID, j.Identity, j.User, j.Token, j.Name, j.Dir
		m.SchedulerId, m.Status, m.State, m.Reason, m.Queue = j.SchedulerID, j.Status, j.State, j.Reason, j.Queue
		m.Submitted, m.Started, m.Ended = ts(j.Submitted), ts(j.Started), ts(j.Ended)
		if j.ExitCode != nil {
			codes = append(codes, int32(max(math.MinInt32, min(math.MaxInt32, *j.ExitCode))))
			m.ExitCode = &codes[len(codes)-1]
		}
		m.Error, m.Owner, m.Done = j.Error, j.Owner, j.Done
		out[i] = m
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

// Admin types. Integers the agent counts (jobs, connections, failures) travel as int64; a port or
// limit a caller sets travels as int32 and is refused with ErrInvalidArgument, before any call, if
// it does not fit (the agent checks the real range and says why). Secrets (CredentialSpec.Key and
// Passphrase) are referenced, not copied, so a caller that clears its buffers after the call leaves
// no extra copy behind in this package.

// mapSlice converts every element of in with f; an empty in gives nil.
func mapSlice[T, U any](in []T, f func(T) U) []U {
	if len(in) == 0 {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// int32Field converts a caller-set integer for the wire; it fails with ErrInvalidArgument if v does
// not fit in 32 bits.
func int32Field(what string, v int) (int32, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s %d is out of range", ErrInvalidArgument, what, v)
	}
	return int32(v), nil
}

// clampInt32 converts an agent-set integer (a validated port) for the wire, saturating.
func clampInt32(v int) int32 { return int32(max(math.MinInt32, min(math.MaxInt32, v))) }

func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func memberToPB(m Member) *ferryv1.Member {
	return &ferryv1.Member{Name: m.Name, Role: m.Role, UnixUsers: stringsOrNil(m.UnixUsers)}
}

func memberFromPB(m *ferryv1.Member) Member {
	return Member{Name: m.GetName(), Role: m.GetRole(), UnixUsers: stringsOrNil(m.GetUnixUsers())}
}

func hostKeyToPB(k HostKey) *ferryv1.HostKey {
	return &ferryv1.HostKey{Type: k.Type, Fingerprint: k.Fingerprint, KnownHosts: k.KnownHosts}
}

func hostKeyFromPB(k *ferryv1.HostKey) HostKey {
	return HostKey{Type: k.GetType(), Fingerprint: k.GetFingerprint(), KnownHosts: k.GetKnownHosts()}
}

// identitySpecToPB converts a caller's spec; it fails with ErrInvalidArgument if Port does not fit
// the wire.
func identitySpecToPB(s IdentitySpec) (*ferryv1.IdentitySpec, error) {
	port, err := int32Field("port", s.Port)
	if err != nil {
		return nil, err
	}
	pb := identitySpecToPBClamped(s)
	pb.Port = port
	return pb, nil
}

// identitySpecToPBClamped converts the agent's spec (whose port it validated) for a response.
func identitySpecToPBClamped(s IdentitySpec) *ferryv1.IdentitySpec {
	return &ferryv1.IdentitySpec{
		Name:       s.Name,
		Scheduler:  s.Scheduler,
		Host:       s.Host,
		Port:       clampInt32(s.Port),
		WorkDir:    s.WorkDir,
		Group:      s.Group,
		KnownHosts: s.KnownHosts,
		JumpHost:   s.JumpHost,
	}
}

func identitySpecFromPB(s *ferryv1.IdentitySpec) IdentitySpec {
	return IdentitySpec{
		Name:       s.GetName(),
		Scheduler:  s.GetScheduler(),
		Host:       s.GetHost(),
		Port:       int(s.GetPort()),
		WorkDir:    s.GetWorkDir(),
		Group:      s.GetGroup(),
		KnownHosts: s.GetKnownHosts(),
		JumpHost:   s.GetJumpHost(),
	}
}

func memberStatusToPB(m MemberStatus) *ferryv1.MemberStatus {
	return &ferryv1.MemberStatus{Member: m.Member, Role: m.Role, Status: m.Status, Username: m.Username}
}

func memberStatusFromPB(m *ferryv1.MemberStatus) MemberStatus {
	return MemberStatus{Member: m.GetMember(), Role: m.GetRole(), Status: m.GetStatus(), Username: m.GetUsername()}
}

func identityToPB(i Identity) *ferryv1.Identity {
	return &ferryv1.Identity{
		Spec:       identitySpecToPBClamped(i.IdentitySpec),
		HostKeys:   mapSlice(i.HostKeys, hostKeyToPB),
		CreatedBy:  i.CreatedBy,
		CreatedAt:  timeToPB(i.CreatedAt),
		UpdatedBy:  i.UpdatedBy,
		UpdatedAt:  timeToPB(i.UpdatedAt),
		Members:    mapSlice(i.Members, memberStatusToPB),
		ActiveJobs: int64(i.ActiveJobs),
	}
}

func identityFromPB(i *ferryv1.Identity) Identity {
	if i == nil {
		return Identity{}
	}
	return Identity{
		IdentitySpec: identitySpecFromPB(i.GetSpec()),
		HostKeys:     mapSlice(i.GetHostKeys(), hostKeyFromPB),
		CreatedBy:    i.GetCreatedBy(),
		CreatedAt:    timeFromPB(i.GetCreatedAt()),
		UpdatedBy:    i.GetUpdatedBy(),
		UpdatedAt:    timeFromPB(i.GetUpdatedAt()),
		Members:      mapSlice(i.GetMembers(), memberStatusFromPB),
		ActiveJobs:   int(i.GetActiveJobs()),
	}
}

func setCredentialRequestToPB(c CredentialSpec) *ferryv1.SetCredentialRequest {
	return &ferryv1.SetCredentialRequest{
		Identity:    c.Identity,
		Member:      c.Member,
		Username:    c.Username,
		Key:         bytesOrNil(c.Key),
		Passphrase:  bytesOrNil(c.Passphrase),
		Certificate: bytesOrNil(c.Certificate),
	}
}

func credentialSpecFromPB(r *ferryv1.SetCredentialRequest) CredentialSpec {
	return CredentialSpec{
		Identity:    r.GetIdentity(),
		Member:      r.GetMember(),
		Username:    r.GetUsername(),
		Key:         bytesOrNil(r.GetKey()),
		Passphrase:  bytesOrNil(r.GetPassphrase()),
		Certificate: bytesOrNil(r.GetCertificate()),
	}
}

func credentialToPB(c Credential) *ferryv1.Credential {
	return &ferryv1.Credential{
		Identity:    c.Identity,
		Member:      c.Member,
		Username:    c.Username,
		KeyType:     c.KeyType,
		Fingerprint: c.Fingerprint,
		Encrypted:   c.Encrypted,
		AddedBy:     c.AddedBy,
		AddedAt:     timeToPB(c.AddedAt),
		UpdatedAt:   timeToPB(c.UpdatedAt),
		Status:      c.Status,
		LastOk:      timeToPB(c.LastOK),
		LastError:   c.LastError,
		Failures:    int64(c.Failures),

		CertificateExpires: timeToPB(c.CertificateExpires),
	}
}

func credentialFromPB(c *ferryv1.Credential) Credential {
	if c == nil {
		return Credential{}
	}
	return Credential{
		Identity:    c.GetIdentity(),
		Member:      c.GetMember(),
		Username:    c.GetUsername(),
		KeyType:     c.GetKeyType(),
		Fingerprint: c.GetFingerprint(),
		Encrypted:   c.GetEncrypted(),
		AddedBy:     c.GetAddedBy(),
		AddedAt:     timeFromPB(c.GetAddedAt()),
		UpdatedAt:   timeFromPB(c.GetUpdatedAt()),
		Status:      c.GetStatus(),
		LastOK:      timeFromPB(c.GetLastOk()),
		LastError:   c.GetLastError(),
		Failures:    int(c.GetFailures()),

		CertificateExpires: timeFromPB(c.GetCertificateExpires()),
	}
}

func checkToPB(c Check) *ferryv1.Check {
	return &ferryv1.Check{Member: c.Member, Name: c.Name, Ok: c.OK, Detail: c.Detail, Fix: c.Fix}
}

func checkFromPB(c *ferryv1.Check) Check {
	return Check{Member: c.GetMember(), Name: c.GetName(), OK: c.GetOk(), Detail: c.GetDetail(), Fix: c.GetFix()}
}

// auditFilterToPB converts a caller's filter; it fails with ErrInvalidArgument if Limit does not
// fit the wire.
func auditFilterToPB(f AuditFilter) (*ferryv1.AuditRequest, error) {
	limit, err := int32Field("audit limit", f.Limit)
	if err != nil {
		return nil, err
	}
	return &ferryv1.AuditRequest{
		Since:    timeToPB(f.Since),
		Until:    timeToPB(f.Until),
		Actor:    f.Actor,
		Identity: f.Identity,
		Subject:  f.Subject,
		Action:   f.Action,
		Outcome:  f.Outcome,
		Limit:    limit,
	}, nil
}

func auditFilterFromPB(r *ferryv1.AuditRequest) AuditFilter {
	return AuditFilter{
		Since:    timeFromPB(r.GetSince()),
		Until:    timeFromPB(r.GetUntil()),
		Actor:    r.GetActor(),
		Identity: r.GetIdentity(),
		Subject:  r.GetSubject(),
		Action:   r.GetAction(),
		Outcome:  r.GetOutcome(),
		Limit:    int(r.GetLimit()),
	}
}

func auditEventToPB(e AuditEvent) *ferryv1.AuditEvent {
	return &ferryv1.AuditEvent{
		Time:     timeToPB(e.Time),
		Actor:    e.Actor,
		Via:      e.Via,
		Remote:   e.Remote,
		Action:   e.Action,
		Identity: e.Identity,
		Subject:  e.Subject,
		Target:   e.Target,
		Outcome:  e.Outcome,
		Detail:   e.Detail,
	}
}

func auditEventFromPB(e *ferryv1.AuditEvent) AuditEvent {
	return AuditEvent{
		Time:     timeFromPB(e.GetTime()),
		Actor:    e.GetActor(),
		Via:      e.GetVia(),
		Remote:   e.GetRemote(),
		Action:   e.GetAction(),
		Identity: e.GetIdentity(),
		Subject:  e.GetSubject(),
		Target:   e.GetTarget(),
		Outcome:  e.GetOutcome(),
		Detail:   e.GetDetail(),
	}
}

func poolStatsToPB(p PoolStats) *ferryv1.PoolStats {
	return &ferryv1.PoolStats{
		Identity:          p.Identity,
		User:              p.User,
		Connections:       int64(p.Connections),
		Sessions:          int64(p.Sessions),
		Waiters:           int64(p.Waiters),
		Dials:             p.Dials,
		DialFailures:      p.DialFailures,
		LastError:         p.LastError,
		CommandsPerMinute: int64(p.CommandsPerMinute),
	}
}

func poolStatsFromPB(p *ferryv1.PoolStats) PoolStats {
	return PoolStats{
		Identity:          p.GetIdentity(),
		User:              p.GetUser(),
		Connections:       int(p.GetConnections()),
		Sessions:          int(p.GetSessions()),
		Waiters:           int(p.GetWaiters()),
		Dials:             p.GetDials(),
		DialFailures:      p.GetDialFailures(),
		LastError:         p.GetLastError(),
		CommandsPerMinute: int(p.GetCommandsPerMinute()),
	}
}
