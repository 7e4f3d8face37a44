package sshpool

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/crypto/ssh"
)

// The dispatcher is the one-round-trip command path. A session per command costs two round trips
// before its output can arrive: the channel-open confirmation, then the exec request (SSH allows
// no request on a channel before it is confirmed). So each pooled connection keeps one long-lived
// session running /bin/sh reading its script from stdin, and Exec writes each command to it as
// shell text:
//
//	( COMMAND LINE ) </dev/null            (or <<'@@NONCE-in-N' with the command's stdin)
//	printf '\n@@NONCE-end N %s\n' "$?"; printf '\n@@NONCE-end N\n' >&2
//
// then reads stdout up to its end marker (which carries the exit status) and stderr up to its
// own. A command therefore costs one round trip. Each command runs in a subshell, in the user's
// home directory, with the environment the login shell set up when the dispatcher started, and
// never reads the dispatcher's script: its stdin is /dev/null or its own here-document. The
// random per-dispatcher nonce keeps a command's output from faking a marker. The dispatcher runs
// one command at a time; a command arriving while it is busy opens a session of its own, as
// before. Anything unexpected (the shell gone, output past MaxOutput, a cancelled context) closes
// the dispatcher, and the command's outcome is unknown, as for a session that dies mid-command.
type dispatcher struct {
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *bufio.Reader
	nonce  string
	seq    int
	ready  bool          // the startup marker has been read: output before it (login banners) is skipped
	exited chan struct{} // closed when the shell has exited
}

// startDispatcher opens the dispatcher's session on client. The caller holds a session slot for it.
func startDispatcher(client *ssh.Client) (*dispatcher, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	d := &dispatcher{sess: sess, exited: make(chan struct{})}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	d.nonce = hex.EncodeToString(rnd[:])
	stdin, err := sess.StdinPipe()
	if err == nil {
		d.stdin = stdin
		var out, errp io.Reader
		if out, err = sess.StdoutPipe(); err == nil {
			if errp, err = sess.StderrPipe(); err == nil {
				d.stdout, d.stderr = bufio.NewReaderSize(out, 64<<10), bufio.NewReaderSize(errp, 16<<10)
				err = sess.Start("/bin/sh -s")
			}
		}
	}
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	go func() {
		_ = sess.Wait()
		close(d.exited)
	}()
	return d, nil
}

// close ends the dispatcher's shell and session.
func (d *dispatcher) close() {
	_ = d.sess.Signal(ssh.SIGKILL)
	_ = d.sess.Close()
}

// dispatchable reports whether stdin can travel as a here-document: text with no NUL, ending in
// a newline (or empty: no stdin).
func dispatchable(stdin []byte) bool {
	return stdin == nil || (len(stdin) > 0 && stdin[len(stdin)-1] == '\n' && bytes.IndexByte(stdin, 0) < 0)
}

// script renders one command for the dispatcher's shell.
func (d *dispatcher) script(n int, cmdline string, stdin []byte) ([]byte, error) {
	var b bytes.Buffer
	if !d.ready {
		fmt.Fprintf(&b, "printf '\\n@@%s-ready\\n'; printf '\\n@@%s-ready\\n' >&2\n", d.nonce, d.nonce)
	}
	if stdin == nil {
		fmt.Fprintf(&b, "( %s\n) </dev/null\n", cmdline)
	} else {
		delim := fmt.Sprintf("@@%s-in-%d", d.nonce, n)
		if bytes.Contains(stdin, []byte("\n"+delim+"\n")) || bytes.HasPrefix(stdin, []byte(delim+"\n")) {
			return nil, errors.New("stdin holds the here-document delimiter")
		}
		fmt.Fprintf(&b, "( %s\n) <<'%s'\n", cmdline, delim)
		b.Write(stdin)
		b.WriteString(delim + "\n")
	}
	fmt.Fprintf(&b, "printf '\\n@@%s-end %d %%s\\n' \"$?\"; printf '\\n@@%s-end %d\\n' >&2\n", d.nonce, n, d.nonce, n)
	return b.Bytes(), nil
}

// errDispatcher marks a failure of the dispatcher itself (the command's outcome is unknown).
var errDispatcher = errors.New("command dispatcher failed")

// errNotSent means the command never reached the dispatcher (its shell had already exited, or the
// command cannot be written to it): running it on a session of its own is safe.
var errNotSent = errors.New("command not sent to the dispatcher")

// run sends one command and collects its result. Any error leaves the dispatcher unusable: the
// caller closes it. done is the connection's done channel.
func (d *dispatcher) run(ctx context.Context, done <-chan struct{}, cmdline string, stdin []byte, maxOut int) (Result, error) {
	select {
	case <-d.exited:
		return Result{}, fmt.Errorf("%w: its shell has exited", errNotSent)
	default:
	}
	d.seq++
	n := d.seq
	text, err := d.script(n, cmdline, stdin)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", errNotSent, err)
	}
	type part struct {
		data []byte
		code int
		err  error
	}
	outc, errc := make(chan part, 1), make(chan part, 1)
	ready := d.ready
	end := "@@" + d.nonce + "-end " + strconv.Itoa(n)
	start := "@@" + d.nonce + "-ready"
	go func() {
		if _, err := d.stdin.Write(text); err != nil {
			outc <- part{err: fmt.Errorf("%w: %w: write command: %w", ErrOutcomeUnknown, errDispatcher, err)}
			return
		}
		data, code, err := readPart(d.stdout, ready, start, end, true, maxOut)
		outc <- part{data, code, err}
	}()
	go func() {
		data, _, err := readPart(d.stderr, ready, start, end, false, maxOut)
		errc <- part{data: data, err: err}
	}()
	var out, serr part
	for got := 0; got < 2; {
		select {
		case out = <-outc:
			got++
			if out.err != nil {
				return Result{}, out.err
			}
		case serr = <-errc:
			got++
			if serr.err != nil {
				return Result{}, serr.err
			}
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
		case <-done:
			return Result{}, fmt.Errorf("%w: %w: connection lost", ErrOutcomeUnknown, ErrUnreachable)
		}
	}
	d.ready = true
	return Result{Stdout: out.data, Stderr: serr.data, ExitCode: out.code}, nil
}

// errTooMuchOutput marks output past MaxOutput. The command ran, or still runs, but its result
// is lost: its outcome is unknown.
var errTooMuchOutput = fmt.Errorf("%w: command output exceeded the limit", ErrOutcomeUnknown)

// readPart reads one stream up to the command's end marker: first past the startup marker if
// the dispatcher has not seen it yet, then the command's output, of which it drops the one
// newline the marker's printf put before it. With code, the marker carries the exit status.
func readPart(r *bufio.Reader, ready bool, start, end string, code bool, maxOut int) ([]byte, int, error) {
	var buf []byte
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if ready {
				buf = append(buf, line...)
				if len(buf) > maxOut {
					return nil, 0, errTooMuchOutput
				}
			}
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w: the shell ended (%w)", ErrOutcomeUnknown, errDispatcher, err)
		}
		body := line[:len(line)-1]
		if !ready {
			if string(body) == start {
				ready = true
			}
			continue
		}
		if bytes.HasPrefix(body, []byte(end)) && (len(body) == len(end) || body[len(end)] == ' ') {
			data := bytes.TrimSuffix(buf, []byte("\n"))
			if !code {
				return data, 0, nil
			}
			c, err := strconv.Atoi(string(bytes.TrimSpace(body[len(end):])))
			if err != nil {
				return nil, 0, fmt.Errorf("%w: %w: no exit status in %q", ErrOutcomeUnknown, errDispatcher, body)
			}
			return data, c, nil
		}
		buf = append(buf, line...)
		if len(buf) > maxOut {
			return nil, 0, errTooMuchOutput
		}
	}
}
