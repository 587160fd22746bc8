package metrics

import (
	"math"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pybox-dev/pybox/internal/testing/require"
)

// parse reads r's output with Prometheus' own text parser, so a format
// mistake fails here and not in someone's scraper.
func parse(t *testing.T, r *Registry) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	var b strings.Builder
	_, err := r.WriteTo(&b)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	require.NoError(t, err, b.String())
	return fams, b.String()
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestFormatParsesAndAddsUp(t *testing.T) {
	r := NewRegistry(false)
	runs := r.NewCounterVec("x_runs_total", "Runs, by status.\nSecond line with a \\.", "status", "backend")
	dur := r.NewHistogramVec("x_duration_seconds", "Durations.", []float64{0.1, 1, 10}, "backend")
	g := r.NewGauge("x_in_flight", "In flight.")
	c := r.NewCounter("x_created_total", "Created.")

	runs.WithLabelValues("success", "native").Inc()
	runs.WithLabelValues("success", "native").Add(2)
	runs.WithLabelValues(`we"ird\`+"\n", "wasm").Inc()
	runs.WithLabelValues("timeout", "native") // visible at zero
	for _, x := range []float64{0.05, 0.1, 0.5, 5, 50} {
		dur.WithLabelValues("native").Observe(x)
	}
	g.Inc()
	g.Inc()
	g.Dec()
	c.Inc()

	fams, text := parse(t, r)
	require.Len(t, fams, 4)

	f := fams["x_runs_total"]
	require.Equal(t, dto.MetricType_COUNTER, f.GetType())
	require.Equal(t, "Runs, by status.\nSecond line with a \\.", f.GetHelp())
	got := map[string]float64{}
	for _, m := range f.GetMetric() {
		l := labels(m)
		got[l["status"]+"/"+l["backend"]] = m.GetCounter().GetValue()
	}
	require.Equal(t, map[string]float64{"success/native": 3, "timeout/native": 0, "we\"ird\\\n/wasm": 1}, got)
	// Labels sorted by name, as client_golang writes them.
	require.Contains(t, text, `x_runs_total{backend="native",status="success"} 3`+"\n")

	h := fams["x_duration_seconds"].GetMetric()[0].GetHistogram()
	require.Equal(t, uint64(5), h.GetSampleCount())
	require.True(t, math.Abs(h.GetSampleSum()-55.65) < 1e-9, h.GetSampleSum())
	var cum []uint64
	for _, b := range h.GetBucket() {
		cum = append(cum, b.GetCumulativeCount())
	}
	require.Equal(t, []uint64{2, 3, 4, 5}, cum, "le is inclusive: 0.1 falls in the 0.1 bucket")
	require.Contains(t, text, `x_duration_seconds_bucket{backend="native",le="+Inf"} 5`+"\n")

	require.Equal(t, 1.0, fams["x_in_flight"].GetMetric()[0].GetGauge().GetValue())
	require.Equal(t, 1.0, fams["x_created_total"].GetMetric()[0].GetCounter().GetValue())
}

func TestConcurrentUpdates(t *testing.T) {
	r := NewRegistry(false)
	c := r.NewCounterVec("c_total", "C.", "k")
	h := r.NewHistogramVec("h_seconds", "H.", []float64{1}, "k")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 1000 {
				c.WithLabelValues([]string{"a", "b"}[i%2]).Inc()
				h.WithLabelValues("a").Observe(0.5)
			}
		})
	}
	wg.Wait()
	fams, _ := parse(t, r)
	var sum float64
	for _, m := range fams["c_total"].GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	require.Equal(t, 8000.0, sum)
	require.Equal(t, uint64(8000), fams["h_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
}

func TestStandardMetrics(t *testing.T) {
	r := NewRegistry(true)
	r.NewGauge("a_gauge", "A.")
	fams, _ := parse(t, r)
	_, ok := fams["a_gauge"]
	require.True(t, ok)
	require.True(t, fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue() > 0)
	require.True(t, fams["go_memstats_alloc_bytes"].GetMetric()[0].GetGauge().GetValue() > 0)
	require.Equal(t, runtime.Version(), labels(fams["go_info"].GetMetric()[0])["version"])
	if runtime.GOOS == "linux" {
		for _, name := range []string{"process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"} {
			require.True(t, fams[name] != nil, name)
			require.True(t, fams[name].GetMetric()[0].GetGauge().GetValue() > 0, name)
		}
		require.True(t, fams["process_cpu_seconds_total"] != nil)
	}
}

func TestMisuse(t *testing.T) {
	r := NewRegistry(false)
	c := r.NewCounterVec("c_total", "C.", "a", "b")
	for name, f := range map[string]func(){
		"too few label values": func() { c.WithLabelValues("only-one") },
		"name taken":           func() { r.NewGauge("c_total", "again") },
		"counter decreased":    func() { c.WithLabelValues("x", "y").Add(-1) },
		"buckets not sorted":   func() { r.NewHistogramVec("h", "H.", []float64{2, 1}) },
	} {
		require.True(t, panics(f), name)
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

func TestServeHTTP(t *testing.T) {
	r := NewRegistry(false)
	r.NewCounter("served_total", "S.").Inc()
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, w.Code)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", w.Header().Get("Content-Type"))
	require.Contains(t, w.Body.String(), "served_total 1\n")
}
