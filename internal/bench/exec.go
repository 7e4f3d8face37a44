package bench

import (
	"context"
	"fmt"
	"time"
)

// ExecOptions sizes the exec benchmark.
type ExecOptions struct {
	// Rounds is the number of interleaved rounds; each takes one Ferry sample and one
	// ControlMaster sample, in alternating order. Default 100.
	Rounds int
	// FreshEvery adds one fresh-connection sample every that many rounds. Default 8.
	FreshEvery int
}

func (o ExecOptions) withDefaults() ExecOptions {
	if o.Rounds <= 0 {
		o.Rounds = 100
	}
	if o.FreshEvery <= 0 {
		o.FreshEvery = 8
	}
	return o
}

// ExecFerry runs `true` once on Ferry's warm pool for alice at ep and returns the time taken.
func (e *Env) ExecFerry(ctx context.Context, ep Endpoint) (time.Duration, error) {
	p, err := e.Pool("alice", ep)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	res, err := p.Exec(ctx, "true", nil)
	took := time.Since(start)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("true exited %d: %s", res.ExitCode, bytesTrim(res.Stderr))
	}
	return took, err
}

// ExecMaster runs `ssh -S master ... true` once and returns the time taken.
func ExecMaster(ctx context.Context, m *Master) (time.Duration, error) {
	cmd, err := m.Command(ctx, "true")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("ssh -S true: %w: %s", err, bytesTrim(out))
	}
	return took, nil
}

// ExecFresh runs `ssh ... true` on a new connection once and returns the time taken.
func (e *Env) ExecFresh(ctx context.Context, ep Endpoint) (time.Duration, error) {
	cmd, err := e.Fresh(ctx, "alice", ep, "true")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("ssh true: %w: %s", err, bytesTrim(out))
	}
	return took, nil
}

// RunExec measures `true` as alice at ep: through Ferry's warm pool (sshpool.Pool.Exec), through
// an OpenSSH ControlMaster (`ssh -S`), and with a fresh `ssh` per command, interleaved.
func RunExec(ctx context.Context, e *Env, ep Endpoint, o ExecOptions) Result {
	o = o.withDefaults()
	r := Result{Name: "exec_" + ep.Name, Bench: "exec"}
	m, err := e.StartMaster(ctx, "alice", ep)
	if err != nil {
		r.Err = err
		return r
	}
	defer m.Close()
	// Warm both sides: Ferry's first call dials; OpenSSH's first client loads its config.
	for i := 0; i < 5; i++ {
		if _, err := e.ExecFerry(ctx, ep); err != nil {
			r.Err = err
			return r
		}
		if _, err := ExecMaster(ctx, m); err != nil {
			r.Err = err
			return r
		}
	}
	var ferry, cm, fresh Durations
	sample := func(f func() (time.Duration, error), into *Durations) error {
		d, err := f()
		if err != nil {
			return err
		}
		*into = append(*into, d)
		return nil
	}
	fFerry := func() (time.Duration, error) { return e.ExecFerry(ctx, ep) }
	fCM := func() (time.Duration, error) { return ExecMaster(ctx, m) }
	fFresh := func() (time.Duration, error) { return e.ExecFresh(ctx, ep) }
	for i := 0; i < o.Rounds; i++ {
		first, second := fFerry, fCM
		a, b := &ferry, &cm
		if i%2 == 1 {
			first, second, a, b = fCM, fFerry, &cm, &ferry
		}
		if err := sample(first, a); err != nil {
			r.Err = err
			return r
		}
		if err := sample(second, b); err != nil {
			r.Err = err
			return r
		}
		if i%o.FreshEvery == o.FreshEvery/2 {
			if err := sample(fFresh, &fresh); err != nil {
				r.Err = err
				return r
			}
		}
	}
	if err := m.Check(ctx); err != nil {
		r.Err = err
		return r
	}
	fm, cmm, frm := ferry.Median(), cm.Median(), fresh.Median()
	r.AddMs("ferry_ms", fm, fmt.Sprintf("Ferry: sshpool Exec of `true` on a warm pool, median of %d", len(ferry)))
	r.AddMs("ferry_p90_ms", ferry.Percentile(90), "Ferry p90")
	r.AddMs("controlmaster_ms", cmm, fmt.Sprintf("`ssh -S master true` through an OpenSSH ControlMaster, median of %d", len(cm)))
	r.AddMs("fresh_ms", frm, fmt.Sprintf("`ssh true` on a fresh connection (OpenSSH default key exchange), median of %d", len(fresh)))
	r.Checks = append(r.Checks, Check{
		Key: "ratio_vs_controlmaster", Desc: "Ferry time / ControlMaster time", Value: round(ratio(fm, cmm)),
		Op: "<=", Limit: 0.7, Unit: "x",
		Why: "sshpool.Pool.Exec opens a new session per command on the pooled connection and waits " +
			"for the login node twice: the channel-open confirmation (NewSession), then the exec reply, " +
			"which arrives with the exit status and the channel close. That is 2 round trips, the same " +
			"as `ssh -S`, whose extra cost is local (starting an ssh process, the mux handshake: a few " +
			"ms). Through +10 ms both carry the same 20 ms, so the ratio tends to (20 + Ferry's ms) / " +
			"(20 + ssh's ms) however cheap Ferry's side gets; how far below 1 it lands depends on how " +
			"slowly the loaded machine starts processes.",
		Plan: "A 1-round-trip command path: keep one long-lived session per pooled connection running a " +
			"small dispatcher (`sh` reading length-prefixed command lines built by scheduler.CommandLine " +
			"and stdin, writing back exit code and output), used for scheduler commands, with a session " +
			"per command as the fallback. SSH cannot send the exec request before the channel is " +
			"confirmed, so with one session per command nothing cheaper than 2 round trips exists. " +
			"Batching the commands of a poll or submit window (issue 5, item 2) cuts the count instead.",
	}, Check{
		Key: "speedup_vs_fresh", Desc: "fresh ssh time / Ferry time", Value: round(ratio(frm, fm)),
		Op: ">=", Limit: 30, Unit: "x",
		Why: "A fresh OpenSSH login costs a key exchange and authentication, about 8 round trips " +
			"plus the sntrup761x25519 key exchange's CPU; a warm Ferry command costs 2 round trips " +
			"plus a few ms. On loopback that is far over 30x; at +10 ms the 20 ms floor of Ferry's " +
			"2 round trips caps the ratio at roughly fresh / 25 ms. 30x at +10 ms needs about 1 round " +
			"trip per command.",
		Plan: "A 1-round-trip command path: one long-lived dispatcher session per pooled connection " +
			"that runs the command lines it reads on stdin (see the ControlMaster ratio's plan).",
	})
	return r
}
