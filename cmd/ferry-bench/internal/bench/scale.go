package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/ferryhpc/ferry/sshpool"
)

// ScaleOptions sizes the scale benchmark.
type ScaleOptions struct {
	// Pools is the number of (identity, user) pools, each with one open idle connection. Default
	// 1,000.
	Pools int
	// MaxDials is sshpool's MaxDialsPerHost. Default 4 (the product default).
	MaxDials int
}

func (o ScaleOptions) withDefaults() ScaleOptions {
	if o.Pools <= 0 {
		o.Pools = 1000
	}
	if o.MaxDials <= 0 {
		o.MaxDials = sshpool.Defaults().MaxDialsPerHost
	}
	return o
}

// PrivateSSHD is a second sshd started by the benchmark: the test cluster's configuration (same
// binary, host key, users, MaxStartups and MaxSessions) on another port. Every connection it serves
// is the benchmark's, so its listener's "N of 10-100 startups" count (connections accepted but not
// yet authenticated, what MaxStartups limits) is the benchmark's alone, and a thousand
// connections do not crowd the shared login node other tests use.
type PrivateSSHD struct {
	Port int
	Pid  int
	log  string
}

// StartPrivateSSHD starts the private sshd and waits until it accepts connections.
func (e *Env) StartPrivateSSHD(ctx context.Context) (*PrivateSSHD, error) {
	conf, err := os.ReadFile(e.Cluster.SSHDConfig)
	if err != nil {
		return nil, fmt.Errorf("read the test cluster's sshd config: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pidFile := filepath.Join(e.Dir, "sshd.pid")
	var b strings.Builder
	for _, line := range strings.Split(string(conf), "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 0 && (strings.EqualFold(f[0], "Port") || strings.EqualFold(f[0], "PidFile") || strings.EqualFold(f[0], "LogLevel")):
			continue
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "Port %d\nPidFile %s\nLogLevel INFO\n", port, pidFile)
	cfg := filepath.Join(e.Dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	s := &PrivateSSHD{Port: port, log: filepath.Join(e.Dir, "sshd.log")}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "/usr/sbin/sshd", "-f", cfg, "-E", s.log).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start private sshd: %w: %s", err, bytesTrim(out))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				s.Pid = pid
				if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
					c.Close()
					return s, nil
				}
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("private sshd not answering on port %d within 10s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var startupsRE = regexp.MustCompile(`\[listener\] (\d+) of `)

// Startups returns the listener's count of unauthenticated connections, from its process title.
func (s *PrivateSSHD) Startups() (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.Pid))
	if err != nil {
		return 0, err
	}
	m := startupsRE.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no startups count in %q", b)
	}
	return strconv.Atoi(string(m[1]))
}

// Stop stops the listener; its per-connection processes end with their connections.
func (s *PrivateSSHD) Stop() {
	if s.Pid > 0 {
		_ = syscall.Kill(s.Pid, syscall.SIGTERM)
	}
}

// Endpoint returns the private sshd as an endpoint.
func (s *PrivateSSHD) Endpoint() Endpoint {
	return Endpoint{Name: "private", Host: "127.0.0.1", Port: s.Port}
}

// establishedTo counts established TCP connections whose local port is port (server side).
func establishedTo(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "01" {
			n++
		}
	}
	return n, nil
}

// ScaleReport is what the scale child prints once every pool holds its connection.
type ScaleReport struct {
	Pools        int    `json:"pools"`
	Conns        int    `json:"conns"`
	Dials        int64  `json:"dials"`
	DialFailures int64  `json:"dial_failures"`
	Errors       int    `json:"errors"`
	FirstError   string `json:"first_error,omitempty"`
	RampMs       int64  `json:"ramp_ms"`
	RSS          int64  `json:"rss"`
	HWM          int64  `json:"hwm"`
	Goroutines   int    `json:"goroutines"`
	// MaxConcurrentDials is the most handshakes the pools had in flight at once (dialGauge).
	MaxConcurrentDials int `json:"max_concurrent_dials"`
}

// dialGauge counts handshakes in flight: from the start of the TCP connect until the handshake
// ends (the connection's deadline is cleared) or fails (the connection is closed).
type dialGauge struct {
	cur, max atomic.Int64
}

func (g *dialGauge) inc() {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return
		}
	}
}

type handshakeConn struct {
	net.Conn
	g    *dialGauge
	once sync.Once
}

func (c *handshakeConn) done() { c.once.Do(func() { c.g.cur.Add(-1) }) }

// SetDeadline ends the handshake when the deadline is cleared: sshpool sets the dial deadline
// before ssh.NewClientConn and clears it right after a successful handshake, before it releases
// the per-host dial slot, so the gauge never lags behind the slot.
func (c *handshakeConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.done()
	}
	return c.Conn.SetDeadline(t)
}

func (c *handshakeConn) Close() error {
	c.done()
	return c.Conn.Close()
}

// instrumentDials wraps the dialer of m (before any pool is made: pools copy it) so that g sees
// every handshake. sshpool has no exported dial hook or concurrent-dial high-water mark, so this
// sets its unexported "dialer" field by reflection; it fails loudly if that field is gone or has
// another type, rather than measuring nothing. An exported hook in sshpool would replace this.
func instrumentDials(m *sshpool.Manager, g *dialGauge) error {
	type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)
	v := reflect.ValueOf(m).Elem().FieldByName("dialer")
	if !v.IsValid() || v.Type() != reflect.TypeOf(dialFunc(nil)) {
		return errors.New("sshpool.Manager has no dialer field of the expected type: update instrumentDials")
	}
	f := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	orig, ok := f.Interface().(dialFunc)
	if !ok || orig == nil {
		return errors.New("sshpool.Manager's dialer is not set")
	}
	f.Set(reflect.ValueOf(dialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		g.inc()
		c, err := orig(ctx, network, addr)
		if err != nil {
			g.cur.Add(-1)
			return nil, err
		}
		return &handshakeConn{Conn: c, g: g}, nil
	})))
	return nil
}

// ScaleChildOptions is what the parent tells the child.
type ScaleChildOptions struct {
	Pools      int
	MaxDials   int
	Port       int
	KnownHosts string
	Key        string // unencrypted private key file of the user every pool logs in as
	User       string
}

// ScaleChild is the process that holds the pools (run by `ferry-bench scale-child`): it opens
// o.Pools pools with distinct keys, all logging in as o.User, runs `true` once in each (opening
// its connection, at most o.MaxDials handshakes at a time), reports on out, then keeps the idle
// connections open until in reaches EOF.
func ScaleChild(ctx context.Context, o ScaleChildOptions, in io.Reader, out io.Writer) error {
	pemBytes, err := os.ReadFile(o.Key)
	if err != nil {
		return err
	}
	signer, err := sshpool.ParsePrivateKey(pemBytes, nil)
	if err != nil {
		return err
	}
	hk, err := sshpool.ParseKnownHosts(o.KnownHosts)
	if err != nil {
		return err
	}
	m := sshpool.NewManager(sshpool.Options{MaxDialsPerHost: o.MaxDials}, zerolog.Nop())
	defer m.Close()
	var g dialGauge
	if err := instrumentDials(m, &g); err != nil {
		return err
	}
	target := sshpool.Target{Host: "127.0.0.1", Port: o.Port, HostKeys: hk, User: o.User, Signer: signer}
	var wg sync.WaitGroup
	var nerr atomic.Int64
	var first atomic.Value
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	for i := 0; i < o.Pools; i++ {
		p, err := m.Pool(sshpool.Key{Identity: "scale", User: fmt.Sprintf("member%04d", i)}, target)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.Exec(ctx, "true", nil)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("true exited %d", res.ExitCode)
			}
			if err != nil {
				nerr.Add(1)
				first.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	wg.Wait()
	rep := ScaleReport{Pools: o.Pools, Errors: int(nerr.Load()), RampMs: time.Since(start).Milliseconds()}
	if s, ok := first.Load().(string); ok {
		rep.FirstError = s
	}
	// Idle, as an agent between polls: let the garbage collector run, then read the RSS.
	runtime.GC()
	time.Sleep(2 * time.Second)
	for _, s := range m.Stats() {
		rep.Conns += s.Conns
		rep.Dials += s.Dials
		rep.DialFailures += s.DialFailures
	}
	rep.Goroutines = runtime.NumGoroutine()
	rep.MaxConcurrentDials = int(g.max.Load())
	if f, err := os.Open("/proc/self/status"); err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		rep.RSS, _ = statusField(strings.NewReader(string(b)), "VmRSS")
		rep.HWM, _ = statusField(strings.NewReader(string(b)), "VmHWM")
	}
	if err := json.NewEncoder(out).Encode(rep); err != nil {
		return err
	}
	select {
	case <-waitEOF(in):
	case <-ctx.Done():
	}
	return nil
}

func waitEOF(r io.Reader) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, r)
		close(ch)
	}()
	return ch
}

// RunScale starts a private sshd, then a child process (self, with the scale-child command) that
// opens o.Pools pools each with one idle connection, all as alice, with MaxDialsPerHost o.MaxDials.
// While the child connects, the listener's count of unauthenticated connections is sampled every
// millisecond or so; once the child reports, its RSS is read from /proc by this process.
func RunScale(ctx context.Context, e *Env, self string, o ScaleOptions) Result {
	o = o.withDefaults()
	r := Result{Name: "scale", Bench: "scale"}
	s, err := e.StartPrivateSSHD(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	defer s.Stop()
	ep := s.Endpoint()
	cmd := exec.CommandContext(ctx, self, "scale-child",
		"-pools", strconv.Itoa(o.Pools), "-max-dials", strconv.Itoa(o.MaxDials), "-port", strconv.Itoa(s.Port),
		"-known-hosts", e.KnownHosts(ep), "-key", e.User("alice").OpenSSHKey, "-user", "alice")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.Err = err
		return r
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.Err = err
		return r
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		r.Err = err
		return r
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	// Sample the startups count until the child reports.
	stop := make(chan struct{})
	var maxStartups, samples, busy int
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, err := s.Startups(); err == nil {
				samples++
				if n > 0 {
					busy++
				}
				maxStartups = max(maxStartups, n)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var rep ScaleReport
	line, err := bufio.NewReader(stdout).ReadString('\n')
	close(stop)
	<-sampled
	if err == nil {
		err = json.Unmarshal([]byte(line), &rep)
	}
	if err != nil {
		r.Err = fmt.Errorf("scale child: %v: %s", err, bytesTrim([]byte(stderr.String())))
		return r
	}
	rss, err := procRSS(cmd.Process.Pid)
	if err != nil {
		r.Err = err
		return r
	}
	est, _ := establishedTo(s.Port)
	if rep.Errors > 0 {
		r.Err = fmt.Errorf("%d of %d pools failed to connect, first: %s", rep.Errors, rep.Pools, rep.FirstError)
	} else if rep.Conns != o.Pools {
		r.Err = fmt.Errorf("%d connections open, want %d", rep.Conns, o.Pools)
	}
	r.Add("pools", strconv.Itoa(rep.Pools), "distinct sshpool keys, one idle connection each, all logging in as alice")
	r.Add("conns", strconv.Itoa(rep.Conns), "open connections (sshpool.Stats)")
	r.Add("sshd_established", strconv.Itoa(est), "established TCP connections at the private sshd")
	r.Add("ramp_s", num(float64(rep.RampMs)/1000), "time for all pools to connect and run `true`")
	r.Add("rss_mib", num(float64(rss)/(1<<20)), "VmRSS of the process holding the pools, read from /proc by the parent")
	r.Add("peak_rss_mib", num(float64(rep.HWM)/(1<<20)), "VmHWM (peak during the ramp)")
	r.Add("goroutines", strconv.Itoa(rep.Goroutines), "")
	r.Add("max_dials", strconv.Itoa(o.MaxDials), "sshpool MaxDialsPerHost (the cap)")
	r.Add("max_concurrent_dials", strconv.Itoa(rep.MaxConcurrentDials), "most handshakes in flight at once in the pools' process, from TCP connect to the end of authentication")
	r.Add("max_startups_seen", strconv.Itoa(maxStartups), fmt.Sprintf("most unauthenticated connections sshd counted (its MaxStartups count) over %d samples, %d of them non-zero; "+
		"sshd counts a connection until its post-authentication setup is done, after the client has moved on, so this can exceed the client's cap by a few", samples, busy))
	r.Add("dials", strconv.FormatInt(rep.Dials, 10), "")
	r.Add("dial_failures", strconv.FormatInt(rep.DialFailures, 10), "handshakes reset or failed (retried)")
	r.Checks = append(r.Checks, Check{
		Key: "rss", Desc: "RSS with 1,000 idle pooled connections", Value: round(float64(rss) / (1 << 20)), Op: "<=", Limit: 200, Unit: "MiB",
		Why:  "Each x/crypto/ssh client connection keeps its own read/write buffers, channel windows and goroutines (mux reader, keepalive, Wait).",
		Plan: "Close idle connections sooner (pool.idle_timeout) for users without active jobs; profile with pprof heap.",
	}, Check{
		Key: "max_concurrent_dials", Desc: "handshakes in flight at once (never over the cap)", Value: float64(rep.MaxConcurrentDials), Op: "<=", Limit: float64(o.MaxDials),
		Why:  "Handshakes are not bounded by MaxDialsPerHost.",
		Plan: "Check the per-host semaphore in sshpool.Pool.dial.",
	}, Check{
		Key: "max_startups", Desc: "sshd's count of unauthenticated connections stayed below MaxStartups' start (10), where it starts dropping handshakes", Value: float64(maxStartups), Op: "<", Limit: 10,
		Why:  "Connections the client considers authenticated still count at sshd until its post-authentication setup is done.",
		Plan: "Lower pool.max_dials_per_host.",
	})
	if samples == 0 {
		r.Err = errors.Join(r.Err, errors.New("the sshd listener's startups count could not be sampled"))
	}
	return r
}
