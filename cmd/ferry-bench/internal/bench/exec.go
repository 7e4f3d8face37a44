package bench

import (
	"context"
	"fmt"
	"os/exec"
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
	return timeCommand(cmd, "ssh -S true")
}

// ExecFresh runs `ssh ... true` on a new connection once and returns the time taken.
func (e *Env) ExecFresh(ctx context.Context, ep Endpoint) (time.Duration, error) {
	cmd, err := e.Fresh(ctx, "alice", ep, "true")
	if err != nil {
		return 0, err
	}
	return timeCommand(cmd, "ssh true")
}

// timeCommand runs cmd and returns the time it took, also when it fails; the error is prefixed
// with what and carries cmd's combined output.
func timeCommand(cmd *exec.Cmd, what string) (time.Duration, error) {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("%s: %w: %s", what, err, bytesTrim(out))
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
		Why: "sshpool.Pool.Exec writes the command to the connection's dispatcher shell (one " +
			"round trip: the command goes out, its output and end marker come back), where `ssh -S` " +
			"costs a local ssh process and mux handshake plus two round trips (session open, then " +
			"exec). A miss here means the dispatcher was not used (busy, or pool.dispatcher off) or " +
			"the loaded machine was slow to run the remote shell.",
		Plan: "Check ferry pools' dispatched counts for the run; profile the remote side.",
	}, Check{
		Key: "speedup_vs_fresh", Desc: "fresh ssh time / Ferry time", Value: round(ratio(frm, fm)),
		Op: ">=", Limit: 30, Unit: "x",
		Why: "A fresh OpenSSH login costs a key exchange and authentication, about 8 round trips " +
			"plus the key exchange's CPU; a warm Ferry command costs 1 round trip on the dispatcher " +
			"plus about 1-2 ms. At +10 ms that floor of one round trip caps the ratio at roughly " +
			"fresh / 11 ms, which lands near 30x when a fresh login is fast (an idle machine).",
		Plan: "Nothing cheaper than one round trip exists for a command whose answer is needed; " +
			"batching several commands into one exchange (as submits are) is the remaining lever.",
	})
	return r
}
