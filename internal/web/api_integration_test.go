package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// clusterFront is a front door whose agent knows the local test cluster as identity "local",
// created through the API by the owner, with alice's credential added through the API by alice.
type clusterFront struct {
	*front
	cluster *testcluster.Cluster
	owner   string // olivia's token
	alice   string // alice's token
	bob     string // bob's token
}

func newClusterFront(t *testing.T, tune func(*config.Config)) *clusterFront {
	t.Helper()
	c := testcluster.Require(t)
	f := &clusterFront{front: newFront(t, tune), cluster: c}
	f.owner, f.alice, f.bob = f.token("olivia"), f.token("alice"), f.token("bob")
	r := f.call(http.MethodPost, "/identities", map[string]any{"name": "local", "scheduler": "slurm", "host": c.Host, "port": c.Port,
		"work_dir": c.WorkDir, "group": c.Group, "known_hosts": c.KnownHosts}, bearer(f.owner))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	key, err := os.ReadFile(c.User(t, "alice").Key)
	require.NoError(t, err)
	r = f.call(http.MethodPut, "/identities/local/users/alice/credential", map[string]any{"username": "alice", "private_key": string(key)}, bearer(f.alice))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.NotContains(t, string(r.body), "PRIVATE KEY", "no key comes back")
	return f
}

// snapshot is what a refused request must leave as it was: identities, members, credentials
// (who has one, username, fingerprint) and the jobs that exist.
func (f *clusterFront) snapshot() string {
	f.t.Helper()
	var b strings.Builder
	ctx := rootCtx
	ids, err := f.agent.ListIdentities(ctx)
	require.NoError(f.t, err)
	for _, id := range ids {
		fmt.Fprintf(&b, "identity %s %s %s:%d %s %s %q %q\n", id.Name, id.Scheduler, id.Host, id.Port, id.WorkDir, id.Group, id.KnownHosts, id.JumpHost)
	}
	ms, err := f.agent.ListMembers(ctx)
	require.NoError(f.t, err)
	for _, m := range ms {
		fmt.Fprintf(&b, "member %s %s %v\n", m.Name, m.Role, m.UnixUsers)
	}
	cs, err := f.agent.ListCredentials(ctx, "")
	require.NoError(f.t, err)
	for _, c := range cs {
		fmt.Fprintf(&b, "credential %s %s %s %s\n", c.Identity, c.Member, c.Username, c.Fingerprint)
	}
	jobs, err := f.agent.ListJobs(ctx, contract.ListRequest{})
	require.NoError(f.t, err)
	for _, j := range jobs {
		fmt.Fprintf(&b, "job %s %s %s\n", j.ID, j.Identity, j.User)
	}
	accts, err := f.agent.Accounts(ctx)
	require.NoError(f.t, err)
	for _, a := range accts {
		fmt.Fprintf(&b, "account %s %v\n", a.Member, a.HasPassword)
	}
	return b.String()
}

// TestAPIPermissionMatrix runs every operation of the API as each kind of caller against a real
// agent on the local cluster: the owner; a member acting for themselves; a member acting for
// another member; no credential; a session that expired; a revoked token. It asserts each status
// code, and that a refused request changed nothing.
func TestAPIPermissionMatrix(t *testing.T) {
	f := newClusterFront(t, func(c *config.Config) { c.Web.SessionIdle = config.Duration{Duration: time.Second} })

	// bob's job, so that alice has another member's job to try to cancel.
	bobJob, err := f.agent.Submit(context.Background(), contract.SubmitRequest{Identity: "local", User: "bob", Name: "bobs",
		Script: []byte("sleep 1\n")})
	require.ErrorIs(t, err, contract.ErrFailedPrecondition, "bob has no credential yet")
	key, err := os.ReadFile(f.cluster.User(t, "bob").Key)
	require.NoError(t, err)
	r := f.call(http.MethodPut, "/identities/local/users/bob/credential", map[string]any{"username": "bob", "private_key": string(key),
		"passphrase": f.cluster.User(t, "bob").Passphrase}, bearer(f.bob))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	// bob's jobs: one that stays active for the in-use checks, one for alice to try to cancel.
	bobJob, err = f.agent.Submit(context.Background(), contract.SubmitRequest{Identity: "local", User: "bob", Name: "bobs",
		Script: []byte("sleep 300\n")})
	require.NoError(t, err)
	bobJob2, err := f.agent.Submit(context.Background(), contract.SubmitRequest{Identity: "local", User: "bob", Name: "bobs2",
		Script: []byte("sleep 300\n")})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = f.agent.Cancel(context.Background(), []string{bobJob.ID, bobJob2.ID}) })
	// A second identity on which alice has a credential and no job, for her to delete it.
	r = f.call(http.MethodPost, "/identities", map[string]any{"name": "local2", "scheduler": "slurm", "host": f.cluster.Host,
		"port": f.cluster.Port, "work_dir": f.cluster.WorkDir, "group": f.cluster.Group, "known_hosts": f.cluster.KnownHosts}, bearer(f.owner))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	aliceKey, err := os.ReadFile(f.cluster.User(t, "alice").Key)
	require.NoError(t, err)
	r = f.call(http.MethodPut, "/identities/local2/users/alice/credential", map[string]any{"username": "alice", "private_key": string(aliceKey)}, bearer(f.alice))
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	// An expired session: signed in, then idle past web.session_idle.
	require.NoError(t, f.agent.SetPassword(rootCtx, "alice", []byte("alice's long password")))
	expiredClient, expiredCSRF := f.signIn("alice", "alice's long password")
	time.Sleep(1500 * time.Millisecond)
	// A revoked token.
	revokedTok, revokedSecret, err := f.agent.CreateToken(asMember("alice"), "to revoke", 0)
	require.NoError(t, err)
	require.NoError(t, f.agent.RevokeToken(asMember("alice"), revokedTok.ID))

	type op struct {
		name     string
		method   string
		path     string // for "other": the path acting on bob's things
		selfPath string // the path acting on alice's own things ("" = same as path)
		body     any
		// want: owner, self, other. The three unauthenticated callers always get 401.
		owner, self, other int
	}
	ops := []op{
		{name: "me", method: "GET", path: "/me", owner: 200, self: 200, other: 200},
		{name: "list identities", method: "GET", path: "/identities", owner: 200, self: 200, other: 200},
		{name: "get identity", method: "GET", path: "/identities/local", owner: 200, self: 200, other: 200},
		{name: "create identity", method: "POST", path: "/identities", body: map[string]any{"name": "other", "scheduler": "slurm",
			"host": f.cluster.Host, "port": f.cluster.Port, "work_dir": f.cluster.WorkDir, "group": f.cluster.Group, "known_hosts": f.cluster.KnownHosts},
			owner: 201, self: 403, other: 403},
		{name: "edit identity in use", method: "PATCH", path: "/identities/local", body: map[string]any{"group": f.cluster.Group},
			owner: 409, self: 403, other: 403},
		{name: "delete identity in use", method: "DELETE", path: "/identities/local", owner: 409, self: 403, other: 403},
		{name: "delete identity", method: "DELETE", path: "/identities/other", owner: 204, self: 403, other: 403},
		{name: "scan host key", method: "POST", path: "/hostkeys/scan", body: map[string]any{"host": f.cluster.Host, "port": f.cluster.Port},
			owner: 200, self: 403, other: 403},
		{name: "test identity", method: "POST", path: "/identities/local/test", selfPath: "/identities/local/test",
			body: map[string]any{"member": "bob"}, owner: 200, self: 200, other: 403},
		{name: "test every member", method: "POST", path: "/identities/local/test", body: map[string]any{}, owner: 200, self: 403, other: 403},
		{name: "list users", method: "GET", path: "/identities/local/users", owner: 200, self: 200, other: 200},
		{name: "set credential", method: "PUT", path: "/identities/local/users/bob/credential", selfPath: "/identities/local/users/alice/credential",
			body: map[string]any{"username": "x", "private_key": "not a key"}, owner: 422, self: 422, other: 403},
		{name: "list members", method: "GET", path: "/members", owner: 200, self: 200, other: 200},
		{name: "add member", method: "POST", path: "/members", body: map[string]any{"name": "erin", "role": "member"}, owner: 201, self: 403, other: 403},
		{name: "invite member", method: "POST", path: "/members/bob/invite", owner: 201, self: 403, other: 403},
		{name: "remove member in use", method: "DELETE", path: "/members/bob", owner: 409, self: 403, other: 403},
		{name: "remove member", method: "DELETE", path: "/members/erin", owner: 204, self: 403, other: 403},
		{name: "list tokens", method: "GET", path: "/tokens", owner: 200, self: 200, other: 200},
		{name: "create token", method: "POST", path: "/tokens", body: map[string]any{"name": "matrix"}, owner: 201, self: 201, other: 201},
		{name: "submit job", method: "POST", path: "/jobs", body: map[string]any{"identity": "local", "user": "bob", "script": "true\n"},
			selfPath: "/jobs", owner: 201, self: 201, other: 403},
		{name: "list jobs", method: "GET", path: "/jobs", owner: 200, self: 200, other: 200},
		{name: "get job", method: "GET", path: "/jobs/" + bobJob.ID, owner: 200, self: 404, other: 404},
		{name: "delete credential", method: "DELETE", path: "/identities/local/users/bob/credential", selfPath: "/identities/local2/users/alice/credential",
			owner: 409, self: 204, other: 403},
		{name: "cancel job", method: "POST", path: "/jobs/" + bobJob2.ID + "/cancel", owner: 200, self: 404, other: 404},
		{name: "audit", method: "GET", path: "/audit", owner: 200, self: 200, other: 200},
	}
	// What no answer may contain: a line of each key's body, and bob's passphrase.
	var secrets []string
	for _, k := range [][]byte{key, aliceKey} {
		secrets = append(secrets, strings.Split(string(k), "\n")[2])
	}
	secrets = append(secrets, f.cluster.User(t, "bob").Passphrase)
	selfBody := func(o op) any {
		if o.name == "submit job" {
			return map[string]any{"identity": "local", "script": "true\n", "name": "alices"}
		}
		if o.name == "test identity" {
			return map[string]any{"member": "alice"}
		}
		return o.body
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			for _, c := range []struct {
				role string
				want int
				path string
				body any
				hdr  map[string]string
				do   func(method, path string, body any) reply
			}{
				{role: "member for another", want: o.other, path: o.path, body: o.body, hdr: bearer(f.alice)},
				{role: "no credential", want: 401, path: o.path, body: o.body},
				{role: "revoked token", want: 401, path: o.path, body: o.body, hdr: bearer(revokedSecret)},
				{role: "expired session", want: 401, path: o.path, body: o.body, hdr: map[string]string{"X-CSRF-Token": expiredCSRF}},
				{role: "member for self", want: o.self, path: firstNonEmpty(o.selfPath, o.path), body: selfBody(o), hdr: bearer(f.alice)},
				{role: "owner", want: o.owner, path: o.path, body: o.body, hdr: bearer(f.owner)},
			} {
				before := f.snapshot()
				var r reply
				if c.role == "expired session" {
					r = f.callWith(expiredClient, o.method, c.path, c.body, c.hdr)
				} else {
					r = f.call(o.method, c.path, c.body, c.hdr)
				}
				require.Equalf(t, c.want, r.status, "%s %s as %s: %s", o.method, c.path, c.role, r.body)
				if r.status >= 400 {
					require.NotEmpty(t, r.errorCode(), "the one error shape")
					require.Equal(t, before, f.snapshot(), "%s %s as %s was refused and changed nothing", o.method, c.path, c.role)
				}
				for _, secret := range secrets {
					require.NotContains(t, string(r.body), secret, "no key material or passphrase in any answer")
				}
			}
		})
	}

	// Refusals are audited with the channel and the address.
	events, err := f.agent.Audit(rootCtx, contract.AuditFilter{Outcome: "denied", Actor: "alice"})
	require.NoError(t, err)
	require.NotEmpty(t, events)
	var viaAPI int
	for _, e := range events {
		if e.Via == "api" {
			viaAPI++
			require.Equal(t, "127.0.0.1", e.Remote, "the caller's address is recorded")
		}
	}
	require.Positive(t, viaAPI, "alice's refused API calls are audited via=api")
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// callWith is call through a client with a cookie jar.
func (f *front) callWith(c *http.Client, method, path string, body any, hdr map[string]string) reply {
	f.t.Helper()
	saved := http.DefaultClient
	http.DefaultClient = c
	defer func() { http.DefaultClient = saved }()
	return f.call(method, path, body, hdr)
}

// TestAPIJobLifecycle submits a job through the API as alice, follows it on the event stream to
// completed with its exit code, sees it in the list, and gets the specific errors for bad input.
func TestAPIJobLifecycle(t *testing.T) {
	f := newClusterFront(t, nil)

	// Events first, so the submitted job's changes arrive on the stream.
	req, err := http.NewRequest(http.MethodGet, f.url+"/api/v1/jobs/events?identity=local", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+f.alice)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	r := f.call(http.MethodPost, "/jobs", map[string]any{"identity": "local", "name": "api-job", "script": "echo hi; exit 3\n",
		"time": "5m", "queue": f.cluster.Partition}, bearer(f.alice))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var job struct {
		ID   string `json:"id"`
		User string `json:"user"`
	}
	require.NoError(t, json.Unmarshal(r.body, &job))
	require.Equal(t, "alice", job.User, "submitted as the caller")

	sc := bufio.NewScanner(resp.Body)
	var final map[string]any
	for sc.Scan() && final == nil {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &ev))
		require.Equal(t, "alice", ev["user"], "alice's stream carries only her jobs")
		if ev["id"] == job.ID && ev["done"] == true {
			final = ev
		}
	}
	require.NotNil(t, final, "the job's end arrived on the stream: %v", sc.Err())
	require.Equal(t, "failed", final["status"])
	require.EqualValues(t, 3, final["exit_code"])

	r = f.call(http.MethodGet, "/jobs?active=false&identity=local", nil, bearer(f.alice))
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), job.ID)
	r = f.call(http.MethodGet, "/jobs", nil, bearer(f.bob))
	require.NotContains(t, string(r.body), job.ID, "bob does not see alice's jobs")

	for name, c := range map[string]struct {
		method, path string
		body         any
		status       int
		code, msg    string
	}{
		"unknown field":    {"POST", "/jobs", map[string]any{"identity": "local", "script": "true", "cpu": 2}, 400, "bad_request", "unknown field"},
		"bad time":         {"POST", "/jobs", map[string]any{"identity": "local", "script": "true", "time": "soon"}, 400, "bad_request", "time must be"},
		"empty script":     {"POST", "/jobs", map[string]any{"identity": "local"}, 422, "invalid", "script"},
		"unknown identity": {"POST", "/jobs", map[string]any{"identity": "nosuch", "script": "true"}, 404, "not_found", "nosuch"},
		"shell in name":    {"POST", "/identities", map[string]any{"name": "a;rm -rf /", "scheduler": "slurm", "host": "h", "work_dir": "/w", "group": "g", "known_hosts": f.cluster.KnownHosts}, 403, "forbidden", "owners"},
		"public key":       {"PUT", "/identities/local/users/alice/credential", map[string]any{"username": "alice", "private_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9CD+DAwJHkhFqPdSkZjeh51XaBF8CiHVGcg3+5lpXw"}, 422, "invalid", "public key"},
		"bad username":     {"PUT", "/identities/local/users/alice/credential", map[string]any{"username": "Alice Smith", "private_key": "x"}, 422, "invalid", "username"},
		"not json":         {"POST", "/tokens", "{", 400, "bad_request", "JSON"},
	} {
		r := f.call(c.method, c.path, c.body, bearer(f.alice))
		require.Equal(t, c.status, r.status, "%s: %s", name, r.body)
		require.Equal(t, c.code, r.errorCode(), name)
		require.Contains(t, string(r.body), c.msg, name)
	}

	// A wrong passphrase gets its own message, and the credential stays as it was.
	key, err := os.ReadFile(f.cluster.User(t, "bob").Key)
	require.NoError(t, err)
	r = f.call(http.MethodPut, "/identities/local/users/bob/credential", map[string]any{"username": "bob", "private_key": string(key), "passphrase": "wrong"}, bearer(f.bob))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	require.Contains(t, string(r.body), "incorrect passphrase")
	r = f.call(http.MethodPut, "/identities/local/users/bob/credential", map[string]any{"username": "bob", "private_key": string(key)}, bearer(f.bob))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	require.Contains(t, string(r.body), "needs its passphrase")

	// PATCH with force changes an identity in use; without it, 409 lists the jobs.
	hold, err := f.agent.Submit(context.Background(), contract.SubmitRequest{Identity: "local", User: "alice", Script: []byte("sleep 60\n")})
	require.NoError(t, err)
	r = f.call(http.MethodPatch, "/identities/local", map[string]any{"group": f.cluster.Group}, bearer(f.owner))
	require.Equal(t, http.StatusConflict, r.status)
	require.Contains(t, string(r.body), hold.ID)
	r = f.call(http.MethodPatch, "/identities/local?force=true", map[string]any{"group": f.cluster.Group}, bearer(f.owner))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = f.call(http.MethodPost, "/jobs/"+hold.ID+"/cancel", nil, bearer(f.alice))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
}
