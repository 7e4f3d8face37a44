package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// Principal is who a call acts for, resolved to a role.
type Principal struct {
	Name  string // member name, "root" (the CLI socket's bootstrap owner), or "launcher"
	Via   string // the channel: audit.ViaPlugin, ViaCLI, ViaWeb or ViaAPI
	Owner bool
	// Member says Name is an organisation member (not root on the CLI socket or the launcher).
	Member bool
	// Remote is the caller's network address on the web front door ("" elsewhere), for the audit.
	Remote string
}

// Sees reports whether p may see what concerns member (jobs, credentials, pools, audit events):
// owners see everyone's, members their own.
func (p Principal) Sees(member string) bool { return p.Owner || p.Name == member }

// Action is one thing an actor may ask of Ferry. Every front door and the job lifecycle name the
// action they are about to do, and Allow decides.
type Action string

// The actions of the permission rule. "Owner" actions are for organisation owners only; "self"
// actions are for owners, and for a member acting for themselves; "read" actions are for every
// member, and return only what the reader Sees.
const (
	IdentityList   Action = "identity.list"   // read
	IdentityScan   Action = "identity.scan"   // owner: scan a host's keys
	IdentityCreate Action = "identity.create" // owner
	IdentityEdit   Action = "identity.edit"   // owner
	IdentityDelete Action = "identity.delete" // owner
	// IdentityTest is self for one member's credential, owner for every member's (member "").
	IdentityTest     Action = "identity.test"
	MemberList       Action = "member.list"       // read
	MemberAdd        Action = "member.add"        // owner
	MemberRemove     Action = "member.remove"     // owner
	CredentialSet    Action = "credential.set"    // self
	CredentialDelete Action = "credential.delete" // self
	CredentialList   Action = "credential.list"   // read
	JobSubmit        Action = "job.submit"        // self
	JobStage         Action = "job.stage"         // self
	JobCancel        Action = "job.cancel"        // self (the job's member)
	JobList          Action = "job.list"          // read
	JobWatch         Action = "job.watch"         // self when a member is named, read otherwise
	AuditRead        Action = "audit.read"        // read
	PoolsRead        Action = "pools.read"        // read
	KeysRotate       Action = "keys.rotate"       // owner
	AccountList      Action = "account.list"      // owner: who has a web password, pending invitations
	AccountInvite    Action = "account.invite"    // owner
	AccountPassword  Action = "account.password"  // self: an owner sets anyone's (initial) password
	TokenCreate      Action = "token.create"      // own only: not even an owner mints another's token
	TokenList        Action = "token.list"        // read (one's own tokens)
	TokenRevoke      Action = "token.revoke"      // self: an owner may revoke anyone's (a leaked token)
)

// Actions lists every action, for the permission matrix and the documentation.
var Actions = []Action{IdentityList, IdentityScan, IdentityCreate, IdentityEdit, IdentityDelete, IdentityTest,
	MemberList, MemberAdd, MemberRemove, CredentialSet, CredentialDelete, CredentialList,
	JobSubmit, JobStage, JobCancel, JobList, JobWatch, AuditRead, PoolsRead, KeysRotate,
	AccountList, AccountInvite, AccountPassword, TokenCreate, TokenList, TokenRevoke}

// ownerActions are the owner-only actions, with what a refusal says they are.
var ownerActions = map[Action]string{
	IdentityScan:   "scan host keys",
	IdentityCreate: "create identities",
	IdentityEdit:   "edit identities",
	IdentityDelete: "delete identities",
	MemberAdd:      "add members",
	MemberRemove:   "remove members",
	KeysRotate:     "rotate keys",
	AccountList:    "list web accounts",
	AccountInvite:  "invite members",
}

// selfActions act for one member: owners for anyone, members for themselves.
var selfActions = map[Action]string{
	CredentialSet:    "act",
	CredentialDelete: "act",
	JobSubmit:        "act",
	JobStage:         "act",
	JobCancel:        "cancel",
	IdentityTest:     "act",
	JobWatch:         "watch",
	AccountPassword:  "act",
	TokenRevoke:      "act",
}

// Allow is the permission rule: whether p may do act for member (the member whose credential,
// jobs or files the action concerns; "" when it concerns no one member). It returns nil, or an
// error wrapping contract.ErrPermissionDenied that says why.
func Allow(p Principal, act Action, member string) error {
	if what, ok := ownerActions[act]; ok {
		if !p.Owner {
			return fmt.Errorf("%w: only organisation owners may %s", contract.ErrPermissionDenied, what)
		}
		return nil
	}
	if verb, ok := selfActions[act]; ok {
		switch {
		case act == IdentityTest && member == "":
			if !p.Owner {
				return fmt.Errorf("%w: only organisation owners may test every member's credential", contract.ErrPermissionDenied)
			}
		case act == JobWatch && member == "":
			// Read: the watcher sees only what it Sees.
		case !p.Sees(member):
			switch verb {
			case "act":
				return fmt.Errorf("%w: %q may act only for themselves, not for %q", contract.ErrPermissionDenied, p.Name, member)
			case "cancel":
				return fmt.Errorf("%w: the job belongs to %q", contract.ErrPermissionDenied, member)
			default:
				return fmt.Errorf("%w: %q may %s only their own jobs", contract.ErrPermissionDenied, p.Name, verb)
			}
		}
		return nil
	}
	switch act {
	case IdentityList, MemberList, CredentialList, JobList, AuditRead, PoolsRead, TokenList:
		return nil
	case TokenCreate:
		if !p.Member || p.Name != member {
			return fmt.Errorf("%w: a personal access token can be created only by its own member, not for %q", contract.ErrPermissionDenied, member)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown action %q", contract.ErrPermissionDenied, act)
}

// Caller resolves the actor in ctx to a principal:
//   - no actor (or one naming no member on the go-plugin channel): the launcher, which holds the
//     authenticated plugin channel and acts for the whole organisation, with owner rights;
//   - "root" on the CLI socket: the bootstrap owner;
//   - otherwise the named organisation member, with their role. A name that is no member is
//     refused (contract.ErrPermissionDenied), and so is a web or API actor naming no one.
func (reg *Registry) Caller(ctx context.Context) (Principal, error) {
	act, ok := contract.ActorFrom(ctx)
	web := ok && (act.Via == contract.ViaWeb || act.Via == contract.ViaAPI)
	if !web && (!ok || (act.Member == "" && act.Via != contract.ViaCLI)) {
		via := audit.ViaPlugin
		if ok && act.Via != "" {
			via = act.Via
		}
		return Principal{Name: "launcher", Via: via, Owner: true}, nil
	}
	via := act.Via
	if via != audit.ViaCLI && !web {
		via = audit.ViaPlugin
	}
	if act.Member == "root" && via == audit.ViaCLI {
		return Principal{Name: "root", Via: via, Owner: true}, nil
	}
	reg.mu.RLock()
	m, known := reg.members[act.Member]
	reg.mu.RUnlock()
	if !known {
		return Principal{Name: act.Member, Via: via, Remote: act.Remote},
			fmt.Errorf("%w: %q is not a member of the organisation", contract.ErrPermissionDenied, act.Member)
	}
	return Principal{Name: m.Name, Via: via, Owner: m.Role == contract.RoleOwner, Member: true, Remote: act.Remote}, nil
}

// Authorize resolves the caller in ctx and applies Allow for act on member.
func (reg *Registry) Authorize(ctx context.Context, act Action, member string) (Principal, error) {
	p, err := reg.Caller(ctx)
	if err != nil {
		return p, err
	}
	return p, Allow(p, act, member)
}

// Act is what a job operation calls once: it authorizes act for member and resolves the member's
// login on identity.
func (reg *Registry) Act(ctx context.Context, act Action, identity, member string) (Principal, Login, error) {
	p, err := reg.Authorize(ctx, act, member)
	if err != nil {
		return p, Login{}, err
	}
	l, err := reg.Login(identity, member)
	return p, l, err
}

// Audited records the outcome of an action p did (denied, error or ok) in the audit log.
func (reg *Registry) Audited(p Principal, action, identity, subject, target string, err error, detail string) {
	out := audit.OutcomeOK
	switch {
	case isDenied(err):
		out = audit.OutcomeDenied
	case err != nil:
		out = audit.OutcomeError
	}
	if err != nil && detail == "" {
		detail = err.Error()
	}
	via := p.Via
	if via == "" {
		via = audit.ViaPlugin
	}
	name := p.Name
	if name == "" {
		name = "unknown"
	}
	reg.record(audit.Event{Actor: name, Via: via, Remote: p.Remote, Action: action, Identity: identity, Subject: subject,
		Target: target, Outcome: out, Detail: detail})
}

// ResolveUnixUser maps the Unix uid of a CLI caller to an actor: root is an owner (bootstrap);
// other accounts act as the member whose unix_users list them.
func (reg *Registry) ResolveUnixUser(uid uint32) (contract.Actor, error) {
	if uid == 0 {
		return contract.Actor{Member: "root", Via: audit.ViaCLI}, nil
	}
	u, err := user.LookupId(fmt.Sprint(uid))
	if err != nil {
		return contract.Actor{}, fmt.Errorf("%w: uid %d has no account name", contract.ErrPermissionDenied, uid)
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	for _, m := range reg.members {
		if slices.Contains(m.UnixUsers, u.Username) {
			return contract.Actor{Member: m.Name, Via: audit.ViaCLI}, nil
		}
	}
	return contract.Actor{}, fmt.Errorf("%w: unix user %q is not mapped to an organisation member (an owner can add it: ferry member add NAME --unix-user %s)", contract.ErrPermissionDenied, u.Username, u.Username)
}

func isDenied(err error) bool { return errors.Is(err, contract.ErrPermissionDenied) }

func envSet(name string) bool {
	_, ok := os.LookupEnv(name)
	return ok
}
