package plugin_test

import (
	"context"
	"time"

	"github.com/ferryhpc/ferry/plugin"
)

// The fakeService's Admin half: every method records its arguments (adminArgs) and the actor of
// its ctx, then returns f.err if set, else its canned answer (adminAnswers).

var _ plugin.Admin = (*fakeService)(nil)

// adminAnswers are the canned answers of the Admin methods.
type adminAnswers struct {
	identity    plugin.Identity
	identities  []plugin.Identity
	hostKeys    []plugin.HostKey
	checks      []plugin.Check
	members     []plugin.Member
	credential  plugin.Credential
	credentials []plugin.Credential
	resealed    int
	auditEvents []plugin.AuditEvent
	pools       []plugin.PoolStats
	invite      plugin.Invite
}

// adminArgs are the arguments the Admin methods last received. Guarded by fakeService.mu.
type adminArgs struct {
	name, member, identity string
	host                   string
	port                   int
	via                    plugin.JumpScan
	spec                   plugin.IdentitySpec
	force                  bool
	newMember              plugin.Member
	cred                   plugin.CredentialSpec
	filter                 plugin.AuditFilter
	password               string
}

// AdminArgs returns the arguments the Admin methods last received.
func (f *fakeService) AdminArgs() adminArgs {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.admin
}

// adminCall records the call of method name with its ctx's actor and lets set store its arguments.
func (f *fakeService) adminCall(ctx context.Context, name string, set func(*adminArgs)) error {
	f.recordCtx(ctx, name)
	f.mu.Lock()
	set(&f.admin)
	f.mu.Unlock()
	return f.err
}

func (f *fakeService) ListIdentities(ctx context.Context) ([]plugin.Identity, error) {
	if err := f.adminCall(ctx, "ListIdentities", func(*adminArgs) {}); err != nil {
		return nil, err
	}
	return f.identities, nil
}

func (f *fakeService) GetIdentity(ctx context.Context, name string) (plugin.Identity, error) {
	if err := f.adminCall(ctx, "GetIdentity", func(a *adminArgs) { a.name = name }); err != nil {
		return plugin.Identity{}, err
	}
	return f.identity, nil
}

func (f *fakeService) ScanHostKey(ctx context.Context, host string, port int) ([]plugin.HostKey, error) {
	if err := f.adminCall(ctx, "ScanHostKey", func(a *adminArgs) { a.host, a.port = host, port }); err != nil {
		return nil, err
	}
	return f.hostKeys, nil
}

func (f *fakeService) ScanHostKeyVia(ctx context.Context, host string, port int, via plugin.JumpScan) ([]plugin.HostKey, error) {
	if err := f.adminCall(ctx, "ScanHostKeyVia", func(a *adminArgs) { a.host, a.port, a.via = host, port, via }); err != nil {
		return nil, err
	}
	return f.hostKeys, nil
}

func (f *fakeService) CreateIdentity(ctx context.Context, spec plugin.IdentitySpec) (plugin.Identity, error) {
	if err := f.adminCall(ctx, "CreateIdentity", func(a *adminArgs) { a.spec = spec }); err != nil {
		return plugin.Identity{}, err
	}
	return f.identity, nil
}

func (f *fakeService) EditIdentity(ctx context.Context, name string, spec plugin.IdentitySpec, force bool) (plugin.Identity, error) {
	if err := f.adminCall(ctx, "EditIdentity", func(a *adminArgs) { a.name, a.spec, a.force = name, spec, force }); err != nil {
		return plugin.Identity{}, err
	}
	return f.identity, nil
}

func (f *fakeService) DeleteIdentity(ctx context.Context, name string) error {
	return f.adminCall(ctx, "DeleteIdentity", func(a *adminArgs) { a.name = name })
}

func (f *fakeService) TestIdentity(ctx context.Context, name, member string) ([]plugin.Check, error) {
	if err := f.adminCall(ctx, "TestIdentity", func(a *adminArgs) { a.name, a.member = name, member }); err != nil {
		return nil, err
	}
	return f.checks, nil
}

func (f *fakeService) ListMembers(ctx context.Context) ([]plugin.Member, error) {
	if err := f.adminCall(ctx, "ListMembers", func(*adminArgs) {}); err != nil {
		return nil, err
	}
	return f.members, nil
}

func (f *fakeService) AddMember(ctx context.Context, m plugin.Member) error {
	return f.adminCall(ctx, "AddMember", func(a *adminArgs) { a.newMember = m })
}

func (f *fakeService) RemoveMember(ctx context.Context, name string) error {
	return f.adminCall(ctx, "RemoveMember", func(a *adminArgs) { a.name = name })
}

func (f *fakeService) SetCredential(ctx context.Context, c plugin.CredentialSpec) (plugin.Credential, error) {
	if err := f.adminCall(ctx, "SetCredential", func(a *adminArgs) { a.cred = c }); err != nil {
		return plugin.Credential{}, err
	}
	return f.credential, nil
}

func (f *fakeService) DeleteCredential(ctx context.Context, identity, member string) error {
	return f.adminCall(ctx, "DeleteCredential", func(a *adminArgs) { a.identity, a.member = identity, member })
}

func (f *fakeService) ListCredentials(ctx context.Context, identity string) ([]plugin.Credential, error) {
	if err := f.adminCall(ctx, "ListCredentials", func(a *adminArgs) { a.identity = identity }); err != nil {
		return nil, err
	}
	return f.credentials, nil
}

func (f *fakeService) RotateKeys(ctx context.Context) (int, error) {
	if err := f.adminCall(ctx, "RotateKeys", func(*adminArgs) {}); err != nil {
		return 0, err
	}
	return f.resealed, nil
}

func (f *fakeService) Audit(ctx context.Context, filter plugin.AuditFilter) ([]plugin.AuditEvent, error) {
	if err := f.adminCall(ctx, "Audit", func(a *adminArgs) { a.filter = filter }); err != nil {
		return nil, err
	}
	return f.auditEvents, nil
}

func (f *fakeService) Pools(ctx context.Context) ([]plugin.PoolStats, error) {
	if err := f.adminCall(ctx, "Pools", func(*adminArgs) {}); err != nil {
		return nil, err
	}
	return f.pools, nil
}

func (f *fakeService) SetPassword(ctx context.Context, member string, password []byte) error {
	return f.adminCall(ctx, "SetPassword", func(a *adminArgs) { a.member, a.password = member, string(password) })
}

func (f *fakeService) Invite(ctx context.Context, member string) (plugin.Invite, error) {
	if err := f.adminCall(ctx, "Invite", func(a *adminArgs) { a.member = member }); err != nil {
		return plugin.Invite{}, err
	}
	return f.invite, nil
}

// callEveryAdmin calls every Admin method once and returns each call's error by method name.
func callEveryAdmin(ctx context.Context, a plugin.Admin) map[string]error {
	errs := map[string]error{}
	_, errs["ListIdentities"] = a.ListIdentities(ctx)
	_, errs["GetIdentity"] = a.GetIdentity(ctx, "lab-a")
	_, errs["ScanHostKey"] = a.ScanHostKey(ctx, "login.example.org", 22)
	_, errs["ScanHostKeyVia"] = a.ScanHostKeyVia(ctx, "login.internal", 22, plugin.JumpScan{Host: "bastion.example.org", User: "alice", Key: []byte("k")})
	_, errs["CreateIdentity"] = a.CreateIdentity(ctx, plugin.IdentitySpec{Name: "lab-a"})
	_, errs["EditIdentity"] = a.EditIdentity(ctx, "lab-a", plugin.IdentitySpec{Name: "lab-a"}, true)
	errs["DeleteIdentity"] = a.DeleteIdentity(ctx, "lab-a")
	_, errs["TestIdentity"] = a.TestIdentity(ctx, "lab-a", "alice")
	_, errs["ListMembers"] = a.ListMembers(ctx)
	errs["AddMember"] = a.AddMember(ctx, plugin.Member{Name: "alice", Role: plugin.RoleMember})
	errs["RemoveMember"] = a.RemoveMember(ctx, "alice")
	_, errs["SetCredential"] = a.SetCredential(ctx, plugin.CredentialSpec{Identity: "lab-a", Member: "alice", Key: []byte("k")})
	errs["DeleteCredential"] = a.DeleteCredential(ctx, "lab-a", "alice")
	_, errs["ListCredentials"] = a.ListCredentials(ctx, "")
	_, errs["RotateKeys"] = a.RotateKeys(ctx)
	_, errs["Audit"] = a.Audit(ctx, plugin.AuditFilter{Since: time.Unix(1, 0)})
	_, errs["Pools"] = a.Pools(ctx)
	errs["SetPassword"] = a.SetPassword(ctx, "alice", []byte("correct horse battery"))
	_, errs["Invite"] = a.Invite(ctx, "alice")
	return errs
}

// adminMethods are the Admin interface's method names, in callEveryAdmin's order.
var adminMethods = []string{
	"ListIdentities", "GetIdentity", "ScanHostKey", "ScanHostKeyVia", "CreateIdentity", "EditIdentity", "DeleteIdentity",
	"TestIdentity", "ListMembers", "AddMember", "RemoveMember", "SetCredential", "DeleteCredential",
	"ListCredentials", "RotateKeys", "Audit", "Pools", "SetPassword", "Invite",
}
