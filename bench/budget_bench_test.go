package bench_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// BenchmarkSpend is one chat request through ServeHTTP on a priced model
// (its cost computed and recorded), without and with a budget on the
// key's assignment and on the key (reserved before forwarding, settled
// after): the difference is what pricing and budgets cost per request.
func BenchmarkSpend(b *testing.B) {
	for _, c := range []struct {
		name   string
		budget *llmproxy.Budget
	}{
		{"priced", nil},
		{"budgets", &llmproxy.Budget{USD: 1e9, Period: llmproxy.BudgetMonthly, TZ: "Asia/Bangkok"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			store := memory.New()
			conn := &llmproxy.Connection{Name: "c", Provider: llmproxy.KindCompatible, Endpoint: "http://" + rawUpstream(b, rawResponse(answer)) + "/v1", Credentials: llmproxy.Credentials{APIKey: "k"}}
			must(b, store.CreateConnection(ctx, conn))
			must(b, store.CreateModel(ctx, &llmproxy.Model{Name: "bench", Remote: "remote", ConnectionID: conn.ID, Price: &pricing.Price{Input: 3, Output: 15, CachedInput: 0.3}}))
			must(b, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(key), Budget: c.budget, Assignments: []llmproxy.Assignment{
				{ConnectionID: conn.ID, TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour, Budget: c.budget}}}))
			gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
				HTTPClient: &http.Client{Transport: llmproxy.NewTransport()}})
			must(b, err)
			b.Cleanup(func() { gw.Close() })
			body := bytes.NewReader([]byte(request))
			r, _ := http.NewRequest(http.MethodPost, "http://gw/v1/chat/completions", io.NopCloser(body))
			r.ContentLength = int64(len(request))
			r.Header["Content-Type"] = []string{"application/json"}
			auth := []string{"Bearer " + key}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset([]byte(request))
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
