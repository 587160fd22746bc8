package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, on a registry of its own so
// that several servers (tests) never clash.
type metrics struct {
	reg      *prometheus.Registry
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	queue    prometheus.Gauge
	rejected *prometheus.CounterVec

	sessionsLive    prometheus.Gauge
	sessionsCreated prometheus.Counter
	sessionsEnded   *prometheus.CounterVec
}

// Reasons a request is rejected before it runs (label of
// pybox_http_rejected_total).
const (
	reasonQueueFull    = "queue_full"
	reasonUnauthorized = "unauthorized"
	reasonInvalid      = "invalid"
	reasonTooLarge     = "too_large"
	reasonMediaType    = "unsupported_media_type"
	reasonDraining     = "draining"
	reasonSessionsFull = "sessions_full"
)

// Reasons a session ended (label of pybox_sessions_ended_total).
const (
	endClosed      = "closed"   // DELETE
	endIdle        = "idle"     // idle_timeout
	endLifetime    = "lifetime" // max_lifetime
	endTimeout     = "timeout"  // an execution's limits killed it
	endMemory      = "memory-limit"
	endOutput      = "output-limit"
	endKilled      = "killed"   // the client went away during a run, or a signal
	endExited      = "exited"   // the code ended the interpreter (sys.exit, os._exit)
	endShutdown    = "shutdown" // the server shut down
	endStartFailed = "start-failed"
)

var endReasons = []string{endClosed, endIdle, endLifetime, endTimeout, endMemory, endOutput, endKilled, endExited, endShutdown}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pybox_runs_total",
			Help: "Runs finished, by result status and backend.",
		}, []string{"status", "backend"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pybox_run_duration_seconds",
			Help:    "Wall time of a run, from getting a slot to the result, by backend.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"backend"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pybox_runs_in_flight",
			Help: "Runs executing now.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pybox_queue_length",
			Help: "Requests waiting for a run slot.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pybox_http_rejected_total",
			Help: "Requests rejected before running, by reason.",
		}, []string{"reason"}),
	}
	m.sessionsLive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pybox_sessions_live",
		Help: "Sessions alive now.",
	})
	m.sessionsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pybox_sessions_created_total",
		Help: "Sessions started.",
	})
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pybox_sessions_ended_total",
		Help: "Sessions ended, by reason.",
	}, []string{"reason"})
	for _, r := range endReasons {
		m.sessionsEnded.WithLabelValues(r)
	}
	m.reg.MustRegister(m.runs, m.duration, m.inFlight, m.queue, m.rejected,
		m.sessionsLive, m.sessionsCreated, m.sessionsEnded,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Make the rejection series visible at zero.
	for _, r := range []string{reasonQueueFull, reasonUnauthorized, reasonInvalid, reasonTooLarge, reasonMediaType, reasonDraining, reasonSessionsFull} {
		m.rejected.WithLabelValues(r)
	}
	return m
}
