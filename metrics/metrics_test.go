package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/metrics"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const (
	upstreamKey = "sk-real-upstream-secret"
	masterKey   = "master-secret-key"
	keyApp      = "sk-proxy-123"
	keyLimited  = "sk-limited-789"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is a Gateway with metrics in front of a fake upstream, served
// with /metrics on the same listener, as llm-proxy serve does.
type fixture struct {
	t     *testing.T
	store llmproxy.Storage
	fake  *fakeopenai.Server
	gw    *llmproxy.Gateway
	srv   *httptest.Server
	keys  map[string]*llmproxy.VirtualKey
}

func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	f := &fixture{t: t, store: memory.New(), fake: fakeopenai.New(t, upstreamKey), keys: map[string]*llmproxy.VirtualKey{}}
	conn := &llmproxy.Connection{Name: "fake-conn", Provider: llmproxy.KindCompatible, Endpoint: f.fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, f.store.CreateConnection(ctx, conn))
	must(t, f.store.CreateModel(ctx, &llmproxy.Model{Name: "gpt-alias", Remote: "remote-model-1", ConnectionID: conn.ID}))
	for name, k := range map[string]struct {
		secret string
		tps    float64
	}{"Mobile-App": {keyApp, 0}, "Limited": {keyLimited, 0.001}} {
		vk := &llmproxy.VirtualKey{Name: name, Hash: llmproxy.HashKey(k.secret), Prefix: llmproxy.KeyPrefix(k.secret),
			Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID, TPS: k.tps, Burst: 1}}}
		if k.tps == 0 {
			vk.Assignments[0].Burst = 0
		}
		must(t, f.store.CreateKey(ctx, vk))
		f.keys[name] = vk
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	must(t, err)
	f.gw, err = llmproxy.New(llmproxy.Config{
		Storage:   f.store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
		MasterKey: masterKey,
		Observers: []llmproxy.Observer{m},
	})
	must(t, err)
	reg.MustRegister(metrics.NewStatsCollector(f.gw))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", m.Handler(f.gw))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { f.srv.Close(); f.gw.Close() })
	return f
}

// do sends a request and returns its status, reading the whole body.
func (f *fixture) do(method, path, key, body string) int {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	must(f.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(f.t, err)
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (f *fixture) scrape() map[string]*dto.MetricFamily {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL + "/metrics")
	must(f.t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		f.t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	must(f.t, err)
	return mfs
}

const (
	chat   = `{"model":"gpt-alias","messages":[{"role":"user","content":"hi there"}]}`
	stream = `{"model":"gpt-alias","stream":true,"messages":[{"role":"user","content":"hi there"}]}`
	embed  = `{"model":"gpt-alias","input":["a","b"]}`
	nope   = `{"model":"made-up-by-a-client","messages":[{"role":"user","content":"hi"}]}`
)

// TestScriptedMix sends a known mix of requests and checks that every
// counter and histogram count equals what was sent.
func TestScriptedMix(t *testing.T) {
	f := newFixture(t)
	steps := []struct {
		name, method, path, key, body string
		want                          int
		times                         int
	}{
		{"ok", "POST", "/v1/chat/completions", keyApp, chat, 200, 3},
		{"master ok", "POST", "/v1/chat/completions", masterKey, chat, 200, 1},
		{"stream", "POST", "/v1/chat/completions", keyApp, stream, 200, 1},
		{"embeddings", "POST", "/v1/embeddings", keyApp, embed, 200, 1},
		{"unknown model", "POST", "/v1/chat/completions", keyApp, nope, 404, 2},
		{"bad key", "POST", "/v1/chat/completions", "sk-wrong-secret", chat, 401, 2},
		{"no key", "POST", "/v1/embeddings", "", embed, 401, 1},
		{"limited ok", "POST", "/v1/chat/completions", keyLimited, chat, 200, 1},
		{"limited refused", "POST", "/v1/chat/completions", keyLimited, chat, 429, 2},
		{"models", "GET", "/v1/models", keyApp, "", 200, 1},
		{"health", "GET", "/healthz", "", "", 200, 2},
		{"unknown path", "GET", "/v2/whatever", keyApp, "", 404, 1},
		{"wrong method", "GET", "/v1/chat/completions", keyApp, "", 405, 1},
	}
	for _, s := range steps {
		for range s.times {
			if got := f.do(s.method, s.path, s.key, s.body); got != s.want {
				t.Fatalf("%s: status %d, want %d", s.name, got, s.want)
			}
		}
	}
	// Last, as it may cool the connection down.
	f.fake.SetFail(500)
	if got := f.do("POST", "/v1/chat/completions", keyApp, chat); got < 500 {
		t.Fatalf("upstream 500: status %d", got)
	}
	f.fake.SetFail(0)

	mfs := f.scrape()
	if mfs["llmproxy_inflight_streams"] == nil {
		t.Fatal("no llmproxy_inflight_streams: the stats collector is not registered")
	}

	// requests_total by route, model, provider, status class.
	want := map[string]float64{
		"chat|gpt-alias|compatible|2xx":       3 + 1 + 1 + 1, // ok, master, stream, limited
		"chat|gpt-alias|compatible|4xx":       2,             // refused by the rate limit
		"chat|gpt-alias|compatible|5xx":       1,
		"chat|||4xx":                          2 + 2 + 1, // unknown model, bad key, wrong method
		"embeddings|gpt-alias|compatible|2xx": 1,
		"embeddings|||4xx":                    1,
		"models|||2xx":                        1,
		"health|||2xx":                        2,
		"other|||4xx":                         1,
	}
	got := map[string]float64{}
	for _, m := range family(t, mfs, "llmproxy_requests_total").Metric {
		got[labels(m, "route", "model", "provider", "status_class")] = m.GetCounter().GetValue()
	}
	compare(t, "requests_total", got, want)
	for k := range got {
		if strings.Contains(k, "made-up") {
			t.Errorf("a client's unknown alias became a label: %s", k)
		}
	}

	// Histogram counts.
	compare(t, "request_duration_seconds", histCounts(t, mfs, "llmproxy_request_duration_seconds", "route"), map[string]float64{
		"chat": 3 + 1 + 1 + 2 + 2 + 1 + 1 + 2 + 1, "embeddings": 2, "models": 1, "health": 2, "other": 1,
	})
	// Upstream calls: ok×3, master, stream, limited, 500 on chat; one
	// embeddings.
	compare(t, "upstream_duration_seconds", histCounts(t, mfs, "llmproxy_upstream_duration_seconds", "route", "provider"), map[string]float64{
		"chat|compatible": 7, "embeddings|compatible": 1,
	})
	compare(t, "gateway_duration_seconds", histCounts(t, mfs, "llmproxy_gateway_duration_seconds", "route"), map[string]float64{
		"chat": 6, "embeddings": 1, // every upstream call but the stream
	})
	compare(t, "time_to_first_token_seconds", histCounts(t, mfs, "llmproxy_time_to_first_token_seconds", "model"), map[string]float64{
		"gpt-alias": 1,
	})

	got = map[string]float64{}
	for _, m := range family(t, mfs, "llmproxy_limit_refusals_total").Metric {
		got[labels(m, "kind")] = m.GetCounter().GetValue()
	}
	compare(t, "limit_refusals_total", got, map[string]float64{"requests": 2, "tokens": 0})

	got = map[string]float64{}
	for _, m := range family(t, mfs, "llmproxy_upstream_errors_total").Metric {
		got[labels(m, "connection")] = m.GetCounter().GetValue()
	}
	compare(t, "upstream_errors_total", got, map[string]float64{"fake-conn": 1})

	// Tokens by key name and model: the same sums as the usage ledger.
	tokens := map[string]float64{}
	for _, m := range family(t, mfs, "llmproxy_tokens_total").Metric {
		tokens[labels(m, "key", "model", "type")] = m.GetCounter().GetValue()
	}
	f.srv.Close()
	must(t, f.gw.Close())
	sums, err := f.store.SumUsage(context.Background(), llmproxy.UsageFilter{})
	must(t, err)
	want = map[string]float64{}
	names := map[string]string{"": metrics.MasterKeyLabel}
	for name, k := range f.keys {
		names[k.ID] = name
	}
	var records int64
	for _, s := range sums {
		records += s.Requests
		if s.PromptTokens > 0 {
			want[names[s.KeyID]+"|"+s.Model+"|prompt"] += float64(s.PromptTokens)
		}
		if s.CompletionTokens > 0 {
			want[names[s.KeyID]+"|"+s.Model+"|completion"] += float64(s.CompletionTokens)
		}
	}
	if want["Mobile-App|gpt-alias|prompt"] == 0 || want["(master)|gpt-alias|completion"] == 0 {
		t.Fatalf("the ledger lacks the usage the test expects: %+v", sums)
	}
	compare(t, "tokens_total", tokens, want)

	// The ledger: every record written (ok, stream, embeddings, refusals,
	// the upstream failure), none dropped.
	stats := f.gw.Stats()
	if stats.LedgerDropped != 0 || stats.LedgerWritten != records || records != 3+1+1+1+1+2+1 {
		t.Errorf("ledger: %+v, records summed %d", stats, records)
	}
}

func TestStatsCollector(t *testing.T) {
	f := newFixture(t)
	f.fake.SetDelay(0, 50*time.Millisecond)
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1/chat/completions", strings.NewReader(stream))
		req.Header.Set("Authorization", "Bearer "+keyApp)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// While the stream runs, the gauge shows it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := family(t, f.scrape(), "llmproxy_inflight_streams").Metric[0].GetGauge().GetValue()
		if v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inflight_streams = %v, want 1 during a stream", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := <-done; got != 200 {
		t.Fatalf("stream status %d", got)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		mfs := f.scrape()
		streams := family(t, mfs, "llmproxy_inflight_streams").Metric[0].GetGauge().GetValue()
		written := family(t, mfs, "llmproxy_ledger_written_total").Metric[0].GetCounter().GetValue()
		if streams == 0 && written == 1 {
			if d := family(t, mfs, "llmproxy_ledger_dropped_total").Metric[0].GetCounter().GetValue(); d != 0 {
				t.Errorf("dropped = %v", d)
			}
			if fl := family(t, mfs, "llmproxy_ledger_last_flush_seconds").Metric[0].GetGauge().GetValue(); fl <= 0 {
				t.Errorf("last flush = %v, want > 0 after a write", fl)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the stream: inflight_streams %v, ledger_written %v", streams, written)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLabelsSafe: label values are valid UTF-8 whatever an admin named a
// key, and registering twice is an error, not a panic.
func TestLabelsSafe(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	must(t, err)
	m.ObserveRequest(&llmproxy.RequestInfo{Route: "chat", Status: 200, Authenticated: true, KeyID: "k1", KeyName: "bad\xffname", Model: "m\xfe",
		Usage: llmproxy.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}})
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg); err == nil {
		t.Error("registering the metrics twice: no error")
	}
}

func family(t *testing.T, mfs map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
	return mf
}

// labels joins the values of the named labels with "|".
func labels(m *dto.Metric, names ...string) string {
	vals := make([]string, len(names))
	for i, n := range names {
		for _, l := range m.Label {
			if l.GetName() == n {
				vals[i] = l.GetValue()
			}
		}
	}
	return strings.Join(vals, "|")
}

func histCounts(t *testing.T, mfs map[string]*dto.MetricFamily, name string, by ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range family(t, mfs, name).Metric {
		out[labels(m, by...)] += float64(m.GetHistogram().GetSampleCount())
	}
	return out
}

func compare(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s{%s} = %v, want %v", what, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != 0 {
			t.Errorf("%s{%s} = %v, not expected", what, k, g)
		}
	}
}
