package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The log buffer's defaults: how long an Info line may wait, how much
// makes a flush worth doing at once, and how much may wait before writers
// are held back.
const (
	logFlushInterval = 50 * time.Millisecond
	logFlushSize     = 64 << 10
	logMaxPending    = 1 << 20
)

// logBuffer batches the server's log lines in front of stderr, so that a
// request does not pay for a write syscall (nor wake a pipe's reader)
// with its access-log line. Each Write is one whole line from slog; lines
// are kept whole and in order, and written in batches: flushInterval
// after the first line of a batch (a timer, armed only when there is
// something to write, so an idle server sleeps), at once past flushSize,
// and on Flush and Close. Past maxPending bytes waiting, Write waits for
// the writes to stderr to catch up rather than grow or drop lines.
//
// Two slices are swapped between the pending lines and the batch being
// written, so a steady state allocates nothing.
type logBuffer struct {
	w             io.Writer
	flushInterval time.Duration
	flushSize     int
	maxPending    int

	mu       sync.Mutex
	cond     sync.Cond // on mu; broadcast when a batch write ends
	pending  []byte    // lines not yet handed to w
	batch    []byte    // lines being written to w by the flusher
	flushing bool      // a goroutine is in w.Write with batch, mu released
	appended int64     // bytes ever appended to pending
	written  int64     // bytes ever handed to w (written or failed)
	timer    *time.Timer
	armed    bool // timer will run flushTimer
	closed   bool // after Close every Write goes straight through
	err      error
}

// newLogBuffer returns a logBuffer in front of w with the defaults.
func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: w, flushInterval: logFlushInterval, flushSize: logFlushSize, maxPending: logMaxPending}
	b.cond.L = &b.mu
	return b
}

// Write appends a copy of p, one whole log line, and returns; it waits
// only while maxPending bytes are already waiting. It reports no error:
// Flush and Close report the first failed write to w.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) >= b.maxPending {
		if b.flushing {
			b.cond.Wait()
		} else {
			b.writeLocked()
		}
	}
	b.pending = append(b.pending, p...)
	b.appended += int64(len(p))
	switch {
	case b.closed:
		b.flushLocked()
	case len(b.pending) >= b.flushSize:
		b.kickLocked()
	case !b.armed:
		b.armLocked(b.flushInterval)
	}
	return len(p), nil
}

// Flush writes every line written before it was called, in order, and
// returns the first error w has reported.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.err
}

// Close flushes and stops the timer; later Writes are written through at
// once, so a goroutine still logging after serve returns loses nothing.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.armed && b.timer.Stop() {
		b.armed = false
	}
	b.flushLocked()
	return b.err
}

// flushTimer is the timer's function: the batch's time is up.
func (b *logBuffer) flushTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	b.flushLocked()
}

// flushLocked returns once every byte appended so far has been handed to
// w, writing itself or waiting for the flusher in turn.
func (b *logBuffer) flushLocked() {
	target := b.appended
	for b.written < target {
		if b.flushing {
			b.cond.Wait()
		} else {
			b.writeLocked()
		}
	}
}

// writeLocked writes the pending lines to w in one Write, with mu
// released meanwhile, and goes on while flushSize more have come in.
// The caller holds mu and no one else is flushing.
func (b *logBuffer) writeLocked() {
	for len(b.pending) > 0 {
		b.pending, b.batch = b.batch[:0], b.pending
		if b.armed && b.timer.Stop() {
			b.armed = false // nothing left for it to write
		}
		b.flushing = true
		b.mu.Unlock()
		_, err := b.w.Write(b.batch)
		b.mu.Lock()
		b.flushing = false
		b.written += int64(len(b.batch))
		if err != nil && b.err == nil {
			b.err = err
		}
		b.cond.Broadcast()
		if len(b.pending) < b.flushSize {
			return
		}
	}
}

// kickLocked has the timer write now, unless a flush is under way: that
// one goes on while flushSize is waiting.
func (b *logBuffer) kickLocked() {
	if b.flushing {
		return
	}
	if b.armed && !b.timer.Stop() {
		return // the timer has fired; its function is on its way
	}
	b.armLocked(0)
}

func (b *logBuffer) armLocked(d time.Duration) {
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.flushTimer)
	} else {
		b.timer.Reset(d)
	}
	b.armed = true
}

// flushOnWarn is a slog.Handler that flushes its logBuffer after every
// record at Warn or above, so that warnings and errors are never held
// back.
type flushOnWarn struct {
	slog.Handler
	buf *logBuffer
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.buf.Flush()
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.buf}
}
