// Package audit keeps Ferry's audit log: one JSON object per line, appended to a private file,
// recording who did what to which identity, credential or job, and how it ended.
//
// Records never carry secrets. Record replaces any field that looks like key material with
// "[redacted]" (the event is still recorded, so the log shows that the action happened) and cuts
// long fields, so one record is one bounded line written by one write call.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Where an action came from.
const (
	ViaCLI    = "cli"
	ViaPlugin = "plugin"
	ViaAgent  = "agent" // the agent itself (start-up seeding, background logins)
	ViaWeb    = "web"   // the web console, signed in with a session cookie
	ViaAPI    = "api"   // the REST API, with a personal access token
)

// How an action ended.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied"
	OutcomeError  = "error"
)

// Actions recorded. Filter.Action matches by prefix, so "credential." selects the credential ones.
const (
	ActionIdentityCreate   = "identity.create"
	ActionIdentityEdit     = "identity.edit"
	ActionIdentityDelete   = "identity.delete"
	ActionCredentialAdd    = "credential.add"
	ActionCredentialUpdate = "credential.update"
	ActionCredentialDelete = "credential.delete"
	ActionJobSubmit        = "job.submit"
	ActionJobCancel        = "job.cancel"
	ActionLoginFailure     = "login.failure"
	ActionKeysRotate       = "keys.rotate"
	ActionMemberAdd        = "member.add"
	ActionMemberRemove     = "member.remove"
	ActionWebSignIn        = "web.signin"
	ActionWebSignOut       = "web.signout"
	ActionWebPassword      = "web.password"
	ActionWebInvite        = "web.invite"
	ActionWebAccept        = "web.accept"
	ActionTokenCreate      = "token.create"
	ActionTokenRevoke      = "token.revoke"
)

var (
	knownActions = map[string]bool{
		ActionIdentityCreate: true, ActionIdentityEdit: true, ActionIdentityDelete: true,
		ActionCredentialAdd: true, ActionCredentialUpdate: true, ActionCredentialDelete: true,
		ActionJobSubmit: true, ActionJobCancel: true, ActionLoginFailure: true, ActionKeysRotate: true,
		ActionMemberAdd: true, ActionMemberRemove: true,
		ActionWebSignIn: true, ActionWebSignOut: true, ActionWebPassword: true, ActionWebInvite: true, ActionWebAccept: true,
		ActionTokenCreate: true, ActionTokenRevoke: true,
	}
	knownVia      = map[string]bool{ViaCLI: true, ViaPlugin: true, ViaAgent: true, ViaWeb: true, ViaAPI: true}
	knownOutcomes = map[string]bool{OutcomeOK: true, OutcomeDenied: true, OutcomeError: true}
)

// Limits on field lengths, in bytes. Longer values are cut at a UTF-8 boundary and end in
// truncatedMark, so the result is never longer than the limit.
const (
	MaxDetail = 512
	MaxField  = 256
)

// Redacted replaces a field that looked like a secret.
const Redacted = "[redacted]"

const truncatedMark = "...[truncated]"

// secretMarkers are substrings of private keys in the forms credcheck accepts or recognises:
// PEM/OpenSSH armour, the base64 of "openssh-key-v1" that starts every OpenSSH key body, and PuTTY.
// A field holding one is redacted whole, even if it only quotes the armour (a credcheck message
// such as "it must read exactly -----BEGIN ...-----"): a missed key costs more than a lost hint.
var secretMarkers = []string{"-----BEGIN", "b3BlbnNzaC1rZXktdjE", "PuTTY-User-Key-File"}

// minSecretRun is the length of a run of mixed-case base64 that is taken for key material: a PEM
// body line is 64 characters, an OpenSSH one 70.
const minSecretRun = 64

var (
	// ErrInvalidEvent means Record was given an event it will not write: a missing actor or
	// action, or an unknown action, via or outcome.
	ErrInvalidEvent = errors.New("invalid audit event")
	// ErrClosed means Record was called after Close.
	ErrClosed = errors.New("audit log closed")
	// ErrTruncated reports records cut short by a crash in the middle of a write. Read and Scan
	// skip them and return a *TruncatedError wrapping this after reading everything else.
	ErrTruncated = errors.New("truncated audit record")
)

// Event is one audited action.
type Event struct {
	// Time is when it happened; zero means now. It is stored in UTC with nanoseconds.
	Time time.Time
	// Actor is who acted: "root" for the CLI, "org:<member>" for a plugin caller.
	Actor string
	// Via is the channel: ViaCLI, ViaPlugin, ViaAgent, ViaWeb or ViaAPI.
	Via string
	// Remote is the caller's network address on the web front door, if any.
	Remote string
	// Action is one of the Action constants.
	Action string
	// Identity is the managed identity concerned, if any.
	Identity string
	// Subject is the member or user the action was for, if any.
	Subject string
	// Target is the object acted on, such as a job id, if any.
	Target string
	// Outcome is OutcomeOK, OutcomeDenied or OutcomeError.
	Outcome string
	// Detail is free text, at most MaxDetail bytes. Never put secrets here: a field that looks
	// like a private key (PEM armour, an OpenSSH or PuTTY key, a long base64 run) is replaced by
	// Redacted.
	Detail string
}

// record is the JSON form of an Event, one per line.
type record struct {
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Via      string `json:"via"`
	Remote   string `json:"remote,omitempty"`
	Action   string `json:"action"`
	Identity string `json:"identity,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Target   string `json:"target,omitempty"`
	Outcome  string `json:"outcome"`
	Detail   string `json:"detail,omitempty"`
}

// Options tunes a Log. The zero value is the default.
type Options struct {
	// Sync makes Record fsync the file after each write, so a record survives a power loss once
	// Record returns. Default false: a record survives a crash of Ferry (it is in the kernel)
	// but the last few may be lost with the machine. Turn it on when the log is evidence.
	Sync bool
}

// Log appends events to an audit file. It is safe for concurrent use, and several processes may
// append to the same file: each record is one write on a file opened with O_APPEND.
type Log struct {
	opts Options
	mu   sync.Mutex // guards f
	f    *os.File   // nil after Close
}

// Open opens the audit log at path for appending with default Options. See OpenWith.
func Open(path string) (*Log, error) { return OpenWith(path, Options{}) }

// OpenWith opens the audit log at path for appending, creating it with mode 0600 (and its
// directory with 0700 if absent). An existing file that group or others may access is refused
// with the chmod that fixes it. If the file ends in a record cut short by a crash, a newline is
// appended so new records start on their own line; readers skip the fragment (see ErrTruncated).
func OpenWith(path string, opts Options) (*Log, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil { // MkdirAll is subject to the umask
			return nil, fmt.Errorf("open audit log: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("audit log %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("audit log %s has mode %04o, which lets other users read or change it; run: chmod 600 %s", path, perm, path)
	}
	if err := terminateLastLine(path, fi.Size(), f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Log{opts: opts, f: f}, nil
}

// terminateLastLine appends "\n" to a non-empty file whose last byte is not one.
func terminateLastLine(path string, size int64, w io.Writer) error {
	if size == 0 {
		return nil
	}
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = w.Write([]byte("\n"))
	return err
}

// Record appends e as one JSON line with one write call. A zero Time becomes now; Time is stored
// in UTC. Fields that look like key material become Redacted and long fields are cut (Detail to
// MaxDetail, others to MaxField); Record does not report either, the written record shows it.
// It fails with ErrInvalidEvent for a missing Actor or Action or an unknown Action, Via or
// Outcome, with ErrClosed after Close, or with the write or fsync error. Not safe to retry
// blindly after a write error: the record may be in the file.
func (l *Log) Record(e Event) error {
	line, err := Encode(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	if l.opts.Sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit: sync: %w", err)
		}
	}
	return nil
}

// Encode checks, redacts and cuts e as Record does and returns its JSON record, without the
// newline: the form another sink (the PostgreSQL store) keeps, and Decode reads back.
func Encode(e Event) ([]byte, error) {
	rec, err := toRecord(e)
	if err != nil {
		return nil, err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("audit: encode: %w", err)
	}
	return line, nil
}

// Decode reads one record as Encode wrote it.
func Decode(line []byte) (Event, error) { return parse(line) }

// Close closes the file. Further Records fail with ErrClosed; Close is safe to call twice.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func toRecord(e Event) (record, error) {
	bad := func(format string, args ...any) (record, error) {
		return record{}, fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch {
	case e.Actor == "":
		return bad("no actor")
	case e.Action == "":
		return bad("no action")
	case !knownActions[e.Action]:
		return bad("unknown action %.40q", e.Action)
	case !knownVia[e.Via]:
		return bad("via must be %q, %q, %q, %q or %q, not %.40q", ViaCLI, ViaPlugin, ViaAgent, ViaWeb, ViaAPI, e.Via)
	case !knownOutcomes[e.Outcome]:
		return bad("outcome must be %q, %q or %q, not %.40q", OutcomeOK, OutcomeDenied, OutcomeError, e.Outcome)
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	return record{
		Time:     t.UTC().Format(time.RFC3339Nano),
		Actor:    clean(e.Actor, MaxField),
		Via:      e.Via,
		Remote:   clean(e.Remote, MaxField),
		Action:   e.Action,
		Identity: clean(e.Identity, MaxField),
		Subject:  clean(e.Subject, MaxField),
		Target:   clean(e.Target, MaxField),
		Outcome:  e.Outcome,
		Detail:   clean(e.Detail, MaxDetail),
	}, nil
}

// clean redacts s if it looks like key material, else cuts it to at most max bytes.
func clean(s string, max int) string {
	for _, m := range secretMarkers {
		if strings.Contains(s, m) {
			return Redacted
		}
	}
	if hasBase64Run(s) {
		return Redacted
	}
	if len(s) <= max {
		return s
	}
	cut := max - len(truncatedMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMark
}

// hasBase64Run tells whether s holds minSecretRun or more consecutive base64 characters
// including upper case, lower case and digits, as a key body does and words and ids do not.
func hasBase64Run(s string) bool {
	run, upper, lower, digit := 0, false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '+' || c == '/' || c == '=':
		default:
			run, upper, lower, digit = 0, false, false, false
			continue
		}
		run++
		if run >= minSecretRun && upper && lower && digit {
			return true
		}
	}
	return false
}

// Filter selects events. A zero field matches everything.
type Filter struct {
	// Since and Until bound Time: Since <= Time < Until.
	Since, Until time.Time
	// Actor, Identity, Subject and Outcome match exactly.
	Actor, Identity, Subject, Outcome string
	// Action matches as a prefix: "credential." selects every credential action.
	Action string
}

// Match tells whether e passes the filter.
func (f Filter) Match(e Event) bool {
	switch {
	case !f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		f.Actor != "" && e.Actor != f.Actor,
		f.Identity != "" && e.Identity != f.Identity,
		f.Subject != "" && e.Subject != f.Subject,
		f.Outcome != "" && e.Outcome != f.Outcome,
		!strings.HasPrefix(e.Action, f.Action):
		return false
	}
	return true
}

// LineError is a line of the log that is not a record. Line is 1-based.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("audit log line %d: %v", e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// TruncatedError lists the lines holding records cut short by a crash; it wraps ErrTruncated.
type TruncatedError struct {
	Lines []int
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("audit log: skipped %d record(s) cut short by a crash (line %s)", len(e.Lines), joinInts(e.Lines))
}

func (e *TruncatedError) Unwrap() error { return ErrTruncated }

func joinInts(n []int) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

// maxLine bounds a line the reader accepts. Records are bounded well below it (MaxDetail and
// MaxField, even with every byte JSON-escaped).
const maxLine = 1 << 20

// Read returns the events in r that match f, in file order. See Scan for the errors; on a
// *TruncatedError the events are still returned and are complete apart from the skipped lines.
func Read(r io.Reader, f Filter) ([]Event, error) {
	var out []Event
	err := scan(r, f, func(e Event) error {
		out = append(out, e)
		return nil
	})
	var te *TruncatedError
	if err != nil && !errors.As(err, &te) {
		return nil, err
	}
	return out, err
}

// Scan calls fn for each event in the log at path that matches f, in file order. It stops at
// the first error fn returns and returns it unchanged. A line that is not a record stops the scan
// with a *LineError naming the line. Blank lines are skipped. A line holding a record cut short
// (a JSON object that ends early: what a crash in the middle of a write leaves) is skipped, and
// after the rest of the file has been read Scan returns a *TruncatedError (errors.Is
// ErrTruncated) listing such lines; a writer that is appending while Scan reads can cause it too.
func Scan(path string, f Filter, fn func(Event) error) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer file.Close()
	return scan(file, f, fn)
}

func scan(r io.Reader, f Filter, fn func(Event) error) error {
	br := newLineReader(r)
	var truncated []int
	for n := 1; ; n++ {
		line, err := br.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &LineError{Line: n, Err: err}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := parse(line)
		if err != nil {
			if isCutShort(line) {
				truncated = append(truncated, n)
				continue
			}
			return &LineError{Line: n, Err: err}
		}
		if !f.Match(e) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if len(truncated) > 0 {
		return &TruncatedError{Lines: truncated}
	}
	return nil
}

// parse decodes one line. The error does not quote the line: it says what is wrong, not what
// the line holds.
func parse(line []byte) (Event, error) {
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Event{}, fmt.Errorf("not a JSON record (at byte %d)", se.Offset)
		}
		return Event{}, fmt.Errorf("not a JSON record: %w", err)
	}
	if rec.Time == "" || rec.Action == "" {
		return Event{}, errors.New("not an audit record: no time or action")
	}
	t, err := time.Parse(time.RFC3339Nano, rec.Time)
	if err != nil {
		return Event{}, errors.New("not an audit record: bad time")
	}
	return Event{
		Time: t.UTC(), Actor: rec.Actor, Via: rec.Via, Remote: rec.Remote, Action: rec.Action, Identity: rec.Identity,
		Subject: rec.Subject, Target: rec.Target, Outcome: rec.Outcome, Detail: rec.Detail,
	}, nil
}

// isCutShort tells whether line is a record that ends early: an object whose JSON is valid up to
// the end of the line but incomplete.
func isCutShort(line []byte) bool {
	line = bytes.TrimRight(line, " \t\r")
	if !bytes.HasPrefix(line, []byte(`{"`)) {
		return false
	}
	var rec record
	err := json.Unmarshal(line, &rec)
	var se *json.SyntaxError
	return errors.As(err, &se) && se.Offset >= int64(len(line))
}

// lineReader yields lines without their "\n", refusing lines longer than maxLine.
type lineReader struct {
	r *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line, io.EOF at the end, or an error for an over-long line or a read
// failure. The last line need not end in "\n".
func (l *lineReader) next() ([]byte, error) {
	var line []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		line = append(line, chunk...)
		switch err {
		case nil:
			return line[:len(line)-1], nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return line, nil
		default:
			return nil, err
		}
	}
}
