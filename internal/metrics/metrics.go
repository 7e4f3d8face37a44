// Package metrics exposes the agent's Prometheus metrics: SSH pools (connections, sessions,
// waiters, dials, failures), scheduler commands (count and latency by program and outcome) and jobs
// by status. The agent feeds it; `ferry agent` serves it on agent.metrics_listen.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferryhpc/ferry/sshpool"
)

// Source is what the collector reads at scrape time.
type Source interface {
	PoolStats() []sshpool.Stats
	JobCounts() map[string]int // by status
}

// Metrics holds the registry and the instruments the agent updates.
type Metrics struct {
	Registry *prometheus.Registry
	commands *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the registry; src is read at every scrape.
func New(src Source) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_scheduler_commands_total",
			Help: "Remote scheduler commands run, by identity, user, program and outcome (ok, nonzero, error).",
		}, []string{"identity", "user", "program", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_command_duration_seconds",
			Help:    "Latency of remote commands (session open to exit status), by program.",
			Buckets: []float64{.002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30, 60},
		}, []string{"program"}),
	}
	reg.MustRegister(m.commands, m.latency, &collector{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Command records one remote command.
func (m *Metrics) Command(identity, user, program, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(identity, user, program, outcome).Inc()
	m.latency.WithLabelValues(program).Observe(took.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

var (
	descConns    = prometheus.NewDesc("ferry_pool_connections", "Open SSH connections.", []string{"identity", "user"}, nil)
	descSessions = prometheus.NewDesc("ferry_pool_sessions", "SSH sessions in use.", []string{"identity", "user"}, nil)
	descWaiters  = prometheus.NewDesc("ferry_pool_waiters", "Callers waiting for a session.", []string{"identity", "user"}, nil)
	descDials    = prometheus.NewDesc("ferry_pool_dials_total", "SSH dials attempted.", []string{"identity", "user"}, nil)
	descDialFail = prometheus.NewDesc("ferry_pool_dial_failures_total", "SSH dials that failed.", []string{"identity", "user"}, nil)
	descJobs     = prometheus.NewDesc("ferry_jobs", "Jobs known to the agent, by status.", []string{"status"}, nil)
)

type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descSessions, descWaiters, descDials, descDialFail, descJobs} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.PoolStats() {
		l := []string{s.Key.Identity, s.Key.User}
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Conns), l...)
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(s.Sessions), l...)
		ch <- prometheus.MustNewConstMetric(descWaiters, prometheus.GaugeValue, float64(s.Waiters), l...)
		ch <- prometheus.MustNewConstMetric(descDials, prometheus.CounterValue, float64(s.Dials), l...)
		ch <- prometheus.MustNewConstMetric(descDialFail, prometheus.CounterValue, float64(s.DialFailures), l...)
	}
	for st, n := range c.src.JobCounts() {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n), st)
	}
}
