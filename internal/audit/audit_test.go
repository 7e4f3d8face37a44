package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func openLog(t *testing.T, opts Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.log")
	l, err := OpenWith(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l, path
}

func ev(action, outcome string) Event {
	return Event{Actor: "root", Via: ViaCLI, Action: action, Identity: "hpc1", Subject: "alice", Outcome: outcome}
}

func readAll(t *testing.T, path string, f Filter) []Event {
	t.Helper()
	var out []Event
	require.NoError(t, Scan(path, f, func(e Event) error {
		out = append(out, e)
		return nil
	}))
	return out
}

func TestOpenModes(t *testing.T) {
	l, path := openLog(t, Options{})
	require.NoError(t, l.Record(ev(ActionIdentityCreate, OutcomeOK)))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	t.Run("world-readable file refused", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "audit.log")
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		require.NoError(t, os.Chmod(p, 0o644))
		_, err := Open(p)
		require.ErrorContains(t, err, "has mode 0644, which lets other users read or change it; run: chmod 600 "+p)
	})
	t.Run("reopen appends", func(t *testing.T) {
		require.NoError(t, l.Close())
		l2, err := Open(path)
		require.NoError(t, err)
		defer l2.Close()
		require.NoError(t, l2.Record(ev(ActionIdentityEdit, OutcomeOK)))
		got := readAll(t, path, Filter{})
		require.Len(t, got, 2)
		require.Equal(t, ActionIdentityEdit, got[1].Action)
	})
}

func TestRecordFormat(t *testing.T) {
	l, path := openLog(t, Options{Sync: true})
	when := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))
	require.NoError(t, l.Record(Event{
		Time: when, Actor: "org:alice", Via: ViaPlugin, Action: ActionJobSubmit,
		Identity: "hpc1", Subject: "alice", Target: "job-42", Outcome: OutcomeOK, Detail: "sbatch run.sh",
	}))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, `{"time":"2026-03-01T11:30:45.123456789Z","actor":"org:alice","via":"plugin","action":"job.submit","identity":"hpc1","subject":"alice","target":"job-42","outcome":"ok","detail":"sbatch run.sh"}`+"\n", string(raw))

	before := time.Now().UTC()
	require.NoError(t, l.Record(ev(ActionJobCancel, OutcomeDenied)))
	got := readAll(t, path, Filter{Action: "job.cancel"})
	require.Len(t, got, 1)
	require.Equal(t, time.UTC, got[0].Time.Location())
	require.False(t, got[0].Time.Before(before.Truncate(time.Microsecond)), "zero Time means now")
}

func TestRecordInvalid(t *testing.T) {
	l, _ := openLog(t, Options{})
	cases := []struct {
		name string
		e    Event
		msg  string
	}{
		{"no actor", Event{Via: ViaCLI, Action: ActionJobSubmit, Outcome: OutcomeOK}, "no actor"},
		{"no action", Event{Actor: "root", Via: ViaCLI, Outcome: OutcomeOK}, "no action"},
		{"unknown action", Event{Actor: "root", Via: ViaCLI, Action: "job.explode", Outcome: OutcomeOK}, `unknown action "job.explode"`},
		{"unknown via", Event{Actor: "root", Via: "mail", Action: ActionJobSubmit, Outcome: OutcomeOK}, `via must be "cli", "plugin", "agent", "web" or "api", not "mail"`},
		{"no outcome", Event{Actor: "root", Via: ViaCLI, Action: ActionJobSubmit}, `outcome must be "ok", "denied" or "error", not ""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Record(tc.e)
			require.ErrorIs(t, err, ErrInvalidEvent)
			require.ErrorContains(t, err, tc.msg)
		})
	}
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Record(ev(ActionJobSubmit, OutcomeOK)), ErrClosed)
	require.NoError(t, l.Close(), "second Close")
}

func TestRedactAndTruncate(t *testing.T) {
	l, path := openLog(t, Options{})
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
	long := strings.Repeat("é", 400) // 800 bytes
	cases := []struct {
		name  string
		e     Event
		check func(t *testing.T, got Event)
	}{
		{"private key in detail", Event{Detail: "pasted: " + key}, func(t *testing.T, got Event) {
			require.Equal(t, Redacted, got.Detail)
		}},
		{"key body without armour", Event{Detail: "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"}, func(t *testing.T, got Event) {
			require.Equal(t, Redacted, got.Detail)
		}},
		{"PuTTY key in detail", Event{Detail: "PuTTY-User-Key-File-3: ssh-ed25519"}, func(t *testing.T, got Event) {
			require.Equal(t, Redacted, got.Detail)
		}},
		{"key body line without armour", Event{Detail: "line: MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0"}, func(t *testing.T, got Event) {
			require.Equal(t, Redacted, got.Detail)
		}},
		{"ordinary detail kept", Event{Detail: "credential refused: line 3: blank line inside the key; fingerprint SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"}, func(t *testing.T, got Event) {
			require.Equal(t, "credential refused: line 3: blank line inside the key; fingerprint SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", got.Detail)
		}},
		{"private key in target", Event{Target: key}, func(t *testing.T, got Event) {
			require.Equal(t, Redacted, got.Target)
		}},
		{"long detail", Event{Detail: long}, func(t *testing.T, got Event) {
			require.LessOrEqual(t, len(got.Detail), MaxDetail)
			require.True(t, strings.HasSuffix(got.Detail, truncatedMark))
			require.True(t, strings.HasPrefix(long, strings.TrimSuffix(got.Detail, truncatedMark)))
			require.True(t, json.Valid([]byte(`"`+got.Detail+`"`)))
		}},
		{"detail of exactly the limit", Event{Detail: strings.Repeat("x", MaxDetail)}, func(t *testing.T, got Event) {
			require.Equal(t, strings.Repeat("x", MaxDetail), got.Detail)
		}},
		{"long subject", Event{Subject: strings.Repeat("s", 1000)}, func(t *testing.T, got Event) {
			require.Len(t, got.Subject, MaxField)
		}},
		{"newlines stay inside one line", Event{Detail: "a\nb\r\nc"}, func(t *testing.T, got Event) {
			require.Equal(t, "a\nb\r\nc", got.Detail)
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			e.Actor, e.Via, e.Action, e.Outcome = "root", ViaCLI, ActionCredentialAdd, OutcomeOK
			e.Identity = fmt.Sprint("case", i)
			require.NoError(t, l.Record(e))
			got := readAll(t, path, Filter{Identity: e.Identity})
			require.Len(t, got, 1)
			tc.check(t, got[0])
		})
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "BEGIN")
	require.NotContains(t, string(raw), "b3BlbnNzaC1rZXktdjE")
	require.Equal(t, len(cases), bytes.Count(raw, []byte("\n")), "one line per record")
}

func TestConcurrentWriters(t *testing.T) {
	l, path := openLog(t, Options{})
	// A second Log on the same file stands in for a second process.
	l2, err := Open(path)
	require.NoError(t, err)
	defer l2.Close()

	const writers, each = 16, 100
	detail := strings.Repeat("d", MaxDetail)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		log := l
		if w%2 == 1 {
			log = l2
		}
		wg.Go(func() {
			for i := range each {
				e := ev(ActionJobSubmit, OutcomeOK)
				e.Actor = fmt.Sprintf("org:w%d", w)
				e.Target = fmt.Sprint(i)
				e.Detail = detail
				if err := log.Record(e); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxLine)
	n := 0
	seen := map[string]bool{}
	for sc.Scan() {
		n++
		var rec record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "line %d", n)
		seen[rec.Actor+"/"+rec.Target] = true
	}
	require.NoError(t, sc.Err())
	require.Equal(t, writers*each, n)
	require.Len(t, seen, writers*each, "every record once")
}

func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []Event{
		{Time: t0, Actor: "root", Via: ViaCLI, Action: ActionIdentityCreate, Identity: "hpc1", Outcome: OutcomeOK},
		{Time: t0.Add(1 * time.Hour), Actor: "root", Via: ViaCLI, Action: ActionCredentialAdd, Identity: "hpc1", Subject: "alice", Outcome: OutcomeOK},
		{Time: t0.Add(2 * time.Hour), Actor: "org:alice", Via: ViaPlugin, Action: ActionJobSubmit, Identity: "hpc1", Subject: "alice", Target: "7", Outcome: OutcomeOK},
		{Time: t0.Add(3 * time.Hour), Actor: "org:bob", Via: ViaPlugin, Action: ActionJobSubmit, Identity: "hpc2", Subject: "bob", Outcome: OutcomeDenied},
		{Time: t0.Add(4 * time.Hour), Actor: "root", Via: ViaCLI, Action: ActionCredentialDelete, Identity: "hpc1", Subject: "alice", Outcome: OutcomeOK},
		{Time: t0.Add(5 * time.Hour), Actor: "org:alice", Via: ViaPlugin, Action: ActionLoginFailure, Identity: "hpc1", Subject: "alice", Outcome: OutcomeError},
	}
	l, path := openLog(t, Options{})
	for _, e := range events {
		require.NoError(t, l.Record(e))
	}
	cases := []struct {
		name string
		f    Filter
		want []int // indexes into events
	}{
		{"all", Filter{}, []int{0, 1, 2, 3, 4, 5}},
		{"since inclusive", Filter{Since: t0.Add(4 * time.Hour)}, []int{4, 5}},
		{"until exclusive", Filter{Until: t0.Add(2 * time.Hour)}, []int{0, 1}},
		{"window", Filter{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}, []int{1, 2}},
		{"actor", Filter{Actor: "org:alice"}, []int{2, 5}},
		{"identity", Filter{Identity: "hpc2"}, []int{3}},
		{"subject", Filter{Subject: "alice"}, []int{1, 2, 4, 5}},
		{"action prefix", Filter{Action: "credential."}, []int{1, 4}},
		{"exact action", Filter{Action: ActionJobSubmit}, []int{2, 3}},
		{"outcome", Filter{Outcome: OutcomeDenied}, []int{3}},
		{"combined", Filter{Subject: "alice", Action: "job.", Outcome: OutcomeOK}, []int{2}},
		{"nothing", Filter{Actor: "nobody"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []Event
			for _, i := range tc.want {
				want = append(want, events[i])
			}
			require.Equal(t, want, readAll(t, path, tc.f))

			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			got, err := Read(f, tc.f)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestReadErrors(t *testing.T) {
	good := `{"time":"2026-01-01T00:00:00Z","actor":"root","via":"cli","action":"job.submit","outcome":"ok"}`
	cut := good[:40]
	cases := []struct {
		name      string
		text      string
		wantN     int    // events returned
		lineErr   int    // expected *LineError line, 0 for none
		msg       string // substring of the error
		truncated []int  // expected *TruncatedError lines
	}{
		{name: "clean", text: good + "\n" + good + "\n", wantN: 2},
		{name: "no final newline", text: good + "\n" + good, wantN: 2},
		{name: "blank lines skipped", text: "\n" + good + "\n\n" + good + "\n", wantN: 2},
		{name: "garbage line", text: good + "\n" + "hello world\n" + good + "\n", lineErr: 2, msg: "audit log line 2: not a JSON record (at byte 1)"},
		{name: "JSON that is not a record", text: good + "\n" + good + "\n" + `{"foo":1}` + "\n", lineErr: 3, msg: "audit log line 3: not an audit record: no time or action"},
		{name: "bad time", text: strings.Replace(good, "2026-01-01T00:00:00Z", "yesterday", 1) + "\n", lineErr: 1, msg: "bad time"},
		{name: "wrong type", text: `{"time":"2026-01-01T00:00:00Z","action":5}` + "\n", lineErr: 1, msg: "line 1: not a JSON record"},
		{name: "over-long line", text: good + "\n" + strings.Repeat("x", maxLine+1) + "\n", lineErr: 2, msg: "longer than"},
		{name: "crash left a cut record at the end", text: good + "\n" + cut, wantN: 1, truncated: []int{2}, msg: "skipped 1 record(s) cut short by a crash (line 2)"},
		{name: "cut record terminated by a reopen", text: good + "\n" + cut + "\n" + good + "\n", wantN: 2, truncated: []int{2}},
		{name: "a cut record does not hide a bad line after it", text: cut + "\n" + "junk\n", lineErr: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(strings.NewReader(tc.text), Filter{})
			if tc.msg != "" {
				require.ErrorContains(t, err, tc.msg)
			}
			var le *LineError
			var te *TruncatedError
			switch {
			case tc.lineErr > 0:
				require.ErrorAs(t, err, &le)
				require.Equal(t, tc.lineErr, le.Line)
				require.Nil(t, got)
				require.NotContains(t, err.Error(), "hello", "the line's content is not echoed")
			case tc.truncated != nil:
				require.ErrorIs(t, err, ErrTruncated)
				require.ErrorAs(t, err, &te)
				require.Equal(t, tc.truncated, te.Lines)
				require.Len(t, got, tc.wantN, "the other events are returned")
			default:
				require.NoError(t, err)
				require.Len(t, got, tc.wantN)
			}
		})
	}
}

func TestOpenTerminatesCutRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	good := `{"time":"2026-01-01T00:00:00Z","actor":"root","via":"cli","action":"job.submit","outcome":"ok"}`
	require.NoError(t, os.WriteFile(path, []byte(good+"\n"+good[:30]), 0o600))
	l, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, l.Record(ev(ActionKeysRotate, OutcomeOK)))
	require.NoError(t, l.Close())

	var got []Event
	err = Scan(path, Filter{}, func(e Event) error { got = append(got, e); return nil })
	require.ErrorIs(t, err, ErrTruncated)
	require.Len(t, got, 2)
	require.Equal(t, ActionKeysRotate, got[1].Action, "the new record is whole, on its own line")
}

func TestScanStopsOnCallbackError(t *testing.T) {
	l, path := openLog(t, Options{})
	for range 3 {
		require.NoError(t, l.Record(ev(ActionJobSubmit, OutcomeOK)))
	}
	stop := errors.New("enough")
	n := 0
	err := Scan(path, Filter{}, func(Event) error { n++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)

	err = Scan(filepath.Join(t.TempDir(), "missing.log"), Filter{}, func(Event) error { return nil })
	require.ErrorIs(t, err, os.ErrNotExist)
}
