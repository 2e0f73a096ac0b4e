package console

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/syncbuf"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const (
	testMaster  = "console-test-master-key-0123456789"
	upstreamKey = "sk-upstream-provider-secret-0123456789"
)

// fixture is a console over a memory store, with a real Gateway in
// front of a fake OpenAI upstream for the Test button. Every answer the
// tests read is kept, and scanned at the end for every secret.
type fixture struct {
	t     *testing.T
	store *memory.Store
	admin *admin.Service
	gw    *llmproxy.Gateway
	fake  *fakeopenai.Server
	c     *Console
	srv   *httptest.Server

	logs    syncbuf.Buffer // the Gateway's and the console's
	mu      sync.Mutex
	now     time.Time
	slept   []time.Duration
	bodies  []string
	secrets []string
	conn    *llmproxy.Connection
	model   *llmproxy.Model
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, store: memory.New(), now: time.Now().UTC().Truncate(time.Second)}
	f.fake = fakeopenai.New(t, upstreamKey)
	providers := map[string]llmproxy.NewProviderFunc{llmproxy.KindOpenAI: openai.New, llmproxy.KindCompatible: openai.New}
	f.admin = &admin.Service{Storage: f.store, Providers: providers}
	ctx := context.Background()
	f.conn = &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: f.fake.BaseURL(),
		Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	if err := f.admin.AddConnection(ctx, f.conn); err != nil {
		t.Fatal(err)
	}
	f.model = &llmproxy.Model{Name: "gpt-test", Remote: "gpt-4o-mini", ConnectionID: f.conn.ID,
		Price: &pricing.Price{Input: 1, Output: 2, CachedInput: 0.5}}
	if err := f.admin.AddModel(ctx, f.model); err != nil {
		t.Fatal(err)
	}
	var err error
	f.gw, err = llmproxy.New(llmproxy.Config{Storage: f.store, Providers: providers, MasterKey: testMaster,
		Logger: slog.New(slog.NewTextHandler(&f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.c, err = New(Config{Admin: f.admin, Gateway: f.gw, MasterKey: testMaster, Now: f.clock,
		Logger: slog.New(slog.NewTextHandler(&f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.c.sleep = func(_ context.Context, d time.Duration) {
		f.mu.Lock()
		f.slept = append(f.slept, d)
		f.mu.Unlock()
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", f.c)
	f.srv = httptest.NewServer(mux)
	f.secrets = []string{testMaster, upstreamKey}
	t.Cleanup(func() {
		f.srv.Close()
		f.gw.Close()
		f.scanSecrets()
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs.String())
		}
	})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// addKey adds a key with the CLI's semantics and returns it and its
// secret, which the final scan then looks for.
func (f *fixture) addKey(name string, as ...llmproxy.Assignment) (*llmproxy.VirtualKey, string) {
	f.t.Helper()
	if len(as) == 0 {
		as = []llmproxy.Assignment{{ConnectionID: f.conn.ID}}
	}
	k := &llmproxy.VirtualKey{Name: name, Assignments: as}
	secret, err := f.admin.AddKey(context.Background(), k, "")
	if err != nil {
		f.t.Fatal(err)
	}
	f.secret(secret)
	return k, secret
}

func (f *fixture) secret(s string) {
	f.mu.Lock()
	f.secrets = append(f.secrets, s)
	f.mu.Unlock()
}

// scanSecrets fails the test if an answer held a secret. The page that
// created a key is the one exception, and is not kept (see browser.post).
func (f *fixture) scanSecrets() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bodies {
		for _, s := range f.secrets {
			if strings.Contains(b, s) {
				f.t.Errorf("an answer holds the secret %.6s…:\n%.400s", s, b)
			}
		}
	}
}

// browser is one browser: a cookie jar, redirects not followed.
type browser struct {
	f      *fixture
	client *http.Client
	csrf   string // the session's token, read from the last page
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is an answer.
type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request, keep bool) *page {
	b.f.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	if keep {
		b.f.mu.Lock()
		b.f.bodies = append(b.f.bodies, p.body, headerText(resp.Header))
		b.f.mu.Unlock()
	}
	return p
}

func headerText(h http.Header) string {
	var sb strings.Builder
	h.Write(&sb)
	return sb.String()
}

func (b *browser) get(path string) *page {
	b.f.t.Helper()
	req, _ := http.NewRequest("GET", b.f.srv.URL+path, nil)
	return b.do(req, true)
}

// post submits form to path with the session's CSRF token, unless form
// sets csrf itself.
func (b *browser) post(path string, form url.Values) *page {
	b.f.t.Helper()
	return b.postWith(path, form, nil, true)
}

func (b *browser) postWith(path string, form url.Values, header http.Header, keep bool) *page {
	b.f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return b.do(req, keep)
}

// login signs in with key, the way the form does.
func (b *browser) login(key string) *page {
	b.f.t.Helper()
	b.get("/ui/login")
	return b.post("/ui/login", url.Values{"key": {key}})
}

// signedIn returns a browser signed in with key.
func (f *fixture) signedIn(key string) *browser {
	f.t.Helper()
	b := f.browser()
	if p := b.login(key); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		f.t.Fatalf("sign-in: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
	b.get("/ui/") // the session's CSRF token
	return b
}

// alert is the text of the page's role="alert" element.
var alertRE = regexp.MustCompile(`(?s)role="alert"[^>]*>(.*?)</`)

func (p *page) alert() string {
	if m := alertRE.FindStringSubmatch(p.body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// dataValue returns the data-value of the element with data-testid id.
func (p *page) dataValue(id string) (string, bool) {
	re := regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(id) + `"[^>]*data-value="([^"]*)"`)
	if m := re.FindStringSubmatch(p.body); m != nil {
		return m[1], true
	}
	return "", false
}

// tag is one start tag of a page.
type tag struct {
	name  string
	attrs map[string]string
}

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>` + "`" + `]+))?)*)\s*/?>`)
	attrRE = regexp.MustCompile(`([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>` + "`" + `]+)))?`)
)

// tags lists the start tags of an HTML page with their attributes.
func tags(body string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatch(body, -1) {
		t := tag{name: strings.ToLower(m[1]), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			t.attrs[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3] + a[4])
		}
		out = append(out, t)
	}
	return out
}

// eventually waits up to 2 s (the Gateway's promise for a change) for
// ok.
func (f *fixture) eventually(what string, ok func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 2 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
