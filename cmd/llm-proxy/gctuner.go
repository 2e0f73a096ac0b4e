package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcHeapFloor is the smallest heap target serve lets the garbage
// collector aim for. A gateway's live heap is small (a few MiB) while it
// allocates tens of MiB a second under load, so with GOGC=100 it collects
// many times a second, each time for a few live MiB; letting the heap
// grow to 64 MiB first costs that much memory and saves most of that
// work. Once the live heap is above half the floor (thousands of open
// streams), GOGC=100 applies as usual, so memory stays proportional to
// what is live.
const gcHeapFloor = 64 << 20

// gcTuner keeps the heap target at or above a floor by setting GOGC after
// every collection from the live heap it left (the technique of Uber's
// GC tuner). It runs in the finalizer goroutine, once per GC cycle.
type gcTuner struct {
	floor  uint64
	sample []metrics.Sample
	mu     sync.Mutex
	last   int
	stop   bool
}

// sentinel is an object whose finalizer runs once per GC cycle: it is
// unreachable as soon as it is made, and each run makes the next one.
type sentinel struct {
	t *gcTuner
	_ [16]byte // not a tiny allocation: those may never be finalized
}

// startGCTuner starts tuning unless the operator set GOGC or GOMEMLIMIT
// (then the runtime does as told). The returned stop restores GOGC=100.
func startGCTuner(floor uint64, getenv func(string) string) (stop func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	t := &gcTuner{floor: floor, last: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
	return func() {
		t.mu.Lock()
		t.stop = true
		t.last = 100
		t.mu.Unlock()
		debug.SetGCPercent(100)
	}
}

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) { s.t.afterGC() })
}

func (t *gcTuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop {
		return
	}
	metrics.Read(t.sample)
	if p := gcPercent(t.sample[0].Value.Uint64(), t.floor); p != t.last {
		// Small changes are not worth the pacer's recomputation.
		if p == 100 || p > t.last*11/10 || p < t.last*9/10 {
			debug.SetGCPercent(p)
			t.last = p
		}
	}
	t.arm()
}

// gcPercent is the GOGC that makes the heap target (live * (1 +
// GOGC/100)) reach floor, between 100 and 1000.
func gcPercent(live, floor uint64) int {
	if live == 0 || live >= floor/2 {
		return 100
	}
	return int(min(max(floor*100/live-100, 100), 1000))
}
