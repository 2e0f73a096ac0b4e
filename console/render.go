package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// The pages and the static files are embedded: the binary serves the
// console with no other file and no build step.
//
//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/*
var staticFiles embed.FS

// view is the data every page template is executed with; a page's own
// data is in Page.
type view struct {
	Title    string
	SignedIn bool   // a session, admin or key: the nav bar is shown
	Admin    bool   // master-key session
	KeyName  string // the signed-in virtual key's name, "" for admin
	KeyID    string
	CSRF     string
	Nav      string // active nav item: overview keys connections models usage requests
	Page     any    // the page's own data (*overviewPage etc.)
	Error    string // shown in role=alert
}

// staticFile is an embedded asset with its validator.
type staticFile struct {
	body        []byte
	contentType string
	etag        string // quoted
	version     string // the first hex digits of its SHA-256, for URLs
}

// loadStatic reads the embedded static files.
func loadStatic() (map[string]staticFile, error) {
	out := map[string]staticFile{}
	entries, err := fs.ReadDir(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := staticFiles.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		v := hex.EncodeToString(sum[:8])
		ct := "application/octet-stream"
		switch path.Ext(e.Name()) {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		out[e.Name()] = staticFile{body: b, contentType: ct, etag: `"` + v + `"`, version: v}
	}
	return out, nil
}

// serveStatic serves an embedded file. Its URLs carry the content's hash
// (see asset), so it may be cached for a year; the ETag answers a
// revalidation of a URL without one.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := c.static[r.PathValue("name")]
	if !ok {
		c.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	if r.Method != http.MethodHead {
		w.Write(f.body)
	}
}

// funcs are the template functions: the data pages' (pageFuncs) and
// these, whose names must not collide with them (a test checks).
func (c *Console) funcs() template.FuncMap {
	fm := template.FuncMap{}
	for k, v := range pageFuncs() {
		fm[k] = v
	}
	for k, v := range c.ownFuncs() {
		fm[k] = v
	}
	return fm
}

func (c *Console) ownFuncs() template.FuncMap {
	return template.FuncMap{
		// asset is the URL of a static file, versioned by its content.
		"asset": func(name string) (string, error) {
			f, ok := c.static[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return "/ui/static/" + name + "?v=" + f.version, nil
		},
		"dollars":  dollars,
		"isodate":  isoDate,
		"isotime":  isoTime,
		"duration": formatWindow,
	}
}

// dollars formats a dollar amount, e.g. a budget: "$50.00", "$0.125".
func dollars(usd float64) string {
	s := strconv.FormatFloat(usd, 'f', 2, 64)
	if r := strconv.FormatFloat(usd, 'f', -1, 64); len(r) > len(s) && !strings.Contains(r, "e") {
		s = r
	}
	return "$" + s
}

// isoDate is t's UTC date, or "never" for the zero time.
func isoDate(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

// isoTime is t in UTC to the minute, or "never" for the zero time.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// formatWindow writes a token window as it is typed: "1h", "30d", "90s".
func formatWindow(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// formatNumber writes f with at most six decimals and no trailing zeros.
func formatNumber(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e6)/1e6, 'f', -1, 64)
}

// parseTemplates builds one template set per page: layout.html with the
// page's file.
func (c *Console) parseTemplates() (map[string]*template.Template, error) {
	layout, err := templateFiles.ReadFile("templates/layout.html")
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(templateFiles, "templates")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" {
			continue
		}
		page, err := templateFiles.ReadFile("templates/" + e.Name())
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout").Funcs(c.funcs()).Parse(string(layout))
		if err == nil {
			_, err = t.New(name).Parse(string(page))
		}
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", e.Name(), err)
		}
		out[name] = t
	}
	return out, nil
}

// render executes page with v and writes it with status. The page is
// rendered to a buffer first, so that a template error is a clean 500
// and not half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := c.templates[page]
	if !ok {
		c.log.Error("console: no template", "page", page)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: rendering a page", "page", page, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// newView is the view of a page for session s (nil: signed out).
func newView(s *session, title, nav string, page any) *view {
	v := &view{Title: title, Nav: nav, Page: page}
	if s != nil {
		v.SignedIn, v.Admin, v.CSRF = true, s.admin, s.csrf
		if !s.admin {
			v.KeyName, v.KeyID = s.keyName, s.keyID
		}
	}
	return v
}

// errorPage answers status with the error page saying msg.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	v := newView(s, http.StatusText(status), "", nil)
	v.Error = msg
	c.render(w, r, status, "error", v)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.errorPage(w, r, c.currentSession(r), http.StatusNotFound, "There is no page at this address.")
}
