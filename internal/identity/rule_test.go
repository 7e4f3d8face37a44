package identity_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// newRegistry opens a registry on a fresh store with an owner (olivia) and two members (alice,
// bob). No cluster is needed: nothing here logs in.
func newRegistry(t *testing.T) *identity.Registry {
	t.Helper()
	return newRegistryWith(t, func(*config.Config) {})
}

// newRegistryWith is newRegistry with the config changed by tune first.
func newRegistryWith(t *testing.T, tune func(*config.Config)) *identity.Registry {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Agent.StateDir = dir
	cfg.Agent.KEKEnv = "FERRY_TEST_KEK_UNSET"
	cfg.Members = []config.Member{
		{Name: "olivia", Role: contract.RoleOwner},
		{Name: "alice", Role: contract.RoleMember, UnixUsers: []string{"alice"}},
		{Name: "bob", Role: contract.RoleMember},
	}
	tune(&cfg)
	st, err := store.Open(filepath.Join(cfg.Agent.StateDir, "ferry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg, err := identity.Open(cfg, zerolog.Nop(), st, identity.Deps{})
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	return reg
}

// role is one kind of caller in the permission matrix, with the member an action concerns.
type role struct {
	name   string
	actor  *contract.Actor // nil: no actor at all (the launcher on the plugin channel)
	target string
}

var roles = []role{
	{"owner", &contract.Actor{Member: "olivia", Via: contract.ViaWeb}, "bob"},
	{"member for self", &contract.Actor{Member: "alice", Via: contract.ViaWeb}, "alice"},
	{"member for another", &contract.Actor{Member: "alice", Via: contract.ViaWeb}, "bob"},
	{"unknown caller", &contract.Actor{Member: "mallory", Via: contract.ViaWeb}, "mallory"},
	{"web caller naming no one", &contract.Actor{Via: contract.ViaAPI}, "bob"},
	{"cli root", &contract.Actor{Member: "root", Via: contract.ViaCLI}, "bob"},
	{"web caller named root", &contract.Actor{Member: "root", Via: contract.ViaWeb}, "bob"},
	{"launcher", nil, "bob"},
}

// TestPermissionMatrix is the rule every front door goes through, written out by hand: each role
// against each action, allow (A) or deny (D). Reads by members are allowed and filtered to what
// the member Sees (TestSees).
func TestPermissionMatrix(t *testing.T) {
	//                      owner  self  other unknown noone root  webroot launcher
	want := map[identity.Action]string{
		identity.IdentityList:     "A A A D D A D A",
		identity.IdentityScan:     "A D D D D A D A",
		identity.IdentityCreate:   "A D D D D A D A",
		identity.IdentityEdit:     "A D D D D A D A",
		identity.IdentityDelete:   "A D D D D A D A",
		identity.IdentityTest:     "A A D D D A D A",
		identity.MemberList:       "A A A D D A D A",
		identity.MemberAdd:        "A D D D D A D A",
		identity.MemberRemove:     "A D D D D A D A",
		identity.CredentialSet:    "A A D D D A D A",
		identity.CredentialDelete: "A A D D D A D A",
		identity.CredentialList:   "A A A D D A D A",
		identity.JobSubmit:        "A A D D D A D A",
		identity.JobStage:         "A A D D D A D A",
		identity.JobCancel:        "A A D D D A D A",
		identity.JobList:          "A A A D D A D A",
		identity.JobWatch:         "A A D D D A D A",
		identity.AuditRead:        "A A A D D A D A",
		identity.PoolsRead:        "A A A D D A D A",
		identity.KeysRotate:       "A D D D D A D A",
		identity.AccountList:      "A D D D D A D A",
		identity.AccountInvite:    "A D D D D A D A",
		identity.AccountPassword:  "A A D D D A D A",
		identity.TokenCreate:      "D A D D D D D D",
		identity.TokenList:        "A A A D D A D A",
		identity.TokenRevoke:      "A A D D D A D A",
	}
	require.Len(t, want, len(identity.Actions), "every action has a row")
	reg := newRegistry(t)
	for _, act := range identity.Actions {
		row, ok := want[act]
		require.True(t, ok, "action %q has no row", act)
		cells := splitRow(row)
		require.Len(t, cells, len(roles), "row %q", act)
		for i, r := range roles {
			t.Run(string(act)+"/"+r.name, func(t *testing.T) {
				ctx := context.Background()
				if r.actor != nil {
					ctx = contract.WithActor(ctx, *r.actor)
				}
				_, err := reg.Authorize(ctx, act, r.target)
				if cells[i] == "A" {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, contract.ErrPermissionDenied)
				}
			})
		}
	}
}

func splitRow(s string) []string {
	var out []string
	for _, c := range s {
		if c != ' ' {
			out = append(out, string(c))
		}
	}
	return out
}

// TestPermissionEveryMember covers the one action whose rule depends on whether a member is named:
// testing every member's credential is for owners only.
func TestPermissionEveryMember(t *testing.T) {
	reg := newRegistry(t)
	alice := contract.WithActor(context.Background(), contract.Actor{Member: "alice", Via: contract.ViaWeb})
	olivia := contract.WithActor(context.Background(), contract.Actor{Member: "olivia", Via: contract.ViaWeb})
	_, err := reg.Authorize(alice, identity.IdentityTest, "")
	require.ErrorContains(t, err, "only organisation owners may test every member's credential")
	_, err = reg.Authorize(olivia, identity.IdentityTest, "")
	require.NoError(t, err)
	_, err = reg.Authorize(alice, identity.JobWatch, "")
	require.NoError(t, err, "watching without naming a member is a read: it shows the watcher's own jobs")
	_, err = reg.Authorize(alice, identity.Action("job.teleport"), "alice")
	require.ErrorIs(t, err, contract.ErrPermissionDenied, "an action the rule does not know is refused")
}

func TestSees(t *testing.T) {
	owner := identity.Principal{Name: "olivia", Owner: true}
	alice := identity.Principal{Name: "alice"}
	require.True(t, owner.Sees("bob"))
	require.True(t, alice.Sees("alice"))
	require.False(t, alice.Sees("bob"))
	require.False(t, alice.Sees(""))
}

// TestRefusalsChangeNothing drives the registry's own operations as a member acting beyond their
// rights and as an unknown caller, and checks each is refused and leaves the store as it was.
func TestRefusalsChangeNothing(t *testing.T) {
	reg := newRegistry(t)
	owner := contract.WithActor(context.Background(), contract.Actor{Member: "olivia", Via: contract.ViaWeb})
	before, err := reg.ListMembers(owner)
	require.NoError(t, err)
	for _, who := range []string{"alice", "mallory"} {
		ctx := contract.WithActor(context.Background(), contract.Actor{Member: who, Via: contract.ViaAPI})
		for name, call := range map[string]func() error{
			"create identity": func() error {
				_, err := reg.CreateIdentity(ctx, contract.IdentitySpec{Name: "hpc", Scheduler: "slurm", Host: "127.0.0.1",
					WorkDir: "/srv/w", Group: "g", KnownHosts: "127.0.0.1 ssh-ed25519 AAAA"})
				return err
			},
			"edit identity":   func() error { _, err := reg.EditIdentity(ctx, "hpc", contract.IdentitySpec{}, true); return err },
			"delete identity": func() error { return reg.DeleteIdentity(ctx, "hpc") },
			"add member":      func() error { return reg.AddMember(ctx, contract.Member{Name: "eve", Role: contract.RoleOwner}) },
			"remove member":   func() error { return reg.RemoveMember(ctx, "bob") },
			"set credential": func() error {
				_, err := reg.SetCredential(ctx, contract.CredentialSpec{Identity: "hpc", Member: "bob", Username: "bob", Key: []byte("x")})
				return err
			},
			"delete credential": func() error { return reg.DeleteCredential(ctx, "hpc", "bob") },
			"rotate keys":       func() error { _, err := reg.RotateKeys(ctx); return err },
			"test everyone":     func() error { _, err := reg.TestIdentity(ctx, "hpc", ""); return err },
			"scan host key":     func() error { _, err := reg.ScanHostKey(ctx, "127.0.0.1", 22); return err },
		} {
			err := call()
			require.Truef(t, errors.Is(err, contract.ErrPermissionDenied), "%s as %s: %v", name, who, err)
		}
	}
	after, err := reg.ListMembers(owner)
	require.NoError(t, err)
	require.Equal(t, before, after)
	ids, err := reg.ListIdentities(owner)
	require.NoError(t, err)
	require.Empty(t, ids)
	events, err := reg.Audit(owner, contract.AuditFilter{Outcome: "denied"})
	require.NoError(t, err)
	require.NotEmpty(t, events, "refusals are audited")
	for _, e := range events {
		require.Equal(t, "api", e.Via)
	}
}
