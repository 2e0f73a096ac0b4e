package h1client_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/h1client"
)

// A chat completion's size: a 300-byte request and a 400-byte answer.
var (
	benchRequestBody = []byte(`{"model":"llama-3.1-8b-instruct","messages":[{"role":"system","content":"You are terse."},` +
		`{"role":"user","content":"` + strings.Repeat("x", 300-136) + `"}],"max_tokens":16}`)
	benchAnswerBody = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"llama-3.1-8b-instruct",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("y", 400-260) + `"},` +
		`"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":16,"total_tokens":36}}`
	benchAnswer = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
		"X-Request-Id: 0123456789abcdef\r\nContent-Length: " + strconv.Itoa(len(benchAnswerBody)) + "\r\n\r\n" + benchAnswerBody)
)

func TestBenchSizes(t *testing.T) {
	if len(benchRequestBody) != 300 || len(benchAnswerBody) != 400 {
		t.Fatalf("request %d bytes, answer %d bytes", len(benchRequestBody), len(benchAnswerBody))
	}
}

// replayBody is a request body that can be sent again after reset, so a
// measure of the client's allocations does not count the request's.
type replayBody struct {
	b   []byte
	off int
}

func (r *replayBody) Read(p []byte) (int, error) {
	if r.off == len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *replayBody) Close() error { return nil }

// maxAllocsPerRoundTrip is the client's own allocations for a POST whose
// answer is read with ReadFull and closed: measured at 7 (9 with -race;
// Go 1.26, linux/amd64), with a little room. Raise it only for a good
// reason.
func maxAllocsPerRoundTrip() float64 {
	if raceEnabled {
		return 9 + 2
	}
	return 7 + 2
}

func TestAllocsPerRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations")
	}
	s := newCannedServer(t, benchAnswer)
	c := newClient(t)
	body := &replayBody{b: benchRequestBody}
	req, err := http.NewRequestWithContext(context.Background(), "POST", s.URL()+"/v1/chat/completions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-0123456789")
	req.Body, req.ContentLength = body, int64(len(benchRequestBody))
	buf := make([]byte, len(benchAnswerBody))
	run := func() {
		body.off = 0
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, buf[:resp.ContentLength]); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	run()
	allocs := testing.AllocsPerRun(500, run)
	t.Logf("%.1f allocations per round trip", allocs)
	if max := maxAllocsPerRoundTrip(); allocs > max {
		t.Errorf("%.1f allocations per round trip, want at most %v", allocs, max)
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// BenchmarkRoundTrip compares this client with net/http's Transport on the
// gateway's common call, the request built anew each time as the gateway
// does.
func BenchmarkRoundTrip(b *testing.B) {
	u, rts := benchRoundTrippers(b)
	for _, rt := range rts {
		b.Run(rt.name, func(b *testing.B) {
			buf := make([]byte, len(benchAnswerBody))
			b.ReportAllocs()
			for b.Loop() {
				if err := postCanned(rt.rt, u, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTripParallel is BenchmarkRoundTrip from several goroutines
// at once, where net/http's per-connection goroutines cost the most.
func BenchmarkRoundTripParallel(b *testing.B) {
	u, rts := benchRoundTrippers(b)
	for _, rt := range rts {
		b.Run(rt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, len(benchAnswerBody))
				for pb.Next() {
					if err := postCanned(rt.rt, u, buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

type namedRoundTripper struct {
	name string
	rt   http.RoundTripper
}

// benchRoundTrippers starts the canned server the benchmarks call and
// returns its URL, this client and net/http's Transport.
func benchRoundTrippers(b *testing.B) (string, []namedRoundTripper) {
	s := newCannedServer(b, benchAnswer)
	c := &h1client.Client{}
	b.Cleanup(c.CloseIdleConnections)
	nh := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	b.Cleanup(nh.CloseIdleConnections)
	return s.URL() + "/v1/chat/completions", []namedRoundTripper{{"h1client", c}, {"net-http", nh}}
}

// postCanned sends the benchmarks' request through rt and reads the
// answer into buf.
func postCanned(rt http.RoundTripper, u string, buf []byte) error {
	req, err := http.NewRequestWithContext(context.Background(), "POST", u, bytes.NewReader(benchRequestBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-0123456789")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, buf[:resp.ContentLength])
	return err
}
