package bench_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// Requests and upstream answers of the other dialects, as small as the
// chat ones above.
const (
	msgRequest  = `{"model":"%s","system":"You are terse.","messages":[{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64}`
	msgAnswer   = `{"id":"msg_1","type":"message","role":"assistant","model":"remote","content":[{"type":"text","text":"Hello there, this is a short answer."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":9}}`
	respRequest = `{"model":"%s","instructions":"You are terse.","input":"Say hello in a short sentence, please.","temperature":0.2,"max_output_tokens":64,"store":false}`
	respAnswer  = `{"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"remote","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello there, this is a short answer.","annotations":[]}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":21}}`
)

// BenchmarkDialects is one non-streaming request through ServeHTTP per
// client dialect and way of serving it, with net/http's Transport, over
// loopback to an upstream that allocates nothing: chat (the reference),
// Anthropic's Messages and OpenAI's Responses passed natively, and both
// translated to a chat upstream and back. The difference to chat is what
// a dialect costs the gateway, translation included.
func BenchmarkDialects(b *testing.B) {
	for _, c := range []struct {
		name, path, body string
		kind             string            // the connection's provider kind
		settings         map[string]string // the connection's
		answer           string            // the upstream's
	}{
		{"chat", "/v1/chat/completions", request, llmproxy.KindCompatible, nil, answer},
		{"messages-native", "/v1/messages", msgRequest, llmproxy.KindAnthropic, nil, msgAnswer},
		{"messages-translated", "/v1/messages", msgRequest, llmproxy.KindCompatible, nil, answer},
		{"responses-native", "/v1/responses", respRequest, llmproxy.KindCompatible, map[string]string{openai.SettingResponses: "native"}, respAnswer},
		{"responses-translated", "/v1/responses", respRequest, llmproxy.KindCompatible, nil, answer},
	} {
		b.Run(c.name, func(b *testing.B) {
			up := rawUpstream(b, rawResponse(c.answer))
			endpoint := "http://" + up + "/v1"
			if c.kind == llmproxy.KindAnthropic {
				endpoint = "http://" + up
			}
			gw := dialectGateway(b, llmproxy.Connection{Name: "c", Provider: c.kind, Endpoint: endpoint, Settings: c.settings, Credentials: llmproxy.Credentials{APIKey: "k"}})
			req := []byte(c.body)
			if bytes.Contains(req, []byte("%s")) {
				req = bytes.Replace(req, []byte("%s"), []byte("bench"), 1)
			}
			body := bytes.NewReader(req)
			r, _ := http.NewRequest(http.MethodPost, "http://gw"+c.path, io.NopCloser(body))
			r.ContentLength = int64(len(req))
			r.Header["Content-Type"] = []string{"application/json"}
			auth := []string{"Bearer " + key}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(req)
				r.Header["Authorization"] = auth
				clear(w.h)
				w.status = 0
				gw.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatal(w.status)
				}
			}
		})
	}
}

// dialectGateway is gateway's set-up for connection c.
func dialectGateway(tb testing.TB, c llmproxy.Connection) *llmproxy.Gateway {
	ctx := context.Background()
	store := memory.New()
	must(tb, store.CreateConnection(ctx, &c))
	must(tb, store.CreateModel(ctx, &llmproxy.Model{Name: "bench", Remote: "remote", ConnectionID: c.ID}))
	must(tb, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(key), Assignments: []llmproxy.Assignment{
		{ConnectionID: c.ID, TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour}}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store,
		Providers:  map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New, llmproxy.KindAnthropic: anthropic.New},
		HTTPClient: &http.Client{Transport: llmproxy.NewTransport()}})
	must(tb, err)
	tb.Cleanup(func() { gw.Close() })
	return gw
}
