package main

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is where load goes: the upstream directly, a bare proxy or a
// gateway.
type target struct {
	name  string
	addr  string
	req   []byte   // complete HTTP request
	proxy *process // the bare proxy or gateway in the path; nil direct
}

// maxSamples bounds the latencies kept per run (memory stays bounded at
// any rate).
const maxSamples = 4 << 20

// outcome is one load run's measurements.
type outcome struct {
	requests int64
	errors   int64
	elapsed  time.Duration
	lat      []time.Duration // sorted
	ttfc     []time.Duration // sorted; streams only
	events   int64
	firstErr string
}

func (o *outcome) rps() float64 { return float64(o.requests) / o.elapsed.Seconds() }

// merge adds another run of the same target; finish sorts the result.
func (o *outcome) merge(x outcome) {
	o.requests += x.requests
	o.errors += x.errors
	o.elapsed += x.elapsed
	o.lat = append(o.lat, x.lat...)
	o.ttfc = append(o.ttfc, x.ttfc...)
	o.events += x.events
	if o.firstErr == "" {
		o.firstErr = x.firstErr
	}
}

func (o *outcome) finish() {
	slices.Sort(o.lat)
	slices.Sort(o.ttfc)
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(s)))
	return s[min(i, len(s)-1)]
}

// samples collects per-worker measurements without locks.
type samples struct {
	lat, ttfc []time.Duration
	requests  int64
	errors    int64
	events    int64
	firstErr  string
}

func (s *samples) add(d time.Duration, r result, stream bool) {
	s.requests++
	s.events += int64(r.events)
	if len(s.lat) < cap(s.lat) {
		s.lat = append(s.lat, d)
	}
	if stream && !r.first.IsZero() && len(s.ttfc) < cap(s.ttfc) {
		s.ttfc = append(s.ttfc, r.first.Sub(time.Time{}))
	}
}

func (s *samples) fail(err error, status int) {
	s.errors++
	if s.firstErr == "" {
		if err != nil {
			s.firstErr = err.Error()
		} else {
			s.firstErr = "status " + itoa(status)
		}
	}
}

func merge(all []*samples, elapsed time.Duration) outcome {
	o := outcome{elapsed: elapsed}
	for _, s := range all {
		o.requests += s.requests
		o.errors += s.errors
		o.events += s.events
		o.lat = append(o.lat, s.lat...)
		o.ttfc = append(o.ttfc, s.ttfc...)
		if o.firstErr == "" {
			o.firstErr = s.firstErr
		}
	}
	slices.Sort(o.lat)
	slices.Sort(o.ttfc)
	return o
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// exchange runs one request on c (redialling a broken connection) and
// records it, with latency measured from start.
func exchange(c **conn, t target, start time.Time, s *samples, stream bool) {
	if *c == nil || (*c).c == nil {
		nc, err := dial(t.addr)
		if err != nil {
			s.fail(err, 0)
			time.Sleep(10 * time.Millisecond)
			return
		}
		*c = nc
	}
	r, err := (*c).do(t.req, time.Now().Add(30*time.Second))
	end := time.Now()
	if err != nil || !r.keep {
		(*c).close()
	}
	if err != nil || r.status != 200 {
		s.fail(err, r.status)
		return
	}
	if stream {
		// Keep TTFC as a duration from the start.
		r.first = time.Time{}.Add(r.first.Sub(start))
		if r.first.Sub(time.Time{}) < 0 {
			r.first = time.Time{}
		}
	}
	s.add(end.Sub(start), r, stream)
}

// closedLoop runs conns connections, each sending its next request as
// soon as the previous answer is read, for d (after a warm-up of warm).
func closedLoop(t target, conns int, warm, d time.Duration, stream bool) outcome {
	var measuring atomic.Bool
	stop := make(chan struct{})
	all := make([]*samples, conns)
	var wg sync.WaitGroup
	perWorker := min(maxSamples/conns, 1<<20)
	for i := range conns {
		s := &samples{lat: make([]time.Duration, 0, perWorker)}
		if stream {
			s.ttfc = make([]time.Duration, 0, perWorker)
		}
		all[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			warmS := &samples{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				dst := warmS
				if measuring.Load() {
					dst = s
				}
				exchange(&c, t, time.Now(), dst, stream)
			}
		}()
	}
	time.Sleep(warm)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(began)
	close(stop)
	wg.Wait()
	return merge(all, elapsed)
}

// openLoop schedules requests at rate per second for d, and serves them
// with up to workers connections. Latency counts from each request's
// scheduled time, so a request that waits for a free connection (or for
// the scheduler, on an overloaded machine) shows it: queueing is not
// hidden (no coordinated omission).
func openLoop(t target, rate, workers int, warm, d time.Duration) outcome {
	total := int(float64(rate) * (warm + d).Seconds())
	warmN := int(float64(rate) * warm.Seconds())
	type job struct {
		at      time.Time
		measure bool
	}
	jobs := make(chan job, total)
	all := make([]*samples, workers)
	var wg sync.WaitGroup
	for i := range workers {
		s := &samples{lat: make([]time.Duration, 0, total/workers+16)}
		all[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			warmS := &samples{}
			for j := range jobs {
				if wait := time.Until(j.at); wait > 0 {
					time.Sleep(wait)
				}
				dst := warmS
				if j.measure {
					dst = s
				}
				exchange(&c, t, j.at, dst, false)
			}
		}()
	}
	// The scheduler releases each job at its time; workers pick them up
	// in order.
	interval := time.Second / time.Duration(rate)
	start := time.Now().Add(10 * time.Millisecond)
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > time.Millisecond {
			time.Sleep(wait - time.Millisecond/2)
		}
		jobs <- job{at: at, measure: i >= warmN}
	}
	close(jobs)
	wg.Wait()
	// The run lasts at least d, longer when answers fell behind.
	measuredStart := start.Add(time.Duration(warmN) * interval)
	return merge(all, max(time.Since(measuredStart), d))
}
