// Package sshpool keeps per (identity, user) pools of SSH connections to login nodes and runs
// commands and SFTP sessions on them. It knows nothing of schedulers: callers pass a ready command
// line. Every blocking call takes a context; x/crypto calls that have none are bounded by deadlines
// and goroutines.
package sshpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"
)

// Options tunes pools. The zero value of a field means its default (see Defaults).
type Options struct {
	// MaxSessionsPerConn caps concurrent sessions (exec and SFTP) on one connection. Default 10,
	// sshd's MaxSessions; lower it to the login node's value if that is lower.
	MaxSessionsPerConn int
	// MaxConnsPerUser caps connections per (identity, user). Default 4.
	MaxConnsPerUser int
	// MaxDialsPerHost caps concurrent handshakes to one login node across all users. Default 4:
	// keep it below sshd's MaxStartups start value (10) or the node resets handshakes.
	MaxDialsPerHost int
	// DialTimeout bounds TCP connect plus SSH handshake plus authentication. Default 15s.
	DialTimeout time.Duration
	// KeepaliveInterval is how often an idle-or-busy connection is probed. Default 15s.
	KeepaliveInterval time.Duration
	// KeepaliveTimeout bounds the wait for a keepalive reply; no reply closes the connection.
	// Default 10s. A dead connection is therefore evicted within Interval+Timeout.
	KeepaliveTimeout time.Duration
	// IdleTimeout closes connections with no session for this long. Default 5m.
	IdleTimeout time.Duration
	// MaxOutput bounds the stdout (and separately stderr) kept from one command. Default 64 MiB.
	MaxOutput int
	// NoDispatcher turns off the one-round-trip command path (see dispatcher): every command then
	// opens a session of its own. The dispatcher keeps one session slot per connection.
	NoDispatcher bool
}

// Defaults returns the default options.
func Defaults() Options {
	return Options{
		MaxSessionsPerConn: 10,
		MaxConnsPerUser:    4,
		MaxDialsPerHost:    4,
		DialTimeout:        15 * time.Second,
		KeepaliveInterval:  15 * time.Second,
		KeepaliveTimeout:   10 * time.Second,
		IdleTimeout:        5 * time.Minute,
		MaxOutput:          64 << 20,
	}
}

func (o Options) withDefaults() Options {
	d := Defaults()
	if o.MaxSessionsPerConn <= 0 {
		o.MaxSessionsPerConn = d.MaxSessionsPerConn
	}
	if o.MaxConnsPerUser <= 0 {
		o.MaxConnsPerUser = d.MaxConnsPerUser
	}
	if o.MaxDialsPerHost <= 0 {
		o.MaxDialsPerHost = d.MaxDialsPerHost
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = d.DialTimeout
	}
	if o.KeepaliveInterval <= 0 {
		o.KeepaliveInterval = d.KeepaliveInterval
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = d.KeepaliveTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = d.IdleTimeout
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = d.MaxOutput
	}
	return o
}

// Key names one pool.
type Key struct {
	Identity string
	User     string
}

func (k Key) String() string { return fmt.Sprintf("identity %q user %q", k.Identity, k.User) }

// Target is where and as whom a pool logs in. Signer may be a certificate signer (WithCertificate).
type Target struct {
	Host     string
	Port     int
	HostKeys HostKeys
	User     string
	Signer   ssh.Signer
	// Jump, when set, is a bastion the connection goes through (OpenSSH's ProxyJump): Ferry logs
	// in to it, opens a direct-tcpip channel to Host:Port, and runs the real handshake inside.
	Jump *Target
}

// Manager owns all pools and the per-host dial limits. It is safe for concurrent use.
type Manager struct {
	opts Options
	log  zerolog.Logger

	mu     sync.Mutex // guards pools, dials, closed
	pools  map[Key]*Pool
	dials  map[string]*dialGate
	closed bool

	// dialer can be replaced in tests.
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewManager returns a Manager with opts (zero fields take defaults).
func NewManager(opts Options, log zerolog.Logger) *Manager {
	var d net.Dialer
	return &Manager{
		opts:   opts.withDefaults(),
		log:    log,
		pools:  map[Key]*Pool{},
		dials:  map[string]*dialGate{},
		dialer: d.DialContext,
	}
}

// Options returns the effective options.
func (m *Manager) Options() Options { return m.opts }

// Pool returns the pool for key, creating it with target on first use. When target differs from the
// one the existing pool was made with (credential or host changed), the old pool is closed and
// replaced.
func (m *Manager) Pool(key Key, target Target) (*Pool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if p, ok := m.pools[key]; ok {
		if p.sameTarget(target) {
			return p, nil
		}
		go p.Close()
	}
	hp := HostPort(target.Host, target.Port)
	if target.Jump != nil {
		hp = HostPort(target.Jump.Host, target.Jump.Port) // handshakes land on the bastion
	}
	sem, ok := m.dials[hp]
	if !ok {
		sem = &dialGate{slots: make(chan struct{}, m.opts.MaxDialsPerHost)}
		m.dials[hp] = sem
	}
	p := &Pool{
		key:     key,
		target:  target,
		opts:    m.opts,
		log:     m.log.With().Str("identity", key.Identity).Str("user", key.User).Logger(),
		dialSem: sem,
		dialer:  m.dialer,
		wake:    make(chan struct{}),
	}
	m.pools[key] = p
	return p, nil
}

// dialGate caps concurrent handshakes to one host and remembers the most seen at once.
type dialGate struct {
	slots chan struct{}
	mu    sync.Mutex // guards now, peak
	now   int
	peak  int
}

func (g *dialGate) enter(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	g.now++
	g.peak = max(g.peak, g.now)
	g.mu.Unlock()
	return nil
}

func (g *dialGate) leave() {
	g.mu.Lock()
	g.now--
	g.mu.Unlock()
	<-g.slots
}

// PeakDials returns the most handshakes that were in progress at once to host:port.
func (m *Manager) PeakDials(host string, port int) int {
	m.mu.Lock()
	g := m.dials[HostPort(host, port)]
	m.mu.Unlock()
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak
}

// Drop closes and forgets the pool for key, if any.
func (m *Manager) Drop(key Key) {
	m.mu.Lock()
	p := m.pools[key]
	delete(m.pools, key)
	m.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

// Stats returns a snapshot of every pool.
func (m *Manager) Stats() []Stats {
	m.mu.Lock()
	pools := make([]*Pool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	out := make([]Stats, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.Stats())
	}
	return out
}

// Close closes every pool.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	pools := m.pools
	m.pools = map[Key]*Pool{}
	m.mu.Unlock()
	for _, p := range pools {
		p.Close()
	}
}

// Stats describes one pool at one moment.
type Stats struct {
	Key          Key
	Conns        int
	Sessions     int
	Waiters      int
	Dials        int64
	DialFailures int64
	LastError    string
	// Dispatched counts commands run on a dispatcher (one round trip); ExecSessions counts
	// sessions opened for one command each.
	Dispatched   int64
	ExecSessions int64
}

// Pool is the set of connections for one (identity, user). Exec and SFTP lease a session slot on a
// connection with room, dialing another connection (up to MaxConnsPerUser) when all are full.
type Pool struct {
	key     Key
	target  Target
	opts    Options
	log     zerolog.Logger
	dialSem *dialGate
	dialer  func(ctx context.Context, network, addr string) (net.Conn, error)

	mu                       sync.Mutex // guards everything below
	conns                    []*conn
	dialing                  int
	waiters                  int
	wake                     chan struct{} // closed and replaced to wake waiters
	closed                   bool
	dials                    int64
	dialFails                int64
	lastErr                  string
	dialErr                  error  // the last failed dial of acquire, for the callers that waited on it
	failedDials              uint64 // counts those failures
	dispatched, execSessions int64
}

type conn struct {
	client   *ssh.Client
	sessions int       // slots taken, the dispatcher's included; guarded by Pool.mu
	limit    int       // learned session cap (MaxSessions); guarded by Pool.mu
	lastUsed time.Time // guarded by Pool.mu
	dead     bool      // guarded by Pool.mu
	done     chan struct{}

	// The dispatcher (one-round-trip commands), guarded by Pool.mu. While it exists it holds one of
	// the connection's session slots (counted in sessions).
	disp         *dispatcher
	dispBusy     bool // a command is running on it
	dispStarting bool // a caller is opening it
}

// inUse is the number of sessions doing work on c: an idle dispatcher does not count, so that
// an otherwise idle connection is still reaped. p.mu must be held.
func (c *conn) inUse() int {
	n := c.sessions
	if c.disp != nil && !c.dispBusy {
		n--
	}
	return n
}

func (p *Pool) sameTarget(t Target) bool { return sameTarget(p.target, t) }

func sameTarget(a, b Target) bool {
	if (a.Jump == nil) != (b.Jump == nil) || (a.Jump != nil && !sameTarget(*a.Jump, *b.Jump)) {
		return false
	}
	if a.Host != b.Host || a.Port != b.Port || a.User != b.User || len(a.HostKeys) != len(b.HostKeys) {
		return false
	}
	if !bytes.Equal(a.Signer.PublicKey().Marshal(), b.Signer.PublicKey().Marshal()) {
		return false
	}
	for i := range a.HostKeys {
		if !bytes.Equal(a.HostKeys[i].Marshal(), b.HostKeys[i].Marshal()) {
			return false
		}
	}
	return true
}

// Key returns the pool's key.
func (p *Pool) Key() Key { return p.key }

// Stats returns a snapshot.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Key: p.key, Conns: len(p.conns), Waiters: p.waiters, Dials: p.dials, DialFailures: p.dialFails, LastError: p.lastErr,
		Dispatched: p.dispatched, ExecSessions: p.execSessions}
	for _, c := range p.conns {
		s.Sessions += c.inUse()
	}
	return s
}

// Close closes every connection; blocked callers get ErrClosed.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.broadcastLocked()
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

func (c *conn) close() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	_ = c.client.Close()
}

// broadcastLocked wakes every waiter. p.mu must be held.
func (p *Pool) broadcastLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *Pool) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{p.key}, a...)...)
}

// acquire returns a connection with a free session slot, already counted as in use.
func (p *Pool) acquire(ctx context.Context) (*conn, error) {
	var waitedFor error // the failure of a dial this caller waited on
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, p.errorf("%w", ErrClosed)
		}
		live := 0
		for _, c := range p.conns {
			if c.dead {
				continue
			}
			live++
			if c.sessions < c.limit {
				c.sessions++
				c.lastUsed = time.Now()
				p.mu.Unlock()
				return c, nil
			}
		}
		// A caller that waited while a dial failed, with no live connection left to wait for, gets
		// that dial's error instead of dialing again itself: a burst against an unreachable node
		// then fails within one dial timeout, not one per caller in turn.
		if waitedFor != nil && live == 0 {
			p.mu.Unlock()
			return nil, waitedFor
		}
		// A connection being dialed will have room for limit-1 sessions besides its dialer's:
		// wait for it rather than dial one more per caller in a burst.
		inflight := p.dialing * (p.opts.MaxSessionsPerConn - 1)
		if p.waiters >= inflight && len(p.conns)+p.dialing < p.opts.MaxConnsPerUser {
			p.dialing++
			p.mu.Unlock()
			c, err := p.dial(ctx)
			p.mu.Lock()
			p.dialing--
			if err != nil {
				p.lastErr = err.Error()
				if ctx.Err() == nil { // the dial failed, not this caller's ctx
					p.dialErr = err
					p.failedDials++
				}
				p.broadcastLocked()
				p.mu.Unlock()
				return nil, err
			}
			if p.closed {
				p.mu.Unlock()
				c.close()
				return nil, p.errorf("%w", ErrClosed)
			}
			c.sessions = 1
			c.lastUsed = time.Now()
			p.conns = append(p.conns, c)
			p.broadcastLocked()
			p.mu.Unlock()
			go p.keepalive(c)
			return c, nil
		}
		wake, failed := p.wake, p.failedDials
		p.waiters++
		p.mu.Unlock()
		select {
		case <-wake:
			p.mu.Lock()
			p.waiters--
			if p.failedDials != failed {
				waitedFor = p.dialErr
			}
			p.mu.Unlock()
		case <-ctx.Done():
			p.mu.Lock()
			p.waiters--
			p.mu.Unlock()
			return nil, p.errorf("waiting for a session: %w", ctx.Err())
		}
	}
}

// release returns a session slot.
func (p *Pool) release(c *conn) {
	p.mu.Lock()
	c.sessions--
	c.lastUsed = time.Now()
	p.broadcastLocked()
	p.mu.Unlock()
}

// full records that the server refused another session on c: the login node's MaxSessions is lower
// than ours, so learn it.
func (p *Pool) full(c *conn) {
	p.mu.Lock()
	if c.sessions-1 >= 1 {
		c.limit = c.sessions - 1
	}
	p.mu.Unlock()
}

// evict marks c dead, removes it from the pool and closes it.
func (p *Pool) evict(c *conn, why string) {
	p.mu.Lock()
	if c.dead {
		p.mu.Unlock()
		return
	}
	c.dead = true
	for i, x := range p.conns {
		if x == c {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
	p.lastErr = why
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Warn().Str("reason", why).Msg("ssh connection evicted")
	c.close()
}

// dial opens one authenticated connection, holding a per-host dial slot, retrying handshake resets
// (sshd's MaxStartups drops) with jitter.
func (p *Pool) dial(ctx context.Context) (*conn, error) {
	if err := p.dialSem.enter(ctx); err != nil {
		return nil, p.errorf("waiting to dial: %w", err)
	}
	defer p.dialSem.leave()

	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			d := time.Duration(50*(1<<attempt)+rand.IntN(100)) * time.Millisecond
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, p.errorf("dial %s: %w", HostPort(p.target.Host, p.target.Port), ctx.Err())
			}
		}
		var c *conn
		c, err = p.dialOnce(ctx)
		p.mu.Lock()
		p.dials++
		if err != nil {
			p.dialFails++
		}
		p.mu.Unlock()
		if err == nil {
			return c, nil
		}
		if !retryableDial(err) {
			break
		}
	}
	return nil, err
}

func retryableDial(err error) bool {
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrHostKey) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset")
}

func (p *Pool) dialOnce(ctx context.Context) (*conn, error) {
	t := p.target
	addr := HostPort(t.Host, t.Port)
	dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	dial := p.dialer
	var jump *ssh.Client
	if t.Jump != nil {
		var err error
		if jump, err = p.dialJump(dctx, *t.Jump); err != nil {
			return nil, err
		}
		dial = jump.DialContext
	}
	nc, err := dial(dctx, "tcp", addr)
	if err != nil {
		if jump != nil {
			jump.Close()
		}
		if ctx.Err() != nil {
			return nil, p.errorf("dial %s: %w", addr, ctx.Err())
		}
		return nil, p.errorf("%w: dial %s: %v", ErrUnreachable, addr, err)
	}
	if jump != nil {
		nc = &jumpConn{Conn: nc, jump: jump}
	}
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// The handshake has no context: closing the conn when ctx ends unblocks it.
	stop := context.AfterFunc(dctx, func() { _ = nc.Close() })
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(t.Signer)},
		HostKeyCallback:   t.HostKeys.Callback(),
		HostKeyAlgorithms: t.HostKeys.Algorithms(),
		Timeout:           p.opts.DialTimeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	stopped := stop()
	if err != nil {
		_ = nc.Close()
		var hk *HostKeyError
		switch {
		case errors.As(err, &hk):
			return nil, p.errorf("%w", hk)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, p.errorf("%w: the login node refused the key for %q (check the credential and that its public key is in ~%s/.ssh/authorized_keys)", ErrAuth, t.User, t.User)
		case !stopped || ctx.Err() != nil:
			if ctx.Err() != nil {
				return nil, p.errorf("ssh handshake with %s: %w", addr, ctx.Err())
			}
			return nil, p.errorf("%w: ssh handshake with %s timed out after %s", ErrUnreachable, addr, p.opts.DialTimeout)
		default:
			return nil, p.errorf("%w: ssh handshake with %s: %w", ErrUnreachable, addr, err)
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return &conn{
		client: ssh.NewClient(sc, chans, reqs),
		limit:  p.opts.MaxSessionsPerConn,
		done:   make(chan struct{}),
	}, nil
}

// dialJump logs in to the bastion j; the returned client carries the real connection.
func (p *Pool) dialJump(ctx context.Context, j Target) (*ssh.Client, error) {
	c, err := DialJump(ctx, p.dialer, j, p.opts.DialTimeout)
	if err != nil {
		return nil, p.errorf("%w", err)
	}
	return c, nil
}

// DialJump logs in to the bastion j, reached with dial, checking its host key against j.HostKeys
// and authenticating with j.Signer; connections onwards go through the returned client's
// DialContext. The dial and the handshake end with ctx (and the handshake after timeout). Errors
// wrap ErrUnreachable, ErrAuth or a *HostKeyError.
func DialJump(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), j Target, timeout time.Duration) (*ssh.Client, error) {
	addr := HostPort(j.Host, j.Port)
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial jump host %s: %v", ErrUnreachable, addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:              j.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(j.Signer)},
		HostKeyCallback:   j.HostKeys.Callback(),
		HostKeyAlgorithms: j.HostKeys.Algorithms(),
		Timeout:           timeout,
	})
	if err != nil {
		_ = nc.Close()
		var hk *HostKeyError
		switch {
		case errors.As(err, &hk):
			return nil, fmt.Errorf("jump host: %w", hk)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%w: the jump host %s refused the key for %q", ErrAuth, addr, j.User)
		}
		return nil, fmt.Errorf("%w: ssh handshake with jump host %s: %w", ErrUnreachable, addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// jumpConn is a connection tunnelled through a bastion; closing it closes the bastion login too.
type jumpConn struct {
	net.Conn
	jump *ssh.Client
}

func (c *jumpConn) Close() error {
	err := c.Conn.Close()
	_ = c.jump.Close()
	return err
}

// keepalive probes c every KeepaliveInterval and evicts it when a probe gets no reply within
// KeepaliveTimeout; it also closes c after IdleTimeout without sessions.
func (p *Pool) keepalive(c *conn) {
	tick := time.NewTicker(p.opts.KeepaliveInterval)
	defer tick.Stop()
	closed := make(chan struct{})
	go func() {
		_ = c.client.Wait()
		close(closed)
	}()
	for {
		select {
		case <-c.done:
			return
		case <-closed:
			p.evict(c, "connection closed by peer")
			return
		case <-tick.C:
		}
		p.mu.Lock()
		idle := c.inUse() == 0 && time.Since(c.lastUsed) > p.opts.IdleTimeout
		p.mu.Unlock()
		if idle {
			p.evict(c, "")
			p.log.Debug().Msg("idle ssh connection closed")
			return
		}
		if err := p.probe(c); err != nil {
			p.evict(c, err.Error())
			return
		}
	}
}

// probe sends one keepalive@openssh.com request and waits at most KeepaliveTimeout for the reply.
func (p *Pool) probe(c *conn) error {
	res := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	t := time.NewTimer(p.opts.KeepaliveTimeout)
	defer t.Stop()
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("keepalive failed: %w", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("no keepalive reply within %s", p.opts.KeepaliveTimeout)
	case <-c.done:
		return errors.New("closed")
	}
}

// Result is a finished remote command.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Exec runs cmdline (already quoted for the remote login shell) with stdin, and returns its output
// and exit status. A non-zero exit is a Result, not an error. An error means the command may or may
// not have run (connection lost, ctx ended): callers must treat the outcome as unknown. On ctx end
// the remote command is signalled and its session closed.
func (p *Pool) Exec(ctx context.Context, cmdline string, stdin []byte) (Result, error) {
	if !p.opts.NoDispatcher && dispatchable(stdin) {
		if res, err, ok := p.execDispatch(ctx, cmdline, stdin); ok {
			return res, err
		}
	}
	var lastErr error
	for broken := 0; broken < 3; {
		c, err := p.acquire(ctx)
		if err != nil {
			return Result{}, err
		}
		sess, err := c.client.NewSession()
		if err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(err, &oce) {
				// sshd answers "open failed" when MaxSessions is reached: this connection is
				// full, not the host down. Learn the cap and try another slot.
				p.full(c)
				p.release(c)
				continue
			}
			p.release(c)
			p.evict(c, "open session: "+err.Error())
			if ctx.Err() != nil {
				return Result{}, p.errorf("open session: %w", ctx.Err())
			}
			// The command never started: trying a fresh connection is safe.
			lastErr = err
			broken++
			continue
		}
		p.mu.Lock()
		p.execSessions++
		p.mu.Unlock()
		res, err := p.run(ctx, c, sess, cmdline, stdin)
		p.release(c)
		return res, err
	}
	return Result{}, p.errorf("%w: cannot open a session: %v", ErrUnreachable, lastErr)
}

func (p *Pool) run(ctx context.Context, c *conn, sess *ssh.Session, cmdline string, stdin []byte) (Result, error) {
	defer sess.Close()
	stdout := &limitedBuffer{max: p.opts.MaxOutput}
	stderr := &limitedBuffer{max: p.opts.MaxOutput}
	sess.Stdout = stdout
	sess.Stderr = stderr
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	if err := sess.Start(cmdline); err != nil {
		return Result{}, p.errorf("start command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
		if stdout.truncated || stderr.truncated {
			return res, p.errorf("command output exceeded %d bytes", p.opts.MaxOutput)
		}
		if err == nil {
			return res, nil
		}
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			res.ExitCode = ee.ExitStatus()
			if ee.Signal() != "" && ee.ExitStatus() == 0 {
				res.ExitCode = 128 + 9
			}
			return res, nil
		}
		return res, p.errorf("%w: %w", ErrOutcomeUnknown, err)
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		return Result{}, p.errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-c.done:
		return Result{}, p.errorf("%w: %w: connection lost", ErrOutcomeUnknown, ErrUnreachable)
	}
}

// execDispatch runs the command on an idle dispatcher, opening one on a connection that has none
// (with a session slot acquired for it). ok is false when no dispatcher could take the command:
// the caller then opens a session for it.
func (p *Pool) execDispatch(ctx context.Context, cmdline string, stdin []byte) (Result, error, bool) {
	p.mu.Lock()
	for _, c := range p.conns {
		if !c.dead && c.disp != nil && !c.dispBusy {
			c.dispBusy = true
			c.lastUsed = time.Now()
			p.mu.Unlock()
			res, err := p.runDispatch(ctx, c, cmdline, stdin)
			if errors.Is(err, errNotSent) {
				return Result{}, nil, false
			}
			return res, err, true
		}
	}
	p.mu.Unlock()
	c, err := p.acquire(ctx)
	if err != nil {
		return Result{}, err, true
	}
	p.mu.Lock()
	if c.dead || c.disp != nil || c.dispStarting {
		p.mu.Unlock()
		p.release(c)
		return Result{}, nil, false
	}
	c.dispStarting = true
	p.mu.Unlock()
	d, err := startDispatcher(c.client)
	p.mu.Lock()
	c.dispStarting = false
	if err != nil {
		p.mu.Unlock()
		p.release(c)
		p.log.Debug().Err(err).Msg("command dispatcher not started; using a session per command")
		return Result{}, nil, false
	}
	// The slot acquired above now belongs to the dispatcher.
	c.disp, c.dispBusy = d, true
	p.mu.Unlock()
	res, err := p.runDispatch(ctx, c, cmdline, stdin)
	if errors.Is(err, errNotSent) {
		return Result{}, nil, false
	}
	return res, err, true
}

// runDispatch runs one command on c's dispatcher, which the caller marked busy. A failed
// dispatcher is closed and its slot freed; the next command opens a new one.
func (p *Pool) runDispatch(ctx context.Context, c *conn, cmdline string, stdin []byte) (Result, error) {
	d := c.disp
	res, err := d.run(ctx, c.done, cmdline, stdin, p.opts.MaxOutput)
	p.mu.Lock()
	c.dispBusy = false
	c.lastUsed = time.Now()
	if !errors.Is(err, errNotSent) {
		p.dispatched++
	}
	if err != nil {
		c.disp = nil
		c.sessions--
	}
	p.broadcastLocked()
	p.mu.Unlock()
	if err != nil {
		d.close()
		return Result{}, p.errorf("%w", err)
	}
	return res, nil
}

type limitedBuffer struct {
	bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		b.truncated = true
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// SFTP leases an SFTP session on one of the pool's connections. Call release when done; it closes the
// SFTP client and frees the session slot. The SFTP session counts against MaxSessionsPerConn.
func (p *Pool) SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, func(), error) {
	for {
		c, err := p.acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		type res struct {
			cl  *sftp.Client
			err error
		}
		ch := make(chan res, 1)
		go func() {
			cl, err := sftp.NewClient(c.client, opts...)
			ch <- res{cl, err}
		}()
		var r res
		select {
		case r = <-ch:
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.cl != nil {
					_ = r.cl.Close()
				}
				p.release(c)
			}()
			return nil, nil, p.errorf("open sftp: %w", ctx.Err())
		}
		if r.err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(r.err, &oce) {
				p.full(c)
				p.release(c)
				continue
			}
			p.release(c)
			return nil, nil, p.errorf("open sftp: %w", r.err)
		}
		var once sync.Once
		return r.cl, func() {
			once.Do(func() {
				_ = r.cl.Close()
				p.release(c)
			})
		}, nil
	}
}
