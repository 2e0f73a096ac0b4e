// Package adminapi is the gateway's admin REST API under /admin/v1:
// connections, models, virtual keys, their assignments and limits, and
// usage — the operations of the llm-proxy CLI, run by the same
// admin.Service code, with JSON bodies. It is a plain http.Handler,
// separate from the Gateway, so that a service embedding the Gateway
// mounts it where it likes (or not at all):
//
//	mux.Handle("/admin/v1/", adminapi.New(adminapi.Config{Admin: &admin.Service{Storage: store}, MasterKey: key}))
//	mux.Handle("/", gw)
//
// Every request must carry the master key as "Authorization: Bearer …":
// without a key the answer is 401, with any other key 403. Errors are
// answered in OpenAI's error shape ({"error":{"message","type","param",
// "code"}}): 400 for invalid input, 404 for a missing record, 409 for a
// duplicate or a record still in use. The OpenAPI 3.1 document of every
// route is served at /admin/v1/openapi.json.
//
// Changes are written to the Storage; running Gateways pick them up at
// their next poll, as they do the CLI's.
package adminapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// Prefix is the path under which the API serves.
const Prefix = "/admin/v1"

// Config configures the admin API.
type Config struct {
	// Admin runs the operations. Required.
	Admin *admin.Service
	// MasterKey is the only key the API accepts. When empty, every
	// request is refused (403): the API is off.
	MasterKey string
	// Logger receives one line per change made, and internal errors;
	// never a secret. Nil discards.
	Logger *slog.Logger
}

// maxBody caps a request body: admin records are small.
const maxBody = 1 << 20

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

type handler struct {
	admin  *admin.Service
	master [32]byte
	on     bool
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns the admin API handler. It serves the paths under Prefix;
// mount it at Prefix + "/".
func New(cfg Config) http.Handler {
	h := &handler{admin: cfg.Admin, log: cfg.Logger, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.MasterKey != "" && cfg.Admin != nil {
		h.master, h.on = sha256.Sum256([]byte(cfg.MasterKey)), true
	}
	for _, r := range h.routes() {
		h.mux.Handle(Prefix+r.path, r.methods)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &llmproxy.Error{Status: http.StatusNotFound, Type: llmproxy.TypeNotFound, Code: "unknown_url",
			Message: fmt.Sprintf("no admin route %s %s; see %s/openapi.json", r.Method, sanitize(r.URL.Path), Prefix)})
	})
	return h
}

// route is a path and the operation of each method on it.
type route struct {
	path    string
	methods methods
}

// methods dispatches on the method and answers 405 (in JSON, with Allow)
// for the others.
type methods map[string]func(w http.ResponseWriter, r *http.Request) error

func (ms methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := ms[r.Method]
	if !ok && r.Method == http.MethodHead {
		f, ok = ms[http.MethodGet]
	}
	if !ok {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
			if ms[m] != nil {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &llmproxy.Error{Status: http.StatusMethodNotAllowed, Type: llmproxy.TypeInvalidRequest, Code: "method_not_allowed",
			Message: fmt.Sprintf("method %s is not allowed on %s; use %s", sanitize(r.Method), sanitize(r.URL.Path), strings.Join(allow, " or "))})
		return
	}
	if err := f(w, r); err != nil {
		writeError(w, err)
	}
}

func (h *handler) routes() []route {
	return []route{
		{"/connections", methods{"GET": h.listConnections, "POST": h.addConnection}},
		{"/connections/{id}", methods{"GET": h.connection, "PATCH": h.updateConnection, "DELETE": h.deleteConnection}},
		{"/models", methods{"GET": h.listModels, "POST": h.addModel}},
		{"/models/{id}", methods{"GET": h.model, "PATCH": h.updateModel, "DELETE": h.deleteModel}},
		{"/keys", methods{"GET": h.listKeys, "POST": h.addKey}},
		{"/keys/{id}", methods{"GET": h.key, "PATCH": h.updateKey, "DELETE": h.deleteKey}},
		{"/keys/{id}/assignments", methods{"POST": h.assign, "DELETE": h.unassign}},
		{"/usage", methods{"GET": h.usage}},
		{"/openapi.json", methods{"GET": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", "application/json")
			_, err := w.Write(openAPI)
			return err
		}}},
	}
}

var (
	errNoKey = &llmproxy.Error{Status: http.StatusUnauthorized, Type: llmproxy.TypeAuthentication, Code: "invalid_api_key",
		Message: "The admin API needs the master key: send it as 'Authorization: Bearer MASTER_KEY'."}
	errBadKey = &llmproxy.Error{Status: http.StatusUnauthorized, Type: llmproxy.TypeAuthentication, Code: "invalid_api_key",
		Message: "Incorrect API key provided. The admin API needs the master key."}
	errNotMaster = &llmproxy.Error{Status: http.StatusForbidden, Type: llmproxy.TypePermission, Code: "master_key_required",
		Message: "Only the master key may use the admin API."}
	errOff = &llmproxy.Error{Status: http.StatusForbidden, Type: llmproxy.TypePermission, Code: "admin_api_disabled",
		Message: "The admin API is off: no master key is configured."}
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.on {
		writeError(w, errOff)
		return
	}
	secret, ok := bearer(r)
	switch {
	case !ok:
		writeError(w, errNoKey)
		return
	case !h.isMaster(secret):
		if h.isVirtualKey(r.Context(), secret) {
			writeError(w, errNotMaster)
		} else {
			writeError(w, errBadKey)
		}
		return
	}
	h.mux.ServeHTTP(w, r)
}

// bearer returns the key of an "Authorization: Bearer KEY" header.
func bearer(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
		return "", false
	}
	s := strings.TrimSpace(a[7:])
	return s, s != ""
}

func (h *handler) isMaster(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], h.master[:]) == 1
}

// isVirtualKey reports whether secret is a virtual key's: it may not use
// the admin API (403), where an unknown key is not authenticated (401).
// The admin API is rarely called, so a listing is affordable here.
func (h *handler) isVirtualKey(ctx context.Context, secret string) bool {
	hash := llmproxy.HashKey(secret)
	ks, err := h.admin.ListKeys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return false
	}
	for i := range ks {
		if subtle.ConstantTimeCompare([]byte(ks[i].Hash), []byte(hash)) == 1 {
			return true
		}
	}
	return false
}

// writeError answers err: the Admin's errors, which are written for the
// user, with the status of their kind; anything else as a 500 that
// reveals nothing.
func writeError(w http.ResponseWriter, err error) {
	var e *llmproxy.Error
	if !errors.As(err, &e) {
		e = &llmproxy.Error{Message: err.Error(), Err: err}
		switch {
		case errors.Is(err, llmproxy.ErrInvalid):
			e.Status, e.Type = http.StatusBadRequest, llmproxy.TypeInvalidRequest
		case errors.Is(err, llmproxy.ErrNotFound):
			e.Status, e.Type, e.Code = http.StatusNotFound, llmproxy.TypeNotFound, "not_found"
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			e.Status, e.Type, e.Code = http.StatusConflict, llmproxy.TypeInvalidRequest, "already_exists"
		case errors.Is(err, llmproxy.ErrInUse):
			e.Status, e.Type, e.Code = http.StatusConflict, llmproxy.TypeInvalidRequest, "in_use"
		default:
			e = llmproxy.AsError(err) // 500 "internal error", 504, …
		}
	}
	llmproxy.WriteError(w, e)
}

// internal is an error the user cannot act on; it is logged and answered
// as a bare 500.
func (h *handler) internal(r *http.Request, err error) error {
	var e *llmproxy.Error
	if errors.As(err, &e) || errors.Is(err, llmproxy.ErrInvalid) || errors.Is(err, llmproxy.ErrNotFound) ||
		errors.Is(err, llmproxy.ErrAlreadyExists) || errors.Is(err, llmproxy.ErrInUse) {
		return err
	}
	if r.Context().Err() == nil {
		h.log.Error("admin API", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return err
}

func badRequest(param, format string, args ...any) error {
	return llmproxy.BadRequest(param, format, args...)
}

// decode reads r's JSON body into v, refusing unknown fields (a typo in a
// limit's name must not pass silently) and trailing data.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return badRequest("", "the request needs a JSON body")
		case errors.As(err, &ute):
			return badRequest(ute.Field, "%s must be a JSON %s, not %s", ute.Field, ute.Type.Kind(), ute.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(f, "unknown field %q", sanitize(f))
		}
		return badRequest("", "the body is not valid JSON: %s", sanitize(err.Error()))
	}
	if dec.More() {
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

func sanitize(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// listOptions reads ?after=ID&limit=N.
func listOptions(r *http.Request) (llmproxy.ListOptions, error) {
	q := r.URL.Query()
	opts := llmproxy.ListOptions{After: q.Get("after")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return opts, badRequest("limit", "limit must be a non-negative integer")
		}
		opts.Limit = n
	}
	return opts, nil
}

// changed logs a change, by record ID and name: never a secret.
func (h *handler) changed(ctx context.Context, what, id, name string) {
	h.log.LogAttrs(ctx, slog.LevelInfo, "admin change", slog.String("change", what), slog.String("id", id), slog.String("name", name))
}

// ---- connections ----

func (h *handler) listConnections(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	cs, err := h.admin.ListConnections(r.Context(), opts)
	if err != nil {
		return h.internal(r, err)
	}
	out := List[Connection]{Data: make([]Connection, 0, len(cs))}
	for i := range cs {
		out.Data = append(out.Data, ConnectionView(&cs[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *handler) addConnection(w http.ResponseWriter, r *http.Request) error {
	var in ConnectionInput
	if err := decode(r, &in); err != nil {
		return err
	}
	c := in.connection()
	if err := h.admin.AddConnection(r.Context(), c); err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "connection added", c.ID, c.Name)
	return writeJSON(w, http.StatusCreated, ConnectionView(c))
}

func (h *handler) connection(w http.ResponseWriter, r *http.Request) error {
	c, err := h.admin.ConnectionByIDOrName(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.internal(r, err)
	}
	return writeJSON(w, http.StatusOK, ConnectionView(c))
}

func (h *handler) updateConnection(w http.ResponseWriter, r *http.Request) error {
	var in ConnectionUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	c, err := h.admin.UpdateConnection(r.Context(), r.PathValue("id"), in.update())
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "connection updated", c.ID, c.Name)
	return writeJSON(w, http.StatusOK, ConnectionView(c))
}

func (h *handler) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := h.admin.DeleteConnection(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "connection deleted", c.ID, c.Name)
	return writeJSON(w, http.StatusOK, ConnectionView(c))
}

// ---- models ----

func (h *handler) listModels(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	ms, err := h.admin.ListModels(r.Context(), opts)
	if err != nil {
		return h.internal(r, err)
	}
	out := List[Model]{Data: make([]Model, 0, len(ms))}
	for i := range ms {
		out.Data = append(out.Data, ModelView(&ms[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *handler) addModel(w http.ResponseWriter, r *http.Request) error {
	var in Model
	if err := decode(r, &in); err != nil {
		return err
	}
	m := &llmproxy.Model{Name: in.Name, Remote: in.Remote, ConnectionID: in.ConnectionID, Weight: in.Weight, Price: in.Price}
	if err := h.admin.AddModel(r.Context(), m); err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "model added", m.ID, m.Name)
	return writeJSON(w, http.StatusCreated, ModelView(m))
}

func (h *handler) model(w http.ResponseWriter, r *http.Request) error {
	m, err := h.admin.Model(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.internal(r, err)
	}
	return writeJSON(w, http.StatusOK, ModelView(m))
}

func (h *handler) updateModel(w http.ResponseWriter, r *http.Request) error {
	var in ModelUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	m, err := h.admin.UpdateModel(r.Context(), r.PathValue("id"), in.update())
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "model updated", m.ID, m.Name)
	return writeJSON(w, http.StatusOK, ModelView(m))
}

func (h *handler) deleteModel(w http.ResponseWriter, r *http.Request) error {
	m, err := h.admin.DeleteModel(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "model deleted", m.ID, m.Name)
	return writeJSON(w, http.StatusOK, ModelView(m))
}

// ---- keys ----

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	ks, err := h.admin.ListKeys(r.Context(), opts)
	if err != nil {
		return h.internal(r, err)
	}
	out := List[Key]{Data: make([]Key, 0, len(ks))}
	for i := range ks {
		out.Data = append(out.Data, KeyView(&ks[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *handler) addKey(w http.ResponseWriter, r *http.Request) error {
	var in KeyInput
	if err := decode(r, &in); err != nil {
		return err
	}
	k := &llmproxy.VirtualKey{Name: in.Name, Budget: in.Budget.budget()}
	if in.ExpiresAt != nil {
		k.ExpiresAt = *in.ExpiresAt
	}
	for i := range in.Assignments {
		a, err := in.Assignments[i].assignment()
		if err != nil {
			return badRequest(fmt.Sprintf("assignments[%d].token_window", i), "%s", err)
		}
		k.Assignments = append(k.Assignments, a)
	}
	secret, err := h.admin.AddKey(r.Context(), k, in.Key)
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "key added", k.ID, k.Name)
	v := KeyView(k)
	if in.Key == "" {
		v.Key = secret // generated: shown this once
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (h *handler) key(w http.ResponseWriter, r *http.Request) error {
	k, err := h.admin.KeyByIDOrName(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.internal(r, err)
	}
	return writeJSON(w, http.StatusOK, KeyView(k))
}

func (h *handler) updateKey(w http.ResponseWriter, r *http.Request) error {
	var in KeyUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	u, err := in.update()
	if err != nil {
		return badRequest("", "%s", err)
	}
	k, err := h.admin.UpdateKey(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "key updated", k.ID, k.Name)
	return writeJSON(w, http.StatusOK, KeyView(k))
}

func (h *handler) deleteKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.admin.DeleteKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "key deleted", k.ID, k.Name)
	return writeJSON(w, http.StatusOK, KeyView(k))
}

func (h *handler) assign(w http.ResponseWriter, r *http.Request) error {
	var in Assignment
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ID != "" {
		return badRequest("id", "an assignment's id is given by the server")
	}
	a, err := in.assignment()
	if err != nil {
		return badRequest("token_window", "%s", err)
	}
	k, err := h.admin.AssignKey(r.Context(), r.PathValue("id"), a)
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "key assigned "+a.Target(), k.ID, k.Name)
	return writeJSON(w, http.StatusOK, KeyView(k))
}

func (h *handler) unassign(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	k, err := h.admin.UnassignKey(r.Context(), r.PathValue("id"), q.Get("connection_id"), q.Get("model_id"))
	if err != nil {
		return h.internal(r, err)
	}
	h.changed(r.Context(), "key unassigned", k.ID, k.Name)
	return writeJSON(w, http.StatusOK, KeyView(k))
}

// ---- usage ----

// usage answers the usage report, read from the daily rollups (never
// the raw ledger), grouped by the by parameter (key, assignment, model,
// connection, day; repeated or a comma list; key,model by default).
func (h *handler) usage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := llmproxy.UsageFilter{KeyID: q.Get("key_id"), Model: q.Get("model"), ConnectionID: q.Get("connection_id")}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse("2006-01-02", s)
		}
		if err != nil {
			return badRequest(p.name, "%s must be an RFC 3339 time or a date (2026-01-31), not %q", p.name, sanitize(s))
		}
		*p.t = t
	}
	by, err := llmproxy.ParseUsageGroups(q["by"])
	if err != nil {
		return badRequest("by", "by must name key, assignment, model, connection or day: %s", sanitize(strings.Join(q["by"], ",")))
	}
	if len(by) == 0 {
		by = []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return badRequest("until", "the usage period is empty: since must be before until")
	}
	rep, ok := h.admin.Storage.(llmproxy.UsageReporter)
	if !ok {
		return h.internal(r, errors.New("the store keeps no usage rollups"))
	}
	if f.KeyID != "" {
		if k, err := h.admin.KeyByIDOrName(r.Context(), f.KeyID); err == nil {
			f.KeyID = k.ID
		}
	}
	rows, err := rep.UsageReport(r.Context(), f, by)
	if err != nil {
		return h.internal(r, err)
	}
	names := map[string]string{}
	if ks, err := h.admin.ListKeys(r.Context(), llmproxy.ListOptions{}); err == nil {
		for _, k := range ks {
			names[k.ID] = k.Name
		}
	}
	out := List[Usage]{Data: make([]Usage, 0, len(rows))}
	for _, u := range rows {
		out.Data = append(out.Data, usageView(u, by, names))
	}
	return writeJSON(w, http.StatusOK, out)
}

// usageView is one report row as the API answers it: the dimensions of
// by, then the sums.
func usageView(u llmproxy.UsageRow, by []llmproxy.UsageGroup, names map[string]string) Usage {
	v := Usage{Requests: u.Requests, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TotalTokens: u.TotalTokens, EstimatedTokens: u.EstimatedTokens, CacheReadTokens: u.CacheReadTokens,
		CacheWriteTokens: u.CacheWriteTokens, CostUSD: float64(u.CostMicros) / 1e6, CostMicros: u.CostMicros,
		UnknownCost: u.UnknownCost}
	for _, g := range by {
		switch g {
		case llmproxy.GroupKey:
			v.KeyID, v.KeyName = &u.KeyID, names[u.KeyID]
		case llmproxy.GroupAssignment:
			v.AssignmentID = &u.AssignmentID
		case llmproxy.GroupModel:
			v.Model = &u.Model
		case llmproxy.GroupConnection:
			v.ConnectionID = &u.ConnectionID
		case llmproxy.GroupDay:
			v.Day = u.Day.UTC().Format(time.DateOnly)
		}
	}
	return v
}
