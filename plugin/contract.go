// Code in this file re-exports package contract, so launchers keep one import (plugin) and the
// implementations stay free of gRPC.

package plugin

import (
	"context"

	"github.com/ferryhpc/ferry/plugin/contract"
)

// The contract types, under the names launchers use.
type (
	Service        = contract.Service
	Resources      = contract.Resources
	SubmitRequest  = contract.SubmitRequest
	Job            = contract.Job
	JobEvent       = contract.JobEvent
	WatchRequest   = contract.WatchRequest
	ListRequest    = contract.ListRequest
	CancelResult   = contract.CancelResult
	StageFile      = contract.StageFile
	StageRequest   = contract.StageRequest
	StageResult    = contract.StageResult
	Admin          = contract.Admin
	Member         = contract.Member
	HostKey        = contract.HostKey
	JumpScan       = contract.JumpScan
	IdentitySpec   = contract.IdentitySpec
	Identity       = contract.Identity
	MemberStatus   = contract.MemberStatus
	CredentialSpec = contract.CredentialSpec
	Credential     = contract.Credential
	Check          = contract.Check
	AuditFilter    = contract.AuditFilter
	AuditEvent     = contract.AuditEvent
	PoolStats      = contract.PoolStats
	Actor          = contract.Actor
	Invite         = contract.Invite
	Account        = contract.Account
	Token          = contract.Token
)

// The error conditions of the contract (compare with errors.Is).
var (
	ErrNotFound           = contract.ErrNotFound
	ErrInvalidArgument    = contract.ErrInvalidArgument
	ErrPermissionDenied   = contract.ErrPermissionDenied
	ErrUnavailable        = contract.ErrUnavailable
	ErrAlreadyExists      = contract.ErrAlreadyExists
	ErrFailedPrecondition = contract.ErrFailedPrecondition
	ErrUnimplemented      = contract.ErrUnimplemented
)

// Roles, credential statuses and channels.
const (
	RoleOwner    = contract.RoleOwner
	RoleMember   = contract.RoleMember
	CredMissing  = contract.CredMissing
	CredAdded    = contract.CredAdded
	CredVerified = contract.CredVerified
	CredFailing  = contract.CredFailing
	CredHeld     = contract.CredHeld
	ViaPlugin    = contract.ViaPlugin
	ViaCLI       = contract.ViaCLI
	ViaWeb       = contract.ViaWeb
	ViaAPI       = contract.ViaAPI
)

// WithActor returns ctx carrying the actor (contract.WithActor). A launcher sets it to the
// organisation user it acts for; the agent's front doors set it from what they authenticated.
func WithActor(ctx context.Context, a Actor) context.Context { return contract.WithActor(ctx, a) }

// ActorFrom returns the actor in ctx and whether one was set (contract.ActorFrom).
func ActorFrom(ctx context.Context) (Actor, bool) { return contract.ActorFrom(ctx) }
