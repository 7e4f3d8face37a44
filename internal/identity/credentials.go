package identity

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/secrets"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/sshpool"
)

func credView(rec store.Credential) contract.Credential {
	return contract.Credential{Identity: rec.Identity, Member: rec.Member, Username: rec.Username, KeyType: rec.KeyType,
		Fingerprint: rec.Fingerprint, Encrypted: rec.Encrypted, AddedBy: rec.AddedBy, AddedAt: rec.AddedAt,
		UpdatedAt: rec.UpdatedAt, Status: credStatus(rec), LastOK: rec.LastOK, LastError: rec.LastError, Failures: rec.Failures,
		CertificateExpires: rec.CertExpires}
}

// SetCredential adds or replaces a member's credential (owners for anyone, members their own).
func (reg *Registry) SetCredential(ctx context.Context, spec contract.CredentialSpec) (c contract.Credential, err error) {
	defer secrets.Zero(spec.Passphrase)
	action := audit.ActionCredentialAdd
	p, err := reg.Authorize(ctx, CredentialSet, spec.Member)
	defer func() { reg.Audited(p, action, spec.Identity, spec.Member, "", err, "") }()
	if err != nil {
		return c, err
	}
	reg.mu.RLock()
	_, idOK := reg.ids[spec.Identity]
	_, memOK := reg.members[spec.Member]
	_, exists := reg.creds[credKey{spec.Identity, spec.Member}]
	reg.mu.RUnlock()
	switch {
	case !idOK:
		return c, fmt.Errorf("%w: identity %q", contract.ErrNotFound, spec.Identity)
	case !memOK:
		return c, fmt.Errorf("%w: %q is not a member of the organisation", contract.ErrNotFound, spec.Member)
	}
	if exists {
		action = audit.ActionCredentialUpdate
	}
	rec, err := reg.putCredential(spec, p.Name, true)
	if err != nil {
		return c, err
	}
	reg.drop(sshpool.Key{Identity: spec.Identity, User: spec.Member})
	return credView(rec), nil
}

// DeleteCredential removes a member's credential; refused while their jobs on it run.
func (reg *Registry) DeleteCredential(ctx context.Context, identity, member string) (err error) {
	p, err := reg.Authorize(ctx, CredentialDelete, member)
	defer func() { reg.Audited(p, audit.ActionCredentialDelete, identity, member, "", err, "") }()
	if err != nil {
		return err
	}
	if active := reg.activeJobsOf(identity, member); len(active) > 0 {
		return fmt.Errorf("%w: %q has %d active job(s) on %q: %s", contract.ErrFailedPrecondition, member, len(active), identity, strings.Join(active, ", "))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, ok := reg.creds[credKey{identity, member}]; !ok {
		return fmt.Errorf("%w: %q has no credential on %q", contract.ErrNotFound, member, identity)
	}
	if err := reg.store.DeleteCredential(identity, member); err != nil {
		return err
	}
	delete(reg.creds, credKey{identity, member})
	reg.drop(sshpool.Key{Identity: identity, User: member})
	return nil
}

// ListCredentials lists credentials without secrets: all for owners, their own for members.
func (reg *Registry) ListCredentials(ctx context.Context, identity string) ([]contract.Credential, error) {
	p, err := reg.Authorize(ctx, CredentialList, "")
	if err != nil {
		return nil, err
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	var out []contract.Credential
	for k, c := range reg.creds {
		if (identity != "" && k.identity != identity) || (!p.Sees(k.member)) {
			continue
		}
		out = append(out, credView(c.rec))
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].Identity != out[k].Identity {
			return out[i].Identity < out[k].Identity
		}
		return out[i].Member < out[k].Member
	})
	return out, nil
}
