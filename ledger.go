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
type ledger struct {
	store     Storage
	log       *slog.Logger
	records   chan UsageRecord
	interval  time.Duration
	maxBatch  int
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
		records:  make(chan UsageRecord, size),
		interval: interval,
		maxBatch: 1000,
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go l.run()
	return l
}

// add queues r for writing.
func (l *ledger) add(r UsageRecord) {
	l.gate.RLock()
	if !l.closed.Load() {
		l.records <- r
		l.gate.RUnlock()
		return
	}
	l.gate.RUnlock()
	// A request that finished after Close: write it at once.
	l.lateMu.Lock()
	defer l.lateMu.Unlock()
	l.write([]UsageRecord{r}, 3)
}

// pending is the number of records waiting.
func (l *ledger) pending() int { return len(l.records) }

func (l *ledger) run() {
	defer close(l.done)
	batch := make([]UsageRecord, 0, l.maxBatch)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case r := <-l.records:
			batch = append(batch, r)
			if len(batch) < l.maxBatch {
				continue
			}
		case <-t.C:
		case <-l.quit:
			for {
				select {
				case r := <-l.records:
					batch = append(batch, r)
					if len(batch) == l.maxBatch {
						l.write(batch, 20)
						batch = batch[:0]
					}
					continue
				default:
				}
				break
			}
			l.write(batch, 20)
			return
		}
		if len(batch) > 0 {
			l.write(batch, 0)
			batch = batch[:0]
		}
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
