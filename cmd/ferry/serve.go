package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/ferryhpc/ferry/internal/agent"
	"github.com/ferryhpc/ferry/internal/config"
	"github.com/ferryhpc/ferry/internal/logging"
	"github.com/ferryhpc/ferry/internal/web"
	"github.com/ferryhpc/ferry/plugin"
	"github.com/ferryhpc/ferry/scheduler/schedulers"
)

const defaultConfig = "/etc/ferry/ferry.toml"

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// reattachPath is where the agent writes, and the CLI reads, the go-plugin reattach info.
func reattachPath(cfg config.Config) string {
	if cfg.Agent.ReattachFile != "" {
		return cfg.Agent.ReattachFile
	}
	return filepath.Join(cfg.Agent.StateDir, "agent.json")
}

func startAgent(configPath string) (*agent.Agent, config.Config, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, cfg, err
	}
	log := logging.New(os.Stderr, cfg.Agent.LogLevel)
	a, err := agent.New(cfg, log, schedulers.New)
	return a, cfg, err
}

func hclogLevel(s string) hclog.Level {
	if l := hclog.LevelFromString(s); l != hclog.NoLevel {
		return l
	}
	return hclog.Info
}

func cmdAgent(args []string) error {
	fs := newFlagSet("ferry agent", os.Stdout, os.Stderr)
	cfgPath := fs.String("config", defaultConfig, "configuration file")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	a, cfg, err := startAgent(*cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.Agent.MetricsListen != "" {
		srv, err := serveMetrics(cfg.Agent.MetricsListen, a)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	logger := plugin.NewLogger(hclogLevel(cfg.Agent.LogLevel))
	if cfg.Web.Listen != "" {
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		webDone, err := serveWeb(ctx2, cfg, a)
		if err != nil {
			return err
		}
		defer func() { cancel(); <-webDone }()
	}
	return serveAgent(ctx, a, logger, reattachPath(cfg), cfg.Agent.Socket)
}

// serveWeb starts the web front door ([web]) in the background until ctx ends. It fails at once
// if the address cannot be listened on or the certificate cannot be loaded or made.
func serveWeb(ctx context.Context, cfg config.Config, a *agent.Agent) (<-chan struct{}, error) {
	log := logging.New(os.Stderr, cfg.Agent.LogLevel)
	srv, err := web.New(cfg, a, log)
	if err != nil {
		return nil, err
	}
	tlsConf, err := web.TLSConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Web.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: listen on %s: %w", cfg.Web.Listen, err)
	}
	log.Info().Str("listen", ln.Addr().String()).Str("url", srv.URL()).Bool("tls", tlsConf != nil).Msg("web console and API")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln, tlsConf); err != nil {
			log.Error().Err(err).Msg("web front door stopped")
		}
	}()
	return done, nil
}

// serveAgent serves a to launchers (ServeDaemon, through reattachFile) and, unless socket is empty,
// to the local CLI (ServeSocket on socket) until ctx ends or either stops on its own, which stops
// the other.
func serveAgent(ctx context.Context, a plugin.Service, logger hclog.Logger, reattachFile, socket string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	socketDone := make(chan error, 1)
	if socket == "" {
		logger.Info("cli socket disabled (agent.socket is empty)")
		socketDone <- nil
	} else {
		go func() {
			err := plugin.ServeSocket(ctx, a, socket, resolverFor(a, logger), logger)
			if err != nil {
				cancel() // an agent the CLI cannot reach is not the agent that was configured
			}
			socketDone <- err
		}()
	}
	daemonErr := plugin.ServeDaemon(ctx, a, logger, reattachFile)
	cancel()
	socketErr := <-socketDone
	if errors.Is(daemonErr, context.Canceled) {
		daemonErr = nil
	}
	return errors.Join(socketErr, daemonErr)
}

// unixResolver is the agent's ability to map a CLI caller's Unix uid to an organisation member.
type unixResolver interface {
	ResolveUnixUser(uid uint32) (plugin.Actor, error)
}

// resolverFor returns how the CLI socket identifies callers: the agent's ResolveUnixUser, or, for
// an agent without one, root only (as the member "root").
func resolverFor(a any, logger hclog.Logger) func(uint32) (plugin.Actor, error) {
	if r, ok := a.(unixResolver); ok {
		return r.ResolveUnixUser
	}
	logger.Warn("the agent cannot map Unix users to members: only root may use the cli socket")
	return rootOnly
}

// rootOnly accepts only uid 0, as the owner "root".
func rootOnly(uid uint32) (plugin.Actor, error) {
	if uid == 0 {
		return plugin.Actor{Member: "root", Via: plugin.ViaCLI}, nil
	}
	return plugin.Actor{}, fmt.Errorf("%w: this agent accepts only root on its cli socket (uid %d)",
		plugin.ErrPermissionDenied, uid)
}

func cmdPlugin(args []string) error {
	fs := newFlagSet("ferry plugin", os.Stdout, os.Stderr)
	cfgPath := fs.String("config", os.Getenv("FERRY_CONFIG"), "configuration file (default $FERRY_CONFIG, else "+defaultConfig+")")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		*cfgPath = defaultConfig
	}
	a, cfg, err := startAgent(*cfgPath)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer a.Close()
	plugin.Serve(a, plugin.NewLogger(hclogLevel(cfg.Agent.LogLevel)))
	return nil
}

// serveMetrics serves Prometheus metrics on addr until the returned server is closed.
func serveMetrics(addr string, a *agent.Agent) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.Metrics().Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
