package config

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Store chooses where the agent keeps its state.
type Store struct {
	// Backend is "bbolt" (one agent; a file in state_dir, the default) or "postgres" (one or
	// more agents sharing a PostgreSQL database, with identities leased to one agent at a time).
	Backend string `toml:"backend"`
	// DSN is the database's postgres:// URL or key=value string. DSNEnv names an environment
	// variable holding it instead, to keep its password out of this file; PGPASSWORD and
	// ~/.pgpass also work, as in every libpq client.
	DSN    string `toml:"dsn"`
	DSNEnv string `toml:"dsn_env"`
	// KeepFinished is how long a finished job stays listed (status, `ferry jobs`, the console)
	// before it is forgotten; 0 keeps every job forever (the store and the agent's memory grow
	// with every job ever run).
	KeepFinished Duration `toml:"keep_finished"`
	// Lease tunes how agents on one database share the identities' work.
	Lease Lease `toml:"lease"`
}

// Lease configures identity leases (postgres only).
type Lease struct {
	// Name is this agent's name in the leases table (default: host name and state dir). Two
	// running agents must not share one.
	Name string `toml:"name"`
	// Address is where launchers, the CLI and the console are sent for an identity this agent
	// holds (the agent's plugin or web address as others reach it); shown by other agents in
	// their "worked by" answers.
	Address string `toml:"address"`
	// TTL is how long a lease lasts without renewal: an agent that cannot renew stops acting
	// for the identity before TTL has passed, and another agent may take it after. The takeover
	// time after a crash is at most TTL + Renew.
	TTL Duration `toml:"ttl"`
	// Renew is how often a holder renews and a standby tries to take free leases.
	Renew Duration `toml:"renew"`
}

// StoreBackends lists the store.backend values.
var StoreBackends = []string{"bbolt", "postgres"}

// Shared reports whether the store is shared by several agents (and identities are leased).
func (c Config) Shared() bool { return c.Store.Backend == "postgres" }

// StoreDSN is the PostgreSQL DSN: store.dsn, or the variable store.dsn_env names.
func (c Config) StoreDSN() (string, error) {
	if c.Store.DSNEnv != "" {
		v := os.Getenv(c.Store.DSNEnv)
		if v == "" {
			return "", fmt.Errorf("store.dsn_env: the environment variable %s is empty or not set", c.Store.DSNEnv)
		}
		return v, nil
	}
	return c.Store.DSN, nil
}

// LeaseName is this agent's name among the agents of one database.
func (c Config) LeaseName() string {
	if c.Store.Lease.Name != "" {
		return c.Store.Lease.Name
	}
	h, _ := os.Hostname()
	return h + ":" + c.Agent.StateDir
}

func defaultStore() Store {
	return Store{Backend: "bbolt", KeepFinished: Duration{90 * 24 * time.Hour}, Lease: Lease{TTL: Duration{15 * time.Second}, Renew: Duration{5 * time.Second}}}
}

// validateStore checks the [store] section.
func (c Config) validateStore(bad func(field, format string, a ...any)) {
	s := c.Store
	if s.KeepFinished.Duration < 0 {
		bad("store.keep_finished", "must not be negative (0 keeps finished jobs forever)")
	} else if s.KeepFinished.Duration > 0 && s.KeepFinished.Duration < time.Hour {
		bad("store.keep_finished", "must be 0 (forever) or at least 1h, got %s: a launcher must still find a job it just saw end", s.KeepFinished.Duration)
	}
	switch s.Backend {
	case "bbolt":
		if s.DSN != "" || s.DSNEnv != "" {
			bad("store.dsn", "is for backend = \"postgres\"; the bbolt store is a file in agent.state_dir")
		}
		return
	case "postgres":
	default:
		bad("store.backend", "must be %s, got %q", strings.Join(StoreBackends, " or "), s.Backend)
		return
	}
	switch {
	case s.DSN != "" && s.DSNEnv != "":
		bad("store.dsn", "set dsn or dsn_env, not both")
	case s.DSN == "" && s.DSNEnv == "":
		bad("store.dsn", "backend \"postgres\" needs dsn (postgres://USER@HOST:PORT/DB) or dsn_env")
	case s.DSN != "" && !strings.HasPrefix(s.DSN, "postgres://") && !strings.HasPrefix(s.DSN, "postgresql://") && !strings.Contains(s.DSN, "="):
		bad("store.dsn", "must be a postgres:// URL or key=value pairs (host=... dbname=...)")
	}
	if s.Lease.TTL.Duration < 3*time.Second {
		bad("store.lease.ttl", "must be at least 3s, got %s", s.Lease.TTL.Duration)
	}
	if s.Lease.Renew.Duration <= 0 || s.Lease.Renew.Duration*2 > s.Lease.TTL.Duration {
		bad("store.lease.renew", "must be positive and at most half of store.lease.ttl (%s), got %s", s.Lease.TTL.Duration, s.Lease.Renew.Duration)
	}
	if a := s.Lease.Address; a != "" {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(a, "https://"), "http://")); err != nil {
			bad("store.lease.address", "must be HOST:PORT or an http(s) URL with a port, got %q", a)
		}
	}
}
