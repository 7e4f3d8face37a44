package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/web"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
)

// front is a real agent with its web front door on a loopback port (plain HTTP, as
// web.plain_http allows there), and an organisation of one owner (olivia) and two members.
type front struct {
	t     *testing.T
	cfg   config.Config
	agent *agent.Agent
	srv   *web.Server
	url   string
}

var rootCtx = contract.WithActor(context.Background(), contract.Actor{Member: "root", Via: contract.ViaCLI})

func asMember(m string) context.Context {
	return contract.WithActor(context.Background(), contract.Actor{Member: m, Via: contract.ViaWeb})
}

func newFront(t *testing.T, tune func(*config.Config)) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Agent.StateDir = t.TempDir()
	cfg.Agent.Socket = ""
	cfg.Agent.KEKEnv = "FERRY_TEST_KEK_UNSET"
	cfg.Poll.Interval = config.Duration{Duration: time.Second}
	cfg.Poll.ExitCodeGrace = config.Duration{Duration: 5 * time.Second}
	cfg.Pool.DialTimeout = config.Duration{Duration: 20 * time.Second}
	cfg.Web.Listen = ln.Addr().String()
	cfg.Web.PlainHTTP = true
	cfg.Web.PublicURL = "http://" + ln.Addr().String()
	cfg.Members = []config.Member{{Name: "olivia", Role: "owner"}, {Name: "alice", Role: "member"}, {Name: "bob", Role: "member"}}
	if tune != nil {
		tune(&cfg)
	}
	require.NoError(t, cfg.Validate())
	a, err := agent.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), schedulers.New)
	require.NoError(t, err)
	srv, err := web.New(cfg, a, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	return &front{t: t, cfg: cfg, agent: a, srv: srv, url: srv.URL()}
}

// token creates a personal access token for member (as that member).
func (f *front) token(member string) string {
	f.t.Helper()
	_, secret, err := f.agent.CreateToken(asMember(member), "test", 0)
	require.NoError(f.t, err)
	return secret
}

// reply is one API answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errorCode() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// call sends method path (under /api/v1) with a JSON body and the given headers.
func (f *front) call(method, path string, body any, hdr map[string]string) reply {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(f.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.url+web.APIPrefix+path, rd)
	require.NoError(f.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// signIn signs member in through the console's form and returns a client holding the cookie,
// and the session's CSRF token (read from the page).
func (f *front) signIn(member, password string) (*http.Client, string) {
	f.t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(f.t, err)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(f.url+"/signin", url.Values{"member": {member}, "password": {password}})
	require.NoError(f.t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(f.t, http.StatusOK, resp.StatusCode, string(b))
	i := strings.Index(string(b), `name="csrf" value="`)
	require.Positive(f.t, i, "a signed-in page carries the CSRF token")
	rest := string(b)[i+len(`name="csrf" value="`):]
	return c, rest[:strings.IndexByte(rest, '"')]
}

// TestOpenAPIMatchesRoutes checks the OpenAPI document against the real handlers: every path
// and method in the document is a route, every route is in the document, and each documented
// route answers in the API's own shapes (not the router's "404 page not found").
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFront(t, nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(web.OpenAPI(), &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "an OpenAPI 3 document")
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range f.srv.Routes() {
		served[r] = true
	}
	for r := range documented {
		require.True(t, served[r], "%s is documented but not served", r)
	}
	for r := range served {
		require.True(t, documented[r], "%s is served but not documented", r)
	}

	// The served document is the embedded one.
	r := f.call(http.MethodGet, "/openapi.json", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, string(web.OpenAPI()), string(r.body))

	// Every documented route answers with the API's JSON (or the event stream), authenticated
	// or not: the router never answers for it.
	tok := f.token("olivia")
	for rt := range documented {
		method, path, _ := strings.Cut(rt, " ")
		path = strings.NewReplacer("{name}", "nosuch", "{member}", "alice", "{id}", "0123456789abcdef").Replace(path)
		if path == "/jobs/events" {
			continue // a stream: checked in the API tests
		}
		for _, hdr := range []map[string]string{nil, bearer(tok)} {
			r := f.call(method, path, nil, hdr)
			ct := r.header.Get("Content-Type")
			require.Truef(t, strings.HasPrefix(ct, "application/json") || r.status == http.StatusNoContent,
				"%s %s answered %d %q: %s", method, path, r.status, ct, r.body)
			if r.status >= 400 {
				require.NotEmpty(t, r.errorCode(), "%s %s: errors have the one shape: %s", method, path, r.body)
			}
			if hdr == nil && path != "/openapi.json" {
				require.Equal(t, http.StatusUnauthorized, r.status, "%s %s without credentials", method, path)
			}
		}
	}
}

// TestSecurityHeaders: every answer carries the CSP without inline script, and the session
// cookie is HttpOnly and SameSite=Strict.
func TestSecurityHeaders(t *testing.T) {
	f := newFront(t, nil)
	require.NoError(t, f.agent.SetPassword(rootCtx, "olivia", []byte("olivia's long password")))
	for _, p := range []string{"/signin", "/api/v1/me", "/static/app.js", "/nosuch"} {
		resp, err := http.Get(f.url + p)
		require.NoError(t, err)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'", p)
		require.NotContains(t, csp, "unsafe-inline", p)
		require.Contains(t, csp, "frame-ancestors 'none'", p)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), p)
		require.Equal(t, "same-origin", resp.Header.Get("Referrer-Policy"), p, "no referrer leaves the site (invitation links carry their secret), and forms still send their Origin")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(f.url+"/signin", url.Values{"member": {"olivia"}, "password": {"olivia's long password"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == web.SessionCookie {
			sc = ck
		}
	}
	require.NotNil(t, sc)
	require.True(t, sc.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, sc.SameSite)
	require.False(t, sc.Secure, "plain HTTP on loopback: a Secure cookie would never come back")
}

// TestCSRF: a cookie session's state-changing request needs the session's token and the
// console's origin; a bearer token needs neither.
func TestCSRF(t *testing.T) {
	f := newFront(t, nil)
	require.NoError(t, f.agent.SetPassword(rootCtx, "olivia", []byte("olivia's long password")))
	c, csrf := f.signIn("olivia", "olivia's long password")
	post := func(hdr map[string]string, body string) int {
		req, err := http.NewRequest(http.MethodPost, f.url+"/api/v1/members", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, post(nil, `{"name":"eve","role":"owner"}`), "no token")
	require.Equal(t, http.StatusForbidden, post(map[string]string{"X-CSRF-Token": "wrong"}, `{"name":"eve","role":"owner"}`))
	require.Equal(t, http.StatusForbidden, post(map[string]string{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}, `{"name":"eve","role":"owner"}`))
	ms, err := f.agent.ListMembers(rootCtx)
	require.NoError(t, err)
	require.Len(t, ms, 3, "no refused request added a member")
	require.Equal(t, http.StatusCreated, post(map[string]string{"X-CSRF-Token": csrf}, `{"name":"eve","role":"member"}`))

	// A console form without the token is refused too.
	resp, err := c.PostForm(f.url+"/members", url.Values{"name": {"mallory"}, "role": {"owner"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	ms, err = f.agent.ListMembers(rootCtx)
	require.NoError(t, err)
	require.Len(t, ms, 4)

	tok := f.token("olivia")
	r := f.call(http.MethodPost, "/members", map[string]string{"name": "frank", "role": "member"}, bearer(tok))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
}

// TestSignInRateLimit: past web.signin_per_account failures the account answers 429 with
// Retry-After, even with the right password; another account from another address is unaffected.
func TestSignInRateLimit(t *testing.T) {
	f := newFront(t, func(c *config.Config) { c.Web.SignInPerAccount = 3 })
	require.NoError(t, f.agent.SetPassword(rootCtx, "alice", []byte("alice's long password")))
	require.NoError(t, f.agent.SetPassword(rootCtx, "bob", []byte("bob's long password")))
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	try := func(member, pw string) *http.Response {
		resp, err := c.PostForm(f.url+"/signin", url.Values{"member": {member}, "password": {pw}})
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusUnauthorized, try("alice", "guess number "+string(rune('a'+i))).StatusCode)
	}
	resp := try("alice", "alice's long password")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Equal(t, http.StatusSeeOther, try("bob", "bob's long password").StatusCode, "bob is not locked out by alice's failures")
	events, err := f.agent.Audit(rootCtx, contract.AuditFilter{Action: "web.signin", Outcome: "denied"})
	require.NoError(t, err)
	require.Len(t, events, 3, "each failure is audited once, with its address")
	for _, e := range events {
		require.Equal(t, "web", e.Via)
	}
}

// TestHealthz: a load balancer's probe needs no sign-in and learns only whether the agent serves
// and which identities it works.
func TestHealthz(t *testing.T) {
	f := newFront(t, nil)
	resp, err := http.Get(f.url + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Status string   `json:"status"`
		Holds  []string `json:"holds"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "ok", body.Status)
	names, err := f.agent.ListIdentities(rootCtx)
	require.NoError(t, err)
	require.Len(t, body.Holds, len(names), "a single agent works every identity")
}
