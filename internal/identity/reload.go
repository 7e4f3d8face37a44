package identity

import (
	"bytes"
	"reflect"

	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/sshpool"
)

// Reload brings the registry up to date with the store, for agents that share one (PostgreSQL):
// another agent may have added, changed or removed members, identities and credentials. With a
// store.Versioned it reads nothing more than the version while nothing changed. Records that did
// not change keep their live state (parsed signers, pools); a changed identity or login drops the
// pools built on the old one, so the next use dials the new target.
func (reg *Registry) Reload() error {
	var version int64
	vs, versioned := reg.store.(store.Versioned)
	if versioned {
		v, err := vs.RegistryVersion()
		if err != nil {
			return err
		}
		reg.mu.RLock()
		same := reg.loaded && v == reg.version
		reg.mu.RUnlock()
		if same {
			return nil
		}
		version = v // read before the records: a change in between shows as a newer version next time
	}
	members, err := reg.store.Members()
	if err != nil {
		return err
	}
	ids, err := reg.store.Identities()
	if err != nil {
		return err
	}
	creds, err := reg.store.Credentials()
	if err != nil {
		return err
	}
	var drops []sshpool.Key
	reg.mu.Lock()
	if versioned {
		reg.version, reg.loaded = version, true
	}
	nm := make(map[string]store.Member, len(members))
	for _, m := range members {
		nm[m.Name] = m
	}
	reg.members = nm

	seenID := map[string]bool{}
	for _, rec := range ids {
		seenID[rec.Name] = true
		if old, ok := reg.ids[rec.Name]; ok && reflect.DeepEqual(old.rec, rec) {
			continue
		}
		id, err := reg.buildIdentity(rec)
		if err != nil {
			reg.log.Error().Str("identity", rec.Name).Err(err).Msg("reload: identity unusable; keeping the previous one")
			continue
		}
		if _, ok := reg.ids[rec.Name]; ok {
			for k := range reg.creds {
				if k.identity == rec.Name {
					drops = append(drops, sshpool.Key{Identity: rec.Name, User: k.member})
				}
			}
		}
		reg.ids[rec.Name] = id
	}
	for name := range reg.ids {
		if !seenID[name] {
			delete(reg.ids, name)
		}
	}

	seenCred := map[credKey]bool{}
	for _, rec := range creds {
		k := credKey{rec.Identity, rec.Member}
		seenCred[k] = true
		if old, ok := reg.creds[k]; ok && sameLogin(old.rec, rec) {
			old.rec = rec // status fields only
			continue
		}
		c := &credential{rec: rec}
		c.signer, c.err = reg.unseal(rec)
		if c.err != nil {
			reg.log.Error().Str("identity", rec.Identity).Str("user", rec.Member).Err(c.err).Msg("credential unusable")
		}
		if _, ok := reg.creds[k]; ok {
			drops = append(drops, sshpool.Key{Identity: rec.Identity, User: rec.Member})
		}
		reg.creds[k] = c
	}
	for k := range reg.creds {
		if !seenCred[k] {
			delete(reg.creds, k)
			drops = append(drops, sshpool.Key{Identity: k.identity, User: k.member})
		}
	}
	reg.mu.Unlock()
	for _, k := range drops {
		reg.drop(k)
	}
	return nil
}

// ReloadStatusesOf re-reads the statuses of identity's credentials (last login, failures, held),
// which the registry version does not track because the agent working the identity keeps them.
// Call it on taking an identity over from another agent, so a held credential stays held.
func (reg *Registry) ReloadStatusesOf(identityName string) error {
	var recs []store.Credential
	var err error
	if cs, ok := reg.store.(interface {
		CredentialsOf(identity string) ([]store.Credential, error)
	}); ok {
		recs, err = cs.CredentialsOf(identityName)
	} else {
		var all []store.Credential
		all, err = reg.store.Credentials()
		for _, c := range all {
			if c.Identity == identityName {
				recs = append(recs, c)
			}
		}
	}
	if err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, rec := range recs {
		if c, ok := reg.creds[credKey{rec.Identity, rec.Member}]; ok && sameLogin(c.rec, rec) {
			c.rec = rec // a changed login is Reload's to rebuild
		}
	}
	return nil
}

// sameLogin reports whether two records of one credential log in the same way (the same sealed
// key, passphrase, username and certificate), whatever their statuses say.
func sameLogin(a, b store.Credential) bool {
	return a.Username == b.Username && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Passphrase, b.Passphrase) &&
		bytes.Equal(a.Certificate, b.Certificate) && a.UpdatedAt.Equal(b.UpdatedAt)
}

// IdentityNames lists the identities the registry knows.
func (reg *Registry) IdentityNames() []string {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	out := make([]string, 0, len(reg.ids))
	for n := range reg.ids {
		out = append(out, n)
	}
	return out
}
