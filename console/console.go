// Package console is llm-proxy's web console, served under /ui/: spend
// and traffic (overview, usage, recent requests) and the management of
// virtual keys, connections and models, in server-rendered pages with a
// little progressive JavaScript.
//
// Signing in takes the master key (every page) or a virtual key's secret
// (that key's own usage, limits and budget). Sessions live in memory;
// every change is a POST carrying the session's CSRF token, and every
// change goes through admin.Service, so the console validates exactly as
// the CLI and the admin API do. No page ever shows a provider key, the
// master key, or a key's secret (but once, on the page that created it).
//
// Mount it at /ui/ beside the Gateway:
//
//	c, err := console.New(console.Config{Admin: svc, Storage: store, Gateway: gw, MasterKey: key})
//	mux.Handle("/ui/", c)
package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// Prefix is the path under which the console serves; mount it at
// Prefix + "/".
const Prefix = "/ui"

// Config configures the console.
type Config struct {
	// Admin makes every change, with the CLI's validation. Required.
	Admin *admin.Service
	// Storage is read for the pages. It should implement
	// llmproxy.UsageReporter and llmproxy.TrafficReporter (every standard
	// backend does): the charts and tables read the rollups, never the
	// raw ledger over long ranges. Nil means Admin.Storage.
	Storage llmproxy.Storage
	// Gateway serves the models page's "Test" button: one tiny request,
	// sent in-process with the master key. Nil turns the button off.
	Gateway http.Handler
	// MasterKey signs an admin in. Required: without it there is no
	// admin, and New fails.
	MasterKey string
	// Logger receives internal errors and sign-ins, never a secret. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Console is the web console, an http.Handler for the paths under
// /ui/. It sees the full path (mount it without http.StripPrefix).
type Console struct {
	admin     *admin.Service
	storage   llmproxy.Storage
	gateway   http.Handler
	masterKey string // only ever sent to the Gateway, by the Test button
	master    [sha256.Size]byte
	log       *slog.Logger
	now       func() time.Time
	// sleep waits out a failed sign-in's delay; tests replace it.
	sleep func(ctx context.Context, d time.Duration)

	sessions  *sessionStore
	throttle  *loginThrottle
	templates map[string]*template.Template
	static    map[string]staticFile
	mux       *http.ServeMux
}

// New returns the console, or an error when cfg lacks what it needs.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Admin == nil:
		return nil, errors.New("console: Config.Admin is required")
	case cfg.MasterKey == "":
		return nil, errors.New("console: Config.MasterKey is required: without it no one can sign in as admin")
	}
	c := &Console{
		admin:     cfg.Admin,
		storage:   cfg.Storage,
		gateway:   cfg.Gateway,
		masterKey: cfg.MasterKey,
		master:    sha256.Sum256([]byte(cfg.MasterKey)),
		log:       cfg.Logger,
		now:       cfg.Now,
		sleep:     sleepCtx,
		sessions:  newSessionStore(),
		throttle:  newLoginThrottle(),
		mux:       http.NewServeMux(),
	}
	if c.storage == nil {
		c.storage = cfg.Admin.Storage
	}
	if c.storage == nil {
		return nil, errors.New("console: no Storage (neither Config.Storage nor Config.Admin.Storage)")
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	var err error
	if c.static, err = loadStatic(); err != nil {
		return nil, err
	}
	if c.templates, err = c.parseTemplates(); err != nil {
		return nil, err
	}
	for _, rt := range c.routes() {
		c.mux.Handle(rt.pattern, rt.h)
	}
	c.mux.HandleFunc(Prefix+"/", c.unrouted)
	return c, nil
}

type route struct {
	pattern string
	h       http.Handler
}

// routes is every page and action of the console.
func (c *Console) routes() []route {
	anyone, adminOnly := false, true
	return []route{
		{"GET /ui/static/{name}", http.HandlerFunc(c.serveStatic)},
		{"GET /ui/login", http.HandlerFunc(c.loginPage)},
		{"POST /ui/login", http.HandlerFunc(c.login)},
		{"POST /ui/logout", c.change(anyone, c.logout)},

		{"GET /ui/{$}", c.page(anyone, c.overview)},
		{"GET /ui/usage", c.page(anyone, c.usage)},
		{"GET /ui/usage.csv", c.page(anyone, c.usageCSV)},
		{"GET /ui/requests", c.page(anyone, c.requests)},

		{"GET /ui/keys", c.page(adminOnly, c.keys)},
		{"GET /ui/keys/new", c.page(adminOnly, c.newKey)},
		{"POST /ui/keys", c.change(adminOnly, c.createKey)},
		{"GET /ui/keys/{id}", c.page(anyone, c.key)},
		{"POST /ui/keys/{id}/limits", c.change(adminOnly, c.updateKeyLimits)},
		{"POST /ui/keys/{id}/revoke", c.change(adminOnly, c.revokeKey)},

		{"GET /ui/connections", c.page(adminOnly, c.connections)},
		{"GET /ui/connections/new", c.page(adminOnly, c.newConnection)},
		{"POST /ui/connections", c.change(adminOnly, c.createConnection)},
		{"GET /ui/connections/{id}", c.page(adminOnly, c.connection)},
		{"POST /ui/connections/{id}", c.change(adminOnly, c.updateConnection)},
		{"POST /ui/connections/{id}/delete", c.change(adminOnly, c.deleteConnection)},

		{"GET /ui/models", c.page(adminOnly, c.models)},
		{"GET /ui/models/new", c.page(adminOnly, c.newModel)},
		{"POST /ui/models", c.change(adminOnly, c.createModel)},
		{"GET /ui/models/{id}", c.page(adminOnly, c.model)},
		{"POST /ui/models/{id}", c.change(adminOnly, c.updateModel)},
		{"POST /ui/models/{id}/delete", c.change(adminOnly, c.deleteModel)},
		{"POST /ui/models/{id}/test", c.change(adminOnly, c.testModel)},
		{"POST /ui/connections/{id}/test", c.change(adminOnly, c.testConnection)},
	}
}

// ServeHTTP serves the console's pages, every answer with the security
// headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	c.mux.ServeHTTP(w, r)
}

// unrouted answers what no route took: 405 with Allow when the path has
// routes for other methods, else 404.
func (c *Console) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := c.mux.Handler(probe); p != "" && p != Prefix+"/" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) == 0 || slices.Contains(allow, r.Method) {
		c.notFound(w, r)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	c.errorPage(w, r, c.currentSession(r), http.StatusMethodNotAllowed,
		"This address does not take "+r.Method+" requests; use "+strings.Join(allow, " or ")+".")
}

// handler is a page or an action of a signed-in session.
type handler func(w http.ResponseWriter, r *http.Request, s *session)

// page serves a GET page to a signed-in session; a signed-out browser
// goes to the sign-in page, and a key's session gets 403 for an
// admin-only page.
func (c *Console) page(adminOnly bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.currentSession(r)
		if s == nil {
			http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
			return
		}
		if adminOnly && !s.admin {
			c.errorPage(w, r, s, http.StatusForbidden, "This page is for the admin only.")
			return
		}
		h(w, r, s)
	})
}

// maxForm caps a form's body: the console's forms are small.
const maxForm = 64 << 10

// change serves a POST that changes something: it needs a session, the
// session's CSRF token in the form, and no foreign Origin.
func (c *Console) change(adminOnly bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			c.errorPage(w, r, nil, http.StatusBadRequest, "The form could not be read.")
			return
		}
		s := c.currentSession(r)
		if s == nil || !tokenEqual(r.PostForm.Get("csrf"), s.csrf) {
			c.errorPage(w, r, s, http.StatusForbidden, msgCSRF)
			return
		}
		if !sameOrigin(r) {
			c.errorPage(w, r, s, http.StatusForbidden, msgOrigin)
			return
		}
		if adminOnly && !s.admin {
			c.errorPage(w, r, s, http.StatusForbidden, "Only the admin may make this change.")
			return
		}
		if g, ok := c.gateway.(refresher); ok {
			w = &refreshWriter{ResponseWriter: w, refresh: func() {
				if err := g.Refresh(r.Context()); err != nil {
					c.log.Warn("console: the gateway did not reload after a change; it will at its next poll", "err", err)
				}
			}}
		}
		h(w, r, s)
	})
}

// refresher is a Gateway that can reload its configuration now
// (*llmproxy.Gateway), instead of at its next poll.
type refresher interface {
	Refresh(ctx context.Context) error
}

// refreshWriter reloads the Gateway before a change's answer starts,
// unless the answer is an error: a key created on the console works the
// moment its secret is on the page, and a revoked one stops at once (on
// this replica; the others poll).
type refreshWriter struct {
	http.ResponseWriter
	refresh func()
	started bool
}

func (w *refreshWriter) WriteHeader(code int) {
	if !w.started {
		w.started = true
		if code < 400 {
			w.refresh()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refreshWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// fail answers err of an operation: a user's mistake with its message
// and status, anything else as a 500 that says nothing of the cause
// (which is logged).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := errorStatus(err)
	if status == http.StatusInternalServerError {
		c.log.Error("console: internal error", "path", r.URL.Path, "err", err)
	}
	c.errorPage(w, r, s, status, msg)
}

// errorStatus maps an admin or page error to its status and the message
// a user sees. Only the errors admin.Service and the pages write for
// users (the sentinel kinds) are shown as they are.
func errorStatus(err error) (int, string) {
	var fe *formError
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, fe.Error()
	case errors.Is(err, llmproxy.ErrInvalid):
		return http.StatusBadRequest, userMessage(err)
	case errors.Is(err, llmproxy.ErrNotFound):
		return http.StatusNotFound, userMessage(err)
	case errors.Is(err, llmproxy.ErrAlreadyExists), errors.Is(err, llmproxy.ErrInUse):
		return http.StatusConflict, userMessage(err)
	}
	return http.StatusInternalServerError, "Something went wrong; the server's log says what."
}

// formErrorStatus is errorStatus for a form that names other records:
// one that does not exist is a bad value of the form (400), not a
// missing page.
func formErrorStatus(err error) (int, string) {
	status, msg := errorStatus(err)
	if status == http.StatusNotFound {
		status = http.StatusBadRequest
	}
	return status, msg
}

// userMessage is err's message without the sentinel's "invalid: "
// prefix that llmproxy's own errors carry.
func userMessage(err error) string {
	msg := err.Error()
	for _, k := range []error{llmproxy.ErrInvalid, llmproxy.ErrNotFound, llmproxy.ErrAlreadyExists, llmproxy.ErrInUse} {
		msg = strings.TrimPrefix(msg, k.Error()+": ")
	}
	return msg
}

// formError is a form field's bad value, named by its label.
type formError struct {
	field, msg string
}

func (e *formError) Error() string { return e.field + ": " + e.msg }

func fieldError(field, msg string) error { return &formError{field, msg} }

// env is what the data pages read.
func (c *Console) env() pageEnv {
	return pageEnv{Storage: c.storage, Admin: c.admin, Now: c.now()}
}

// scope is the key whose data a session may see: "" (every key) for the
// admin.
func scope(s *session) string {
	if s.admin {
		return ""
	}
	return s.keyID
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	p, err := loadOverview(r.Context(), c.env(), scope(s), r.URL.Query())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "overview", newView(s, "Overview", "overview", p))
}

func (c *Console) usage(w http.ResponseWriter, r *http.Request, s *session) {
	p, err := loadUsage(r.Context(), c.env(), scope(s), r.URL.Query())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "usage", newView(s, "Usage", "usage", p))
}

func (c *Console) usageCSV(w http.ResponseWriter, r *http.Request, s *session) {
	var buf strings.Builder
	if err := writeUsageCSV(r.Context(), &buf, c.env(), scope(s), r.URL.Query()); err != nil {
		c.fail(w, r, s, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="usage.csv"`)
	h.Set("Cache-Control", "no-store")
	w.Write([]byte(buf.String()))
}

func (c *Console) requests(w http.ResponseWriter, r *http.Request, s *session) {
	p, err := loadRequests(r.Context(), c.env(), scope(s), r.URL.Query())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "requests", newView(s, "Requests", "requests", p))
}
