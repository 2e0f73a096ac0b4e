package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// serve's access log writes to the process logger's buffer in its format
// at its level, and flushes the buffer after a Warn line.
func TestAccessLogFollowsLogger(t *testing.T) {
	ok := &llmproxy.RequestInfo{RequestID: "req-ok", Route: "chat", Method: "POST", Status: 200, KeyName: "Mobile App"}
	failed := &llmproxy.RequestInfo{RequestID: "req-failed", Route: "chat", Method: "POST", Status: 502, UpstreamError: true}
	for _, c := range []struct {
		format, level string
		want          []string // request ids written by the Warn line's flush
	}{
		{"", "", []string{"req-ok", "req-failed"}},
		{"json", "", []string{"req-ok", "req-failed"}},
		{"text", "debug", []string{"req-ok", "req-failed"}},
		{"json", "warn", []string{"req-failed"}},
	} {
		out := &chunks{}
		buf := newLogBuffer(out)
		buf.flushInterval = time.Hour
		vars := map[string]string{"LOG_FORMAT": c.format, "LOG_LEVEL": c.level}
		e := &env{getenv: func(k string) string { return vars[k] }, stderr: io.Discard}
		_, access, err := e.logger(buf)
		if err != nil {
			t.Fatal(err)
		}
		obs, err := newObservability(access, false)
		if err != nil {
			t.Fatal(err)
		}
		if obs.access != access {
			t.Errorf("LOG_FORMAT=%q LOG_LEVEL=%q: serve's access log is not the one made with the logger", c.format, c.level)
		}
		obs.access.ObserveRequest(ok)
		if out.writes() != 0 {
			t.Errorf("LOG_FORMAT=%q LOG_LEVEL=%q: an Info line was not held in the buffer: %q", c.format, c.level, out)
		}
		obs.access.ObserveRequest(failed)
		var ids []string
		for l := range strings.Lines(out.String()) {
			if c.format == "json" {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != "request" {
					t.Fatalf("LOG_FORMAT=json: %q", l)
				}
				ids = append(ids, m["request_id"].(string))
				continue
			}
			id, found := strings.CutPrefix(l[strings.Index(l, " msg=request ")+1:], "msg=request request_id=")
			if !found || !strings.HasPrefix(l, "time=") {
				t.Fatalf("LOG_FORMAT=%q: %q", c.format, l)
			}
			ids = append(ids, strings.Fields(id)[0])
		}
		if strings.Join(ids, " ") != strings.Join(c.want, " ") {
			t.Errorf("LOG_FORMAT=%q LOG_LEVEL=%q: lines of %v out at the Warn line, want %v:\n%s", c.format, c.level, ids, c.want, out)
		}
		buf.Close()
	}
}

// Without a buffer, the logger and the access log share stderr, which
// need not be safe for concurrent use: their lines stay whole (run with
// -race).
func TestAccessLogSharesStderr(t *testing.T) {
	var stderr bytes.Buffer
	e := &env{getenv: func(k string) string { return map[string]string{"LOG_FORMAT": "json"}[k] }, stderr: &stderr}
	log, access, err := e.logger(nil)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := newObservability(access, false)
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 100
	var wg sync.WaitGroup
	wg.Go(func() {
		for range rounds {
			log.Info("process line")
		}
	})
	wg.Go(func() {
		for range rounds {
			obs.access.ObserveRequest(&llmproxy.RequestInfo{RequestID: "r", Status: 200})
		}
	})
	wg.Wait()
	n := 0
	for l := range strings.Lines(stderr.String()) {
		if !json.Valid([]byte(l)) {
			t.Fatalf("not a whole line: %q", l)
		}
		n++
	}
	if n != 2*rounds {
		t.Errorf("%d lines, want %d", n, 2*rounds)
	}
}
