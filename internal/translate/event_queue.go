package translate

// eventQueue holds the events a stream translation has made of one
// upstream chunk, back to back in buf, ends holding where each ends. It
// is cleared before the next upstream chunk is read, so that what Next
// returned stays valid until the next call, as EventStream promises.
// chatToMessages and chatToResponses embed it.
type eventQueue struct {
	buf  []byte
	ends []int
	next int // index in ends of the event pop returns next
}

// pop returns the next queued event, or false when none is left.
func (q *eventQueue) pop() ([]byte, bool) {
	if q.next >= len(q.ends) {
		return nil, false
	}
	start := 0
	if q.next > 0 {
		start = q.ends[q.next-1]
	}
	end := q.ends[q.next]
	q.next++
	return q.buf[start:end], true
}

// queued reports whether pop would return an event.
func (q *eventQueue) queued() bool { return q.next < len(q.ends) }

// clear empties the queue, keeping its buffers' capacity.
func (q *eventQueue) clear() { q.buf, q.ends, q.next = q.buf[:0], q.ends[:0], 0 }

// endEvent ends the event written last to buf.
func (q *eventQueue) endEvent() { q.ends = append(q.ends, len(q.buf)) }
