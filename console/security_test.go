package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCSRFRefused(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	k, _ := f.addKey("victim")
	for _, path := range []string{"/ui/keys", "/ui/keys/" + k.ID + "/revoke", "/ui/keys/" + k.ID + "/limits",
		"/ui/connections", "/ui/models/" + f.model.ID + "/delete", "/ui/logout"} {
		for name, token := range map[string]string{"missing": "", "wrong": "not-the-token"} {
			p := b.post(path, url.Values{"csrf": {token}, "name": {"forged"}})
			if p.status != http.StatusForbidden || !strings.Contains(p.alert(), "Invalid or missing CSRF token") {
				t.Errorf("POST %s with a %s token: %d %q; want 403 Invalid or missing CSRF token", path, name, p.status, p.alert())
			}
		}
	}
	if _, err := f.store.Key(context.Background(), k.ID); err != nil {
		t.Errorf("a forged revoke deleted the key: %v", err)
	}
}

func TestForeignOriginRefused(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	k, _ := f.addKey("victim")
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"null"}},
		{"Sec-Fetch-Site": {"cross-site"}},
	} {
		// With the right token: only the origin is wrong.
		p := b.postWith("/ui/keys/"+k.ID+"/revoke", nil, h, true)
		if p.status != http.StatusForbidden {
			t.Errorf("revoke with %v: %d, want 403", h, p.status)
		}
	}
	if _, err := f.store.Key(context.Background(), k.ID); err != nil {
		t.Fatalf("a cross-origin revoke deleted the key: %v", err)
	}
	same := http.Header{"Origin": {f.srv.URL}}
	if p := b.postWith("/ui/keys/"+k.ID+"/revoke", nil, same, true); p.status != http.StatusSeeOther {
		t.Errorf("revoke from the same origin: %d, want 303", p.status)
	}
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(testMaster)
	anon := f.browser()
	check := func(what string, p *page, page bool) {
		t.Helper()
		if got := p.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("%s: CSP %q", what, got)
		}
		if strings.Contains(p.header.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("%s: CSP allows unsafe-inline", what)
		}
		if p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: nosniff %q, referrer policy %q", what, p.header.Get("X-Content-Type-Options"), p.header.Get("Referrer-Policy"))
		}
		if page && p.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", what, p.header.Get("Cache-Control"))
		}
	}
	check("login", anon.get("/ui/login"), true)
	check("redirect", anon.get("/ui/keys"), false)
	check("wrong key", anon.login("nope"), true)
	check("404", admin.get("/ui/nothing/here"), true)
	check("405", admin.post("/ui/keys/new", nil), true)
	check("static", admin.get("/ui/static/app.css"), false)
	for _, path := range adminPages(f) {
		check(path, admin.get(path), true)
	}
}

// adminPages are the pages an admin can open in the fixture.
func adminPages(f *fixture) []string {
	return []string{"/ui/", "/ui/usage", "/ui/requests", "/ui/keys", "/ui/keys/new", "/ui/connections",
		"/ui/connections/new", "/ui/connections/" + f.conn.ID, "/ui/models", "/ui/models/new", "/ui/models/" + f.model.ID}
}

// TestPagesAreCSPClean parses every page: no inline script or style, no
// event-handler attribute, every form field labelled, every POST form
// with its CSRF token, a <main> landmark and lang="en".
func TestPagesAreCSPClean(t *testing.T) {
	f := newFixture(t)
	k, secret := f.addKey("team")
	admin := f.signedIn(testMaster)
	pages := map[string]*page{}
	for _, path := range append(adminPages(f), "/ui/keys/"+k.ID, "/ui/nothing") {
		pages[path] = admin.get(path)
	}
	pages["created"] = admin.postWith("/ui/keys", url.Values{"name": {"made"}, "connection": {"fake"}}, nil, false)
	pages["invalid"] = admin.post("/ui/keys", url.Values{"name": {""}, "connection": {"fake"}})
	pages["test"] = admin.post("/ui/models/"+f.model.ID+"/test", nil)
	pages["login"] = f.browser().get("/ui/login")
	pages["key session"] = f.signedIn(secret).get("/ui/keys/" + k.ID)
	for name, p := range pages {
		checkPage(t, name, p.body)
	}
}

func checkPage(t *testing.T, name, body string) {
	t.Helper()
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "<main") {
		t.Errorf("%s: no lang=en or no <main>", name)
	}
	if strings.Contains(strings.ToLower(body), "<style") {
		t.Errorf("%s: a <style> element", name)
	}
	ts := tags(body)
	labels := map[string]bool{}
	for _, tg := range ts {
		if tg.name == "label" {
			labels[tg.attrs["for"]] = true
		}
	}
	var inForm, postForm, hasToken bool
	for _, tg := range ts {
		for a, v := range tg.attrs {
			if a == "style" || strings.HasPrefix(a, "on") {
				t.Errorf("%s: <%s %s=%q>", name, tg.name, a, v)
			}
			if (a == "href" || a == "action" || a == "src") && strings.HasPrefix(strings.ToLower(v), "javascript:") {
				t.Errorf("%s: a javascript: URL", name)
			}
		}
		switch tg.name {
		case "script":
			if !strings.HasPrefix(tg.attrs["src"], "/ui/static/") {
				t.Errorf("%s: a script that is not one of the console's files: %v", name, tg.attrs)
			}
		case "form":
			if inForm && postForm && !hasToken {
				t.Errorf("%s: a POST form without its csrf field", name)
			}
			inForm, postForm, hasToken = true, strings.EqualFold(tg.attrs["method"], "post"), false
		case "input", "select", "textarea":
			if tg.attrs["name"] == "csrf" && tg.attrs["type"] == "hidden" {
				hasToken = true
			}
			if tg.attrs["type"] == "hidden" {
				continue
			}
			if id := tg.attrs["id"]; id == "" || !labels[id] {
				t.Errorf("%s: <%s name=%q> has no <label for>", name, tg.name, tg.attrs["name"])
			}
		}
	}
	if inForm && postForm && !hasToken {
		t.Errorf("%s: a POST form without its csrf field", name)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<script >") {
		t.Errorf("%s: an inline script", name)
	}
}
