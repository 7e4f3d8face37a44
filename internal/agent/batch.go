package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/sshpool"
)

// Submit batching: submit commands of one (identity, user) that arrive within
// poll.submit_batch_window of each other go to the login node in one remote exec of /bin/sh, each
// keeping its own output, exit status and job id. A burst of N submissions then costs one
// session and one round trip instead of N.

type submitReq struct {
	cmd scheduler.Command
	res chan submitRes
}

type submitRes struct {
	r   scheduler.Result
	err error
}

type batcher struct {
	key sshpool.Key
	ch  chan submitReq
}

// runSubmit runs one submit command, batched with others of the same user when batching is on.
// Errors follow Runner's contract: sshpool.ErrOutcomeUnknown when the command may have run.
func (a *Agent) runSubmit(ctx context.Context, s *session, cmd scheduler.Command) (scheduler.Result, error) {
	if a.cfg.Poll.SubmitBatchWindow.Duration <= 0 || cmd.Stdin != nil {
		sctx, cancel := context.WithTimeout(ctx, a.cfg.Poll.SubmitTimeout.Duration)
		defer cancel()
		return s.run.Run(sctx, cmd)
	}
	// Each submit takes its own rate-limit token before it joins a batch, so that the limits bound
	// the scheduler commands the controller sees, not the SSH execs that carry them.
	if err := a.wait(ctx, s.key); err != nil {
		return scheduler.Result{}, fmt.Errorf("%s: submit not started: waiting for the command rate limit: %w", s.key, err)
	}
	b := a.batcherFor(s.key)
	req := submitReq{cmd: cmd, res: make(chan submitRes, 1)}
	select {
	case b.ch <- req:
	case <-ctx.Done():
		return scheduler.Result{}, fmt.Errorf("%s: submit not started: %w", s.key, ctx.Err())
	}
	select {
	case r := <-req.res:
		return r.r, r.err
	case <-ctx.Done():
		return scheduler.Result{}, fmt.Errorf("%s: %w: %w", s.key, sshpool.ErrOutcomeUnknown, ctx.Err())
	}
}

func (a *Agent) batcherFor(k sshpool.Key) *batcher {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.batchers[k]; b != nil {
		return b
	}
	b := &batcher{key: k, ch: make(chan submitReq)}
	a.batchers[k] = b
	a.wg.Add(1)
	go a.batchLoop(b)
	return b
}

// batchLoop collects requests for one window and runs them; it lives as long as the agent.
func (a *Agent) batchLoop(b *batcher) {
	defer a.wg.Done()
	window, maxN := a.cfg.Poll.SubmitBatchWindow.Duration, a.cfg.Poll.SubmitBatchMax
	for {
		var batch []submitReq
		select {
		case <-a.ctx.Done():
			return
		case r := <-b.ch:
			batch = append(batch, r)
		}
		t := time.NewTimer(window)
	collect:
		for len(batch) < maxN {
			select {
			case r := <-b.ch:
				batch = append(batch, r)
			case <-t.C:
				break collect
			case <-a.ctx.Done():
				break collect
			}
		}
		t.Stop()
		a.runBatch(b.key, batch)
	}
}

func (a *Agent) runBatch(k sshpool.Key, batch []submitReq) {
	fail := func(err error) {
		for _, r := range batch {
			r.res <- submitRes{err: err}
		}
	}
	s, err := a.userSession(k.Identity, k.User)
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.Poll.SubmitTimeout.Duration)
	defer cancel()
	if len(batch) == 1 {
		r, err := s.run.runPaid(ctx, batch[0].cmd)
		batch[0].res <- submitRes{r, err}
		return
	}
	script, nonce, err := batchScript(batch, a.cfg.Poll.SubmitParallel)
	if err != nil {
		fail(err)
		return
	}
	res, err := s.run.runPaid(ctx, scheduler.Command{Argv: []string{"/bin/sh", "-s"}, Stdin: []byte(script)})
	a.mu.Lock()
	m := a.counts[k]
	if m == nil {
		m = map[string]int{}
		a.counts[k] = m
	}
	for _, r := range batch {
		m[program(r.cmd.Argv)]++
	}
	// The commands-per-minute window (ferry pools) counts the submits the batch carried; runPaid
	// counted the /bin/sh that carried them as one already.
	if w := a.recent[k]; w != nil {
		now := time.Now()
		for range batch[1:] {
			w.add(now)
		}
	}
	a.mu.Unlock()
	if err != nil {
		fail(err)
		return
	}
	outs, codes := splitBatch(res.Stdout, nonce, len(batch), true)
	errs, _ := splitBatch(res.Stderr, nonce, len(batch), false)
	for i, r := range batch {
		code, ok := codes[i]
		if !ok {
			// The script stopped before this command reported: it may or may not have run.
			r.res <- submitRes{err: fmt.Errorf("%s: %w: batched submit %d of %d did not report (exit %d)", k, sshpool.ErrOutcomeUnknown, i+1, len(batch), res.ExitCode)}
			continue
		}
		r.res <- submitRes{r: scheduler.Result{Stdout: outs[i], Stderr: errs[i], ExitCode: code}}
	}
}

// batchScript renders the batch for /bin/sh. The commands run parallel at a time, each in a
// subshell with its output and exit status kept in a private temporary directory; then the
// script prints each command's output between markers carrying a random nonce, so no command's
// output can fake another's result. A command whose status file is missing (the script was
// killed first) reports no exit status: its outcome is unknown.
func batchScript(batch []submitReq, parallel int) (string, string, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	nonce := hex.EncodeToString(rnd[:])
	parallel = max(parallel, 1)
	var b strings.Builder
	b.WriteString("ferry_d=$(mktemp -d \"${TMPDIR:-/tmp}/ferry-batch.XXXXXX\") || exit 97\n")
	b.WriteString("trap 'rm -rf \"$ferry_d\"' EXIT\n")
	for i, r := range batch {
		line, err := scheduler.CommandLine(r.cmd)
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(&b, "( ( %s ) </dev/null >\"$ferry_d/%d.o\" 2>\"$ferry_d/%d.e\"; echo $? >\"$ferry_d/%d.c\" ) &\n", line, i, i, i)
		if (i+1)%parallel == 0 {
			b.WriteString("wait\n")
		}
	}
	b.WriteString("wait\n")
	// The end markers start on a line of their own even after output without a final newline:
	// splitBatch drops the newline added here.
	fmt.Fprintf(&b, `ferry_i=0
while [ "$ferry_i" -lt %d ]; do
  echo "@@ferry-%s-begin $ferry_i"; echo "@@ferry-%s-begin $ferry_i" >&2
  cat "$ferry_d/$ferry_i.o"; cat "$ferry_d/$ferry_i.e" >&2
  ferry_rc=; [ -f "$ferry_d/$ferry_i.c" ] && read ferry_rc <"$ferry_d/$ferry_i.c"
  printf '\n@@ferry-%s-end %%s %%s\n' "$ferry_i" "$ferry_rc"; printf '\n@@ferry-%s-end %%s\n' "$ferry_i" >&2
  ferry_i=$((ferry_i + 1))
done
`, len(batch), nonce, nonce, nonce, nonce)
	return b.String(), nonce, nil
}

// splitBatch cuts a batch's output into each command's part; with codes it also reads each
// command's exit status from its end marker.
func splitBatch(out []byte, nonce string, n int, withCodes bool) (map[int][]byte, map[int]int) {
	parts := map[int][]byte{}
	codes := map[int]int{}
	begin, end := "@@ferry-"+nonce+"-begin ", "@@ferry-"+nonce+"-end "
	cur := -1
	var buf []byte
	for _, line := range strings.SplitAfter(string(out), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(trimmed, begin):
			i, err := strconv.Atoi(strings.TrimPrefix(trimmed, begin))
			if err == nil && i >= 0 && i < n {
				cur, buf = i, nil
			}
		case strings.HasPrefix(trimmed, end) && cur >= 0:
			f := strings.Fields(strings.TrimPrefix(trimmed, end))
			if len(f) >= 1 {
				if i, err := strconv.Atoi(f[0]); err == nil && i == cur {
					parts[cur] = []byte(strings.TrimSuffix(string(buf), "\n"))
					if withCodes && len(f) == 2 {
						if c, err := strconv.Atoi(f[1]); err == nil {
							codes[cur] = c
						}
					}
				}
			}
			cur = -1
		case cur >= 0:
			buf = append(buf, line...)
		}
	}
	return parts, codes
}
