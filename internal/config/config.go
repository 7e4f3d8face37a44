// Package config loads Ferry's TOML configuration strictly: unknown keys are errors, defaults live in
// Default, and Validate reports every problem at once with the field's name.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ferryhpc/ferry/internal/credcheck"
)

// Config is the whole configuration file.
type Config struct {
	Agent       Agent       `toml:"agent"`
	Pool        Pool        `toml:"pool"`
	Poll        Poll        `toml:"poll"`
	Stage       Stage       `toml:"stage"`
	Limits      Limits      `toml:"limits"`
	Credentials Credentials `toml:"credentials"`
	Web         Web         `toml:"web"`
	Store       Store       `toml:"store"`
	Members     []Member    `toml:"member"`
	Identities  []Identity  `toml:"identity"`
}

// Agent configures the daemon itself.
type Agent struct {
	StateDir     string `toml:"state_dir"`
	ReattachFile string `toml:"reattach_file"`
	LogLevel     string `toml:"log_level"`
	// MetricsListen is the address of the Prometheus /metrics endpoint; empty disables it.
	MetricsListen string `toml:"metrics_listen"`
	// Socket is the unix socket the CLI reaches the agent on; callers are identified by their
	// Unix credentials. Empty disables it.
	Socket string `toml:"socket"`
	// KEKFile holds the key-encryption key that seals private keys and passphrases at rest
	// (default <state_dir>/kek; created 0600 on first start). KEKEnv names an environment
	// variable that, when set, holds the key instead (base64).
	KEKFile string `toml:"kek_file"`
	KEKEnv  string `toml:"kek_env"`
	// AuditLog is the JSON-lines audit log (default <state_dir>/audit.log).
	AuditLog string `toml:"audit_log"`
}

// Web configures the web front door (console and REST API), served by the agent. It is off
// unless Listen is set.
type Web struct {
	// Listen is the address to serve on ("127.0.0.1:8443", ":8443"). Empty: no web front door.
	Listen string `toml:"listen"`
	// PublicURL is the URL people reach the console at, used in invitation links
	// (default: https://, or http:// for plain HTTP, plus Listen).
	PublicURL string `toml:"public_url"`
	// TLSCert and TLSKey are PEM files. Without them the agent serves TLS with a self-signed
	// certificate it generates once and keeps in state_dir (its SHA-256 fingerprint is logged),
	// unless PlainHTTP is set.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// PlainHTTP serves HTTP without TLS: only allowed when Listen is a loopback address (a
	// reverse proxy on the same host terminates TLS).
	PlainHTTP bool `toml:"plain_http"`
	// SessionIdle signs a browser out after this long without a request; SessionMax after this
	// long whatever it does.
	SessionIdle Duration `toml:"session_idle"`
	SessionMax  Duration `toml:"session_max"`
	// InviteTTL is how long an invitation link stays usable (once).
	InviteTTL Duration `toml:"invite_ttl"`
	// TokenTTL is a new personal access token's default lifetime; TokenMaxTTL the longest a
	// member may ask for.
	TokenTTL    Duration `toml:"token_ttl"`
	TokenMaxTTL Duration `toml:"token_max_ttl"`
	// SignInPerAccount and SignInPerAddress cap failed sign-ins in any 15 minutes for one
	// account and from one address; past them sign-in answers 429 until the window moves on.
	SignInPerAccount int `toml:"signin_per_account"`
	SignInPerAddress int `toml:"signin_per_address"`
}

// Member seeds an organisation member at start-up (created if absent; the store is authoritative
// afterwards, managed with `ferry member`).
type Member struct {
	Name      string   `toml:"name"`
	Role      string   `toml:"role"`
	UnixUsers []string `toml:"unix_users"`
}

// Credentials tunes how failing credentials are handled.
type Credentials struct {
	// MaxFailures is how many consecutive authentication failures hold a credential (no more
	// logins until it is changed). OpenSSH 9.8+ penalises failures per source address, and the
	// agent logs every member in from one address: one bad key must not lock out the others.
	MaxFailures int `toml:"max_failures"`
	// Backoff is the wait after the first failure before another login is tried; it doubles
	// with each failure.
	Backoff Duration `toml:"backoff"`
}

// Limits caps the scheduler commands Ferry sends, so the controller is never hammered.
type Limits struct {
	UserCommandsPerMinute     int `toml:"user_commands_per_minute"`
	IdentityCommandsPerMinute int `toml:"identity_commands_per_minute"`
	Burst                     int `toml:"burst"`
}

// Pool configures SSH connection pools (see sshpool.Options).
type Pool struct {
	MaxSessionsPerConn int      `toml:"max_sessions_per_conn"`
	MaxConnsPerUser    int      `toml:"max_conns_per_user"`
	MaxDialsPerHost    int      `toml:"max_dials_per_host"`
	DialTimeout        Duration `toml:"dial_timeout"`
	KeepaliveInterval  Duration `toml:"keepalive_interval"`
	KeepaliveTimeout   Duration `toml:"keepalive_timeout"`
	IdleTimeout        Duration `toml:"idle_timeout"`
	// Dispatcher keeps one shell per connection that runs commands in one round trip each.
	Dispatcher bool `toml:"dispatcher"`
}

// Poll configures status polling and exit-code collection.
type Poll struct {
	Interval       Duration `toml:"interval"`
	MaxInterval    Duration `toml:"max_interval"`
	CommandTimeout Duration `toml:"command_timeout"`
	ExitCodeGrace  Duration `toml:"exit_code_grace"`
	CancelBatch    int      `toml:"cancel_batch"`
	SubmitTimeout  Duration `toml:"submit_timeout"`
	// SubmitBatchWindow groups one member's submits arriving within it into one remote exec
	// (0 disables batching); SubmitBatchMax caps a batch.
	SubmitBatchWindow Duration `toml:"submit_batch_window"`
	SubmitBatchMax    int      `toml:"submit_batch_max"`
	// SubmitParallel caps the submit commands of one member running at once on the login node:
	// a batch runs its commands this many at a time, one batch per member at a time.
	SubmitParallel int      `toml:"submit_parallel"`
	SignalLead     Duration `toml:"signal_lead"`
}

// Stage configures file staging.
type Stage struct {
	FileMode string `toml:"file_mode"`
	DirMode  string `toml:"dir_mode"`
}

// Identity is one managed identity: a login node, its scheduler, the shared work dir and group, and
// the credentials of the members who use it.
type Identity struct {
	Name       string `toml:"name"`
	Scheduler  string `toml:"scheduler"`
	Host       string `toml:"host"`
	Port       int    `toml:"port"`
	KnownHosts string `toml:"known_hosts"`
	WorkDir    string `toml:"work_dir"`
	Group      string `toml:"group"`
	// SchedulerCommandDir is the absolute directory of the scheduler's commands on the login node
	// (empty: the users' login PATH). PBSHistory says a PBS Pro server keeps job history.
	SchedulerCommandDir string       `toml:"scheduler_command_dir"`
	PBSHistory          bool         `toml:"pbs_history"`
	Credentials         []Credential `toml:"credential"`
}

// Credential is one member's login on an identity. The key and passphrase are read from files (or
// an environment variable for the passphrase) so that secrets never sit in the config file itself.
type Credential struct {
	User           string `toml:"user"`
	KeyFile        string `toml:"key_file"`
	PassphraseFile string `toml:"passphrase_file"`
	PassphraseEnv  string `toml:"passphrase_env"`
}

// Duration is a time.Duration written as a Go duration string ("15s") in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use Go syntax such as \"15s\" or \"5m\")", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Default returns the configuration with every default filled in and no identities.
func Default() Config {
	return Config{
		Agent:       Agent{StateDir: "/var/lib/ferry", LogLevel: "info", Socket: "/run/ferry/ferry.sock", KEKEnv: "FERRY_KEK"},
		Credentials: Credentials{MaxFailures: 3, Backoff: Duration{30 * time.Second}},
		Pool: Pool{
			MaxSessionsPerConn: 10,
			MaxConnsPerUser:    4,
			MaxDialsPerHost:    4,
			DialTimeout:        Duration{15 * time.Second},
			KeepaliveInterval:  Duration{15 * time.Second},
			KeepaliveTimeout:   Duration{10 * time.Second},
			IdleTimeout:        Duration{5 * time.Minute},
			Dispatcher:         true,
		},
		Poll: Poll{
			Interval:          Duration{5 * time.Second},
			MaxInterval:       Duration{60 * time.Second},
			CommandTimeout:    Duration{60 * time.Second},
			ExitCodeGrace:     Duration{270 * time.Second},
			CancelBatch:       100,
			SubmitTimeout:     Duration{60 * time.Second},
			SubmitBatchWindow: Duration{20 * time.Millisecond},
			SubmitBatchMax:    50,
			SubmitParallel:    4,
			SignalLead:        Duration{30 * time.Second},
		},
		Web: Web{SessionIdle: Duration{2 * time.Hour}, SessionMax: Duration{24 * time.Hour}, InviteTTL: Duration{72 * time.Hour},
			TokenTTL: Duration{90 * 24 * time.Hour}, TokenMaxTTL: Duration{366 * 24 * time.Hour},
			SignInPerAccount: 5, SignInPerAddress: 20},
		Store:  defaultStore(),
		Stage:  Stage{FileMode: "0664", DirMode: "2775"},
		Limits: Limits{UserCommandsPerMinute: 600, IdentityCommandsPerMinute: 3000, Burst: 20},
	}
}

// Load reads and validates the file at path. Unknown keys are reported together.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(string(b))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates TOML text on top of Default.
func Parse(text string) (Config, error) {
	c := Default()
	md, err := toml.Decode(text, &c)
	if err != nil {
		return Config{}, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return Config{}, fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
	}
	for i := range c.Identities {
		if c.Identities[i].Port == 0 {
			c.Identities[i].Port = 22
		}
		c.Identities[i].Scheduler = CanonicalScheduler(c.Identities[i].Scheduler)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

var (
	identityName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	memberName   = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
	posixUser    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	hostName     = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	// Schedulers lists the scheduler kinds an identity may name.
	Schedulers = []string{"slurm", "pbspro", "torque", "lsf", "sge", "moab"}
	// SchedulerAliases are the provider names the platforms Ferry follows use for the same
	// schedulers, accepted wherever a kind is: "altair" (Altair PBS Professional) and "uge"
	// (Univa, now Altair, Grid Engine).
	SchedulerAliases = map[string]string{"altair": "pbspro", "uge": "sge"}
)

// CanonicalScheduler returns the kind a scheduler name means: an alias's kind, any kind itself,
// in lower case; anything else unchanged (Validate then refuses it).
func CanonicalScheduler(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if k, ok := SchedulerAliases[n]; ok {
		return k
	}
	for _, k := range Schedulers {
		if n == k {
			return k
		}
	}
	return name
}

// SchedulerNames describes the accepted scheduler names for error messages.
func SchedulerNames() string {
	aliases := make([]string, 0, len(SchedulerAliases))
	for a, k := range SchedulerAliases {
		aliases = append(aliases, a+" (= "+k+")")
	}
	sort.Strings(aliases)
	return strings.Join(Schedulers, ", ") + "; aliases " + strings.Join(aliases, ", ")
}

// Validate reports every problem in c, each prefixed with its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, a...)...))
	}
	if c.Agent.StateDir == "" || !filepath.IsAbs(c.Agent.StateDir) {
		bad("agent.state_dir", "must be an absolute path, got %q", c.Agent.StateDir)
	}
	switch c.Agent.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("agent.log_level", "must be debug, info, warn or error, got %q", c.Agent.LogLevel)
	}
	positive := func(field string, v int) {
		if v <= 0 {
			bad(field, "must be positive, got %d", v)
		}
	}
	positive("pool.max_sessions_per_conn", c.Pool.MaxSessionsPerConn)
	positive("pool.max_conns_per_user", c.Pool.MaxConnsPerUser)
	positive("pool.max_dials_per_host", c.Pool.MaxDialsPerHost)
	positive("poll.cancel_batch", c.Poll.CancelBatch)
	positive("poll.submit_batch_max", c.Poll.SubmitBatchMax)
	positive("poll.submit_parallel", c.Poll.SubmitParallel)
	if c.Poll.SubmitBatchWindow.Duration < 0 {
		bad("poll.submit_batch_window", "must not be negative")
	}
	positive("limits.user_commands_per_minute", c.Limits.UserCommandsPerMinute)
	positive("limits.identity_commands_per_minute", c.Limits.IdentityCommandsPerMinute)
	positive("limits.burst", c.Limits.Burst)
	positive("credentials.max_failures", c.Credentials.MaxFailures)
	if c.Credentials.Backoff.Duration < 0 {
		bad("credentials.backoff", "must not be negative")
	}
	members := map[string]bool{}
	for i, m := range c.Members {
		f := fmt.Sprintf("member[%d]", i)
		if !memberName.MatchString(m.Name) {
			bad(f+".name", "must be 1-64 letters, digits, '.', '_', '@' or '-', got %q", m.Name)
		}
		if members[m.Name] {
			bad(f+".name", "duplicate member %q", m.Name)
		}
		members[m.Name] = true
		if m.Role != "owner" && m.Role != "member" {
			bad(f+".role", "must be owner or member, got %q", m.Role)
		}
	}
	if c.Poll.MaxInterval.Duration < c.Poll.Interval.Duration {
		bad("poll.max_interval", "must not be shorter than poll.interval (%s), got %s", c.Poll.Interval.Duration, c.Poll.MaxInterval.Duration)
	}
	for field, d := range map[string]Duration{
		"pool.dial_timeout": c.Pool.DialTimeout, "pool.keepalive_interval": c.Pool.KeepaliveInterval,
		"pool.keepalive_timeout": c.Pool.KeepaliveTimeout, "pool.idle_timeout": c.Pool.IdleTimeout,
		"poll.interval": c.Poll.Interval, "poll.command_timeout": c.Poll.CommandTimeout,
		"poll.submit_timeout": c.Poll.SubmitTimeout,
	} {
		if d.Duration <= 0 {
			bad(field, "must be a positive duration, got %s", d.Duration)
		}
	}
	if c.Poll.ExitCodeGrace.Duration < 0 {
		bad("poll.exit_code_grace", "must not be negative")
	}
	c.validateWeb(bad)
	c.validateStore(bad)
	if c.Poll.SignalLead.Duration < 0 {
		bad("poll.signal_lead", "must not be negative")
	}
	if _, err := ParseMode(c.Stage.FileMode); err != nil {
		bad("stage.file_mode", "%v", err)
	}
	if _, err := ParseMode(c.Stage.DirMode); err != nil {
		bad("stage.dir_mode", "%v", err)
	}
	seen := map[string]bool{}
	for i, id := range c.Identities {
		f := fmt.Sprintf("identity[%d]", i)
		if id.Name != "" {
			f = fmt.Sprintf("identity %q", id.Name)
		}
		if !identityName.MatchString(id.Name) {
			bad(f+".name", "must be 1-64 letters, digits, '-' or '_', got %q", id.Name)
		}
		if seen[id.Name] {
			bad(f+".name", "duplicate identity name")
		}
		seen[id.Name] = true
		known := false
		for _, s := range Schedulers {
			known = known || s == id.Scheduler
		}
		if !known {
			bad(f+".scheduler", "must be one of %s, got %q", SchedulerNames(), id.Scheduler)
		}
		if !ValidHost(id.Host) {
			bad(f+".host", "must be a hostname (RFC 1123) or an IP address, got %q", id.Host)
		}
		if id.Port < 1 || id.Port > 65535 {
			bad(f+".port", "must be 1-65535, got %d", id.Port)
		}
		if strings.TrimSpace(id.KnownHosts) == "" {
			bad(f+".known_hosts", "must pin the login node's host key (a known_hosts line); get it with ssh-keyscan and check its fingerprint")
		}
		if !strings.HasPrefix(id.WorkDir, "/") || strings.ContainsAny(id.WorkDir, "\x00\n\r") {
			bad(f+".work_dir", "must be an absolute path, got %q", id.WorkDir)
		}
		if id.SchedulerCommandDir != "" && (!strings.HasPrefix(id.SchedulerCommandDir, "/") || strings.ContainsAny(id.SchedulerCommandDir, "\x00\n\r")) {
			bad(f+".scheduler_command_dir", "must be an absolute path, got %q", id.SchedulerCommandDir)
		}
		if id.PBSHistory && id.Scheduler != "pbspro" {
			bad(f+".pbs_history", "applies only to scheduler = \"pbspro\"")
		}
		if id.Group != "" && !posixUser.MatchString(id.Group) {
			bad(f+".group", "is not a valid Linux group name: %q", id.Group)
		}
		users := map[string]bool{}
		for j, cr := range id.Credentials {
			cf := fmt.Sprintf("%s.credential[%d]", f, j)
			if err := credcheck.ValidateUsername(cr.User); err != nil {
				bad(cf+".user", "%q: %v", cr.User, err)
			}
			if users[cr.User] {
				bad(cf+".user", "duplicate credential for %q", cr.User)
			}
			users[cr.User] = true
			if cr.KeyFile == "" {
				bad(cf+".key_file", "is required")
			}
			if cr.PassphraseFile != "" && cr.PassphraseEnv != "" {
				bad(cf, "set passphrase_file or passphrase_env, not both")
			}
		}
	}
	return errors.Join(errs...)
}

// ValidHost reports whether h is an RFC 1123 host name or an IP literal.
func ValidHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if strings.Count(h, ":") >= 2 { // IPv6 literal
		return isIP(h)
	}
	return hostName.MatchString(h)
}

// ParseMode parses an octal file mode such as "0664" or "2775".
func ParseMode(s string) (uint32, error) {
	var m uint32
	if s == "" {
		return 0, errors.New("empty mode")
	}
	for _, r := range s {
		if r < '0' || r > '7' {
			return 0, fmt.Errorf("mode %q is not octal", s)
		}
		m = m*8 + uint32(r-'0')
		if m > 0o7777 { // checked per digit: a long string must not wrap around to a small mode
			return 0, fmt.Errorf("mode %q is too large: at most 07777", s)
		}
	}
	return m, nil
}

// ParseJump reads an identity's jump host, "[user@]host[:port]" (port 22 when none is given;
// an IPv6 literal with a port in brackets). The user, when given, must be a valid username.
func ParseJump(s string) (user, host string, port int, err error) {
	port = 22
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
		if err := credcheck.ValidateUsername(user); err != nil {
			return "", "", 0, fmt.Errorf("jump host user: %v", err)
		}
	}
	host = s
	if h, p, e := net.SplitHostPort(s); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", "", 0, fmt.Errorf("jump host port %q must be 1-65535", p)
		}
	}
	if !ValidHost(host) {
		return "", "", 0, fmt.Errorf("jump host %q is not a hostname or IP address", host)
	}
	return user, host, port, nil
}
