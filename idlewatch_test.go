package llmproxy

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestIdleWatchCutsAfterSilence(t *testing.T) {
	cut := make(chan time.Time, 1)
	start := time.Now()
	w := watchIdle(50*time.Millisecond, func() { cut <- time.Now() })
	defer w.stop()
	select {
	case at := <-cut:
		if d := at.Sub(start); d < 50*time.Millisecond {
			t.Fatalf("cut after %v, before the idle time", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent stream was never cut")
	}
}

func TestIdleWatchEventsKeepItAlive(t *testing.T) {
	var cuts atomic.Int32
	cut := make(chan time.Time, 1)
	w := watchIdle(80*time.Millisecond, func() { cuts.Add(1); cut <- time.Now() })
	defer w.stop()
	// Events every 10ms for well past several idle periods: never cut,
	// though the timer fires (and re-arms) in between.
	end := time.Now().Add(400 * time.Millisecond)
	var last time.Time
	for time.Now().Before(end) {
		w.event()
		last = time.Now()
		time.Sleep(10 * time.Millisecond)
		if cuts.Load() != 0 {
			t.Fatal("cut while events were arriving")
		}
	}
	// Then silence: cut one idle period after the last event, not sooner.
	select {
	case at := <-cut:
		if d := at.Sub(last); d < 80*time.Millisecond {
			t.Fatalf("cut %v after the last event, before the idle time", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was never cut after it went silent")
	}
	if n := cuts.Load(); n != 1 {
		t.Fatalf("cut %d times, want once", n)
	}
}

func TestIdleWatchStop(t *testing.T) {
	var cuts atomic.Int32
	w := watchIdle(20*time.Millisecond, func() { cuts.Add(1) })
	w.event()
	w.stop()
	w.stop() // twice is fine: the relay stops on error and on return
	time.Sleep(100 * time.Millisecond)
	if n := cuts.Load(); n != 0 {
		t.Fatalf("cut %d times after stop", n)
	}
}
