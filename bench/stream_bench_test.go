package bench_test

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawStreamUpstream answers every request with a chunked event stream of
// chunks events, the usage chunk and [DONE]: the head leaves with the
// first event, and every later event in a write of its own, as a model
// streams its tokens.
func rawStreamUpstream(tb testing.TB, chunks int) string {
	chunk := func(s string) []byte { return []byte(strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n") }
	event := chunk(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"remote","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}` + "\n\n")
	end := append(chunk(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"remote","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}`+"\n\n"+"data: [DONE]\n\n"), "0\r\n\r\n"...)
	writes := [][]byte{append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"), event...)}
	for range chunks - 1 {
		writes = append(writes, event)
	}
	return rawUpstreamWrites(tb, append(writes, end))
}

// BenchmarkServerStream is BenchmarkServer for a stream of 20 events, one
// at a time: ns/op is the whole stream, ttfc-p50-ns the median time from
// sending the request to reading the first event, gateway and bare proxy
// in one process (no process hop, so the difference is the gateway's own
// cost; the load harness's stream-1 measures it with one).
func BenchmarkServerStream(b *testing.B) {
	for _, c := range upstreamClients {
		b.Run(c.name+"/gateway", func(b *testing.B) {
			benchmarkServerStream(b, gateway(b, rawStreamUpstream(b, 20), c.new()))
		})
		b.Run(c.name+"/bare", func(b *testing.B) {
			benchmarkServerStream(b, &bare{upstream: rawStreamUpstream(b, 20), rt: c.new()})
		})
	}
}

func benchmarkServerStream(b *testing.B, h http.Handler) {
	c, req := serveAndDial(b, h, strings.Replace(request, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	rd := bufio.NewReaderSize(c, 64<<10)
	data, last := []byte("data: {"), []byte("0\r\n")
	var ttfc []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		first, events := true, 0
		for {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if bytes.HasPrefix(line, data) {
				if first {
					ttfc = append(ttfc, time.Since(start))
					first = false
				}
				events++
			}
			if bytes.Equal(line, last) {
				rd.ReadSlice('\n')
				break
			}
		}
		if events < 20 { // the bare proxy relays the usage chunk too; the gateway hides it from this client
			b.Fatalf("%d events, want 20", events)
		}
	}
	slices.Sort(ttfc)
	b.ReportMetric(float64(ttfc[len(ttfc)/2].Nanoseconds()), "ttfc-p50-ns")
}
