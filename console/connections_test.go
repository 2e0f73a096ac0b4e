package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

func TestConnectionsAddEditRotateDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := f.signedIn(testMaster)
	const provKey, rotated = "sk-provider-first-key-abcdef", "sk-provider-rotated-key-ghijkl"
	f.secret(provKey)
	f.secret(rotated)

	p := b.get("/ui/connections")
	if p.status != 200 || !strings.Contains(p.body, `data-connection-id="`+f.conn.ID+`"`) || !strings.Contains(p.body, "<td>set</td>") {
		t.Fatalf("connections list: %d\n%s", p.status, p.body)
	}
	// Refused: the form comes back with the error, without the key typed.
	p = b.post("/ui/connections", url.Values{"name": {"oa"}, "provider": {"openai"}, "api_key": {provKey}, "idle_timeout": {"soon"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.alert(), "idle_timeout") {
		t.Errorf("a bad idle timeout: %d %q", p.status, p.alert())
	}
	p = b.post("/ui/connections", url.Values{"name": {"az"}, "provider": {"azure"}, "api_key": {provKey}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.alert(), "endpoint") {
		t.Errorf("azure without an endpoint: %d %q", p.status, p.alert())
	}
	if p := b.post("/ui/connections", url.Values{"name": {"fake"}, "provider": {"openai"}, "api_key": {provKey}}); p.status != http.StatusConflict {
		t.Errorf("a duplicate name: %d", p.status)
	}

	p = b.post("/ui/connections", url.Values{"name": {"oa"}, "provider": {"openai"}, "api_key": {provKey}, "idle_timeout": {"2m"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("add: %d %q", p.status, p.alert())
	}
	conn, err := f.admin.ConnectionByIDOrName(ctx, "oa")
	if err != nil {
		t.Fatal(err)
	}
	if conn.Credentials.APIKey != provKey || conn.Endpoint != "https://api.openai.com/v1" || conn.Settings["idle_timeout"] != "2m" {
		t.Errorf("stored %+v", conn)
	}
	if p.header.Get("Location") != "/ui/connections/"+conn.ID {
		t.Errorf("after add: to %q", p.header.Get("Location"))
	}
	p = b.get("/ui/connections/" + conn.ID)
	if p.status != 200 || !strings.Contains(p.body, `data-testid="api-key-state">set<`) || !strings.Contains(p.body, "New API key") {
		t.Errorf("connection page: %d", p.status)
	}

	// Rotate the key; the endpoint and settings stay.
	form := url.Values{"endpoint": {conn.Endpoint}, "api_key": {rotated}, "idle_timeout": {"2m"}, "first_byte_timeout": {""}, "api_version": {""}, "region": {""}}
	if p := b.post("/ui/connections/"+conn.ID, form); p.status != http.StatusSeeOther {
		t.Fatalf("rotate: %d %q", p.status, p.alert())
	}
	got, _ := f.store.Connection(ctx, conn.ID)
	if got.Credentials.APIKey != rotated || got.Settings["idle_timeout"] != "2m" || got.Endpoint != conn.Endpoint {
		t.Errorf("after rotating: %+v", got)
	}
	// An empty key field keeps the key; an emptied setting is removed.
	form = url.Values{"endpoint": {conn.Endpoint}, "api_key": {""}, "idle_timeout": {""}}
	if p := b.post("/ui/connections/"+conn.ID, form); p.status != http.StatusSeeOther {
		t.Fatalf("clear a setting: %d %q", p.status, p.alert())
	}
	got, _ = f.store.Connection(ctx, conn.ID)
	if got.Credentials.APIKey != rotated || got.Settings["idle_timeout"] != "" {
		t.Errorf("after clearing the setting: key kept %v, settings %v", got.Credentials.APIKey == rotated, got.Settings)
	}
	if p := b.post("/ui/connections/"+conn.ID, url.Values{"endpoint": {conn.Endpoint}}); p.status != http.StatusBadRequest || p.alert() == "" {
		t.Errorf("nothing changed: %d %q", p.status, p.alert())
	}
	if p := b.post("/ui/connections/"+conn.ID, url.Values{"endpoint": {"ftp://x"}}); p.status != http.StatusBadRequest || !strings.Contains(p.alert(), "endpoint") {
		t.Errorf("a bad endpoint: %d %q", p.status, p.alert())
	}

	// In use: refused with the CLI's message, shown on the page.
	p = b.post("/ui/connections/"+f.conn.ID+"/delete", nil)
	if p.status != http.StatusConflict || !strings.Contains(p.alert(), "still has models") {
		t.Errorf("delete in use: %d %q", p.status, p.alert())
	}
	if p := b.post("/ui/connections/"+conn.ID+"/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %q", p.status, p.alert())
	}
	if _, err := f.store.Connection(ctx, conn.ID); err == nil {
		t.Error("the connection is still there")
	}
	if p := b.get("/ui/connections/" + conn.ID); p.status != http.StatusNotFound {
		t.Errorf("a deleted connection's page: %d", p.status)
	}
	if cs, _ := f.store.Connections(ctx, llmproxy.ListOptions{}); len(cs) != 1 {
		t.Errorf("%d connections left", len(cs))
	}
}

// A connection's Test button sends the tiny request for its first model;
// a connection without models says so instead.
func TestConnectionTestButton(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	f.eventually("the gateway's first snapshot", func() bool { return f.chat(testMaster) == 200 })
	n := len(f.fake.Requests())
	p := b.post("/ui/connections/"+f.conn.ID+"/test", nil)
	if v, _ := p.dataValue("test-status"); p.status != 200 || v != "200" || !strings.Contains(p.body, "“gpt-test”") {
		t.Fatalf("test: %d status %q %q", p.status, v, p.alert())
	}
	if reqs := f.fake.Requests(); len(reqs) != n+1 || !strings.Contains(string(reqs[len(reqs)-1].Body), `"max_tokens":1`) {
		t.Errorf("%d upstream requests; want the one tiny request", len(reqs)-n)
	}
	empty := &llmproxy.Connection{Name: "empty", Provider: llmproxy.KindCompatible, Endpoint: f.fake.BaseURL(),
		Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	if err := f.admin.AddConnection(context.Background(), empty); err != nil {
		t.Fatal(err)
	}
	if p := b.post("/ui/connections/"+empty.ID+"/test", nil); p.status != http.StatusConflict || !strings.Contains(p.alert(), "no model") {
		t.Errorf("a connection without models: %d %q", p.status, p.alert())
	}
}
