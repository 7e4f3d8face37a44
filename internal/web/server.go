// Package web is Ferry's remote front door: a REST API under /api/v1 (JSON, documented by the
// OpenAPI document it serves at /api/v1/openapi.json) and a server-rendered web console, both
// served by the agent. It authenticates callers (a session cookie from signing in, or a personal
// access token as a Bearer credential), then calls the agent as that member: every permission is
// decided by internal/identity's rule, exactly as for the go-plugin channel and the CLI socket.
//
// Secrets never come back: a private key or passphrase sent to the API or a console form goes to
// the agent and is never echoed in a response, an HTML page, a log line or an audit record.
package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// Backend is what the front door needs from the agent: the contract's two halves and the web
// accounts. *agent.Agent is one.
type Backend interface {
	contract.Service
	contract.Admin
	Caller(ctx context.Context) (identity.Principal, error)
	SignIn(member string, password []byte, remote string) (string, identity.Session, error)
	Session(cookie string) (identity.Session, error)
	SignOut(cookie, remote string) error
	InviteMember(secret string) (string, error)
	AcceptInvite(secret string, password []byte, remote string) (string, error)
	Accounts(ctx context.Context) ([]contract.Account, error)
	CreateToken(ctx context.Context, name string, ttl time.Duration) (contract.Token, string, error)
	ListTokens(ctx context.Context) ([]contract.Token, error)
	RevokeToken(ctx context.Context, id string) error
	TokenMember(secret string) (string, error)
}

// Server serves the console and the API. Create it with New.
type Server struct {
	cfg     config.Web
	url     *url.URL // the public URL: its origin is the only one state-changing requests may come from
	be      Backend
	log     zerolog.Logger
	secure  bool // cookies are Secure (the front door speaks TLS, or the public URL is https)
	limiter *signinLimiter
	auth    []Authenticator
	mux     *http.ServeMux
	routes  []route // the API's routes, for the OpenAPI check
	pages   *pages
}

// New builds the front door for cfg ([web] and the public URL) over be.
func New(cfg config.Config, be Backend, log zerolog.Logger) (*Server, error) {
	u, err := url.Parse(cfg.WebURL())
	if err != nil {
		return nil, fmt.Errorf("web: public url: %w", err)
	}
	s := &Server{
		cfg: cfg.Web, url: u, be: be, log: log.With().Str("component", "web").Logger(),
		secure:  u.Scheme == "https" || !cfg.Web.PlainHTTP,
		limiter: newSigninLimiter(cfg.Web.SignInPerAccount, cfg.Web.SignInPerAddress, 15*time.Minute),
		mux:     http.NewServeMux(),
	}
	s.auth = []Authenticator{bearerAuth{be}, cookieAuth{be}}
	if s.pages, err = loadPages(); err != nil {
		return nil, err
	}
	s.routeAPI()
	s.routeConsole()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	return s, nil
}

// Healther is a backend that can say whether it is fit to serve (the agent: its store answers).
type Healther interface {
	Health(ctx context.Context) (holds []string, err error)
}

// healthz answers a load balancer in front of several agents, without authentication: 200 with
// the identities this agent works, or 503 when it cannot serve (its shared store is unreachable).
// It names no member and no job.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	h, ok := s.be.(Healther)
	if !ok {
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	holds, err := h.Health(ctx)
	body := map[string]any{"status": "ok", "holds": holds}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		body = map[string]any{"status": "unavailable", "error": err.Error()}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Handler returns the front door's HTTP handler (with its security headers).
func (s *Server) Handler() http.Handler { return s.headers(s.mux) }

// URL is the front door's public URL.
func (s *Server) URL() string { return strings.TrimRight(s.url.String(), "/") }

// Serve serves on ln until ctx ends, then shuts down (waiting up to 5 s for requests in flight;
// event streams end with ctx). With tlsConfig nil it serves plain HTTP.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          nil,
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(<-done, http.ErrServerClosed) && err == nil {
		return nil
	}
	return err
}

// headers sets the security headers every answer carries: a Content-Security-Policy that allows
// no inline script or style and no framing, no MIME sniffing, no referrer to other sites (invitation links carry
// their secret in the path), and no caching of pages that show a member's data.
func (s *Server) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		if s.secure && r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// remote is the caller's address for the audit and the rate limits: the TCP peer (Ferry does
// not trust X-Forwarded-For; a reverse proxy in front makes every caller the proxy).
func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sameOrigin reports whether a state-changing request comes from the console's own pages: its
// Origin (or, without one, its Referer) is the public URL's origin or the host it was sent to.
// A request with neither (curl, a script with a token) passes: CSRF needs a browser, and a
// browser sends Origin on every cross-site POST.
func (s *Server) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return true
		}
		u, err := url.Parse(ref)
		if err != nil {
			return false
		}
		o = u.Scheme + "://" + u.Host
	}
	if o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, s.url.Host) || strings.EqualFold(u.Host, r.Host)
}
