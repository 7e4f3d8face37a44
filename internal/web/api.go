package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// APIPrefix is where the REST API lives.
const APIPrefix = "/api/v1"

// maxBody bounds a request body: a task script or a private key fits many times over.
const maxBody = 1 << 20

// route is one API route: a method and a path pattern (OpenAPI's {name} syntax, which is also
// net/http's).
type route struct {
	method, path string
	public       bool // answered without authentication
}

type apiHandler func(w http.ResponseWriter, r *http.Request) error

// api registers an API route. Every route is authenticated (unless public), CSRF-checked for
// cookie sessions on state-changing methods, and answers errors in the one JSON shape.
func (s *Server) api(method, path string, h apiHandler) { s.apiRoute(method, path, false, h) }

func (s *Server) apiRoute(method, path string, public bool, h apiHandler) {
	s.routes = append(s.routes, route{method: method, path: path, public: public})
	s.mux.HandleFunc(method+" "+APIPrefix+path, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if !public {
			c, ok, err := s.authenticate(r)
			switch {
			case err != nil:
				s.writeError(w, r, fmt.Errorf("%w: %v", identity.ErrUnauthenticated, trimNotSignedIn(err)))
				return
			case !ok:
				s.writeError(w, r, fmt.Errorf("%w: sign in, or send a personal access token as \"Authorization: Bearer <token>\"", identity.ErrUnauthenticated))
				return
			}
			if method != http.MethodGet && !s.csrfOK(r, c) {
				s.writeError(w, r, &httpError{status: http.StatusForbidden, code: "csrf",
					msg: "this request did not come from the console's own page (missing or wrong " + csrfHeader + " header)"})
				return
			}
			r = r.WithContext(withCaller(r.Context(), c))
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// Routes lists the API's routes as "METHOD /path", paths relative to APIPrefix.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// trimNotSignedIn drops a leading "not signed in: " so wrapped errors do not repeat it.
func trimNotSignedIn(err error) string {
	return strings.TrimPrefix(err.Error(), identity.ErrUnauthenticated.Error()+": ")
}

// decode reads a JSON body into v, refusing unknown fields and trailing data.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return &httpError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: fmt.Sprintf("the request body is larger than %d bytes", maxBody)}
		case errors.Is(err, io.EOF):
			return badRequest("the request needs a JSON body")
		}
		return badRequest("the request body is not valid JSON for this call: %v", err)
	}
	if dec.More() {
		return badRequest("the request body holds more than one JSON value")
	}
	return nil
}

func (s *Server) routeAPI() {
	s.apiRoute(http.MethodGet, "/openapi.json", true, s.openAPI)
	s.api(http.MethodGet, "/me", s.apiMe)
	s.api(http.MethodGet, "/identities", s.apiListIdentities)
	s.api(http.MethodPost, "/identities", s.apiCreateIdentity)
	s.api(http.MethodGet, "/identities/{name}", s.apiGetIdentity)
	s.api(http.MethodPatch, "/identities/{name}", s.apiEditIdentity)
	s.api(http.MethodDelete, "/identities/{name}", s.apiDeleteIdentity)
	s.api(http.MethodPost, "/identities/{name}/test", s.apiTestIdentity)
	s.api(http.MethodGet, "/identities/{name}/users", s.apiUsers)
	s.api(http.MethodPut, "/identities/{name}/users/{member}/credential", s.apiPutCredential)
	s.api(http.MethodDelete, "/identities/{name}/users/{member}/credential", s.apiDeleteCredential)
	s.api(http.MethodPost, "/hostkeys/scan", s.apiScan)
	s.api(http.MethodGet, "/members", s.apiListMembers)
	s.api(http.MethodPost, "/members", s.apiAddMember)
	s.api(http.MethodDelete, "/members/{name}", s.apiRemoveMember)
	s.api(http.MethodPost, "/members/{name}/invite", s.apiInvite)
	s.api(http.MethodGet, "/tokens", s.apiListTokens)
	s.api(http.MethodPost, "/tokens", s.apiCreateToken)
	s.api(http.MethodDelete, "/tokens/{id}", s.apiRevokeToken)
	s.api(http.MethodGet, "/jobs", s.apiListJobs)
	s.api(http.MethodPost, "/jobs", s.apiSubmit)
	s.api(http.MethodGet, "/jobs/events", s.apiEvents)
	s.api(http.MethodGet, "/jobs/{id}", s.apiGetJob)
	s.api(http.MethodPost, "/jobs/{id}/cancel", s.apiCancel)
	s.api(http.MethodGet, "/audit", s.apiAudit)
}

// ---- JSON shapes ----

type meJSON struct {
	Member string `json:"member"`
	Role   string `json:"role"`
	Via    string `json:"via"`
}

type hostKeyJSON struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
	KnownHosts  string `json:"known_hosts,omitempty"`
}

type identityJSON struct {
	Name       string        `json:"name"`
	Scheduler  string        `json:"scheduler"`
	Host       string        `json:"host"`
	Port       int           `json:"port"`
	WorkDir    string        `json:"work_dir"`
	Group      string        `json:"group"`
	KnownHosts string        `json:"known_hosts"`
	JumpHost   string        `json:"jump_host,omitempty"`
	HostKeys   []hostKeyJSON `json:"host_keys"`
	ActiveJobs int           `json:"active_jobs"`
	CreatedBy  string        `json:"created_by"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedBy  string        `json:"updated_by,omitempty"`
	UpdatedAt  *time.Time    `json:"updated_at,omitempty"`
}

func toIdentityJSON(v contract.Identity) identityJSON {
	out := identityJSON{Name: v.Name, Scheduler: v.Scheduler, Host: v.Host, Port: v.Port, WorkDir: v.WorkDir, Group: v.Group,
		KnownHosts: v.KnownHosts, JumpHost: v.JumpHost, ActiveJobs: v.ActiveJobs, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt,
		UpdatedBy: v.UpdatedBy, UpdatedAt: optTime(v.UpdatedAt), HostKeys: []hostKeyJSON{}}
	for _, k := range v.HostKeys {
		out.HostKeys = append(out.HostKeys, hostKeyJSON{Type: k.Type, Fingerprint: k.Fingerprint})
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// identityBody is the body of POST /identities and PATCH /identities/{name} (where every field
// is optional and an absent one keeps its value).
type identityBody struct {
	Name       *string `json:"name"`
	Scheduler  *string `json:"scheduler"`
	Host       *string `json:"host"`
	Port       *int    `json:"port"`
	WorkDir    *string `json:"work_dir"`
	Group      *string `json:"group"`
	KnownHosts *string `json:"known_hosts"`
	JumpHost   *string `json:"jump_host"`
}

func (b identityBody) apply(spec *contract.IdentitySpec) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&spec.Name, b.Name)
	set(&spec.Scheduler, b.Scheduler)
	set(&spec.Host, b.Host)
	set(&spec.WorkDir, b.WorkDir)
	set(&spec.Group, b.Group)
	set(&spec.KnownHosts, b.KnownHosts)
	set(&spec.JumpHost, b.JumpHost)
	if b.Port != nil {
		spec.Port = *b.Port
	}
}

// userJSON is one organisation member's row on an identity's Users tab.
type userJSON struct {
	Member      string     `json:"member"`
	Role        string     `json:"role"`
	Status      string     `json:"status"` // "missing credentials", added, verified, failing, held
	Username    string     `json:"username,omitempty"`
	KeyType     string     `json:"key_type,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	Encrypted   bool       `json:"encrypted,omitempty"`
	LastOK      *time.Time `json:"last_ok,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"failures,omitempty"`
	CanEdit     bool       `json:"can_edit"`
}

type credentialBody struct {
	Username    string `json:"username"`
	PrivateKey  string `json:"private_key"`
	Passphrase  string `json:"passphrase"`
	Certificate string `json:"certificate"`
}

type checkJSON struct {
	Member string `json:"member"`
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

type memberJSON struct {
	Name          string     `json:"name"`
	Role          string     `json:"role"`
	UnixUsers     []string   `json:"unix_users"`
	HasPassword   *bool      `json:"has_password,omitempty"` // owners only
	InvitePending *bool      `json:"invite_pending,omitempty"`
	InviteExpires *time.Time `json:"invite_expires,omitempty"`
}

type tokenJSON struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Token    string     `json:"token,omitempty"` // only in the answer to its creation
}

type jobJSON struct {
	ID          string     `json:"id"`
	Identity    string     `json:"identity"`
	User        string     `json:"user"`
	Name        string     `json:"name"`
	Status      string     `json:"status"`
	State       string     `json:"state,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Queue       string     `json:"queue,omitempty"`
	SchedulerID string     `json:"scheduler_id,omitempty"`
	Dir         string     `json:"dir,omitempty"`
	Submitted   time.Time  `json:"submitted"`
	Started     *time.Time `json:"started,omitempty"`
	Ended       *time.Time `json:"ended,omitempty"`
	ExitCode    *int       `json:"exit_code,omitempty"`
	Error       string     `json:"error,omitempty"`
	Done        bool       `json:"done"`
}

func toJobJSON(j contract.Job) jobJSON {
	return jobJSON{ID: j.ID, Identity: j.Identity, User: j.User, Name: j.Name, Status: j.Status, State: j.State, Reason: j.Reason,
		Queue: j.Queue, SchedulerID: j.SchedulerID, Dir: j.Dir, Submitted: j.Submitted, Started: optTime(j.Started),
		Ended: optTime(j.Ended), ExitCode: j.ExitCode, Error: j.Error, Done: j.Done}
}

type submitBody struct {
	Identity string            `json:"identity"`
	User     string            `json:"user"`
	Name     string            `json:"name"`
	Script   string            `json:"script"`
	Token    string            `json:"token"`
	Dir      string            `json:"dir"`
	Env      map[string]string `json:"env"`
	CPUs     int               `json:"cpus"`
	MemoryMB int64             `json:"memory_mb"`
	Time     string            `json:"time"`
	Queue    string            `json:"queue"`
	Account  string            `json:"account"`
	Extra    []string          `json:"extra"`
}

type auditJSON struct {
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Via      string    `json:"via"`
	Remote   string    `json:"remote,omitempty"`
	Action   string    `json:"action"`
	Identity string    `json:"identity,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Target   string    `json:"target,omitempty"`
	Outcome  string    `json:"outcome"`
	Detail   string    `json:"detail,omitempty"`
}

// ---- handlers ----

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) error {
	p, err := s.be.Caller(r.Context())
	if err != nil {
		return err
	}
	role := contract.RoleMember
	if p.Owner {
		role = contract.RoleOwner
	}
	writeJSON(w, http.StatusOK, meJSON{Member: p.Name, Role: role, Via: p.Via})
	return nil
}

func (s *Server) apiListIdentities(w http.ResponseWriter, r *http.Request) error {
	ids, err := s.be.ListIdentities(r.Context())
	if err != nil {
		return err
	}
	out := make([]identityJSON, 0, len(ids))
	for _, v := range ids {
		out = append(out, toIdentityJSON(v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiCreateIdentity(w http.ResponseWriter, r *http.Request) error {
	var b identityBody
	if err := decode(r, &b); err != nil {
		return err
	}
	var spec contract.IdentitySpec
	b.apply(&spec)
	v, err := s.be.CreateIdentity(r.Context(), spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toIdentityJSON(v))
	return nil
}

func (s *Server) apiGetIdentity(w http.ResponseWriter, r *http.Request) error {
	v, err := s.be.GetIdentity(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toIdentityJSON(v))
	return nil
}

// boolParam reads a query parameter that must be true, false or absent.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("query parameter %s must be true or false, not %q", name, v)
	}
	return b, nil
}

func (s *Server) apiEditIdentity(w http.ResponseWriter, r *http.Request) error {
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	}
	var b identityBody
	if err := decode(r, &b); err != nil {
		return err
	}
	name := r.PathValue("name")
	if b.Name != nil && *b.Name != name {
		return badRequest("an identity cannot be renamed (name %q in the body, %q in the path)", *b.Name, name)
	}
	cur, err := s.be.GetIdentity(r.Context(), name)
	if err != nil {
		return err
	}
	spec := cur.IdentitySpec
	b.apply(&spec)
	v, err := s.be.EditIdentity(r.Context(), name, spec, force)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toIdentityJSON(v))
	return nil
}

func (s *Server) apiDeleteIdentity(w http.ResponseWriter, r *http.Request) error {
	if err := s.be.DeleteIdentity(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiTestIdentity(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Member string `json:"member"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &b); err != nil {
			return err
		}
	}
	checks, err := s.be.TestIdentity(r.Context(), r.PathValue("name"), b.Member)
	if err != nil {
		return err
	}
	out := make([]checkJSON, 0, len(checks))
	for _, c := range checks {
		out = append(out, checkJSON{Member: c.Member, Name: c.Name, OK: c.OK, Detail: c.Detail, Fix: c.Fix})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// users returns an identity's Users tab: every organisation member with their credential
// status, the details the caller may see, and whether the caller may change the row.
func (s *Server) users(r *http.Request, name string) (contract.Identity, []userJSON, error) {
	ctx := r.Context()
	v, err := s.be.GetIdentity(ctx, name)
	if err != nil {
		return v, nil, err
	}
	p, err := s.be.Caller(ctx)
	if err != nil {
		return v, nil, err
	}
	creds, err := s.be.ListCredentials(ctx, name)
	if err != nil {
		return v, nil, err
	}
	byMember := map[string]contract.Credential{}
	for _, c := range creds {
		byMember[c.Member] = c
	}
	out := make([]userJSON, 0, len(v.Members))
	for _, m := range v.Members {
		u := userJSON{Member: m.Member, Role: m.Role, Status: m.Status, Username: m.Username,
			CanEdit: identity.Allow(p, identity.CredentialSet, m.Member) == nil}
		if c, ok := byMember[m.Member]; ok {
			u.KeyType, u.Fingerprint, u.Encrypted, u.LastOK, u.LastError, u.Failures =
				c.KeyType, c.Fingerprint, c.Encrypted, optTime(c.LastOK), c.LastError, c.Failures
		}
		out = append(out, u)
	}
	return v, out, nil
}

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request) error {
	_, out, err := s.users(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiPutCredential(w http.ResponseWriter, r *http.Request) error {
	var b credentialBody
	if err := decode(r, &b); err != nil {
		return err
	}
	c, err := s.be.SetCredential(r.Context(), contract.CredentialSpec{Identity: r.PathValue("name"), Member: r.PathValue("member"),
		Username: b.Username, Key: []byte(b.PrivateKey), Passphrase: []byte(b.Passphrase), Certificate: []byte(b.Certificate)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, userJSON{Member: c.Member, Status: c.Status, Username: c.Username, KeyType: c.KeyType,
		Fingerprint: c.Fingerprint, Encrypted: c.Encrypted, CanEdit: true})
	return nil
}

func (s *Server) apiDeleteCredential(w http.ResponseWriter, r *http.Request) error {
	if err := s.be.DeleteCredential(r.Context(), r.PathValue("name"), r.PathValue("member")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiScan(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	keys, err := s.be.ScanHostKey(r.Context(), b.Host, b.Port)
	if err != nil {
		return err
	}
	out := make([]hostKeyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, hostKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiListMembers(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.be.ListMembers(r.Context())
	if err != nil {
		return err
	}
	var accts map[string]contract.Account
	if p, err := s.be.Caller(r.Context()); err == nil && p.Owner {
		list, err := s.be.Accounts(r.Context())
		if err != nil {
			return err
		}
		accts = map[string]contract.Account{}
		for _, a := range list {
			accts[a.Member] = a
		}
	}
	out := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		mj := memberJSON{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
		if mj.UnixUsers == nil {
			mj.UnixUsers = []string{}
		}
		if a, ok := accts[m.Name]; ok {
			mj.HasPassword, mj.InvitePending = &a.HasPassword, &a.InvitePending
			mj.InviteExpires = optTime(a.InviteExpires)
		}
		out = append(out, mj)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiAddMember(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Name      string   `json:"name"`
		Role      string   `json:"role"`
		UnixUsers []string `json:"unix_users"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	m := contract.Member{Name: b.Name, Role: b.Role, UnixUsers: b.UnixUsers}
	if err := s.be.AddMember(r.Context(), m); err != nil {
		return err
	}
	if m.UnixUsers == nil {
		m.UnixUsers = []string{}
	}
	writeJSON(w, http.StatusCreated, memberJSON{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers})
	return nil
}

func (s *Server) apiRemoveMember(w http.ResponseWriter, r *http.Request) error {
	if err := s.be.RemoveMember(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiInvite(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.be.Invite(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"member": inv.Member, "url": inv.URL, "expires": inv.Expires})
	return nil
}

func toTokenJSON(t contract.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Created: t.Created, Expires: t.Expires, LastUsed: optTime(t.LastUsed)}
}

func (s *Server) apiListTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.be.ListTokens(r.Context())
	if err != nil {
		return err
	}
	out := make([]tokenJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, toTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Name      string `json:"name"`
		ExpiresIn string `json:"expires_in"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	var ttl time.Duration
	if b.ExpiresIn != "" {
		d, err := time.ParseDuration(b.ExpiresIn)
		if err != nil || d <= 0 {
			return badRequest("expires_in must be a positive duration such as \"720h\", not %q", b.ExpiresIn)
		}
		ttl = d
	}
	t, secret, err := s.be.CreateToken(r.Context(), b.Name, ttl)
	if err != nil {
		return err
	}
	out := toTokenJSON(t)
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.be.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiListJobs(w http.ResponseWriter, r *http.Request) error {
	active, err := boolParam(r, "active")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	jobs, err := s.be.ListJobs(r.Context(), contract.ListRequest{Identity: q.Get("identity"), User: q.Get("user"), ActiveOnly: active})
	if err != nil {
		return err
	}
	out := make([]jobJSON, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, toJobJSON(j))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiGetJob(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	jobs, err := s.be.Status(r.Context(), []string{id})
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		// Someone else's job reads as missing: a member cannot probe others' job ids.
		return fmt.Errorf("%w: job %q", contract.ErrNotFound, id)
	}
	writeJSON(w, http.StatusOK, toJobJSON(jobs[0]))
	return nil
}

func (s *Server) apiSubmit(w http.ResponseWriter, r *http.Request) error {
	var b submitBody
	if err := decode(r, &b); err != nil {
		return err
	}
	if b.User == "" {
		b.User = callerFrom(r.Context()).Actor.Member
	}
	var limit time.Duration
	if b.Time != "" {
		d, err := time.ParseDuration(b.Time)
		if err != nil || d <= 0 {
			return badRequest("time must be a positive duration such as \"10m\", not %q", b.Time)
		}
		limit = d
	}
	j, err := s.be.Submit(r.Context(), contract.SubmitRequest{Identity: b.Identity, User: b.User, Token: b.Token, Name: b.Name, Dir: b.Dir,
		Script: []byte(b.Script), Env: b.Env, Resources: contract.Resources{CPUs: b.CPUs, MemoryMB: b.MemoryMB, Time: limit,
			Queue: b.Queue, Account: b.Account, Extra: b.Extra}})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toJobJSON(j))
	return nil
}

func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	j, err := s.cancel(r, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toJobJSON(j))
	return nil
}

// cancel cancels one job the caller can see, mapping the per-job result to an error.
func (s *Server) cancel(r *http.Request, id string) (contract.Job, error) {
	ctx := r.Context()
	jobs, err := s.be.Status(ctx, []string{id})
	if err != nil {
		return contract.Job{}, err
	}
	if len(jobs) == 0 {
		return contract.Job{}, fmt.Errorf("%w: job %q", contract.ErrNotFound, id)
	}
	res, err := s.be.Cancel(ctx, []string{id})
	if err != nil {
		return contract.Job{}, err
	}
	if len(res) == 1 && res[0].Error != "" {
		msg := res[0].Error
		switch {
		case strings.HasPrefix(msg, "permission denied"):
			return contract.Job{}, fmt.Errorf("%w: %s", contract.ErrPermissionDenied, strings.TrimPrefix(msg, "permission denied: "))
		case strings.Contains(msg, "retry"):
			return contract.Job{}, fmt.Errorf("%w: %s", contract.ErrUnavailable, msg)
		}
		return contract.Job{}, fmt.Errorf("%w: cancel %s: %s", contract.ErrUnavailable, id, msg)
	}
	if jobs, err = s.be.Status(ctx, []string{id}); err == nil && len(jobs) == 1 {
		return jobs[0], nil
	}
	return contract.Job{ID: id}, err
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := contract.AuditFilter{Actor: q.Get("actor"), Identity: q.Get("identity"), Subject: q.Get("subject"), Action: q.Get("action"),
		Outcome: q.Get("outcome"), Limit: 500}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return badRequest("since must be an RFC 3339 time such as 2026-12-07T00:00:00Z, not %q", v)
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return badRequest("limit must be 1-10000, not %q", v)
		}
		f.Limit = n
	}
	evs, err := s.be.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]auditJSON, 0, len(evs))
	for _, e := range evs {
		out = append(out, auditJSON{Time: e.Time, Actor: e.Actor, Via: e.Via, Remote: e.Remote, Action: e.Action, Identity: e.Identity,
			Subject: e.Subject, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail})
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Time.After(out[k].Time) })
	writeJSON(w, http.StatusOK, out)
	return nil
}
