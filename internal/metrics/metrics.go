// Package metrics keeps the HTTP server's Prometheus metrics and writes
// them in the Prometheus text exposition format (version 0.0.4).
//
// It stands in for github.com/prometheus/client_golang, whose package
// initialisers (the default registry with its Go and process collectors,
// protobuf descriptors) ran on every start of the pybox binary, one-shot
// `pybox run` included, whether or not a server ever ran: about 1 ms of a
// cold start (RATIONALE.md, "Metrics without client_golang"). The tests
// check the output with the reference parser,
// github.com/prometheus/common/expfmt.
//
// Only what the server uses is here: counters, gauges, histograms, each
// with or without labels, and a subset of the standard Go and process
// metrics (docs/http.md lists them). Series are written sorted by name and labels, and labels sorted
// by name, as client_golang does.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// A Registry holds metric families and writes them out.
type Registry struct {
	mu       sync.Mutex
	families []family
	names    map[string]bool
	std      bool // also write the Go and process metrics
}

// family is one metric name with its HELP and TYPE lines.
type family interface {
	name() string
	write(w *strings.Builder)
}

// NewRegistry returns an empty registry. With std, WriteTo also writes
// the standard Go and process metrics (go_*, process_*).
func NewRegistry(std bool) *Registry {
	return &Registry{names: map[string]bool{}, std: std}
}

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[f.name()] {
		panic("metrics: " + f.name() + " registered twice")
	}
	r.names[f.name()] = true
	r.families = append(r.families, f)
}

// WriteTo writes every metric in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := slices.Clone(r.families)
	r.mu.Unlock()
	if r.std {
		fams = append(fams, stdFamilies()...)
	}
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name(), b.name()) })
	var b strings.Builder
	for _, f := range fams {
		f.write(&b)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ServeHTTP serves the metrics (GET /metrics).
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = r.WriteTo(w)
}

// desc is a family's name, help and label names.
type desc struct {
	fname  string
	help   string
	labels []string
}

func (d *desc) name() string { return d.fname }

func (d *desc) header(b *strings.Builder, typ string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", d.fname, escapeHelp(d.help), d.fname, typ)
}

// labelKey joins label values into a map key.
func (d *desc) labelKey(values []string) string {
	if len(values) != len(d.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", d.fname, len(d.labels), len(values)))
	}
	return strings.Join(values, "\xff")
}

// labelText renders {a="x",b="y"} sorted by label name, with extra (say,
// le) last; empty when there are no labels.
func (d *desc) labelText(values []string, extra ...string) string {
	type pair struct{ k, v string }
	ps := make([]pair, 0, len(values)+1)
	for i, v := range values {
		ps = append(ps, pair{d.labels[i], v})
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	for i := 0; i+1 < len(extra); i += 2 {
		ps = append(ps, pair{extra[i], extra[i+1]})
	}
	if len(ps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.k)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(p.v))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) add(d float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

func (v *value) set(x float64) { v.bits.Store(math.Float64bits(x)) }
func (v *value) get() float64  { return math.Float64frombits(v.bits.Load()) }

// A Counter only goes up.
type Counter struct{ v value }

// Inc adds one.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d, which must not be negative.
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic("metrics: counter decreased")
	}
	c.v.add(d)
}

// A Gauge goes up and down.
type Gauge struct{ v value }

// Set sets the gauge to x.
func (g *Gauge) Set(x float64) { g.v.set(x) }

// Inc adds one.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.add(-1) }

// vec holds a family's series by label values.
type vec[T any] struct {
	desc
	mu     sync.Mutex
	series map[string]*T
	values map[string][]string
	make   func() *T
}

func (v *vec[T]) with(values []string) *T {
	key := v.labelKey(values)
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.series[key]
	if !ok {
		s = v.make()
		v.series[key] = s
		v.values[key] = slices.Clone(values)
	}
	return s
}

// each calls f for every series, sorted by label values.
func (v *vec[T]) each(f func(values []string, s *T)) {
	v.mu.Lock()
	keys := make([]string, 0, len(v.series))
	for k := range v.series {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	type item struct {
		values []string
		s      *T
	}
	items := make([]item, len(keys))
	for i, k := range keys {
		items[i] = item{v.values[k], v.series[k]}
	}
	v.mu.Unlock()
	for _, it := range items {
		f(it.values, it.s)
	}
}

func newVec[T any](name, help string, labels []string, mk func() *T) *vec[T] {
	return &vec[T]{desc: desc{fname: name, help: help, labels: labels},
		series: map[string]*T{}, values: map[string][]string{}, make: mk}
}

// CounterVec is a counter family with labels.
type CounterVec struct{ *vec[Counter] }

// NewCounterVec registers a counter family with these label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{newVec(name, help, labels, func() *Counter { return &Counter{} })}
	r.add(c)
	return c
}

// WithLabelValues returns the counter for these label values (in the
// order the labels were declared), creating it at zero.
func (c *CounterVec) WithLabelValues(values ...string) *Counter { return c.with(values) }

func (c *CounterVec) write(b *strings.Builder) {
	writeScalars(b, c.vec, "counter", func(s *Counter) *value { return &s.v })
}

// NewCounter registers a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	return r.NewCounterVec(name, help).WithLabelValues()
}

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ *vec[Gauge] }

// NewGaugeVec registers a gauge family with these label names.
func (r *Registry) NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	g := &GaugeVec{newVec(name, help, labels, func() *Gauge { return &Gauge{} })}
	r.add(g)
	return g
}

// WithLabelValues returns the gauge for these label values.
func (g *GaugeVec) WithLabelValues(values ...string) *Gauge { return g.with(values) }

func (g *GaugeVec) write(b *strings.Builder) {
	writeScalars(b, g.vec, "gauge", func(s *Gauge) *value { return &s.v })
}

// writeScalars writes a counter or gauge family: one sample per series.
func writeScalars[T any](b *strings.Builder, v *vec[T], typ string, val func(*T) *value) {
	v.header(b, typ)
	v.each(func(values []string, s *T) {
		fmt.Fprintf(b, "%s%s %s\n", v.fname, v.labelText(values), formatFloat(val(s).get()))
	})
}

// NewGauge registers a gauge without labels.
func (r *Registry) NewGauge(name, help string) *Gauge {
	return r.NewGaugeVec(name, help).WithLabelValues()
}

// A Histogram counts observations into buckets.
type Histogram struct {
	mu      sync.Mutex
	uppers  []float64
	buckets []uint64 // per bucket, not cumulative
	count   uint64
	sum     float64
}

// Observe records x.
func (h *Histogram) Observe(x float64) {
	i, _ := slices.BinarySearch(h.uppers, x) // first upper bound >= x
	h.mu.Lock()
	defer h.mu.Unlock()
	if i < len(h.buckets) {
		h.buckets[i]++
	}
	h.count++
	h.sum += x
}

// HistogramVec is a histogram family with labels.
type HistogramVec struct{ *vec[Histogram] }

// NewHistogramVec registers a histogram family with these (sorted,
// ascending) bucket upper bounds and label names; the +Inf bucket is
// implied.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !slices.IsSorted(buckets) {
		panic("metrics: " + name + ": buckets not sorted")
	}
	uppers := slices.Clone(buckets)
	h := &HistogramVec{newVec(name, help, labels, func() *Histogram {
		return &Histogram{uppers: uppers, buckets: make([]uint64, len(uppers))}
	})}
	r.add(h)
	return h
}

// WithLabelValues returns the histogram for these label values.
func (h *HistogramVec) WithLabelValues(values ...string) *Histogram { return h.with(values) }

func (h *HistogramVec) write(b *strings.Builder) {
	h.header(b, "histogram")
	h.each(func(values []string, s *Histogram) {
		s.mu.Lock()
		buckets, count, sum := slices.Clone(s.buckets), s.count, s.sum
		s.mu.Unlock()
		var cum uint64
		for i, upper := range s.uppers {
			cum += buckets[i]
			fmt.Fprintf(b, "%s_bucket%s %d\n", h.fname, h.labelText(values, "le", formatFloat(upper)), cum)
		}
		fmt.Fprintf(b, "%s_bucket%s %d\n", h.fname, h.labelText(values, "le", "+Inf"), count)
		fmt.Fprintf(b, "%s_sum%s %s\n", h.fname, h.labelText(values), formatFloat(sum))
		fmt.Fprintf(b, "%s_count%s %d\n", h.fname, h.labelText(values), count)
	})
}

// formatFloat writes a sample value as the text format expects.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// escapeHelp escapes a HELP text: backslash and newline.
func escapeHelp(s string) string { return escape(s, false) }

// escapeLabel escapes a label value: backslash, newline and double quote.
func escapeLabel(s string) string { return escape(s, true) }

func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
