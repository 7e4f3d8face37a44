package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/plugin"
)

// parseSince reads an audit time bound: a duration back from now ("24h", "90m", "7d"), an RFC 3339
// time, or a date (local midnight).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("invalid time %q: use a duration back from now (24h, 7d) or a time (2026-03-01 or 2026-03-01T10:00:00Z)", s)
}

func (c *cli) audit(args []string) error {
	fs := c.flagSet("audit")
	cf := c.addConnFlags(fs, false)
	since := fs.String("since", "", "only events after this: a duration back from now (24h, 7d) or a time")
	until := fs.String("until", "", "only events before this: a duration back from now or a time")
	var f plugin.AuditFilter
	fs.StringVar(&f.Actor, "actor", "", "only events by this member")
	fs.StringVar(&f.Identity, "identity", "", "only events about this identity")
	fs.StringVar(&f.Subject, "subject", "", "only events for this member")
	fs.StringVar(&f.Action, "action", "", `only actions starting with this ("credential.")`)
	fs.StringVar(&f.Outcome, "outcome", "", "only this outcome (ok, denied, error)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many events, the latest (default: the agent's)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	now := time.Now()
	var err error
	if f.Since, err = parseSince(*since, now); err != nil {
		return err
	}
	if f.Until, err = parseSince(*until, now); err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		evs, err := a.Audit(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]auditView, len(evs))
			for i, e := range evs {
				out[i] = auditJSON(e)
			}
			return printJSON(c.out, out)
		}
		tw := newTable(c.out)
		fmt.Fprintln(tw, "TIME\tACTOR\tVIA\tACTION\tIDENTITY\tSUBJECT\tTARGET\tOUTCOME\tDETAIL")
		for _, e := range evs {
			actor := e.Actor
			if actor == "" {
				actor = "(launcher)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"),
				actor, dash(e.Via), e.Action, dash(e.Identity), dash(e.Subject), dash(e.Target), e.Outcome, clip(e.Detail, 60))
		}
		return tw.Flush()
	})
}

func (c *cli) pools(args []string) error {
	fs := c.flagSet("pools")
	cf := c.addConnFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return c.adminCall(cf, func(ctx context.Context, a plugin.Admin) error {
		ps, err := a.Pools(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]poolView, len(ps))
			for i, p := range ps {
				out[i] = poolView(p)
			}
			return printJSON(c.out, out)
		}
		tw := newTable(c.out)
		fmt.Fprintln(tw, "IDENTITY\tUSER\tCONNS\tSESSIONS\tWAITERS\tDIALS\tFAILURES\tCMDS/MIN\tLAST-ERROR")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Identity, p.User, p.Connections, p.Sessions,
				p.Waiters, p.Dials, p.DialFailures, p.CommandsPerMinute, clip(p.LastError, 60))
		}
		return tw.Flush()
	})
}

// ---- JSON shapes (never any key material) ----
