package plugin

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"

	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

// grpcAdminServer is the server shim for the FerryAdmin service: it calls an Admin, converting
// messages with convert.go and errors with toStatus. It is registered only for implementations
// that have the Admin half (registerServices). Like grpcServer it holds no state of its own.
//
// It never logs a request: SetCredential's carries a private key and its passphrase.
type grpcAdminServer struct {
	ferryv1.UnimplementedFerryAdminServer
	shim

	impl Admin
}

var _ ferryv1.FerryAdminServer = (*grpcAdminServer)(nil)

func newGRPCAdminServer(impl Admin, log hclog.Logger, actorFromMD bool) *grpcAdminServer {
	return &grpcAdminServer{impl: impl, shim: newShim(log, actorFromMD)}
}

func (s *grpcAdminServer) ListIdentities(ctx context.Context, _ *ferryv1.ListIdentitiesRequest) (*ferryv1.ListIdentitiesResponse, error) {
	ctx, err := s.enter(ctx, "ListIdentities")
	if err != nil {
		return nil, err
	}
	ids, err := s.impl.ListIdentities(ctx)
	if err != nil {
		return nil, s.fail("ListIdentities", err)
	}
	return &ferryv1.ListIdentitiesResponse{Identities: mapSlice(ids, identityToPB)}, nil
}

func (s *grpcAdminServer) GetIdentity(ctx context.Context, req *ferryv1.GetIdentityRequest) (*ferryv1.GetIdentityResponse, error) {
	ctx, err := s.enter(ctx, "GetIdentity")
	if err != nil {
		return nil, err
	}
	id, err := s.impl.GetIdentity(ctx, req.GetName())
	if err != nil {
		return nil, s.fail("GetIdentity", err)
	}
	return &ferryv1.GetIdentityResponse{Identity: identityToPB(id)}, nil
}

func (s *grpcAdminServer) ScanHostKey(ctx context.Context, req *ferryv1.ScanHostKeyRequest) (*ferryv1.ScanHostKeyResponse, error) {
	ctx, err := s.enter(ctx, "ScanHostKey")
	if err != nil {
		return nil, err
	}
	var keys []HostKey
	if req.GetJumpHost() != "" {
		keys, err = s.impl.ScanHostKeyVia(ctx, req.GetHost(), int(req.GetPort()), JumpScan{Host: req.GetJumpHost(), Port: int(req.GetJumpPort()),
			User: req.GetJumpUser(), KnownHosts: req.GetJumpKnownHosts(), Key: req.GetJumpKey(), Passphrase: req.GetJumpPassphrase()})
	} else {
		keys, err = s.impl.ScanHostKey(ctx, req.GetHost(), int(req.GetPort()))
	}
	if err != nil {
		return nil, s.fail("ScanHostKey", err)
	}
	return &ferryv1.ScanHostKeyResponse{Keys: mapSlice(keys, hostKeyToPB)}, nil
}

func (s *grpcAdminServer) CreateIdentity(ctx context.Context, req *ferryv1.CreateIdentityRequest) (*ferryv1.CreateIdentityResponse, error) {
	ctx, err := s.enter(ctx, "CreateIdentity")
	if err != nil {
		return nil, err
	}
	id, err := s.impl.CreateIdentity(ctx, identitySpecFromPB(req.GetSpec()))
	if err != nil {
		return nil, s.fail("CreateIdentity", err)
	}
	return &ferryv1.CreateIdentityResponse{Identity: identityToPB(id)}, nil
}

func (s *grpcAdminServer) EditIdentity(ctx context.Context, req *ferryv1.EditIdentityRequest) (*ferryv1.EditIdentityResponse, error) {
	ctx, err := s.enter(ctx, "EditIdentity")
	if err != nil {
		return nil, err
	}
	id, err := s.impl.EditIdentity(ctx, req.GetName(), identitySpecFromPB(req.GetSpec()), req.GetForce())
	if err != nil {
		return nil, s.fail("EditIdentity", err)
	}
	return &ferryv1.EditIdentityResponse{Identity: identityToPB(id)}, nil
}

func (s *grpcAdminServer) DeleteIdentity(ctx context.Context, req *ferryv1.DeleteIdentityRequest) (*ferryv1.DeleteIdentityResponse, error) {
	ctx, err := s.enter(ctx, "DeleteIdentity")
	if err != nil {
		return nil, err
	}
	if err := s.impl.DeleteIdentity(ctx, req.GetName()); err != nil {
		return nil, s.fail("DeleteIdentity", err)
	}
	return &ferryv1.DeleteIdentityResponse{}, nil
}

func (s *grpcAdminServer) TestIdentity(ctx context.Context, req *ferryv1.TestIdentityRequest) (*ferryv1.TestIdentityResponse, error) {
	ctx, err := s.enter(ctx, "TestIdentity")
	if err != nil {
		return nil, err
	}
	checks, err := s.impl.TestIdentity(ctx, req.GetName(), req.GetMember())
	if err != nil {
		return nil, s.fail("TestIdentity", err)
	}
	return &ferryv1.TestIdentityResponse{Checks: mapSlice(checks, checkToPB)}, nil
}

func (s *grpcAdminServer) ListMembers(ctx context.Context, _ *ferryv1.ListMembersRequest) (*ferryv1.ListMembersResponse, error) {
	ctx, err := s.enter(ctx, "ListMembers")
	if err != nil {
		return nil, err
	}
	ms, err := s.impl.ListMembers(ctx)
	if err != nil {
		return nil, s.fail("ListMembers", err)
	}
	return &ferryv1.ListMembersResponse{Members: mapSlice(ms, memberToPB)}, nil
}

func (s *grpcAdminServer) AddMember(ctx context.Context, req *ferryv1.AddMemberRequest) (*ferryv1.AddMemberResponse, error) {
	ctx, err := s.enter(ctx, "AddMember")
	if err != nil {
		return nil, err
	}
	if err := s.impl.AddMember(ctx, memberFromPB(req.GetMember())); err != nil {
		return nil, s.fail("AddMember", err)
	}
	return &ferryv1.AddMemberResponse{}, nil
}

func (s *grpcAdminServer) RemoveMember(ctx context.Context, req *ferryv1.RemoveMemberRequest) (*ferryv1.RemoveMemberResponse, error) {
	ctx, err := s.enter(ctx, "RemoveMember")
	if err != nil {
		return nil, err
	}
	if err := s.impl.RemoveMember(ctx, req.GetName()); err != nil {
		return nil, s.fail("RemoveMember", err)
	}
	return &ferryv1.RemoveMemberResponse{}, nil
}

// SetCredential passes the key and passphrase to the implementation, which seals them. The shim
// keeps no copy and logs only the implementation's error (which must not quote the secrets).
func (s *grpcAdminServer) SetCredential(ctx context.Context, req *ferryv1.SetCredentialRequest) (*ferryv1.SetCredentialResponse, error) {
	ctx, err := s.enter(ctx, "SetCredential")
	if err != nil {
		return nil, err
	}
	c, err := s.impl.SetCredential(ctx, credentialSpecFromPB(req))
	if err != nil {
		return nil, s.fail("SetCredential", err)
	}
	return &ferryv1.SetCredentialResponse{Credential: credentialToPB(c)}, nil
}

func (s *grpcAdminServer) DeleteCredential(ctx context.Context, req *ferryv1.DeleteCredentialRequest) (*ferryv1.DeleteCredentialResponse, error) {
	ctx, err := s.enter(ctx, "DeleteCredential")
	if err != nil {
		return nil, err
	}
	if err := s.impl.DeleteCredential(ctx, req.GetIdentity(), req.GetMember()); err != nil {
		return nil, s.fail("DeleteCredential", err)
	}
	return &ferryv1.DeleteCredentialResponse{}, nil
}

func (s *grpcAdminServer) ListCredentials(ctx context.Context, req *ferryv1.ListCredentialsRequest) (*ferryv1.ListCredentialsResponse, error) {
	ctx, err := s.enter(ctx, "ListCredentials")
	if err != nil {
		return nil, err
	}
	cs, err := s.impl.ListCredentials(ctx, req.GetIdentity())
	if err != nil {
		return nil, s.fail("ListCredentials", err)
	}
	return &ferryv1.ListCredentialsResponse{Credentials: mapSlice(cs, credentialToPB)}, nil
}

func (s *grpcAdminServer) RotateKeys(ctx context.Context, _ *ferryv1.RotateKeysRequest) (*ferryv1.RotateKeysResponse, error) {
	ctx, err := s.enter(ctx, "RotateKeys")
	if err != nil {
		return nil, err
	}
	n, err := s.impl.RotateKeys(ctx)
	if err != nil {
		return nil, s.fail("RotateKeys", err)
	}
	return &ferryv1.RotateKeysResponse{Resealed: int64(n)}, nil
}

func (s *grpcAdminServer) Audit(ctx context.Context, req *ferryv1.AuditRequest) (*ferryv1.AuditResponse, error) {
	ctx, err := s.enter(ctx, "Audit")
	if err != nil {
		return nil, err
	}
	evs, err := s.impl.Audit(ctx, auditFilterFromPB(req))
	if err != nil {
		return nil, s.fail("Audit", err)
	}
	return &ferryv1.AuditResponse{Events: mapSlice(evs, auditEventToPB)}, nil
}

func (s *grpcAdminServer) Pools(ctx context.Context, _ *ferryv1.PoolsRequest) (*ferryv1.PoolsResponse, error) {
	ctx, err := s.enter(ctx, "Pools")
	if err != nil {
		return nil, err
	}
	ps, err := s.impl.Pools(ctx)
	if err != nil {
		return nil, s.fail("Pools", err)
	}
	return &ferryv1.PoolsResponse{Pools: mapSlice(ps, poolStatsToPB)}, nil
}

func (s *grpcAdminServer) SetPassword(ctx context.Context, req *ferryv1.SetPasswordRequest) (*ferryv1.SetPasswordResponse, error) {
	ctx, err := s.enter(ctx, "SetPassword")
	if err != nil {
		return nil, err
	}
	if err := s.impl.SetPassword(ctx, req.GetMember(), []byte(req.GetPassword())); err != nil {
		return nil, s.fail("SetPassword", err)
	}
	return &ferryv1.SetPasswordResponse{}, nil
}

func (s *grpcAdminServer) Invite(ctx context.Context, req *ferryv1.InviteRequest) (*ferryv1.InviteResponse, error) {
	ctx, err := s.enter(ctx, "Invite")
	if err != nil {
		return nil, err
	}
	inv, err := s.impl.Invite(ctx, req.GetMember())
	if err != nil {
		return nil, s.fail("Invite", err)
	}
	return &ferryv1.InviteResponse{Member: inv.Member, Url: inv.URL, Expires: timeToPB(inv.Expires)}, nil
}
