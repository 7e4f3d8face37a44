package plugin_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/plugin/plugintest"
)

// invalidUTF8 returns the names of the fields whose value is not valid UTF-8 (which protobuf
// strings cannot carry).
func invalidUTF8(fields map[string]string) []string {
	var bad []string
	for name, v := range fields {
		if !utf8.ValidString(v) {
			bad = append(bad, name)
		}
	}
	return bad
}

// FuzzSubmitThroughShims sends fuzzed Submit requests (every field, the actor too) through the
// gRPC shims over a real in-process connection to a fake agent. Properties: no panic on either
// side; a request whose strings are valid UTF-8 and whose actor is printable ASCII reaches the
// agent exactly as sent (after the documented conversions: empty maps and slices arrive nil), with
// its actor; any other request fails on the launcher's side with ErrInvalidArgument naming what is
// wrong, and never reaches the agent.
func FuzzSubmitThroughShims(f *testing.F) {
	fake := newFake()
	conn := plugintest.Client(f, fake)
	f.Add("hpc", "alice", "tok-1", "name", "dir/x", []byte("exit 0\n"), "FOO", "bar", "--qos=x", "debug", "acct", 2, int64(100), int64(time.Minute), "alice")
	f.Add("", "", "", "", "", []byte(nil), "", "", "", "", "", 0, int64(0), int64(0), "")
	f.Add("h\xff", "al\x00ice", "t\nk", "n\xc3", "../../etc", []byte{0xff, 0}, "K\xfe", "v\x00", "-x\n", "q", "a", -1, int64(-1), int64(-1), "bob\n")
	f.Add("hpc", "alice", "tok", "name-\xff", "dir", []byte("x"), "", "", "", "", "", 1, int64(1), int64(1), "alice")
	f.Add("h", "u", "t", "日本", "/abs", []byte("s"), "PATH", "$(id)", "--array=1", "q'", "a\"", 1<<40, int64(1<<62), int64(1<<62), "é")
	f.Fuzz(func(t *testing.T, identity, user, token, name, dir string, script []byte, envK, envV, extra, queue, account string, cpus int, mem, limit int64, actor string) {
		req := plugin.SubmitRequest{Identity: identity, User: user, Token: token, Name: name, Dir: dir, Script: script,
			Resources: plugin.Resources{CPUs: cpus, MemoryMB: mem, Time: time.Duration(limit), Queue: queue, Account: account}}
		if envK != "" || envV != "" {
			req.Env = map[string]string{envK: envV}
		}
		if extra != "" {
			req.Resources.Extra = []string{extra}
		}
		ctx := context.Background()
		if actor != "" {
			ctx = plugin.WithActor(ctx, plugin.Actor{Member: actor})
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		fake.mu.Lock()
		fake.submitReq = plugin.SubmitRequest{Token: "\x00unset"}
		fake.mu.Unlock()
		_, err := conn.Submit(ctx, req)
		fake.mu.Lock()
		got := fake.submitReq
		fake.mu.Unlock()
		reached := got.Token != "\x00unset"

		bad := invalidUTF8(map[string]string{"identity": identity, "user": user, "token": token, "name": name, "dir": dir,
			"env name": envK, "env value": envV, "extra option": extra, "queue": queue, "account": account})
		badActor := strings.IndexFunc(actor, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0
		badCPUs := int64(cpus) != int64(int32(cpus))
		if len(bad) > 0 || badActor || badCPUs {
			if err == nil {
				t.Fatalf("accepted although %v (actor %q, cpus %d): %+v", bad, actor, cpus, req)
			}
			if reached {
				t.Fatalf("a request the launcher's side should refuse reached the agent: %v", err)
			}
			if !errors.Is(err, plugin.ErrInvalidArgument) {
				t.Fatalf("refused (%v: %v) but not as ErrInvalidArgument, so a launcher cannot tell a bad request from a broken agent: %v",
					bad, badActor, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("a valid request failed: %v (%+v)", err, req)
		}
		if !reached {
			t.Fatal("the agent never saw the request")
		}
		want := req
		if len(want.Script) == 0 {
			want.Script = nil
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("the agent received\n%#v\nnot\n%#v", got, want)
		}
		if a := fake.Actor("Submit"); actor != "" && (!a.ok || a.actor.Member != actor || a.actor.Via != plugin.ViaPlugin) {
			t.Fatalf("actor %q arrived as %+v", actor, a)
		}
	})
}

// FuzzIDsAndPathsThroughShims sends fuzzed job ids (Status, Cancel, Watch) and staging paths
// (StageIn, StageOut) through the shims. Properties as for Submit: valid UTF-8 arrives exactly;
// anything else is refused on the launcher's side with ErrInvalidArgument and never reaches the
// agent; no panic.
func FuzzIDsAndPathsThroughShims(f *testing.F) {
	fake := newFake()
	conn := plugintest.Client(f, fake)
	f.Add("20260101-abcdef", "", "/tmp/in", "work/x")
	f.Add("../../x", "id\x00", "relative", "/etc/passwd")
	f.Add("\xff", "\n", "\xc3", "a\\b")
	f.Fuzz(func(t *testing.T, id1, id2, local, remote string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ids := []string{id1, id2}
		idsOK := utf8.ValidString(id1) && utf8.ValidString(id2)
		pathsOK := utf8.ValidString(local) && utf8.ValidString(remote)
		req := plugin.StageRequest{Identity: "hpc", User: "alice", Files: []plugin.StageFile{{Local: local, Remote: remote}}}
		unset := []string{"\x00unset"}
		call := func(what string, ok bool, fn func() error, got func() any, want any) {
			t.Helper()
			fake.mu.Lock()
			fake.ids, fake.stageReq = unset, plugin.StageRequest{Identity: "\x00unset"}
			fake.mu.Unlock()
			err := fn()
			fake.mu.Lock()
			g := got()
			fake.mu.Unlock()
			reached := !reflect.DeepEqual(g, unset) && !reflect.DeepEqual(g, plugin.StageRequest{Identity: "\x00unset"})
			switch {
			case ok && errors.Is(err, plugin.ErrNotFound) && what == "status":
				// The fake's way of failing on demand (the id "missing").
			case ok && err != nil:
				t.Fatalf("%s: a valid request failed: %v", what, err)
			case ok && !reflect.DeepEqual(g, want):
				t.Fatalf("%s: the agent received %#v, not %#v", what, g, want)
			case !ok && err == nil:
				t.Fatalf("%s: accepted invalid UTF-8", what)
			case !ok && reached:
				t.Fatalf("%s: invalid UTF-8 reached the agent: %#v", what, g)
			case !ok && !errors.Is(err, plugin.ErrInvalidArgument):
				t.Fatalf("%s: invalid UTF-8 refused but not as ErrInvalidArgument: %v", what, err)
			}
		}
		gotIDs := func() any { return fake.ids }
		gotStage := func() any { return fake.stageReq }
		call("status", idsOK, func() error { _, err := conn.Status(ctx, ids); return err }, gotIDs, ids)
		call("cancel", idsOK, func() error { _, err := conn.Cancel(ctx, ids); return err }, gotIDs, ids)
		call("stage in", pathsOK, func() error { _, err := conn.StageIn(ctx, req); return err }, gotStage, req)
		call("stage out", pathsOK, func() error { _, err := conn.StageOut(ctx, req); return err }, gotStage, req)
	})
}
