package llmproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// respond writes a provider's answer and accounts for it.
func (g *Gateway) respond(w http.ResponseWriter, x *exchange, gr grant, resp *Response, cancel context.CancelCauseFunc) *streamStart {
	h := w.Header()
	for k, v := range resp.Header {
		if k == "X-Request-Id" {
			// The client keeps the gateway's id, the one in the access log
			// and the ledger; the upstream's goes beside it.
			k = "X-Upstream-Request-Id"
		}
		h[k] = v
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if resp.Stream == nil {
		vals := make([]string, 2)
		vals[0], vals[1] = "application/json", strconv.Itoa(len(resp.Body))
		h["Content-Type"], h["Content-Length"] = vals[0:1:1], vals[1:2:2]
		w.WriteHeader(status)
		w.Write(resp.Body)
		u, ok := x.dialect.usage(resp.Body)
		if !ok {
			u = Usage{PromptTokens: estimateTokens(x, 0)}
			u.CompletionTokens = int64(len(resp.Body)) / 4
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
		}
		g.settle(x, u)
		// Send the answer once the limits hold the real usage (a client's
		// next request must see it), but before the ledger and the
		// observers, which need not delay the client.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		g.record(x, gr, status, u, !ok, false)
		if x.resp != nil && status == http.StatusOK {
			g.keepResponse(x, gr, resp.Body)
		}
		cancel(nil)
		return nil
	}
	return &streamStart{gr: gr, stream: resp.Stream, status: status, cancel: cancel}
}

var (
	sseData    = []byte("data: ")
	sseEnd     = []byte("\n\n")
	sseDone    = []byte("data: [DONE]\n\n")
	usageKey   = []byte(`"usage"`)
	contentKey = []byte(`"content":"`)
	argsKey    = []byte(`"arguments":"`)
)

// relay streams events to the client as they arrive, flushing each, in
// the client's dialect, and accounts the stream's usage: the upstream's
// when it comes (OpenAI's usage chunk is hidden from a client that did not
// ask for it), otherwise an estimate from the text streamed.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, x *exchange, gr grant, st EventStream, status int, cancel context.CancelCauseFunc) {
	defer cancel(nil)
	defer st.Close()
	g.streams.Add(1)
	defer g.streams.Add(-1)
	// The idle watch cuts a stream that stalls; every event keeps it alive.
	idle := gr.upstream.idle
	var stalled atomic.Bool
	watch := watchIdle(idle, func() { stalled.Store(true); cancel(errIdle) })
	defer watch.stop()
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	h["X-Accel-Buffering"] = []string{"no"}
	w.WriteHeader(status)
	flusher, _ := w.(http.Flusher)
	if b, ok := st.(BufferedStream); (!ok || b.Buffered() == 0) && flusher != nil {
		flusher.Flush() // else the head goes out with the first event
	}
	ready, _ := st.(ReadyStream)
	d := x.dialect
	firstOut := true
	sent := 0 // events written
	var usage Usage
	gotUsage := false
	var textBytes int64
	clientGone := false
	completed := false // the upstream ended the stream
	for {
		data, err := g.next(st, x.reqID)
		if err != nil {
			err = scrub(&gr.upstream.Credentials, err)
			watch.stop()
			if err == io.EOF {
				completed = true
				if d.end != nil {
					_, werr := w.Write(d.end)
					clientGone = werr != nil
				}
			} else if r.Context().Err() != nil {
				clientGone = true
			} else {
				x.info.UpstreamError = true
				e := AsError(err)
				if stalled.Load() {
					e = &Error{Status: errIdle.Status, Type: errIdle.Type, Code: errIdle.Code, Err: err,
						Message: fmt.Sprintf("the upstream of connection %q sent nothing for %s; the stream was ended", gr.upstream.Name, idle)}
				}
				g.log.Warn("stream failed", "request_id", x.reqID, "connection", gr.upstream.ID, "err", err)
				w.Write(d.appendErrorEvent(e, nil, sent))
			}
			break // written with the terminator when the handler returns, after the usage is settled
		}
		watch.event()
		if x.info.FirstToken == 0 {
			x.info.FirstToken = time.Since(x.start)
		}
		if final, hide := d.eventUsage(data, &usage, x.parsed.includeUsage); final {
			gotUsage = true
			if hide {
				continue
			}
		}
		for _, k := range d.textKeys {
			textBytes += jsonscan.StringBytesAfter(data, k)
		}
		if x.capture != nil {
			x.capture(data)
		}
		if err := d.writeEvent(w, data); err != nil {
			clientGone = true
			break
		}
		sent++
		// The first event leaves at once (with the head, when they came
		// together); later events that arrived together leave together:
		// flush once the next one is not already here.
		if flusher != nil && (firstOut || ready == nil || !ready.Ready()) {
			flusher.Flush()
		}
		firstOut = false
	}
	// Without the final usage (the client or the upstream went away
	// first) the stream is charged what is known of it (Anthropic's
	// message_start tells the input) and an estimate of the rest.
	estimated := !gotUsage
	if estimated {
		if usage.PromptTokens == 0 {
			usage.PromptTokens = estimateTokens(x, 0)
		}
		usage.CompletionTokens = max(usage.CompletionTokens, (textBytes+3)/4)
		usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	}
	if clientGone {
		status = 499
	}
	// The end of the stream is written but not flushed: it goes out with
	// the chunked body's terminator when the handler returns, in one
	// write, and only after the limits hold the stream's real usage (so
	// that the client's next request sees it).
	g.settle(x, usage)
	g.record(x, gr, status, usage, estimated, true)
	if x.resp != nil && completed {
		g.keepResponse(x, gr, nil)
	}
}

// next reads the next event, turning a provider's panic into an error so
// that the stream ends with an SSE error event and is still accounted.
func (g *Gateway) next(st EventStream, reqID string) (data []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			g.log.Error("panic in a stream", "request_id", reqID, "panic", fmt.Sprint(p))
			data, err = nil, &Error{Status: http.StatusInternalServerError, Type: TypeServer, Message: "internal error (request " + reqID + ")"}
		}
	}()
	return st.Next()
}

// usageOf reads the top-level "usage" object of an OpenAI answer or chunk.
func usageOf(body []byte) (Usage, bool) {
	raw := jsonscan.Field(body, "usage")
	if len(raw) == 0 || raw[0] != '{' {
		return Usage{}, false
	}
	var u Usage
	for _, f := range [...]struct {
		name string
		dst  *int64
	}{{"prompt_tokens", &u.PromptTokens}, {"completion_tokens", &u.CompletionTokens}, {"total_tokens", &u.TotalTokens}} {
		if v := jsonscan.Field(raw, f.name); len(v) > 0 && v[0] != 'n' {
			n, ok := jsonscan.Count(v)
			if !ok {
				return Usage{}, false
			}
			*f.dst = n
		}
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if d := jsonscan.Field(raw, "prompt_tokens_details"); len(d) > 0 && d[0] == '{' {
		if v := jsonscan.Field(d, "cached_tokens"); len(v) > 0 && v[0] != 'n' {
			u.CacheReadTokens, _ = jsonscan.Count(v)
		}
	}
	return u, true
}

// isUsageOnly reports whether a chunk is the usage chunk: empty choices.
func isUsageOnly(chunk []byte) bool {
	raw := bytes.TrimSpace(jsonscan.Field(chunk, "choices"))
	return len(raw) == 0 || (raw[0] == '[' && len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0)
}
