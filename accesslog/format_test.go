package accesslog

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// sameLines runs do on an Log made by NewWriter and on one
// made by New over the slog handler of the same format and
// level, both with clocks from clock and the slog one's line time
// replaced by lineTime, and fails unless the two wrote the same bytes.
func sameLines(t *testing.T, format Format, level slog.Leveler, clock func() func() time.Time, lineTime time.Time, do func(*Log)) {
	t.Helper()
	var fastOut, slogOut bytes.Buffer
	fast := NewWriter(&fastOut, format, level)
	fast.now = clock()
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			a.Value = slog.TimeValue(lineTime)
		}
		return a
	}}
	var h slog.Handler = slog.NewTextHandler(&slogOut, opts)
	if format == JSON {
		h = slog.NewJSONHandler(&slogOut, opts)
	}
	slow := New(slog.New(h))
	slow.now = clock()
	do(fast)
	do(slow)
	if !bytes.Equal(fastOut.Bytes(), slogOut.Bytes()) {
		t.Errorf("format %d, level %v:\nfast: %q\nslog: %q", format, level, fastOut.Bytes(), slogOut.Bytes())
	}
}

// cycle returns clocks that give times in turn, over and over.
func cycle(times ...time.Time) func() func() time.Time {
	return func() func() time.Time {
		i := 0
		return func() time.Time {
			t := times[i%len(times)]
			i++
			return t
		}
	}
}

// handlerLine has a's Handler answer a request with method to path with
// status and request id; a's clock gives its start, then its end.
func handlerLine(a *Log, method, path, requestID string, status int) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", requestID)
		w.WriteHeader(status)
	})
	r := (&http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}).WithContext(context.Background())
	a.Handler(next).ServeHTTP(&nullWriter{h: http.Header{}}, r)
}

// nullWriter is an http.ResponseWriter that takes any status.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(int)             {}

var (
	formats = []Format{Text, JSON}
	levels  = []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
)

func TestAccessLogWriterMatchesSlog(t *testing.T) {
	when := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.Local)
	full := llmproxy.RequestInfo{RequestID: "req_01", Route: "chat", Method: "POST", Status: 200, Authenticated: true,
		KeyID: "key_01", KeyName: "Mobile-App", Model: "gpt-4o", RemoteModel: "gpt-4o-2024-08-06", Provider: "openai",
		Connection: "main", ConnectionID: "conn_01", Streamed: true, Usage: llmproxy.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21},
		Estimated: true, Refused: "tokens", UpstreamError: true, Attempts: 3,
		Total: 1234567 * time.Microsecond, Upstream: 700 * time.Microsecond, FirstToken: 3 * time.Nanosecond}
	infos := map[string]llmproxy.RequestInfo{
		"zero":       {},
		"full":       full,
		"master":     {Authenticated: true, Status: 200, Model: "m", Total: time.Millisecond},
		"bad key":    {Status: 401, Route: "chat", Method: "POST", Total: 250 * time.Microsecond},
		"5xx":        {Status: 502, UpstreamError: true, Attempts: 2, Total: time.Second},
		"1xx":        {Status: 100},
		"negative":   {Status: -1, Attempts: -5, Usage: llmproxy.Usage{PromptTokens: math.MinInt64, CompletionTokens: -1}, Total: -time.Millisecond, Upstream: -1},
		"big":        {Status: math.MaxInt, Attempts: math.MaxInt, Usage: llmproxy.Usage{TotalTokens: math.MaxInt64}, Total: math.MaxInt64, Upstream: 2000 * time.Second, FirstToken: math.MaxInt64},
		"e-notation": {Total: 123456789 * time.Millisecond, Upstream: 1e6 * time.Millisecond},
	}
	odd := []string{"", " ", "a b", `say "hi"`, "a=b", "=", "line\nbreak", "cr\r", "tab\t", "\x00\x01\x1f", "\x7f",
		`back\slash`, `\`, "<tag>&amp;", "héllo wörld", "日本語", "emoji 🙂", "\u00a0nbsp", "\u2028\u2029", "\u200bzero width",
		"\xff\xfe", "bad\xc3(utf8", "\ufffd", "é\x80", "ok-plain_value.1", "'single'", "{json:[1]}", "%s%d"}
	for i, s := range odd {
		info := full
		info.RequestID, info.KeyName, info.Model, info.Refused = s, s, s, s
		info.Route, info.Method, info.KeyID = odd[(i+1)%len(odd)], odd[(i+2)%len(odd)], odd[(i+3)%len(odd)]
		infos["string "+s] = info
	}
	zones := []*time.Location{time.Local, time.UTC, time.FixedZone("IST", 5*3600+30*60), time.FixedZone("", -7*3600)}
	times := []time.Time{when, when.Truncate(time.Second), when.Truncate(time.Millisecond), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, format := range formats {
		for _, level := range levels {
			for name, info := range infos {
				t.Run(name, func(t *testing.T) {
					sameLines(t, format, level, cycle(when), when, func(a *Log) { a.ObserveRequest(&info) })
				})
			}
			for _, path := range []string{"/v1/models", "/healthz", "/metrics", "/admin/v1/keys", "/nope", "/v1/chat/completions"} {
				for _, status := range []int{200, 404, 500, 503} {
					for _, id := range []string{"", "req-1", "a b=c\"d"} {
						sameLines(t, format, level, cycle(when.Add(-1500*time.Microsecond), when), when, func(a *Log) { handlerLine(a, "GET", path, id, status) })
					}
				}
			}
		}
		for _, zone := range zones {
			for _, tm := range times {
				tm = tm.In(zone)
				sameLines(t, format, nil, cycle(tm), tm, func(a *Log) { a.ObserveRequest(&full) })
			}
		}
	}
	// A LevelVar is asked on every line.
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	for _, format := range formats {
		sameLines(t, format, &lv, cycle(when), when, func(a *Log) {
			a.ObserveRequest(&full)
			lv.Set(slog.LevelInfo)
			a.ObserveRequest(&full)
			lv.Set(slog.LevelWarn)
		})
	}
}

// TestAccessLogFloats checks the float formats against slog's for the
// values a duration in milliseconds cannot take too: exponents, NaN, the
// infinities and negative zero.
func TestAccessLogFloats(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, format := range formats {
		for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 1e-6, 9.99e-7, 1e-7, 1.234e-10, 1e20, 1e21, 1.5e300, -1e21,
			123456, 1234567, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)} {
			var out bytes.Buffer
			opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					a.Value = slog.TimeValue(when)
				}
				return a
			}}
			var h slog.Handler = slog.NewTextHandler(&out, opts)
			if format == JSON {
				h = slog.NewJSONHandler(&out, opts)
			}
			slog.New(h).Info("request", "f", f)
			l := newAccessLine(format == JSON)
			l.start(when, slog.LevelInfo, "request")
			l.float("f", f)
			l.end()
			if got := string(l.buf); got != out.String() {
				t.Errorf("format %d, %v:\nfast: %q\nslog: %q", format, f, got, out.String())
			}
			l.free()
		}
	}
}

// FuzzAccessLog feeds random requests to both paths, ObserveRequest and
// Handler, in both formats at every level, and requires the same bytes.
func FuzzAccessLog(f *testing.F) {
	f.Add("req_01", "chat", "POST", "key_01", "Mobile-App", "gpt-4o", "remote", "openai", "main", "conn_01", "",
		200, 1, int64(12), int64(9), int64(21), int64(900000), int64(700000), int64(0), uint16(0x0f), int64(1773500966), int64(123456789))
	f.Add("a b", "=", "\n", "", "\"q\"", "\xff", "日本", "\u2028", "<&>", "\\", "tokens",
		503, 3, int64(-1), int64(math.MaxInt64), int64(math.MinInt64), int64(math.MaxInt64), int64(-5), int64(1), uint16(0xfff0), int64(-62135596800), int64(-1))
	f.Fuzz(func(t *testing.T, requestID, route, method, keyID, keyName, model, remoteModel, provider, connection, connectionID, refused string,
		status, attempts int, prompt, completion, total, dTotal, dUpstream, dFirst int64, flags uint16, sec, nsec int64) {
		info := &llmproxy.RequestInfo{RequestID: requestID, Route: route, Method: method, Status: status, KeyID: keyID, KeyName: keyName,
			Model: model, RemoteModel: remoteModel, Provider: provider, Connection: connection, ConnectionID: connectionID,
			Usage: llmproxy.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: total}, Refused: refused, Attempts: attempts,
			Total: time.Duration(dTotal), Upstream: time.Duration(dUpstream), FirstToken: time.Duration(dFirst),
			Authenticated: flags&1 != 0, Streamed: flags&2 != 0, Estimated: flags&4 != 0, UpstreamError: flags&8 != 0}
		format := formats[flags>>4&1]
		level := levels[flags>>5&3]
		zone := []*time.Location{time.Local, time.UTC, time.FixedZone("X", -(9*3600 + 30*60))}[int(flags>>7&3)%3]
		// Within some 2000 years of 1970, so negative years too.
		when := time.Unix(sec%(1<<36), nsec).In(zone)
		sameLines(t, format, level, cycle(when), when, func(a *Log) { a.ObserveRequest(info) })
		paths := []string{"/v1/models", "/healthz", "/metrics", "/other"}
		sameLines(t, format, level, cycle(when.Add(-time.Duration(dTotal)), when), when, func(a *Log) {
			handlerLine(a, method, paths[flags>>9&3], requestID, status)
		})
	})
}
