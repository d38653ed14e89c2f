// Package metrics defines the server's Prometheus metrics. Each server has
// its own registry, so several servers can run in one process (tests).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	// Connections is the number of open WebSocket connections.
	Connections prometheus.Gauge
	// Authenticated is the number of authenticated connections.
	Authenticated prometheus.Gauge
	// Requests counts requests by kind.
	Requests *prometheus.CounterVec
	// Rejects counts error answers by error code.
	Rejects *prometheus.CounterVec
	// Latency observes request handling time by kind.
	Latency *prometheus.HistogramVec
	// Messages counts durable appends: group messages, commits, mailbox items.
	Messages *prometheus.CounterVec
	// Pushed counts deliveries pushed to online connections.
	Pushed prometheus.Counter
	// SendQueueBytes is the total of bytes waiting in connection send queues.
	SendQueueBytes prometheus.Gauge
	// SlowConsumers counts connections closed because their queue overflowed.
	SlowConsumers prometheus.Counter
	// Expired counts entries deleted by the TTL sweep.
	Expired *prometheus.CounterVec
}

// New creates and registers the collectors, with Go runtime and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_connections", Help: "Open WebSocket connections.",
		}),
		Authenticated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_authenticated_connections", Help: "Connections authenticated as a device.",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_requests_total", Help: "Requests by kind.",
		}, []string{"kind"}),
		Rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rejects_total", Help: "Error answers by error code.",
		}, []string{"code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_request_seconds",
			Help:    "Request handling time by kind, including durable storage.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"kind"}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_messages_total", Help: "Durably stored messages by kind.",
		}, []string{"kind"}),
		Pushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_pushed_total", Help: "Deliveries pushed to online connections.",
		}),
		SendQueueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_send_queue_bytes", Help: "Bytes waiting in connection send queues.",
		}),
		SlowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_slow_consumers_total", Help: "Connections closed because their send queue overflowed.",
		}),
		Expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_expired_total", Help: "Entries deleted by the TTL sweep.",
		}, []string{"kind"}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Connections, m.Authenticated, m.Requests, m.Rejects, m.Latency, m.Messages,
		m.Pushed, m.SendQueueBytes, m.SlowConsumers, m.Expired,
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Kind holds the per-kind request collectors, resolved once.
type Kind struct {
	Requests prometheus.Counter
	Latency  prometheus.Observer
}

// Kinds resolves the collectors of the given request kinds, so the hot
// path does not look labels up per request.
func (m *Metrics) Kinds(names []string) map[string]Kind {
	out := make(map[string]Kind, len(names))
	for _, n := range names {
		out[n] = Kind{Requests: m.Requests.WithLabelValues(n), Latency: m.Latency.WithLabelValues(n)}
	}
	return out
}
