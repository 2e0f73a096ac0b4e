package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/pricing"
)

func TestModelsAddEditDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := f.signedIn(testMaster)
	p := b.get("/ui/models")
	if p.status != 200 || !strings.Contains(p.body, `data-model-id="`+f.model.ID+`"`) || !strings.Contains(p.body, "$1.00 in · $2.00 out") {
		t.Fatalf("models list: %d\n%s", p.status, p.body)
	}
	for _, tc := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"name": {"m"}, "connection": {"fake"}}, "remote"},
		{url.Values{"remote": {"r"}, "connection": {"fake"}}, "name"},
		{url.Values{"name": {"m"}, "remote": {"r"}, "connection": {"fake"}, "input_price": {"1"}}, "Output price"},
		{url.Values{"name": {"m"}, "remote": {"r"}, "connection": {"fake"}, "input_price": {"x"}, "output_price": {"1"}}, "Input price"},
		{url.Values{"name": {"m"}, "remote": {"r"}, "connection": {"fake"}, "input_price": {"1"}, "output_price": {"-1"}}, "Output price"},
		{url.Values{"name": {"m"}, "remote": {"r"}, "connection": {"nope"}}, "connection"},
	} {
		p := b.post("/ui/models", tc.form)
		if p.status != http.StatusBadRequest || !strings.Contains(p.alert(), tc.field) {
			t.Errorf("%v: %d %q, want 400 naming %s", tc.form, p.status, p.alert(), tc.field)
		}
	}
	if p := b.post("/ui/models", url.Values{"name": {"gpt-test"}, "remote": {"r"}, "connection": {"fake"}}); p.status != http.StatusConflict {
		t.Errorf("a duplicate alias: %d", p.status)
	}
	p = b.post("/ui/models", url.Values{"name": {"cheap"}, "remote": {"gpt-4o-mini"}, "connection": {"fake"},
		"input_price": {"0.15"}, "output_price": {"0.6"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("add: %d %q", p.status, p.alert())
	}
	id := strings.TrimPrefix(p.header.Get("Location"), "/ui/models/")
	m, err := f.store.Model(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// As model add --input-price 0.15 --output-price 0.6 stores it.
	if want := (pricing.Price{Input: 0.15, Output: 0.6, CachedInput: 0.15}); m.Price == nil || *m.Price != want {
		t.Errorf("price %+v, want %+v", m.Price, want)
	}
	p = b.post("/ui/models/"+id, url.Values{"input_price": {"0.2"}, "output_price": {"0.8"}, "cached_input_price": {"0.05"}, "cache_write_price": {"0.25"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("edit prices: %d %q", p.status, p.alert())
	}
	m, _ = f.store.Model(ctx, id)
	if want := (pricing.Price{Input: 0.2, Output: 0.8, CachedInput: 0.05, CacheWrite: 0.25}); *m.Price != want {
		t.Errorf("price %+v, want %+v", *m.Price, want)
	}
	if p := b.get("/ui/models/" + id); !strings.Contains(p.body, `id="cached_input_price" name="cached_input_price" inputmode="decimal" value="0.05"`) {
		t.Error("the edit form does not show the prices")
	}
	// All empty: back to the price table.
	if p := b.post("/ui/models/"+id, url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("clear prices: %d %q", p.status, p.alert())
	}
	if m, _ = f.store.Model(ctx, id); m.Price != nil {
		t.Errorf("price not cleared: %+v", m.Price)
	}
	if p := b.post("/ui/models/"+id, url.Values{}); p.status != http.StatusBadRequest || p.alert() == "" {
		t.Errorf("clearing no price: %d %q", p.status, p.alert())
	}

	// A model a key is assigned cannot be deleted.
	f.addKey("user", llmproxy.Assignment{ModelID: id})
	p = b.post("/ui/models/"+id+"/delete", nil)
	if p.status != http.StatusConflict || !strings.Contains(p.alert(), "assigned to keys") {
		t.Errorf("delete in use: %d %q", p.status, p.alert())
	}
	id2 := f.model.ID
	if p := b.post("/ui/models/"+id2+"/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %q", p.status, p.alert())
	}
	if p := b.get("/ui/models/" + id2); p.status != http.StatusNotFound {
		t.Errorf("a deleted model's page: %d", p.status)
	}
}

func TestModelTestButton(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	f.eventually("the gateway's first snapshot", func() bool { return f.chat(testMaster) == 200 })
	n := len(f.fake.Requests())
	p := b.post("/ui/models/"+f.model.ID+"/test", nil)
	if p.status != 200 {
		t.Fatalf("test: %d %q", p.status, p.alert())
	}
	if v, _ := p.dataValue("test-status"); v != "200" {
		t.Errorf("test-status %q, want 200", v)
	}
	if v, ok := p.dataValue("test-latency"); !ok || v == "" {
		t.Error("no test-latency")
	}
	reqs := f.fake.Requests()
	if len(reqs) != n+1 {
		t.Fatalf("%d upstream requests, want 1", len(reqs)-n)
	}
	last := reqs[len(reqs)-1]
	if last.Path != "/v1/chat/completions" || !strings.Contains(string(last.Body), `"max_tokens":1`) {
		t.Errorf("the test request: %s %s", last.Path, last.Body)
	}

	// An upstream error is shown with its status, the provider's key
	// removed from its message.
	f.fake.SetAnswer(func(fakeopenai.Request) *fakeopenai.Answer {
		return fakeopenai.ErrorAnswer(http.StatusUnauthorized, "Incorrect API key provided: "+upstreamKey)
	})
	p = b.post("/ui/models/"+f.model.ID+"/test", nil)
	if v, _ := p.dataValue("test-status"); v == "200" || v == "" {
		t.Errorf("test-status %q after an upstream error", v)
	}
	if strings.Contains(p.body, upstreamKey) {
		t.Error("the provider's key is on the page")
	}
}

func TestEmbeddingModelTest(t *testing.T) {
	f := newFixture(t)
	m := &llmproxy.Model{Name: "embed", Remote: "text-embedding-3-small", ConnectionID: f.conn.ID}
	if err := f.admin.AddModel(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	b := f.signedIn(testMaster)
	f.eventually("the model on the gateway", func() bool {
		p := b.post("/ui/models/"+m.ID+"/test", nil)
		v, _ := p.dataValue("test-status")
		return v == "200"
	})
	if last := f.fake.Last(); last.Path != "/v1/embeddings" {
		t.Errorf("an embedding model was tested at %s", last.Path)
	}
}
