package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
)

func TestAdminZeroValuesRoundTrip(t *testing.T) {
	f := newFake() // every canned answer is the zero value
	a := plugintest.Client(t, f).Admin()
	ctx := testCtx(t)

	ids, err := a.ListIdentities(ctx)
	require.NoError(t, err)
	assert.Nil(t, ids)
	id, err := a.GetIdentity(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, plugin.Identity{}, id)
	cred, err := a.SetCredential(ctx, plugin.CredentialSpec{})
	require.NoError(t, err)
	assert.Equal(t, plugin.Credential{}, cred)
	assert.Equal(t, plugin.CredentialSpec{}, f.AdminArgs().cred, "empty key and passphrase come back nil")
	events, err := a.Audit(ctx, plugin.AuditFilter{})
	require.NoError(t, err)
	assert.Nil(t, events)
	assert.Equal(t, plugin.AuditFilter{}, f.AdminArgs().filter, "unset times stay zero")
}

func TestAdminSecretsArriveByteForByte(t *testing.T) {
	f := newFake()
	a := plugintest.Client(t, f).Admin()
	spec := plugin.CredentialSpec{
		Identity: "lab-a", Member: "alice", Username: "alice",
		Key:        []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
		Passphrase: []byte("pa ss\x00\xff\n"), // spaces, NUL, non-UTF-8 and a newline are all passphrase bytes
	}
	_, err := a.SetCredential(testCtx(t), spec)
	require.NoError(t, err)
	assert.Equal(t, spec, f.AdminArgs().cred)
}

func TestAdminSentinelErrorsMapBackToThemselves(t *testing.T) {
	for _, s := range sentinels {
		t.Run(s.code.String(), func(t *testing.T) {
			f := newFake()
			f.err = fmt.Errorf("set credential of %q on %q: %w", "alice", "lab-a", s.err)
			c := plugintest.Client(t, f)

			errs := callEveryAdmin(testCtx(t), c.Admin())
			require.Len(t, errs, len(adminMethods))
			for rpc, err := range errs {
				require.Error(t, err, rpc)
				assert.ErrorIs(t, err, s.err, rpc)
				assert.Equal(t, f.err.Error(), err.Error(), rpc)
				assert.Equal(t, s.code, status.Code(err), rpc)
				for _, other := range sentinels {
					if other.err != s.err {
						assert.NotErrorIs(t, err, other.err, rpc)
					}
				}
			}
		})
	}
}

func TestAdminUnmappedErrorKeepsItsMessage(t *testing.T) {
	f := newFake()
	f.err = errors.New("store: disk full")
	for rpc, err := range callEveryAdmin(testCtx(t), plugintest.Client(t, f).Admin()) {
		require.Error(t, err, rpc)
		assert.Equal(t, "store: disk full", err.Error(), rpc)
		assert.Equal(t, codes.Unknown, status.Code(err), rpc)
	}
}

// An implementation without the Admin half serves no FerryAdmin: every admin call fails with
// ErrUnimplemented and says what is missing, while the Service half works.
func TestAdminUnimplementedWithoutAdminHalf(t *testing.T) {
	f := newFake()
	c := plugintest.Client(t, struct{ plugin.Service }{f})
	for rpc, err := range callEveryAdmin(testCtx(t), c.Admin()) {
		require.ErrorIs(t, err, plugin.ErrUnimplemented, rpc)
		assert.Equal(t, codes.Unimplemented, status.Code(err), rpc)
		assert.Contains(t, err.Error(), "does not offer identity and credential management", rpc)
	}
	assert.Empty(t, f.Calls())
	_, err := c.ListJobs(testCtx(t), plugin.ListRequest{})
	require.NoError(t, err)
}

func TestAdminRefusesIntegersThatDoNotFit(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("int is 32 bits here: every int fits")
	}
	f := newFake()
	a := plugintest.Client(t, f).Admin()
	ctx := testCtx(t)
	big := int(int64(math.MaxInt32) + 1)
	_, err := a.ScanHostKey(ctx, "h", big)
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
	_, err = a.CreateIdentity(ctx, plugin.IdentitySpec{Port: big})
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
	_, err = a.EditIdentity(ctx, "x", plugin.IdentitySpec{Port: -big - 1}, false)
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
	_, err = a.Audit(ctx, plugin.AuditFilter{Limit: big})
	assert.ErrorIs(t, err, plugin.ErrInvalidArgument)
	assert.Empty(t, f.Calls(), "the agent must not be called")

	// Out-of-range ports the agent should refuse itself still reach it (it says why).
	_, err = a.CreateIdentity(ctx, plugin.IdentitySpec{Port: 70000})
	require.NoError(t, err)
	assert.Equal(t, 70000, f.AdminArgs().spec.Port)
}

func TestAdminCallerDeadline(t *testing.T) {
	c := plugintest.Client(t, newFake())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for rpc, err := range callEveryAdmin(ctx, c.Admin()) {
		assert.ErrorIs(t, err, context.Canceled, rpc)
	}
}
