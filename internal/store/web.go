package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The web front door's records: members' web accounts, their sign-in sessions, personal access
// tokens and invitations. Secrets are never stored: a session id, a token's secret and an
// invitation's secret are kept only as SHA-256 hashes, and a password only as its argon2id hash.
var (
	bucketAccounts = []byte("web_accounts")
	bucketSessions = []byte("web_sessions")
	bucketPATs     = []byte("web_tokens")
	bucketInvites  = []byte("web_invites")
)

// ErrUsed means an invitation was already accepted; ErrExpired that it, a session or a token is
// past its expiry.
var (
	ErrUsed    = errors.New("already used")
	ErrExpired = errors.New("expired")
)

// Account is a member's web account: their password's argon2id hash (PHC string format).
type Account struct {
	Member       string    `json:"member"`
	PasswordHash string    `json:"password_hash"`
	SetBy        string    `json:"set_by"`
	SetAt        time.Time `json:"set_at"`
}

// Session is a signed-in browser. ID is the SHA-256 (hex) of the cookie's value.
type Session struct {
	ID       string    `json:"id"`
	Member   string    `json:"member"`
	CSRF     string    `json:"csrf"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Remote   string    `json:"remote,omitempty"`
}

// AccessToken is a personal access token. Hash is the SHA-256 (hex) of its secret; ID is public
// (it is part of the token and shown in lists).
type AccessToken struct {
	ID       string    `json:"id"`
	Member   string    `json:"member"`
	Name     string    `json:"name"`
	Hash     string    `json:"hash"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	LastUsed time.Time `json:"last_used,omitempty"`
}

// Invite is a one-time invitation for a member to set their password. ID is the SHA-256 (hex) of
// the secret in the link.
type Invite struct {
	ID        string    `json:"id"`
	Member    string    `json:"member"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	UsedAt    time.Time `json:"used_at,omitempty"`
}

// PutAccount inserts or replaces a member's web account.
func (s *Bolt) PutAccount(a Account) error { return s.put(bucketAccounts, []byte(a.Member), a) }

// GetAccount returns member's web account.
func (s *Bolt) GetAccount(member string) (Account, error) {
	var a Account
	if err := s.get(bucketAccounts, []byte(member), &a); err != nil {
		return a, fmt.Errorf("web account of %q: %w", member, err)
	}
	return a, nil
}

// Accounts returns every web account.
func (s *Bolt) Accounts() ([]Account, error) { return list[Account](s, bucketAccounts) }

// PutSession inserts or replaces a session.
func (s *Bolt) PutSession(x Session) error { return s.put(bucketSessions, []byte(x.ID), x) }

// GetSession returns the session with id.
func (s *Bolt) GetSession(id string) (Session, error) {
	var x Session
	err := s.get(bucketSessions, []byte(id), &x)
	return x, err
}

// DeleteSession removes a session (signing out); a missing one is not an error.
func (s *Bolt) DeleteSession(id string) error { return s.del(bucketSessions, []byte(id)) }

// Sessions returns every session.
func (s *Bolt) Sessions() ([]Session, error) { return list[Session](s, bucketSessions) }

// PutToken inserts or replaces an access token.
func (s *Bolt) PutToken(t AccessToken) error { return s.put(bucketPATs, []byte(t.ID), t) }

// GetToken returns the access token with id.
func (s *Bolt) GetToken(id string) (AccessToken, error) {
	var t AccessToken
	err := s.get(bucketPATs, []byte(id), &t)
	return t, err
}

// DeleteToken removes an access token.
func (s *Bolt) DeleteToken(id string) error { return s.del(bucketPATs, []byte(id)) }

// AccessTokens returns every access token.
func (s *Bolt) AccessTokens() ([]AccessToken, error) { return list[AccessToken](s, bucketPATs) }

// PutInvite stores a new invitation.
func (s *Bolt) PutInvite(i Invite) error { return s.put(bucketInvites, []byte(i.ID), i) }

// Invites returns every invitation.
func (s *Bolt) Invites() ([]Invite, error) { return list[Invite](s, bucketInvites) }

// UseInvite marks the invitation id used at now and returns it, in one transaction, so two
// browsers racing with the same link cannot both accept it. It fails with ErrNotFound, ErrUsed or
// ErrExpired (leaving the record as it was).
func (s *Bolt) UseInvite(id string, now time.Time) (Invite, error) {
	var inv Invite
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketInvites)
		if bk == nil {
			return ErrNotFound
		}
		b := bk.Get([]byte(id))
		if b == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(b, &inv); err != nil {
			return err
		}
		switch {
		case !inv.UsedAt.IsZero():
			return ErrUsed
		case !now.Before(inv.Expires):
			return ErrExpired
		}
		inv.UsedAt = now
		nb, err := json.Marshal(inv)
		if err != nil {
			return err
		}
		return bk.Put([]byte(id), nb)
	})
	return inv, err
}

// DeleteWebOf removes member's web account, sessions, access tokens and invitations in one
// transaction (the member was removed from the organisation).
func (s *Bolt) DeleteWebOf(member string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketAccounts); bk != nil {
			if err := bk.Delete([]byte(member)); err != nil {
				return err
			}
		}
		for _, name := range [][]byte{bucketSessions, bucketPATs, bucketInvites} {
			bk := tx.Bucket(name)
			if bk == nil {
				continue
			}
			var keys [][]byte
			err := bk.ForEach(func(k, v []byte) error {
				var rec struct {
					Member string `json:"member"`
				}
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				if rec.Member == member {
					keys = append(keys, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
