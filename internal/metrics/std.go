package metrics

import (
	"fmt"
	"runtime"
	"strings"
)

// sample is a family read at scrape time: the standard Go and process
// metrics, under client_golang's names (but for go_gc_cycles_total and
// go_gc_pause_seconds_total, which stand in for its GC summary).
type sample struct {
	desc
	typ    string
	labels string // rendered, e.g. {version="go1.26"}
	v      float64
}

func (s *sample) write(b *strings.Builder) {
	s.header(b, s.typ)
	fmt.Fprintf(b, "%s%s %s\n", s.fname, s.labels, formatFloat(s.v))
}

func gauge(name, help string, v float64) family {
	return &sample{desc: desc{fname: name, help: help}, typ: "gauge", v: v}
}

func counter(name, help string, v float64) family {
	return &sample{desc: desc{fname: name, help: help}, typ: "counter", v: v}
}

// stdFamilies reads the Go runtime's and this process's figures now.
func stdFamilies() []family {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	threads, _ := runtime.ThreadCreateProfile(nil)
	fams := []family{
		gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine())),
		gauge("go_threads", "Number of OS threads created.", float64(threads)),
		&sample{desc: desc{fname: "go_info", help: "Information about the Go environment."}, typ: "gauge",
			labels: `{version="` + escapeLabel(runtime.Version()) + `"}`, v: 1},
		gauge("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", float64(ms.HeapAlloc)),
		counter("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", float64(ms.TotalAlloc)),
		gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys)),
		gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse)),
		gauge("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", float64(ms.HeapIdle)),
		gauge("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", float64(ms.HeapReleased)),
		gauge("go_memstats_heap_objects", "Number of currently allocated objects.", float64(ms.HeapObjects)),
		gauge("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.", float64(ms.StackInuse)),
		gauge("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", float64(ms.NextGC)),
		gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", float64(ms.LastGC)/1e9),
		counter("go_gc_cycles_total", "Number of completed GC cycles.", float64(ms.NumGC)),
		counter("go_gc_pause_seconds_total", "Total time spent in stop-the-world GC pauses.", float64(ms.PauseTotalNs)/1e9),
	}
	return append(fams, processFamilies()...)
}
