package httpapi

import (
	"context"
	"errors"
	"sync"
)

// errQueueFull is returned by acquire when every slot is taken and the queue
// is full.
var errQueueFull = errors.New("server busy: every run slot is taken and the queue is full")

// limiter bounds the runs in flight (a semaphore) and the requests waiting
// for a slot (a counter). Nothing beyond those two bounds is ever held.
type limiter struct {
	sem      chan struct{}
	maxQueue int
	m        *serverMetrics

	mu      sync.Mutex
	waiting int
}

func newLimiter(concurrent, queue int, m *serverMetrics) *limiter {
	return &limiter{sem: make(chan struct{}, concurrent), maxQueue: queue, m: m}
}

// acquire takes a run slot, waiting in the queue if there is room. It
// returns errQueueFull at once when there is not, and ctx.Err() if ctx ends
// while waiting. The caller must call the returned release exactly once.
func (l *limiter) acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.sem <- struct{}{}:
		return l.taken(), nil
	default:
	}
	l.mu.Lock()
	if l.waiting >= l.maxQueue {
		l.mu.Unlock()
		return nil, errQueueFull
	}
	l.waiting++
	l.m.queue.Set(float64(l.waiting))
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.m.queue.Set(float64(l.waiting))
		l.mu.Unlock()
	}()
	select {
	case l.sem <- struct{}{}:
		return l.taken(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *limiter) taken() func() {
	l.m.inFlight.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.m.inFlight.Dec()
			<-l.sem
		})
	}
}

func (l *limiter) inFlight() int { return len(l.sem) }

func (l *limiter) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}
