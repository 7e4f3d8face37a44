package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

// grpcAdminClient is the client shim for the FerryAdmin service: it implements Admin by calling the
// agent over gRPC, converting with convert.go and errors with fromStatus. Every call carries the
// actor of its ctx in the request metadata (which the agent's CLI socket ignores: there the
// caller's Unix uid decides).
type grpcAdminClient struct {
	rpc    ferryv1.FerryAdminClient
	closed *atomic.Bool // the Client's, set by Client.Close
}

var _ Admin = (*grpcAdminClient)(nil)

// fail converts a gRPC call's error like grpcClient.fail; an agent that does not serve FerryAdmin
// at all (gRPC's "unknown service") gives an error matching ErrUnimplemented that says so. An
// implementation's own ErrUnimplemented keeps its message.
func (c *grpcAdminClient) fail(err error) error {
	st, _ := status.FromError(err)
	err = failFromStatus(c.closed, err)
	if errors.Is(err, ErrUnimplemented) && strings.HasPrefix(st.Message(), "unknown service ") {
		return fmt.Errorf("the ferry agent does not offer identity and credential management (FerryAdmin); upgrade it: %w", err)
	}
	return err
}

// ListIdentities implements Admin.
func (c *grpcAdminClient) ListIdentities(ctx context.Context) ([]Identity, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.ListIdentities(ctx, &ferryv1.ListIdentitiesRequest{})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetIdentities(), identityFromPB), nil
}

// GetIdentity implements Admin.
func (c *grpcAdminClient) GetIdentity(ctx context.Context, name string) (Identity, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Identity{}, err
	}
	resp, err := c.rpc.GetIdentity(ctx, &ferryv1.GetIdentityRequest{Name: name})
	if err != nil {
		return Identity{}, c.fail(err)
	}
	return identityFromPB(resp.GetIdentity()), nil
}

// ScanHostKey implements Admin. It fails with ErrInvalidArgument, without calling the agent, if
// port does not fit in 32 bits.
func (c *grpcAdminClient) ScanHostKey(ctx context.Context, host string, port int) ([]HostKey, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := int32Field("port", port)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.ScanHostKey(ctx, &ferryv1.ScanHostKeyRequest{Host: host, Port: p})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetKeys(), hostKeyFromPB), nil
}

// ScanHostKeyVia implements Admin. It fails with ErrInvalidArgument, without calling the agent, if
// a port does not fit in 32 bits or no bastion is named.
func (c *grpcAdminClient) ScanHostKeyVia(ctx context.Context, host string, port int, via JumpScan) ([]HostKey, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := int32Field("port", port)
	if err != nil {
		return nil, err
	}
	jp, err := int32Field("jump port", via.Port)
	if err != nil {
		return nil, err
	}
	if via.Host == "" {
		return nil, fmt.Errorf("%w: no jump host given", ErrInvalidArgument)
	}
	resp, err := c.rpc.ScanHostKey(ctx, &ferryv1.ScanHostKeyRequest{Host: host, Port: p, JumpHost: via.Host, JumpPort: jp,
		JumpUser: via.User, JumpKnownHosts: via.KnownHosts, JumpKey: via.Key, JumpPassphrase: via.Passphrase})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetKeys(), hostKeyFromPB), nil
}

// CreateIdentity implements Admin. It fails with ErrInvalidArgument, without calling the agent, if
// spec.Port does not fit in 32 bits.
func (c *grpcAdminClient) CreateIdentity(ctx context.Context, spec IdentitySpec) (Identity, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Identity{}, err
	}
	pb, err := identitySpecToPB(spec)
	if err != nil {
		return Identity{}, err
	}
	resp, err := c.rpc.CreateIdentity(ctx, &ferryv1.CreateIdentityRequest{Spec: pb})
	if err != nil {
		return Identity{}, c.fail(err)
	}
	return identityFromPB(resp.GetIdentity()), nil
}

// EditIdentity implements Admin. It fails with ErrInvalidArgument, without calling the agent, if
// spec.Port does not fit in 32 bits.
func (c *grpcAdminClient) EditIdentity(ctx context.Context, name string, spec IdentitySpec, force bool) (Identity, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Identity{}, err
	}
	pb, err := identitySpecToPB(spec)
	if err != nil {
		return Identity{}, err
	}
	resp, err := c.rpc.EditIdentity(ctx, &ferryv1.EditIdentityRequest{Name: name, Spec: pb, Force: force})
	if err != nil {
		return Identity{}, c.fail(err)
	}
	return identityFromPB(resp.GetIdentity()), nil
}

// DeleteIdentity implements Admin.
func (c *grpcAdminClient) DeleteIdentity(ctx context.Context, name string) error {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return err
	}
	if _, err := c.rpc.DeleteIdentity(ctx, &ferryv1.DeleteIdentityRequest{Name: name}); err != nil {
		return c.fail(err)
	}
	return nil
}

// TestIdentity implements Admin.
func (c *grpcAdminClient) TestIdentity(ctx context.Context, name, member string) ([]Check, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.TestIdentity(ctx, &ferryv1.TestIdentityRequest{Name: name, Member: member})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetChecks(), checkFromPB), nil
}

// ListMembers implements Admin.
func (c *grpcAdminClient) ListMembers(ctx context.Context) ([]Member, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.ListMembers(ctx, &ferryv1.ListMembersRequest{})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetMembers(), memberFromPB), nil
}

// AddMember implements Admin.
func (c *grpcAdminClient) AddMember(ctx context.Context, m Member) error {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return err
	}
	if _, err := c.rpc.AddMember(ctx, &ferryv1.AddMemberRequest{Member: memberToPB(m)}); err != nil {
		return c.fail(err)
	}
	return nil
}

// RemoveMember implements Admin.
func (c *grpcAdminClient) RemoveMember(ctx context.Context, name string) error {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return err
	}
	if _, err := c.rpc.RemoveMember(ctx, &ferryv1.RemoveMemberRequest{Name: name}); err != nil {
		return c.fail(err)
	}
	return nil
}

// SetCredential implements Admin. The request references cr.Key and cr.Passphrase without copying
// them, so the caller may clear its buffers once the call returns.
func (c *grpcAdminClient) SetCredential(ctx context.Context, cr CredentialSpec) (Credential, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Credential{}, err
	}
	resp, err := c.rpc.SetCredential(ctx, setCredentialRequestToPB(cr))
	if err != nil {
		return Credential{}, c.fail(err)
	}
	return credentialFromPB(resp.GetCredential()), nil
}

// DeleteCredential implements Admin.
func (c *grpcAdminClient) DeleteCredential(ctx context.Context, identity, member string) error {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return err
	}
	req := &ferryv1.DeleteCredentialRequest{Identity: identity, Member: member}
	if _, err := c.rpc.DeleteCredential(ctx, req); err != nil {
		return c.fail(err)
	}
	return nil
}

// ListCredentials implements Admin.
func (c *grpcAdminClient) ListCredentials(ctx context.Context, identity string) ([]Credential, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.ListCredentials(ctx, &ferryv1.ListCredentialsRequest{Identity: identity})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetCredentials(), credentialFromPB), nil
}

// RotateKeys implements Admin.
func (c *grpcAdminClient) RotateKeys(ctx context.Context) (int, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := c.rpc.RotateKeys(ctx, &ferryv1.RotateKeysRequest{})
	if err != nil {
		return 0, c.fail(err)
	}
	return int(resp.GetResealed()), nil
}

// Audit implements Admin. It fails with ErrInvalidArgument, without calling the agent, if f.Limit
// does not fit in 32 bits.
func (c *grpcAdminClient) Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	req, err := auditFilterToPB(f)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.Audit(ctx, req)
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetEvents(), auditEventFromPB), nil
}

// Pools implements Admin.
func (c *grpcAdminClient) Pools(ctx context.Context) ([]PoolStats, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.Pools(ctx, &ferryv1.PoolsRequest{})
	if err != nil {
		return nil, c.fail(err)
	}
	return mapSlice(resp.GetPools(), poolStatsFromPB), nil
}

// SetPassword implements Admin.
func (c *grpcAdminClient) SetPassword(ctx context.Context, member string, password []byte) error {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return err
	}
	if _, err := c.rpc.SetPassword(ctx, &ferryv1.SetPasswordRequest{Member: member, Password: string(password)}); err != nil {
		return c.fail(err)
	}
	return nil
}

// Invite implements Admin.
func (c *grpcAdminClient) Invite(ctx context.Context, member string) (Invite, error) {
	ctx, err := withOutgoingActor(ctx)
	if err != nil {
		return Invite{}, err
	}
	resp, err := c.rpc.Invite(ctx, &ferryv1.InviteRequest{Member: member})
	if err != nil {
		return Invite{}, c.fail(err)
	}
	return Invite{Member: resp.GetMember(), URL: resp.GetUrl(), Expires: timeFromPB(resp.GetExpires())}, nil
}
