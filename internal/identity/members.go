package identity

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/credcheck"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
	"github.com/ferryhpc/ferry/sshpool"
)

// ListMembers lists the organisation's members.
func (reg *Registry) ListMembers(ctx context.Context) ([]contract.Member, error) {
	if _, err := reg.Authorize(ctx, MemberList, ""); err != nil {
		return nil, err
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	var out []contract.Member
	for _, m := range reg.members {
		out = append(out, contract.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// AddMember adds or updates a member (owners only).
func (reg *Registry) AddMember(ctx context.Context, m contract.Member) (err error) {
	p, err := reg.Authorize(ctx, MemberAdd, "")
	defer func() { reg.Audited(p, audit.ActionMemberAdd, "", m.Name, "", err, "role "+m.Role) }()
	if err != nil {
		return err
	}
	c := config.Default()
	c.Members = []config.Member{{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v", contract.ErrInvalidArgument, err)
	}
	for _, u := range m.UnixUsers {
		if err := credcheck.ValidateUsername(u); err != nil && u != "root" {
			return fmt.Errorf("%w: unix user: %v", contract.ErrInvalidArgument, err)
		}
	}
	rec := store.Member{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if err := reg.store.PutMember(rec); err != nil {
		return err
	}
	reg.members[m.Name] = rec
	return nil
}

// RemoveMember removes a member and their credentials (owners only); refused while their jobs run.
func (reg *Registry) RemoveMember(ctx context.Context, name string) (err error) {
	p, err := reg.Authorize(ctx, MemberRemove, "")
	defer func() { reg.Audited(p, audit.ActionMemberRemove, "", name, "", err, "") }()
	if err != nil {
		return err
	}
	if active := reg.activeJobsOf("", name); len(active) > 0 {
		return fmt.Errorf("%w: member %q has %d active job(s): %s", contract.ErrFailedPrecondition, name, len(active), strings.Join(active, ", "))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, ok := reg.members[name]; !ok {
		return fmt.Errorf("%w: member %q", contract.ErrNotFound, name)
	}
	for k := range reg.creds {
		if k.member == name {
			if err := reg.store.DeleteCredential(k.identity, k.member); err != nil {
				return err
			}
			delete(reg.creds, k)
			reg.drop(sshpool.Key{Identity: k.identity, User: name})
		}
	}
	if err := reg.store.DeleteWebOf(name); err != nil {
		return err
	}
	if err := reg.store.DeleteMember(name); err != nil {
		return err
	}
	delete(reg.members, name)
	return nil
}
