package plugin_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
)

// fill sets every exported field of the struct v points to (recursively) to a non-zero value
// derived from the field's name, so a field that the shims forget to carry shows up as a
// difference. It fails the test for a field kind it does not know: teach it the new kind (and
// convert.go the new field).
func fill(t *testing.T, v any) {
	t.Helper()
	fillValue(t, reflect.ValueOf(v).Elem(), "x")
}

func fillValue(t *testing.T, v reflect.Value, name string) {
	t.Helper()
	switch v.Type() {
	case reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Date(2026, 2, 3, 4, 5, 6, len(name), time.UTC)))
		return
	case reflect.TypeOf(time.Duration(0)):
		v.SetInt(int64(len(name)) * int64(time.Second))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(name + "-value")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(name)) + 1)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(t, p.Elem(), name)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fillValue(t, s.Index(0), name+"0")
		fillValue(t, s.Index(1), name+"1")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		e := reflect.New(v.Type().Elem()).Elem()
		fillValue(t, k, name+"-key")
		fillValue(t, e, name+"-elem")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Uint8: // []byte elements
		v.SetUint(uint64(len(name)))
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() {
				fillValue(t, v.Field(i), name+"."+f.Name)
			}
		}
	default:
		t.Fatalf("fill: field %s has kind %s, which fill does not know", name, v.Kind())
	}
}

// TestEveryFieldRoundTrips fills every exported field of every type on the wire, so a field added
// to service.go but not to the .proto and convert.go fails here.
func TestEveryFieldRoundTrips(t *testing.T) {
	var (
		submit plugin.SubmitRequest
		job    plugin.Job
		watch  plugin.WatchRequest
		cancel plugin.CancelResult
		stage  plugin.StageRequest
		result plugin.StageResult
		list   plugin.ListRequest
	)
	for _, v := range []any{&submit, &job, &watch, &cancel, &stage, &result, &list} {
		fill(t, v)
	}
	f := newFake()
	f.job = job
	f.jobs = []plugin.Job{job}
	f.results = []plugin.CancelResult{cancel}
	f.stage = result
	f.events = []plugin.JobEvent{{Job: job}}
	f.watchReturnNil = true
	c := plugintest.Client(t, f)
	ctx := testCtx(t)

	gotJob, err := c.Submit(ctx, submit)
	require.NoError(t, err)
	assert.Equal(t, submit, f.submitReq)
	assert.Equal(t, job, gotJob)

	jobs, err := c.Status(ctx, []string{"a", "b"})
	require.NoError(t, err)
	assert.Equal(t, []plugin.Job{job}, jobs)

	var events []plugin.JobEvent
	err = c.Watch(ctx, watch, func(ev plugin.JobEvent) error { events = append(events, ev); return nil })
	require.ErrorIs(t, err, plugin.ErrUnavailable) // the fake ended the stream
	assert.Equal(t, watch, f.watchReq)
	assert.Equal(t, f.events, events)

	results, err := c.Cancel(ctx, []string{"a"})
	require.NoError(t, err)
	assert.Equal(t, []plugin.CancelResult{cancel}, results)

	for _, call := range []func(context.Context, plugin.StageRequest) (plugin.StageResult, error){c.StageIn, c.StageOut} {
		got, err := call(ctx, stage)
		require.NoError(t, err)
		assert.Equal(t, result, got)
		assert.Equal(t, stage, f.stageReq)
	}

	jobs, err = c.ListJobs(ctx, list)
	require.NoError(t, err)
	assert.Equal(t, list, f.listReq)
	assert.Equal(t, []plugin.Job{job}, jobs)
}

// TestAdminEveryFieldRoundTrips does the same for every Admin type on the wire, in both directions:
// each request's fields reach the implementation and each answer's fields reach the caller.
func TestAdminEveryFieldRoundTrips(t *testing.T) {
	var (
		identity   plugin.Identity
		hostKey    plugin.HostKey
		check      plugin.Check
		member     plugin.Member
		credential plugin.Credential
		event      plugin.AuditEvent
		pool       plugin.PoolStats
		spec       plugin.IdentitySpec
		credSpec   plugin.CredentialSpec
		filter     plugin.AuditFilter
	)
	for _, v := range []any{&identity, &hostKey, &check, &member, &credential, &event, &pool, &spec, &credSpec, &filter} {
		fill(t, v)
	}
	f := newFake()
	f.identity = identity
	f.identities = []plugin.Identity{identity, identity}
	f.hostKeys = []plugin.HostKey{hostKey}
	f.checks = []plugin.Check{check}
	f.members = []plugin.Member{member}
	f.credential = credential
	f.credentials = []plugin.Credential{credential}
	f.resealed = 12345
	f.auditEvents = []plugin.AuditEvent{event}
	f.pools = []plugin.PoolStats{pool}
	a := plugintest.Client(t, f).Admin()
	ctx := testCtx(t)

	ids, err := a.ListIdentities(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.identities, ids)

	got, err := a.GetIdentity(ctx, "lab-a")
	require.NoError(t, err)
	assert.Equal(t, identity, got)
	assert.Equal(t, "lab-a", f.AdminArgs().name)

	keys, err := a.ScanHostKey(ctx, "login.example.org", 2222)
	require.NoError(t, err)
	assert.Equal(t, f.hostKeys, keys)
	assert.Equal(t, "login.example.org", f.AdminArgs().host)
	assert.Equal(t, 2222, f.AdminArgs().port)

	via := plugin.JumpScan{Host: "bastion.example.org", Port: 2200, User: "john.smith", KnownHosts: "[bastion.example.org]:2200 ssh-ed25519 AAAA",
		Key: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n..."), Passphrase: []byte("pass phrase")}
	keys, err = a.ScanHostKeyVia(ctx, "login.internal", 22, via)
	require.NoError(t, err)
	assert.Equal(t, f.hostKeys, keys)
	assert.Equal(t, "login.internal", f.AdminArgs().host)
	assert.Equal(t, via, f.AdminArgs().via, "every JumpScan field crosses the wire")

	got, err = a.CreateIdentity(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, identity, got)
	assert.Equal(t, spec, f.AdminArgs().spec)

	got, err = a.EditIdentity(ctx, "lab-b", spec, true)
	require.NoError(t, err)
	assert.Equal(t, identity, got)
	assert.Equal(t, "lab-b", f.AdminArgs().name)
	assert.Equal(t, spec, f.AdminArgs().spec)
	assert.True(t, f.AdminArgs().force)

	require.NoError(t, a.DeleteIdentity(ctx, "lab-c"))
	assert.Equal(t, "lab-c", f.AdminArgs().name)

	checks, err := a.TestIdentity(ctx, "lab-d", "bob")
	require.NoError(t, err)
	assert.Equal(t, f.checks, checks)
	assert.Equal(t, "lab-d", f.AdminArgs().name)
	assert.Equal(t, "bob", f.AdminArgs().member)

	members, err := a.ListMembers(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.members, members)

	require.NoError(t, a.AddMember(ctx, member))
	assert.Equal(t, member, f.AdminArgs().newMember)

	require.NoError(t, a.RemoveMember(ctx, "carol"))
	assert.Equal(t, "carol", f.AdminArgs().name)

	cred, err := a.SetCredential(ctx, credSpec)
	require.NoError(t, err)
	assert.Equal(t, credential, cred)
	assert.Equal(t, credSpec, f.AdminArgs().cred)

	require.NoError(t, a.DeleteCredential(ctx, "lab-e", "dave"))
	assert.Equal(t, "lab-e", f.AdminArgs().identity)
	assert.Equal(t, "dave", f.AdminArgs().member)

	creds, err := a.ListCredentials(ctx, "lab-f")
	require.NoError(t, err)
	assert.Equal(t, f.credentials, creds)
	assert.Equal(t, "lab-f", f.AdminArgs().identity)

	n, err := a.RotateKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, 12345, n)

	events, err := a.Audit(ctx, filter)
	require.NoError(t, err)
	assert.Equal(t, f.auditEvents, events)
	assert.Equal(t, filter, f.AdminArgs().filter)

	pools, err := a.Pools(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.pools, pools)

	require.NoError(t, a.SetPassword(ctx, "erin", []byte("a long enough passphrase")))
	assert.Equal(t, "erin", f.AdminArgs().member)
	assert.Equal(t, "a long enough passphrase", f.AdminArgs().password)

	f.invite = plugin.Invite{Member: "frank", URL: "https://ferry.example.org/invite/abc", Expires: time.Date(2026, 12, 10, 1, 2, 3, 0, time.UTC)}
	inv, err := a.Invite(ctx, "frank")
	require.NoError(t, err)
	assert.Equal(t, f.invite, inv)
	assert.Equal(t, "frank", f.AdminArgs().member)

	assert.Equal(t, adminMethods, f.Calls(), "every Admin method was called once, through the shims")
}
