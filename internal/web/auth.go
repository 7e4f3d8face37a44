package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// SessionCookie is the name of the console's session cookie.
const SessionCookie = "ferry_session"

// csrfHeader carries the session's anti-forgery token on API calls made with the session
// cookie (the console's own script); forms carry it in the csrfField.
const (
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"
)

// Caller is who a request acts for, as an Authenticator established it.
type Caller struct {
	Actor contract.Actor
	// Session is set for a cookie session: state-changing requests must echo its CSRF token.
	Session *identity.Session
	// Cookie is the session cookie's value (for signing out).
	Cookie string
}

// Authenticator establishes who a request is from. It returns ok=false when the request carries
// none of its credentials (the next one is tried), and ErrUnauthenticated-wrapping errors when it
// carries one that is not valid. Sign-in methods beyond passwords and tokens (OIDC, say) are new
// Authenticators; nothing else changes.
type Authenticator interface {
	Authenticate(r *http.Request) (c Caller, ok bool, err error)
}

// bearerAuth accepts a personal access token: "Authorization: Bearer ferry_pat_...".
type bearerAuth struct{ be Backend }

func (a bearerAuth) Authenticate(r *http.Request) (Caller, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Caller{}, false, nil
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return Caller{}, true, errors.New("not signed in: the Authorization header must be \"Bearer <personal access token>\"")
	}
	member, err := a.be.TokenMember(strings.TrimSpace(tok))
	if err != nil {
		return Caller{}, true, err
	}
	return Caller{Actor: contract.Actor{Member: member, Via: contract.ViaAPI, Remote: remote(r)}}, true, nil
}

// cookieAuth accepts the console's session cookie.
type cookieAuth struct{ be Backend }

func (a cookieAuth) Authenticate(r *http.Request) (Caller, bool, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Caller{}, false, nil
	}
	s, err := a.be.Session(c.Value)
	if err != nil {
		return Caller{}, true, err
	}
	return Caller{Actor: contract.Actor{Member: s.Member, Via: contract.ViaWeb, Remote: remote(r)}, Session: &s, Cookie: c.Value}, true, nil
}

// authenticate runs the authenticators in order; the first that recognises a credential decides.
// ok=false means the request carries no credential at all.
func (s *Server) authenticate(r *http.Request) (Caller, bool, error) {
	for _, a := range s.auth {
		c, ok, err := a.Authenticate(r)
		if ok || err != nil {
			return c, true, err
		}
	}
	return Caller{}, false, nil
}

// csrfOK reports whether a state-changing request of a cookie session carries the session's
// token (in the header or the form field) and comes from the console's origin. Token callers
// need neither: a browser never sends their credential by itself.
func (s *Server) csrfOK(r *http.Request, c Caller) bool {
	if c.Session == nil {
		return true
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return s.sameOrigin(r) && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.Session.CSRF)) == 1
}

type callerKey struct{}

// withCaller returns ctx carrying the caller and its actor (for the agent).
func withCaller(ctx context.Context, c Caller) context.Context {
	return contract.WithActor(context.WithValue(ctx, callerKey{}, c), c.Actor)
}

func callerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// signinLimiter counts failed sign-ins per account and per address over a sliding window.
type signinLimiter struct {
	perAccount, perAddress int
	window                 time.Duration

	mu       sync.Mutex // guards failures
	failures map[string][]time.Time
}

func newSigninLimiter(perAccount, perAddress int, window time.Duration) *signinLimiter {
	return &signinLimiter{perAccount: perAccount, perAddress: perAddress, window: window, failures: map[string][]time.Time{}}
}

// maxLimiterKeys bounds the limiter's memory under a flood of made-up names: past it, the oldest
// record is forgotten first.
const maxLimiterKeys = 10000

// allowed reports whether another attempt for account from addr may be tried now, and if not,
// how long until it may.
func (l *signinLimiter) allowed(account, addr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{"a\x00" + account, l.perAccount}, {"r\x00" + addr, l.perAddress}} {
		ts := l.prune(k.key, now)
		if len(ts) >= k.limit {
			if w := ts[len(ts)-k.limit].Add(l.window).Sub(now); w > wait {
				wait = w
			}
		}
	}
	return wait == 0, wait
}

// failed records a failed attempt.
func (l *signinLimiter) failed(account, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxLimiterKeys {
		var oldest string
		var at time.Time
		for k, ts := range l.failures {
			if len(ts) > 0 && (oldest == "" || ts[len(ts)-1].Before(at)) {
				oldest, at = k, ts[len(ts)-1]
			}
		}
		delete(l.failures, oldest)
	}
	for _, k := range []string{"a\x00" + account, "r\x00" + addr} {
		l.failures[k] = append(l.prune(k, now), now)
	}
}

// prune drops key's failures older than the window and returns the rest. l.mu is held.
func (l *signinLimiter) prune(key string, now time.Time) []time.Time {
	ts := l.failures[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = ts
	return ts
}
