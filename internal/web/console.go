package web

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// The web console: server-rendered pages whose forms work without JavaScript. Every page acts
// for the signed-in member through the same Backend calls as the API.

type pageHandler func(w http.ResponseWriter, r *http.Request, v *view) error

// page registers a console route. Signed-in pages redirect to the sign-in page without a valid
// session; their POSTs must carry the session's CSRF token and come from the console's origin.
func (s *Server) page(pattern string, signedIn bool, h pageHandler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		v := &view{}
		if signedIn {
			c, ok, err := cookieAuth{s.be}.Authenticate(r)
			if !ok || err != nil {
				s.clearCookie(w)
				next := "/signin"
				if r.Method == http.MethodGet {
					next += "?next=" + url.QueryEscape(r.URL.RequestURI())
				}
				http.Redirect(w, r, next, http.StatusSeeOther)
				return
			}
			if r.Method == http.MethodPost && !s.csrfOK(r, c) {
				s.render(w, http.StatusForbidden, "error", view{Title: "Refused", Error: "This form did not come from Ferry's own page, or it is too old. Go back, reload the page and try again."})
				return
			}
			r = r.WithContext(withCaller(r.Context(), c))
			p, err := s.be.Caller(r.Context())
			if err != nil {
				s.clearCookie(w)
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			v.Me = &meView{Name: p.Name, Owner: p.Owner}
			v.CSRF = c.Session.CSRF
		}
		if err := h(w, r, v); err != nil {
			status, _, msg := statusOf(err)
			v.Title, v.Error, v.Data = http.StatusText(status), msg, nil
			s.render(w, status, "error", *v)
		}
	})
}

func (s *Server) routeConsole() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(static))))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/identities", http.StatusSeeOther)
	})
	s.page("GET /signin", false, s.signinPage)
	s.page("POST /signin", false, s.signinPost)
	s.page("POST /signout", true, s.signoutPost)
	s.page("GET /invite/{secret}", false, s.invitePage)
	s.page("POST /invite/{secret}", false, s.invitePost)
	s.page("GET /identities", true, s.identitiesPage)
	s.page("POST /identities", true, s.identitiesPost)
	s.page("GET /identities/{name}", true, s.identityPage)
	s.page("POST /identities/{name}/edit", true, s.identityEdit)
	s.page("POST /identities/{name}/delete", true, s.identityDelete)
	s.page("POST /identities/{name}/test", true, s.identityTest)
	s.page("GET /identities/{name}/users/{member}/credential", true, s.credentialPage)
	s.page("POST /identities/{name}/users/{member}/credential", true, s.credentialPost)
	s.page("POST /identities/{name}/users/{member}/credential/delete", true, s.credentialDelete)
	s.page("GET /jobs", true, s.jobsPage)
	s.page("POST /jobs/{id}/cancel", true, s.jobCancel)
	s.page("GET /members", true, s.membersPage)
	s.page("POST /members", true, s.membersPost)
	s.page("POST /members/{name}/invite", true, s.memberInvite)
	s.page("POST /members/{name}/remove", true, s.memberRemove)
	s.page("GET /tokens", true, s.tokensPage)
	s.page("POST /tokens", true, s.tokensPost)
	s.page("POST /tokens/{id}/revoke", true, s.tokenRevoke)
	s.page("GET /audit", true, s.auditPage)
}

// notices are the success messages a redirect after a POST may show (by code, so that no text
// travels in the URL).
var notices = map[string]string{
	"identity-created":   "Identity created.",
	"identity-saved":     "Identity saved.",
	"identity-deleted":   "Identity deleted.",
	"credential-saved":   "Credentials added.",
	"credential-deleted": "Credentials deleted.",
	"cancel-requested":   "Cancel requested.",
	"member-added":       "Member added.",
	"member-removed":     "Member removed.",
	"token-revoked":      "Token revoked.",
	"password-set":       "Your password is set. Sign in with it.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

func redirect(w http.ResponseWriter, r *http.Request, path, done string) {
	if done != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "done=" + done
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func (s *Server) setCookie(w http.ResponseWriter, value string, sess identity.Session) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteStrictMode, Expires: sess.Expires})
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/identities"
	}
	return next
}

// ---- sign-in, sign-out, invitations ----

type signinData struct {
	Member, Next string
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request, v *view) error {
	v.Title, v.Notice = "Sign in", notice(r)
	v.Data = signinData{Next: r.URL.Query().Get("next"), Member: r.URL.Query().Get("member")}
	s.render(w, http.StatusOK, "signin", *v)
	return nil
}

func (s *Server) signinPost(w http.ResponseWriter, r *http.Request, v *view) error {
	member := strings.TrimSpace(r.PostFormValue("member"))
	next := r.PostFormValue("next")
	v.Title, v.Data = "Sign in", signinData{Member: member, Next: next}
	if !s.sameOrigin(r) {
		v.Error = "This sign-in did not come from Ferry's own page."
		s.render(w, http.StatusForbidden, "signin", *v)
		return nil
	}
	addr := remote(r)
	now := time.Now()
	if ok, wait := s.limiter.allowed(member, addr, now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		v.Error = "Too many failed sign-ins. Try again in " + wait.Round(time.Second).String() + "."
		s.render(w, http.StatusTooManyRequests, "signin", *v)
		return nil
	}
	cookie, sess, err := s.be.SignIn(member, []byte(r.PostFormValue("password")), addr)
	if err != nil {
		s.limiter.failed(member, addr, now)
		v.Error = "Wrong member name or password."
		s.render(w, http.StatusUnauthorized, "signin", *v)
		return nil
	}
	s.setCookie(w, cookie, sess)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
	return nil
}

func (s *Server) signoutPost(w http.ResponseWriter, r *http.Request, v *view) error {
	_ = s.be.SignOut(callerFrom(r.Context()).Cookie, remote(r))
	s.clearCookie(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}

type inviteData struct {
	Member, Secret string
}

func (s *Server) invitePage(w http.ResponseWriter, r *http.Request, v *view) error {
	secret := r.PathValue("secret")
	member, err := s.be.InviteMember(secret)
	v.Title = "Set your password"
	if err != nil {
		v.Error = "This invitation link is unknown, expired or already used. Ask an owner for a new one."
		s.render(w, http.StatusNotFound, "invite", *v)
		return nil
	}
	v.Data = inviteData{Member: member, Secret: secret}
	s.render(w, http.StatusOK, "invite", *v)
	return nil
}

func (s *Server) invitePost(w http.ResponseWriter, r *http.Request, v *view) error {
	secret := r.PathValue("secret")
	v.Title = "Set your password"
	member, err := s.be.InviteMember(secret)
	if err != nil || !s.sameOrigin(r) {
		v.Error = "This invitation link is unknown, expired or already used. Ask an owner for a new one."
		s.render(w, http.StatusNotFound, "invite", *v)
		return nil
	}
	v.Data = inviteData{Member: member, Secret: secret}
	pw, again := r.PostFormValue("password"), r.PostFormValue("password2")
	if pw != again {
		v.Error = "The two passwords differ."
		s.render(w, http.StatusUnprocessableEntity, "invite", *v)
		return nil
	}
	if _, err := s.be.AcceptInvite(secret, []byte(pw), remote(r)); err != nil {
		status, _, msg := statusOf(err)
		v.Error = strings.TrimPrefix(msg, "invalid argument: ")
		s.render(w, status, "invite", *v)
		return nil
	}
	redirect(w, r, "/signin?member="+url.QueryEscape(member), "password-set")
	return nil
}

// ---- identities ----

type identitiesData struct {
	Identities []identityJSON
	Form       identityForm
	Scanned    []contract.HostKey
	Schedulers []string
}

type identityForm struct {
	Name, Scheduler, Host, Port, WorkDir, Group, KnownHosts, JumpHost string
}

func formOf(r *http.Request) identityForm {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return identityForm{Name: f("name"), Scheduler: f("scheduler"), Host: f("host"), Port: f("port"), WorkDir: f("work_dir"),
		Group: f("group"), KnownHosts: f("known_hosts"), JumpHost: f("jump_host")}
}

func (f identityForm) spec() (contract.IdentitySpec, error) {
	port := 22
	if f.Port != "" {
		p, err := strconv.Atoi(f.Port)
		if err != nil {
			return contract.IdentitySpec{}, badRequest("the SSH port must be a number, not %q", f.Port)
		}
		port = p
	}
	return contract.IdentitySpec{Name: f.Name, Scheduler: f.Scheduler, Host: f.Host, Port: port, WorkDir: f.WorkDir, Group: f.Group,
		KnownHosts: f.KnownHosts, JumpHost: f.JumpHost}, nil
}

// schedulerKinds are the kinds the console offers (aliases are accepted by the API too).
var schedulerKinds = config.Schedulers

func (s *Server) identitiesPage(w http.ResponseWriter, r *http.Request, v *view) error {
	return s.renderIdentities(w, r, v, identitiesData{Form: identityForm{Port: "22", Scheduler: "slurm"}}, http.StatusOK)
}

func (s *Server) renderIdentities(w http.ResponseWriter, r *http.Request, v *view, d identitiesData, status int) error {
	ids, err := s.be.ListIdentities(r.Context())
	if err != nil {
		return err
	}
	for _, id := range ids {
		d.Identities = append(d.Identities, toIdentityJSON(id))
	}
	d.Schedulers = schedulerKinds
	v.Title, v.Nav, v.Data = "Managed identities", "identities", d
	if v.Notice == "" {
		v.Notice = notice(r)
	}
	s.render(w, status, "identities", *v)
	return nil
}

// identitiesPost is the Add identity form: "scan" shows the login node's host keys for the owner
// to confirm; "create" creates the identity with the confirmed (or pasted) keys.
func (s *Server) identitiesPost(w http.ResponseWriter, r *http.Request, v *view) error {
	f := formOf(r)
	d := identitiesData{Form: f}
	spec, err := f.spec()
	if err != nil {
		v.Error = err.Error()
		return s.renderIdentities(w, r, v, d, http.StatusBadRequest)
	}
	if r.PostFormValue("action") == "scan" {
		keys, err := s.be.ScanHostKey(r.Context(), spec.Host, spec.Port)
		if err != nil {
			status, _, msg := statusOf(err)
			v.Error = "Could not scan the host key: " + msg
			return s.renderIdentities(w, r, v, d, status)
		}
		d.Scanned = keys
		return s.renderIdentities(w, r, v, d, http.StatusOK)
	}
	if trusted := r.PostForm["trust"]; len(trusted) > 0 {
		spec.KnownHosts = strings.Join(trusted, "\n")
	}
	if spec.KnownHosts == "" {
		v.Error = "Confirm the login node's host key: scan it and tick the fingerprint the cluster's admins gave you, or paste its known_hosts line."
		return s.renderIdentities(w, r, v, d, http.StatusUnprocessableEntity)
	}
	if _, err := s.be.CreateIdentity(r.Context(), spec); err != nil {
		status, _, msg := statusOf(err)
		v.Error = msg
		return s.renderIdentities(w, r, v, d, status)
	}
	redirect(w, r, "/identities/"+url.PathEscape(spec.Name)+"?tab=users", "identity-created")
	return nil
}

type identityData struct {
	Identity identityJSON
	Tab      string
	Users    []userJSON
	Jobs     []jobJSON
	Checks   []checkJSON
	TestedAs string
	Form     identityForm
	InUse    bool // the last edit was refused because jobs are active
}

func (s *Server) identityData(r *http.Request, name, tab string) (identityData, error) {
	v, users, err := s.users(r, name)
	if err != nil {
		return identityData{}, err
	}
	d := identityData{Identity: toIdentityJSON(v), Tab: tab, Users: users,
		Form: identityForm{Name: v.Name, Scheduler: v.Scheduler, Host: v.Host, Port: strconv.Itoa(v.Port), WorkDir: v.WorkDir,
			Group: v.Group, KnownHosts: v.KnownHosts, JumpHost: v.JumpHost}}
	if tab == "jobs" {
		jobs, err := s.be.ListJobs(r.Context(), contract.ListRequest{Identity: name})
		if err != nil {
			return d, err
		}
		for i := len(jobs) - 1; i >= 0; i-- {
			d.Jobs = append(d.Jobs, toJobJSON(jobs[i]))
		}
	}
	return d, nil
}

func tabOf(r *http.Request) string {
	switch t := r.URL.Query().Get("tab"); t {
	case "users", "jobs":
		return t
	}
	return "details"
}

func (s *Server) renderIdentity(w http.ResponseWriter, v *view, d identityData, status int) {
	v.Title, v.Nav, v.Data = d.Identity.Name, "identities", d
	s.render(w, status, "identity", *v)
}

func (s *Server) identityPage(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := s.identityData(r, r.PathValue("name"), tabOf(r))
	if err != nil {
		return err
	}
	v.Notice = notice(r)
	s.renderIdentity(w, v, d, http.StatusOK)
	return nil
}

func (s *Server) identityEdit(w http.ResponseWriter, r *http.Request, v *view) error {
	name := r.PathValue("name")
	d, err := s.identityData(r, name, "details")
	if err != nil {
		return err
	}
	f := formOf(r)
	f.Name = name
	d.Form = f
	spec, err := f.spec()
	if err == nil {
		_, err = s.be.EditIdentity(r.Context(), name, spec, r.PostFormValue("force") == "on")
	}
	if err != nil {
		status, _, msg := statusOf(err)
		v.Error = msg
		d.InUse = errors.Is(err, contract.ErrFailedPrecondition)
		s.renderIdentity(w, v, d, status)
		return nil
	}
	redirect(w, r, "/identities/"+url.PathEscape(name), "identity-saved")
	return nil
}

func (s *Server) identityDelete(w http.ResponseWriter, r *http.Request, v *view) error {
	name := r.PathValue("name")
	if err := s.be.DeleteIdentity(r.Context(), name); err != nil {
		d, derr := s.identityData(r, name, "details")
		if derr != nil {
			return err
		}
		status, _, msg := statusOf(err)
		v.Error = msg
		s.renderIdentity(w, v, d, status)
		return nil
	}
	redirect(w, r, "/identities", "identity-deleted")
	return nil
}

func (s *Server) identityTest(w http.ResponseWriter, r *http.Request, v *view) error {
	name := r.PathValue("name")
	member := r.PostFormValue("member")
	d, err := s.identityData(r, name, "users")
	if err != nil {
		return err
	}
	checks, err := s.be.TestIdentity(r.Context(), name, member)
	status := http.StatusOK
	if err != nil {
		var msg string
		status, _, msg = statusOf(err)
		v.Error = "Test: " + msg
	}
	for _, c := range checks {
		d.Checks = append(d.Checks, checkJSON{Member: c.Member, Name: c.Name, OK: c.OK, Detail: c.Detail, Fix: c.Fix})
	}
	d.TestedAs = member
	// The test just logged in: show the statuses it left.
	if _, users, err := s.users(r, name); err == nil {
		d.Users = users
	}
	s.renderIdentity(w, v, d, status)
	return nil
}

type credentialData struct {
	Identity string
	Member   string
	Username string
	Existing *userJSON
}

func (s *Server) credentialData(r *http.Request) (credentialData, error) {
	name, member := r.PathValue("name"), r.PathValue("member")
	_, users, err := s.users(r, name)
	if err != nil {
		return credentialData{}, err
	}
	for _, u := range users {
		if u.Member == member {
			if !u.CanEdit {
				p, err := s.be.Caller(r.Context())
				if err == nil {
					err = identity.Allow(p, identity.CredentialSet, member)
				}
				return credentialData{}, err
			}
			d := credentialData{Identity: name, Member: member, Username: u.Username}
			if u.Status != contract.CredMissing {
				uc := u
				d.Existing = &uc
			}
			if d.Username == "" {
				d.Username = member
			}
			return d, nil
		}
	}
	return credentialData{}, &httpError{status: http.StatusNotFound, code: "not_found", msg: "no member " + strconv.Quote(member) + " in the organisation"}
}

func (s *Server) credentialPage(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := s.credentialData(r)
	if err != nil {
		return err
	}
	v.Title, v.Nav, v.Data = "Credentials of "+d.Member+" on "+d.Identity, "identities", d
	s.render(w, http.StatusOK, "credential", *v)
	return nil
}

// credentialPost saves a credential. On a refusal the form comes back with the check's message
// and the username, never with the key or passphrase the member pasted.
func (s *Server) credentialPost(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := s.credentialData(r)
	if err != nil {
		return err
	}
	d.Username = strings.TrimSpace(r.PostFormValue("username"))
	_, err = s.be.SetCredential(r.Context(), contract.CredentialSpec{Identity: d.Identity, Member: d.Member, Username: d.Username,
		Key: []byte(strings.ReplaceAll(r.PostFormValue("private_key"), "\r\n", "\n")), Passphrase: []byte(r.PostFormValue("passphrase"))})
	if err != nil {
		status, _, msg := statusOf(err)
		v.Title, v.Nav, v.Data = "Credentials of "+d.Member+" on "+d.Identity, "identities", d
		v.Error = strings.TrimPrefix(msg, "invalid argument: ") + " Paste the key again: it is not kept after a refusal."
		s.render(w, status, "credential", *v)
		return nil
	}
	redirect(w, r, "/identities/"+url.PathEscape(d.Identity)+"?tab=users", "credential-saved")
	return nil
}

func (s *Server) credentialDelete(w http.ResponseWriter, r *http.Request, v *view) error {
	name, member := r.PathValue("name"), r.PathValue("member")
	if err := s.be.DeleteCredential(r.Context(), name, member); err != nil {
		d, derr := s.identityData(r, name, "users")
		if derr != nil {
			return err
		}
		status, _, msg := statusOf(err)
		v.Error = msg
		s.renderIdentity(w, v, d, status)
		return nil
	}
	redirect(w, r, "/identities/"+url.PathEscape(name)+"?tab=users", "credential-deleted")
	return nil
}

// ---- jobs ----

type jobsData struct {
	Jobs   []jobJSON
	Active bool
}

func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	active := r.URL.Query().Get("active") == "true"
	jobs, err := s.be.ListJobs(r.Context(), contract.ListRequest{ActiveOnly: active})
	if err != nil {
		return err
	}
	d := jobsData{Active: active}
	for i := len(jobs) - 1; i >= 0; i-- {
		d.Jobs = append(d.Jobs, toJobJSON(jobs[i]))
	}
	v.Title, v.Nav, v.Data, v.Notice = "Jobs", "jobs", d, notice(r)
	s.render(w, http.StatusOK, "jobs", *v)
	return nil
}

func (s *Server) jobCancel(w http.ResponseWriter, r *http.Request, v *view) error {
	if _, err := s.cancel(r, r.PathValue("id")); err != nil {
		return err
	}
	back := r.PostFormValue("back")
	if back == "" || !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		back = "/jobs"
	}
	redirect(w, r, back, "cancel-requested")
	return nil
}

// ---- members, tokens, audit ----

type membersData struct {
	Members []memberJSON
	Invite  *contract.Invite
}

func (s *Server) membersPage(w http.ResponseWriter, r *http.Request, v *view) error {
	return s.renderMembers(w, r, v, membersData{}, http.StatusOK)
}

func (s *Server) renderMembers(w http.ResponseWriter, r *http.Request, v *view, d membersData, status int) error {
	ms, err := s.be.ListMembers(r.Context())
	if err != nil {
		return err
	}
	accts := map[string]contract.Account{}
	if v.Me.Owner {
		list, err := s.be.Accounts(r.Context())
		if err != nil {
			return err
		}
		for _, a := range list {
			accts[a.Member] = a
		}
	}
	for _, m := range ms {
		mj := memberJSON{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
		if a, ok := accts[m.Name]; ok {
			mj.HasPassword, mj.InvitePending, mj.InviteExpires = &a.HasPassword, &a.InvitePending, optTime(a.InviteExpires)
		}
		d.Members = append(d.Members, mj)
	}
	v.Title, v.Nav, v.Data = "Members", "members", d
	if v.Notice == "" {
		v.Notice = notice(r)
	}
	s.render(w, status, "members", *v)
	return nil
}

func (s *Server) membersPost(w http.ResponseWriter, r *http.Request, v *view) error {
	m := contract.Member{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role")}
	if err := s.be.AddMember(r.Context(), m); err != nil {
		status, _, msg := statusOf(err)
		v.Error = msg
		return s.renderMembers(w, r, v, membersData{}, status)
	}
	redirect(w, r, "/members", "member-added")
	return nil
}

func (s *Server) memberInvite(w http.ResponseWriter, r *http.Request, v *view) error {
	inv, err := s.be.Invite(r.Context(), r.PathValue("name"))
	if err != nil {
		status, _, msg := statusOf(err)
		v.Error = msg
		return s.renderMembers(w, r, v, membersData{}, status)
	}
	v.Notice = "Invitation created. Send this link to " + inv.Member + ": it is shown only now."
	return s.renderMembers(w, r, v, membersData{Invite: &inv}, http.StatusOK)
}

func (s *Server) memberRemove(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := s.be.RemoveMember(r.Context(), r.PathValue("name")); err != nil {
		status, _, msg := statusOf(err)
		v.Error = msg
		return s.renderMembers(w, r, v, membersData{}, status)
	}
	redirect(w, r, "/members", "member-removed")
	return nil
}

type tokensData struct {
	Tokens []tokenJSON
	New    *tokenJSON
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, v *view, d tokensData, status int) error {
	ts, err := s.be.ListTokens(r.Context())
	if err != nil {
		return err
	}
	for _, t := range ts {
		d.Tokens = append(d.Tokens, toTokenJSON(t))
	}
	v.Title, v.Nav, v.Data = "Personal access tokens", "tokens", d
	if v.Notice == "" {
		v.Notice = notice(r)
	}
	s.render(w, status, "tokens", *v)
	return nil
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, v *view) error {
	return s.renderTokens(w, r, v, tokensData{}, http.StatusOK)
}

func (s *Server) tokensPost(w http.ResponseWriter, r *http.Request, v *view) error {
	var ttl time.Duration
	if days := strings.TrimSpace(r.PostFormValue("days")); days != "" {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			v.Error = "The lifetime must be a whole number of days."
			return s.renderTokens(w, r, v, tokensData{}, http.StatusBadRequest)
		}
		ttl = time.Duration(n) * 24 * time.Hour
	}
	t, secret, err := s.be.CreateToken(r.Context(), r.PostFormValue("name"), ttl)
	if err != nil {
		status, _, msg := statusOf(err)
		v.Error = msg
		return s.renderTokens(w, r, v, tokensData{}, status)
	}
	nt := toTokenJSON(t)
	nt.Token = secret
	v.Notice = "Token created. Copy it now: it is shown only once."
	return s.renderTokens(w, r, v, tokensData{New: &nt}, http.StatusOK)
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := s.be.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	redirect(w, r, "/tokens", "token-revoked")
	return nil
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, v *view) error {
	evs, err := s.be.Audit(r.Context(), contract.AuditFilter{Limit: 300})
	if err != nil {
		return err
	}
	sort.SliceStable(evs, func(i, k int) bool { return evs[i].Time.After(evs[k].Time) })
	v.Title, v.Nav, v.Data = "Audit log", "audit", evs
	s.render(w, http.StatusOK, "audit", *v)
	return nil
}
