package httpapi

import "github.com/pybox-dev/pybox/internal/metrics"

// serverMetrics are the server's Prometheus metrics, on a registry of its own so
// that several servers (tests) never clash.
type serverMetrics struct {
	reg      *metrics.Registry
	runs     *metrics.CounterVec
	duration *metrics.HistogramVec
	inFlight *metrics.Gauge
	queue    *metrics.Gauge
	rejected *metrics.CounterVec

	sessionsLive    *metrics.Gauge
	sessionsCreated *metrics.Counter
	sessionsEnded   *metrics.CounterVec
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

func newMetrics() *serverMetrics {
	reg := metrics.NewRegistry(true)
	m := &serverMetrics{
		reg: reg,
		runs: reg.NewCounterVec("pybox_runs_total",
			"Runs finished, by result status and backend.", "status", "backend"),
		duration: reg.NewHistogramVec("pybox_run_duration_seconds",
			"Wall time of a run, from getting a slot to the result, by backend.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}, "backend"),
		inFlight: reg.NewGauge("pybox_runs_in_flight", "Runs executing now."),
		queue:    reg.NewGauge("pybox_queue_length", "Requests waiting for a run slot."),
		rejected: reg.NewCounterVec("pybox_http_rejected_total",
			"Requests rejected before running, by reason.", "reason"),
		sessionsLive:    reg.NewGauge("pybox_sessions_live", "Sessions alive now."),
		sessionsCreated: reg.NewCounter("pybox_sessions_created_total", "Sessions started."),
		sessionsEnded: reg.NewCounterVec("pybox_sessions_ended_total",
			"Sessions ended, by reason.", "reason"),
	}
	for _, r := range endReasons {
		m.sessionsEnded.WithLabelValues(r)
	}
	// Make the rejection series visible at zero.
	for _, r := range []string{reasonQueueFull, reasonUnauthorized, reasonInvalid, reasonTooLarge, reasonMediaType, reasonDraining, reasonSessionsFull} {
		m.rejected.WithLabelValues(r)
	}
	return m
}
