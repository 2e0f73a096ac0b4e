package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

func TestLoginMasterKey(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	p := b.get("/ui/login")
	if p.status != 200 {
		t.Fatalf("GET /ui/login: %d", p.status)
	}
	for _, want := range []string{`<form method="post" action="/ui/login">`, `<label for="key">Key</label>`,
		`<input id="key" name="key" type="password" autocomplete="current-password"`, `<button type="submit">Sign in</button>`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	p = b.post("/ui/login", url.Values{"key": {testMaster}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in: %d to %q", p.status, p.header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/ui/" || session.Secure {
		t.Errorf("session cookie over plain HTTP: %+v, want HttpOnly, SameSite=Strict, Path=/ui/, not Secure", session)
	}
	if len(session.Value) < 43 {
		t.Errorf("session id %d characters: want 32 random bytes", len(session.Value))
	}
	if p := b.get("/ui/keys"); p.status != 200 {
		t.Fatalf("keys page after sign-in: %d", p.status)
	}
	// Sign out: the session is gone on the server, not only the cookie.
	p = b.post("/ui/logout", nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Fatalf("sign-out: %d to %q", p.status, p.header.Get("Location"))
	}
	replay := f.browser()
	u, _ := url.Parse(f.srv.URL + "/ui/")
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: session.Value}})
	if p := replay.get("/ui/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Errorf("the signed-out session still works: %d", p.status)
	}
}

func TestSecureCookieBehindTLS(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/ui/login")
	h := http.Header{"X-Forwarded-Proto": {"https"}}
	p := b.postWith("/ui/login", url.Values{"key": {testMaster}}, h, true)
	if !strings.Contains(p.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("behind TLS the session cookie is not Secure: %s", p.header.Get("Set-Cookie"))
	}
}

func TestLoginWrongKeyIsSlowedThenRefused(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	want := []time.Duration{1, 2, 4, 8, 8, 8, 8, 8, 8, 8}
	for i, d := range want {
		p := b.login("wrong-key-" + string(rune('a'+i)))
		if p.status != http.StatusUnauthorized || p.alert() != "Wrong key" {
			t.Fatalf("attempt %d: %d, alert %q; want 401 Wrong key", i+1, p.status, p.alert())
		}
		if got := f.slept[len(f.slept)-1]; got != d*time.Second {
			t.Errorf("attempt %d answered after %v, want %v", i+1, got, d*time.Second)
		}
	}
	// The 11th attempt, even with the right key, is refused unchecked.
	p := b.login(testMaster)
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("after 10 failures: %d, Retry-After %q; want 429 with Retry-After", p.status, p.header.Get("Retry-After"))
	}
	if len(f.slept) != 10 {
		t.Errorf("the refused attempt waited too: %v", f.slept)
	}
	// 15 minutes after the first failure, one more attempt is allowed.
	f.advance(15*time.Minute + time.Second)
	if p := b.login(testMaster); p.status != http.StatusSeeOther {
		t.Fatalf("after the window: %d, want 303", p.status)
	}
	// A success resets the count: the next failure waits 1 s again.
	b2 := f.browser()
	b2.login("wrong")
	if got := f.slept[len(f.slept)-1]; got != time.Second {
		t.Errorf("after a success the next failure waited %v, want 1s", got)
	}
}

func TestLoginCSRF(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/ui/login")
	for name, form := range map[string]url.Values{
		"missing": {"key": {testMaster}, "csrf": {""}},
		"wrong":   {"key": {testMaster}, "csrf": {"forged-token"}},
	} {
		p := b.post("/ui/login", form)
		if p.status != http.StatusForbidden || !strings.Contains(p.alert(), "Invalid or missing CSRF token") {
			t.Errorf("%s login token: %d %q, want 403 Invalid or missing CSRF token", name, p.status, p.alert())
		}
	}
	// Without the cookie (a form posted from elsewhere), the field alone
	// does not do.
	other := f.browser()
	if p := other.post("/ui/login", url.Values{"key": {testMaster}, "csrf": {b.csrf}}); p.status != http.StatusForbidden {
		t.Errorf("login token without its cookie: %d, want 403", p.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	f.advance(11 * time.Hour)
	if p := b.get("/ui/keys"); p.status != 200 {
		t.Fatalf("after 11 h idle: %d", p.status)
	}
	f.advance(11 * time.Hour)
	if p := b.get("/ui/keys"); p.status != 200 {
		t.Fatalf("used 11 h ago, 22 h old: %d", p.status)
	}
	f.advance(2 * time.Hour)
	if p := b.get("/ui/keys"); p.status != http.StatusSeeOther {
		t.Fatalf("24 h after sign-in: %d, want a redirect to sign in", p.status)
	}
	b = f.signedIn(testMaster)
	f.advance(12 * time.Hour)
	if p := b.get("/ui/"); p.status != http.StatusSeeOther {
		t.Fatalf("12 h idle: %d, want a redirect to sign in", p.status)
	}
}

func TestVirtualKeySessionEndsWithTheKey(t *testing.T) {
	f := newFixture(t)
	k, secret := f.addKey("team-a")
	b := f.signedIn(secret)
	if p := b.get("/ui/keys/" + k.ID); p.status != 200 {
		t.Fatalf("own key page: %d", p.status)
	}
	// Deleted elsewhere (the CLI): the session stops at once.
	if _, err := f.admin.DeleteKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/ui/"); p.status != http.StatusSeeOther {
		t.Errorf("after the key was deleted: %d, want a redirect to sign in", p.status)
	}
	if p := f.browser().login(secret); p.status != http.StatusUnauthorized {
		t.Errorf("a deleted key signs in: %d", p.status)
	}

	// An expired key: its session ends and it cannot sign in.
	exp := f.clock().Add(time.Hour)
	k2 := &llmproxy.VirtualKey{Name: "team-b", ExpiresAt: exp, Assignments: []llmproxy.Assignment{{ConnectionID: f.conn.ID}}}
	secret2, err := f.admin.AddKey(context.Background(), k2, "")
	if err != nil {
		t.Fatal(err)
	}
	f.secret(secret2)
	b2 := f.signedIn(secret2)
	f.advance(time.Hour)
	if p := b2.get("/ui/"); p.status != http.StatusSeeOther {
		t.Errorf("after the key expired: %d, want a redirect to sign in", p.status)
	}
	if p := f.browser().login(secret2); p.status != http.StatusUnauthorized {
		t.Errorf("an expired key signs in: %d", p.status)
	}
}

func TestSignedOutPagesRedirect(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, path := range []string{"/ui/", "/ui/keys", "/ui/usage", "/ui/requests", "/ui/models/x"} {
		if p := b.get(path); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s signed out: %d to %q", path, p.status, p.header.Get("Location"))
		}
	}
	// A change without a session is refused, not redirected.
	if p := b.post("/ui/keys", url.Values{"name": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("POST /ui/keys signed out: %d, want 403", p.status)
	}
}
