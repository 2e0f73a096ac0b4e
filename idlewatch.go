package llmproxy

import (
	"sync/atomic"
	"time"
)

// idleWatch calls cut once a stream has had no event for d.
//
// A stream sees an event every few milliseconds, and resetting a runtime
// timer that often is not free: moving a timer's deadline makes the Go
// scheduler wake another thread to watch the new deadline (a futex wake
// per event in profiles of one stream at a time). So an event only
// stores when it arrived, and the timer, when it fires, checks that time
// and sleeps again for what is left: one timer operation per idle period
// instead of one per event, and the stream is still cut d after its last
// event.
type idleWatch struct {
	d     time.Duration
	start time.Time    // monotonic origin of last
	last  atomic.Int64 // time of the last event, ns since start
	done  atomic.Bool  // stop was called: the timer must not re-arm
	timer *time.Timer
	cut   func()
}

// watchIdle starts watching; stop must be called when the stream ends.
func watchIdle(d time.Duration, cut func()) *idleWatch {
	w := &idleWatch{d: d, start: time.Now(), cut: cut}
	w.timer = time.AfterFunc(d, w.check)
	return w
}

// event records that the stream is alive now.
func (w *idleWatch) event() { w.last.Store(int64(time.Since(w.start))) }

// check runs when the timer fires: cut if the last event is d old, else
// sleep until it would be.
func (w *idleWatch) check() {
	if w.done.Load() {
		return
	}
	left := w.d - (time.Since(w.start) - time.Duration(w.last.Load()))
	if left <= 0 {
		w.cut()
		return
	}
	w.timer.Reset(left)
}

// stop ends the watch. A check already running may still re-arm the
// timer once; that check then finds done set and does nothing.
func (w *idleWatch) stop() {
	w.done.Store(true)
	w.timer.Stop()
}
