package console

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

func TestNewNeedsAdminAndMasterKey(t *testing.T) {
	svc := &admin.Service{Storage: memory.New()}
	for _, cfg := range []Config{{MasterKey: "k"}, {Admin: svc}, {Admin: &admin.Service{}, MasterKey: "k"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := New(Config{Admin: svc, MasterKey: "k"}); err != nil {
		t.Error(err)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	for _, path := range []string{"/ui/nothing", "/ui/keys/a/b/c", "/ui/static/nothing.js"} {
		if p := b.get(path); p.status != http.StatusNotFound || !strings.Contains(p.body, "<main") {
			t.Errorf("GET %s: %d, want the 404 page", path, p.status)
		}
	}
	p := b.post("/ui/keys/new", nil)
	if p.status != http.StatusMethodNotAllowed || p.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/keys/new: %d, Allow %q", p.status, p.header.Get("Allow"))
	}
	req, _ := http.NewRequest("DELETE", f.srv.URL+"/ui/keys", nil)
	if p := b.do(req, true); p.status != http.StatusMethodNotAllowed || p.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("DELETE /ui/keys: %d, Allow %q", p.status, p.header.Get("Allow"))
	}
	if p := b.get("/ui/login"); p.status != 200 {
		t.Errorf("GET /ui/login signed in: %d", p.status)
	}
	if p := b.get("/ui/keys/x/revoke"); p.status != http.StatusMethodNotAllowed {
		t.Errorf("GET of a POST-only path: %d", p.status)
	}
}

func TestStaticFilesCached(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	login := b.get("/ui/login")
	for _, name := range []string{"app.css", "app.js"} {
		m := regexp.MustCompile(`"(/ui/static/` + regexp.QuoteMeta(name) + `\?v=[0-9a-f]+)"`).FindStringSubmatch(login.body)
		if m == nil {
			t.Fatalf("the page does not link %s by version", name)
		}
		p := b.get(m[1])
		if p.status != 200 || !strings.Contains(p.header.Get("Cache-Control"), "max-age=31536000") || p.header.Get("ETag") == "" {
			t.Fatalf("%s: %d, Cache-Control %q, ETag %q", name, p.status, p.header.Get("Cache-Control"), p.header.Get("ETag"))
		}
		req, _ := http.NewRequest("GET", f.srv.URL+m[1], nil)
		req.Header.Set("If-None-Match", p.header.Get("ETag"))
		if p := b.do(req, true); p.status != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", name, p.status)
		}
	}
}

// TestFuncNamesDoNotCollide: the console's template functions must not
// shadow the data pages' (pageFuncs).
func TestFuncNamesDoNotCollide(t *testing.T) {
	f := newFixture(t)
	pages := pageFuncs()
	for name := range f.c.ownFuncs() {
		if _, ok := pages[name]; ok {
			t.Errorf("template function %q is defined twice", name)
		}
	}
}

func TestDollars(t *testing.T) {
	for in, want := range map[float64]string{50: "$50.00", 0.125: "$0.125", 12.5: "$12.50", 1e-7: "$0.0000001"} {
		if got := dollars(in); got != want {
			t.Errorf("dollars(%v) = %q, want %q", in, got, want)
		}
	}
}
