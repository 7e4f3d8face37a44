package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// Web accounts: members' passwords, sessions, personal access tokens and invitations. The web
// front door authenticates with SignIn, Session and TokenMember, and then calls everything else
// with the member as the actor, through the same permission rule as every other front door.

// ErrSignIn is a refused sign-in: wrong member name, wrong password, or no password set. It
// wraps contract.ErrPermissionDenied and never says which, so the answer does not tell who has
// an account.
var ErrSignIn = fmt.Errorf("%w: wrong member name or password", contract.ErrPermissionDenied)

// ErrUnauthenticated is a session or token that is unknown, expired, revoked or whose member is
// gone: the caller must sign in again (HTTP 401).
var ErrUnauthenticated = errors.New("not signed in")

// TokenPrefix starts every personal access token, so that secret scanners can find leaked ones.
const TokenPrefix = "ferry_pat_"

var (
	tokenIDRE   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	tokenNameRE = regexp.MustCompile(`^[\pL\pN ._:/@()-]{1,64}$`)
)

// Session is a signed-in browser as the front door sees it.
type Session struct {
	Member  string
	CSRF    string // the session's anti-forgery token, echoed by every state-changing request
	Created time.Time
	Expires time.Time // the absolute expiry
}

// randomSecret returns n random bytes, base64url without padding.
func randomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux; a Ferry without randomness must not run on
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest is the hex SHA-256 a secret is stored as.
func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// SignIn checks member's password and opens a session, returning the cookie value (shown only
// here) and the session. A refusal is ErrSignIn whatever the reason, audited with the reason;
// the caller rate-limits attempts (the registry cannot tell one address from another).
func (reg *Registry) SignIn(member string, password []byte, remote string) (string, Session, error) {
	p := Principal{Name: member, Via: audit.ViaWeb, Remote: remote}
	reg.mu.RLock()
	_, known := reg.members[member]
	reg.mu.RUnlock()
	acct, err := reg.store.GetAccount(member)
	hash := acct.PasswordHash
	if err != nil || !known {
		hash = dummyHash
	}
	ok := verifyPassword(hash, password) && err == nil && known
	if !ok {
		why := "wrong password"
		switch {
		case !known:
			why = "no such member"
		case err != nil:
			why = "no password set"
		}
		reg.Audited(p, audit.ActionWebSignIn, "", member, "", ErrSignIn, why)
		return "", Session{}, ErrSignIn
	}
	cookie := randomSecret(32)
	now := time.Now().UTC()
	rec := store.Session{ID: digest(cookie), Member: member, CSRF: randomSecret(24), Created: now, LastSeen: now, Remote: remote}
	if err := reg.store.PutSession(rec); err != nil {
		return "", Session{}, err
	}
	reg.Audited(p, audit.ActionWebSignIn, "", member, "", nil, "")
	return cookie, reg.sessionView(rec), nil
}

func (reg *Registry) sessionView(rec store.Session) Session {
	return Session{Member: rec.Member, CSRF: rec.CSRF, Created: rec.Created, Expires: rec.Created.Add(reg.cfg.Web.SessionMax.Duration)}
}

// Session returns the session of a cookie value, or ErrUnauthenticated if it is unknown, idle
// longer than web.session_idle, older than web.session_max, or its member is gone (then it is
// deleted). A request refreshes its idle time (written at most once a minute, or a tenth of
// web.session_idle if that is shorter).
func (reg *Registry) Session(cookie string) (Session, error) {
	if cookie == "" {
		return Session{}, ErrUnauthenticated
	}
	id := digest(cookie)
	rec, err := reg.store.GetSession(id)
	if err != nil {
		return Session{}, ErrUnauthenticated
	}
	now := time.Now().UTC()
	reg.mu.RLock()
	_, known := reg.members[rec.Member]
	reg.mu.RUnlock()
	if !known || now.Sub(rec.LastSeen) > reg.cfg.Web.SessionIdle.Duration || now.Sub(rec.Created) > reg.cfg.Web.SessionMax.Duration {
		_ = reg.store.DeleteSession(id)
		return Session{}, ErrUnauthenticated
	}
	if now.Sub(rec.LastSeen) > min(time.Minute, reg.cfg.Web.SessionIdle.Duration/10) {
		rec.LastSeen = now
		if err := reg.store.PutSession(rec); err != nil {
			reg.log.Error().Err(err).Msg("refresh web session")
		}
	}
	return reg.sessionView(rec), nil
}

// SignOut ends the session of a cookie value; an unknown one is not an error.
func (reg *Registry) SignOut(cookie, remote string) error {
	if cookie == "" {
		return nil
	}
	id := digest(cookie)
	rec, err := reg.store.GetSession(id)
	if err != nil {
		return nil
	}
	err = reg.store.DeleteSession(id)
	reg.Audited(Principal{Name: rec.Member, Via: audit.ViaWeb, Remote: remote}, audit.ActionWebSignOut, "", rec.Member, "", err, "")
	return err
}

// SetPassword sets member's password (owners for anyone, members their own). It ends the
// member's other sessions when they change their own, and all of them when an owner sets it.
func (reg *Registry) SetPassword(ctx context.Context, member string, password []byte) (err error) {
	p, err := reg.Authorize(ctx, AccountPassword, member)
	defer func() { reg.Audited(p, audit.ActionWebPassword, "", member, "", err, "") }()
	if err != nil {
		return err
	}
	reg.mu.RLock()
	_, known := reg.members[member]
	reg.mu.RUnlock()
	if !known {
		return fmt.Errorf("%w: %q is not a member of the organisation", contract.ErrNotFound, member)
	}
	return reg.setPassword(member, password, p.Name)
}

func (reg *Registry) setPassword(member string, password []byte, by string) error {
	if err := CheckPassword(password); err != nil {
		return fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	if err := reg.store.PutAccount(store.Account{Member: member, PasswordHash: hash, SetBy: by, SetAt: time.Now().UTC()}); err != nil {
		return err
	}
	// A new password ends the sessions opened with the old one.
	sessions, err := reg.store.Sessions()
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if s.Member == member {
			if err := reg.store.DeleteSession(s.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Invite creates a one-time invitation link for member (owners only), valid for web.invite_ttl.
// Earlier unused invitations for the member stay valid until they expire or one is used.
func (reg *Registry) Invite(ctx context.Context, member string) (inv contract.Invite, err error) {
	p, err := reg.Authorize(ctx, AccountInvite, member)
	defer func() { reg.Audited(p, audit.ActionWebInvite, "", member, "", err, "") }()
	if err != nil {
		return inv, err
	}
	reg.mu.RLock()
	_, known := reg.members[member]
	reg.mu.RUnlock()
	if !known {
		return inv, fmt.Errorf("%w: %q is not a member of the organisation (add them first)", contract.ErrNotFound, member)
	}
	secret := randomSecret(32)
	now := time.Now().UTC()
	rec := store.Invite{ID: digest(secret), Member: member, CreatedBy: p.Name, Created: now, Expires: now.Add(reg.cfg.Web.InviteTTL.Duration)}
	if err := reg.store.PutInvite(rec); err != nil {
		return inv, err
	}
	return contract.Invite{Member: member, URL: reg.cfg.WebURL() + "/invite/" + secret, Expires: rec.Expires}, nil
}

// InviteMember returns the member an invitation secret is for, without using it, or
// ErrUnauthenticated if it is unknown, used or expired.
func (reg *Registry) InviteMember(secret string) (string, error) {
	invs, err := reg.store.Invites()
	if err != nil {
		return "", err
	}
	id := digest(secret)
	now := time.Now()
	for _, i := range invs {
		if i.ID == id && i.UsedAt.IsZero() && now.Before(i.Expires) {
			return i.Member, nil
		}
	}
	return "", fmt.Errorf("%w: this invitation link is unknown, expired or already used; ask an owner for a new one", ErrUnauthenticated)
}

// AcceptInvite uses an invitation: it sets the invited member's password and returns the
// member. The password is checked before the invitation is used up, so a weak password can be
// corrected with the same link.
func (reg *Registry) AcceptInvite(secret string, password []byte, remote string) (member string, err error) {
	if err := CheckPassword(password); err != nil {
		return "", fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	inv, err := reg.store.UseInvite(digest(secret), time.Now().UTC())
	p := Principal{Name: inv.Member, Via: audit.ViaWeb, Remote: remote}
	defer func() { reg.Audited(p, audit.ActionWebAccept, "", inv.Member, "", err, "") }()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) {
			p.Name = "unknown"
			return "", fmt.Errorf("%w: this invitation link is unknown, expired or already used; ask an owner for a new one", ErrUnauthenticated)
		}
		return "", err
	}
	reg.mu.RLock()
	_, known := reg.members[inv.Member]
	reg.mu.RUnlock()
	if !known {
		return "", fmt.Errorf("%w: %q is no longer a member of the organisation", contract.ErrNotFound, inv.Member)
	}
	return inv.Member, reg.setPassword(inv.Member, password, inv.Member)
}

// Accounts lists every member with their sign-in state (owners only).
func (reg *Registry) Accounts(ctx context.Context) ([]contract.Account, error) {
	if _, err := reg.Authorize(ctx, AccountList, ""); err != nil {
		return nil, err
	}
	accts, err := reg.store.Accounts()
	if err != nil {
		return nil, err
	}
	invs, err := reg.store.Invites()
	if err != nil {
		return nil, err
	}
	byMember := map[string]store.Account{}
	for _, a := range accts {
		byMember[a.Member] = a
	}
	now := time.Now()
	reg.mu.RLock()
	out := make([]contract.Account, 0, len(reg.members))
	for _, m := range reg.members {
		a := contract.Account{Member: m.Name, Role: m.Role}
		if acct, ok := byMember[m.Name]; ok {
			a.HasPassword, a.PasswordSetAt = true, acct.SetAt
		}
		for _, i := range invs {
			if i.Member == m.Name && i.UsedAt.IsZero() && now.Before(i.Expires) {
				a.InvitePending = true
				if i.Expires.After(a.InviteExpires) {
					a.InviteExpires = i.Expires
				}
			}
		}
		out = append(out, a)
	}
	reg.mu.RUnlock()
	sort.Slice(out, func(i, k int) bool { return out[i].Member < out[k].Member })
	return out, nil
}

// CreateToken creates a personal access token for the caller themselves, named name, lasting
// ttl (0: web.token_ttl; at most web.token_max_ttl). The secret is returned only here.
func (reg *Registry) CreateToken(ctx context.Context, name string, ttl time.Duration) (tok contract.Token, secret string, err error) {
	p, err := reg.Caller(ctx)
	if err == nil {
		err = Allow(p, TokenCreate, p.Name)
	}
	defer func() { reg.Audited(p, audit.ActionTokenCreate, "", p.Name, tok.ID, err, name) }()
	if err != nil {
		return tok, "", err
	}
	name = strings.TrimSpace(name)
	switch {
	case !tokenNameRE.MatchString(name):
		return tok, "", fmt.Errorf("%w: a token's name must be 1-64 letters, digits, spaces or ._:/@()-, got %q", contract.ErrInvalidArgument, name)
	case ttl < 0:
		return tok, "", fmt.Errorf("%w: a token's lifetime must be positive", contract.ErrInvalidArgument)
	case ttl == 0:
		ttl = reg.cfg.Web.TokenTTL.Duration
	case ttl > reg.cfg.Web.TokenMaxTTL.Duration:
		return tok, "", fmt.Errorf("%w: a token may last at most %s (web.token_max_ttl)", contract.ErrInvalidArgument, reg.cfg.Web.TokenMaxTTL.Duration)
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return tok, "", err
	}
	id := hex.EncodeToString(idb[:])
	secret = TokenPrefix + id + "_" + randomSecret(32)
	now := time.Now().UTC()
	rec := store.AccessToken{ID: id, Member: p.Name, Name: name, Hash: digest(secret), Created: now, Expires: now.Add(ttl)}
	if err := reg.store.PutToken(rec); err != nil {
		return tok, "", err
	}
	return tokenView(rec), secret, nil
}

func tokenView(t store.AccessToken) contract.Token {
	return contract.Token{ID: t.ID, Member: t.Member, Name: t.Name, Created: t.Created, Expires: t.Expires, LastUsed: t.LastUsed}
}

// ListTokens lists the caller's own tokens (never their secrets), newest first.
func (reg *Registry) ListTokens(ctx context.Context) ([]contract.Token, error) {
	p, err := reg.Authorize(ctx, TokenList, "")
	if err != nil {
		return nil, err
	}
	all, err := reg.store.AccessTokens()
	if err != nil {
		return nil, err
	}
	var out []contract.Token
	for _, t := range all {
		if t.Member == p.Name {
			out = append(out, tokenView(t))
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Created.After(out[k].Created) })
	return out, nil
}

// RevokeToken deletes a token: the caller's own, or anyone's for an owner (a leaked token).
func (reg *Registry) RevokeToken(ctx context.Context, id string) (err error) {
	p, err := reg.Caller(ctx)
	var t store.AccessToken
	defer func() { reg.Audited(p, audit.ActionTokenRevoke, "", t.Member, id, err, "") }()
	if err != nil {
		return err
	}
	if !tokenIDRE.MatchString(id) {
		return fmt.Errorf("%w: token %q", contract.ErrNotFound, id)
	}
	if t, err = reg.store.GetToken(id); err != nil {
		return fmt.Errorf("%w: token %q", contract.ErrNotFound, id)
	}
	if err := Allow(p, TokenRevoke, t.Member); err != nil {
		return err
	}
	return reg.store.DeleteToken(id)
}

// TokenMember returns the member a bearer token acts for, or ErrUnauthenticated if it is
// malformed, unknown, revoked, expired or its member is gone. Its last use is recorded (at most
// once a minute).
func (reg *Registry) TokenMember(secret string) (string, error) {
	rest, ok := strings.CutPrefix(secret, TokenPrefix)
	if !ok || len(rest) < 18 || rest[16] != '_' || !tokenIDRE.MatchString(rest[:16]) {
		return "", fmt.Errorf("%w: not a Ferry access token", ErrUnauthenticated)
	}
	t, err := reg.store.GetToken(rest[:16])
	if err != nil || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(digest(secret))) != 1 {
		return "", fmt.Errorf("%w: unknown or revoked token", ErrUnauthenticated)
	}
	now := time.Now().UTC()
	if !now.Before(t.Expires) {
		return "", fmt.Errorf("%w: the token expired at %s", ErrUnauthenticated, t.Expires.Format(time.RFC3339))
	}
	reg.mu.RLock()
	_, known := reg.members[t.Member]
	reg.mu.RUnlock()
	if !known {
		return "", fmt.Errorf("%w: the token's member is gone", ErrUnauthenticated)
	}
	if now.Sub(t.LastUsed) > time.Minute {
		t.LastUsed = now
		if err := reg.store.PutToken(t); err != nil {
			reg.log.Error().Err(err).Msg("record token use")
		}
	}
	return t.Member, nil
}
