package main

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 64 << 20, 100},
		{40 << 20, 64 << 20, 100},  // above half the floor: as usual
		{32 << 20, 64 << 20, 100},  // exactly half: target 64 MiB at 100
		{16 << 20, 64 << 20, 300},  // 16 MiB * 4 = 64 MiB
		{4 << 20, 64 << 20, 1000},  // capped
		{300 << 20, 64 << 20, 100}, // 10,000 open streams
	} {
		if got := gcPercent(c.live, c.floor); got != c.want {
			t.Errorf("gcPercent(%d MiB, %d MiB) = %d, want %d", c.live>>20, c.floor>>20, got, c.want)
		}
	}
}

func gogc() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func TestGCTunerRaisesGOGCForASmallHeapAndStops(t *testing.T) {
	stop := startGCTuner(1<<30, func(string) string { return "" })
	deadline := time.Now().Add(5 * time.Second)
	for gogc() <= 100 && time.Now().Before(deadline) {
		runtime.GC() // the test's live heap is far below half of 1 GiB
		time.Sleep(10 * time.Millisecond)
	}
	if got := gogc(); got <= 100 {
		t.Fatalf("GOGC = %d with a small live heap under a 1 GiB floor, want above 100", got)
	}
	stop()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC = %d after stop, want 100", got)
	}
}

func TestGCTunerLeavesAnOperatorsGOGC(t *testing.T) {
	stop := startGCTuner(1<<30, func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	defer stop()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogc(); got != 100 { // the test process's own setting
		t.Fatalf("GOGC = %d, want it left alone", got)
	}
}
