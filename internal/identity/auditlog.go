package identity

import (
	"context"
	"errors"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// Audit returns audit events: all for owners, a member's own (as actor or subject) otherwise.
func (reg *Registry) Audit(ctx context.Context, f contract.AuditFilter) ([]contract.AuditEvent, error) {
	p, err := reg.Authorize(ctx, AuditRead, "")
	if err != nil {
		return nil, err
	}
	filter := audit.Filter{Since: f.Since, Until: f.Until, Actor: f.Actor, Identity: f.Identity, Subject: f.Subject,
		Action: f.Action, Outcome: f.Outcome}
	var out []contract.AuditEvent
	keep := func(e audit.Event) error {
		if !p.Sees(e.Actor) && !p.Sees(e.Subject) {
			return nil
		}
		out = append(out, contract.AuditEvent{Time: e.Time, Actor: e.Actor, Via: e.Via, Remote: e.Remote, Action: e.Action, Identity: e.Identity,
			Subject: e.Subject, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail})
		return nil
	}
	if sink, ok := reg.store.(store.AuditSink); ok {
		// The shared trail: every agent's records.
		err = sink.AuditRecords(func(line []byte) error {
			e, err := audit.Decode(line)
			if err != nil || !filter.Match(e) {
				return nil
			}
			return keep(e)
		})
	} else {
		err = audit.Scan(reg.auditPath, filter, keep)
	}
	if err != nil && !errors.Is(err, audit.ErrTruncated) {
		return nil, err
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}
