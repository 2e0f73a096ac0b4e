package llmproxy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ledger writes usage records to Storage in batches, off the request path.
// Its buffer is bounded; when it is full, add waits for room instead of
// dropping a record. A failed batch is retried (record IDs make the retry
// idempotent) until it is written or the ledger is closed.
//
// Records queue in a slice under a mutex that the writer swaps out once
// per flush: an add is an append, and wakes the writer only when a full
// batch is waiting, not once per request as a channel send would. The
// queue grows with what is waiting rather than being allocated at its
// bound up front.
type ledger struct {
	store     Storage
	log       *slog.Logger
	size      int // most records waiting
	interval  time.Duration
	maxBatch  int
	mu        sync.Mutex
	queue     []UsageRecord // waiting, under mu
	room      sync.Cond     // signalled (on mu) when the writer takes the queue
	kick      chan struct{} // a full batch is waiting
	closed    atomic.Bool
	quit      chan struct{}
	done      chan struct{}
	gate      sync.RWMutex // add holds it shared; close exclusively, so no add races the final drain
	lateMu    sync.Mutex   // serializes late synchronous writes after close
	written   atomic.Int64
	failures  atomic.Int64
	dropped   atomic.Int64
	lastFlush atomic.Int64 // ns
}

func newLedger(store Storage, log *slog.Logger, size int, interval time.Duration) *ledger {
	l := &ledger{
		store:    store,
		log:      log,
		size:     size,
		interval: interval,
		maxBatch: 1000,
		queue:    make([]UsageRecord, 0, min(size, 1024)),
		kick:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	l.room.L = &l.mu
	go l.run()
	return l
}

// add queues r for writing.
func (l *ledger) add(r UsageRecord) {
	l.gate.RLock()
	if !l.closed.Load() {
		l.mu.Lock()
		for len(l.queue) >= l.size {
			l.room.Wait()
		}
		l.queue = append(l.queue, r)
		full := len(l.queue) == l.maxBatch
		l.mu.Unlock()
		l.gate.RUnlock()
		if full {
			select {
			case l.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	l.gate.RUnlock()
	// A request that finished after Close: write it at once.
	l.lateMu.Lock()
	defer l.lateMu.Unlock()
	l.write([]UsageRecord{r}, 3)
}

// pending is the number of records waiting.
func (l *ledger) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// take swaps the queue for spare (emptied) and returns what was waiting,
// letting adds that waited for room go on.
func (l *ledger) take(spare []UsageRecord) []UsageRecord {
	l.mu.Lock()
	batch := l.queue
	l.queue = spare[:0]
	l.room.Broadcast()
	l.mu.Unlock()
	return batch
}

func (l *ledger) run() {
	defer close(l.done)
	var spare []UsageRecord
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		tries := 0
		select {
		case <-l.kick:
		case <-t.C:
		case <-l.quit:
			tries = 20
		}
		taken := l.take(spare)
		l.writeAll(taken, tries)
		// The written batch's array is the next spare, cleared so it
		// keeps no strings alive; a huge one (after a backlog) is
		// dropped so the memory goes back.
		clear(taken)
		if spare = taken[:0]; cap(spare) > 4*l.maxBatch {
			spare = nil
		}
		if tries > 0 {
			// Closing: adds have stopped (close holds the gate), so one
			// more take finds anything queued during the last write.
			l.writeAll(l.take(nil), tries)
			return
		}
	}
}

// writeAll writes records in batches of at most maxBatch.
func (l *ledger) writeAll(records []UsageRecord, tries int) {
	for len(records) > 0 {
		n := min(len(records), l.maxBatch)
		l.write(records[:n], tries)
		records = records[n:]
	}
}

// write stores batch, retrying with backoff. tries zero means until it
// works or the ledger is closing (then a final series of tries).
func (l *ledger) write(batch []UsageRecord, tries int) {
	if len(batch) == 0 {
		return
	}
	backoff := 50 * time.Millisecond
	for i := 1; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		began := time.Now()
		err := l.store.AppendUsage(ctx, batch)
		cancel()
		l.lastFlush.Store(int64(time.Since(began)))
		if err == nil {
			l.written.Add(int64(len(batch)))
			if i > 1 {
				l.log.Info("usage ledger write recovered", "records", len(batch), "attempts", i)
			}
			return
		}
		l.failures.Add(1)
		if i == 1 {
			l.log.Warn("usage ledger write failed; retrying", "records", len(batch), "err", err)
		}
		if tries > 0 && i >= tries {
			l.log.Error("usage records could not be written", "records", len(batch), "err", err)
			l.dropped.Add(int64(len(batch)))
			return
		}
		if tries == 0 {
			select {
			case <-l.quit:
				l.write(batch, 20)
				return
			case <-time.After(backoff):
			}
		} else {
			time.Sleep(backoff)
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// close flushes what is queued and stops the writer.
func (l *ledger) close() {
	l.gate.Lock()
	already := l.closed.Swap(true)
	l.gate.Unlock()
	if already {
		<-l.done
		return
	}
	close(l.quit)
	<-l.done
}
