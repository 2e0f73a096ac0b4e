package llmproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// A route of the Gateway's API: the one table that ServeHTTP dispatches
// on and RouteOf names requests by.
type route struct {
	// name is RequestInfo.Route for the route's requests.
	name string
	// paths are matched exactly, without a trailing slash; prefix, when
	// set, matches the paths below it (the rest of the path goes to serve).
	paths  []string
	prefix string
	// methods are the methods served; others answer 405.
	methods []string
	// observed: the Gateway tells its Observers about the route's
	// requests itself (those with the first method), so middleware should
	// not count them again.
	observed bool
	// serve answers a request; nil for routes that are not the Gateway's
	// but that the server mounts beside it, named here so that middleware
	// names them alike.
	serve func(g *Gateway, w http.ResponseWriter, r *http.Request, reqID, rest string)
}

var routes = []route{
	{name: EndpointChat, paths: []string{"/v1/chat/completions", "/chat/completions"}, methods: []string{http.MethodPost}, observed: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, reqID, _ string) {
			g.inference(w, r, reqID, EndpointChat)
		}},
	{name: EndpointEmbeddings, paths: []string{"/v1/embeddings", "/embeddings"}, methods: []string{http.MethodPost}, observed: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, reqID, _ string) {
			g.inference(w, r, reqID, EndpointEmbeddings)
		}},
	{name: EndpointMessages, paths: []string{"/v1/messages"}, methods: []string{http.MethodPost}, observed: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, reqID, _ string) {
			g.inference(w, r, reqID, EndpointMessages)
		}},
	{name: EndpointCountTokens, paths: []string{"/v1/messages/count_tokens"}, methods: []string{http.MethodPost}, observed: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, reqID, _ string) {
			g.inference(w, r, reqID, EndpointCountTokens)
		}},
	{name: EndpointResponses, paths: []string{"/v1/responses", "/responses"}, methods: []string{http.MethodPost}, observed: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, reqID, _ string) {
			g.inference(w, r, reqID, EndpointResponses)
		}},
	{name: EndpointResponses, prefix: "/v1/responses/", methods: []string{http.MethodGet, http.MethodDelete},
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _, rest string) { g.serveResponse(w, r, rest) }},
	{name: "models", paths: []string{"/v1/models", "/models"}, prefix: "/v1/models/", methods: []string{http.MethodGet, http.MethodHead},
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _, model string) { g.serveModels(w, r, model) }},
	{name: "health", paths: []string{"/healthz", "/health"}, methods: []string{http.MethodGet, http.MethodHead},
		serve: func(_ *Gateway, w http.ResponseWriter, _ *http.Request, _, _ string) {
			w.Header()["Content-Type"] = []string{"application/json"}
			io.WriteString(w, `{"status":"ok"}`+"\n")
		}},
	// Served by cmd/llm-proxy beside the Gateway.
	{name: "metrics", paths: []string{"/metrics"}},
	{name: "admin", paths: []string{"/admin"}, prefix: "/admin/"},
}

// routeByPath indexes routes by exact path.
var routeByPath = func() map[string]*route {
	m := make(map[string]*route)
	for i := range routes {
		for _, p := range routes[i].paths {
			m[p] = &routes[i]
		}
	}
	return m
}()

// findRoute returns the route of path and, for a prefix route, the rest
// of the path after the prefix; nil when no route matches.
func findRoute(path string) (*route, string) {
	path = strings.TrimSuffix(path, "/")
	if rt := routeByPath[path]; rt != nil {
		return rt, ""
	}
	for i := range routes {
		rt := &routes[i]
		if rt.prefix != "" {
			if rest, ok := strings.CutPrefix(path, rt.prefix); ok && rest != "" {
				return rt, rest
			}
		}
	}
	return nil, ""
}

// supported lists the Gateway's routes for the unknown-URL answer.
var supported = func() string {
	var b strings.Builder
	for _, rt := range routes {
		if rt.serve == nil || rt.name == "health" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		path := rt.prefix + "{id}"
		if len(rt.paths) > 0 {
			path = rt.paths[0]
		}
		b.WriteString(strings.Join(rt.methods, "/") + " " + path)
	}
	return b.String()
}()

// RouteOf names the route of a request as RequestInfo.Route does: "chat",
// "embeddings", "messages", "count_tokens", "responses", "models",
// "health", "admin", "metrics" or "other". observed reports whether the Gateway tells its
// Observers about such a request itself (a POST to an inference route); middleware that counts or logs
// requests should skip those, so that none is counted twice.
func RouteOf(method, path string) (name string, observed bool) {
	rt, _ := findRoute(path)
	if rt == nil {
		return "other", false
	}
	return rt.name, rt.observed && method == rt.methods[0]
}

// ServeHTTP routes a request. The request path of an inference route is:
// authenticate the key from the snapshot, resolve the model alias against
// its assignments, apply limits, forward to the provider, and account the
// usage off the hot path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := requestID(r)
	w.Header()["X-Request-Id"] = []string{reqID}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			g.log.Error("panic serving request", "request_id", reqID, "path", r.URL.Path, "panic", fmt.Sprint(p))
			WriteError(w, &Error{Status: http.StatusInternalServerError, Type: TypeServer, Message: "internal error (request " + reqID + ")"})
		}
	}()
	rt, rest := findRoute(r.URL.Path)
	if rt == nil || rt.serve == nil {
		WriteError(w, &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: "unknown_url",
			Message: fmt.Sprintf("Unknown request URL: %s %s. Supported: %s.", sanitize(r.Method), sanitize(r.URL.Path), supported)})
		return
	}
	if allow(w, r, rt.methods...) {
		rt.serve(g, w, r, reqID, rest)
	}
}

// allow answers 405 unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	WriteError(w, &Error{Status: http.StatusMethodNotAllowed, Type: TypeInvalidRequest, Code: "method_not_allowed",
		Message: fmt.Sprintf("method %s is not allowed on %s; use %s", sanitize(r.Method), sanitize(r.URL.Path), strings.Join(methods, " or "))})
	return false
}

// sanitize bounds user input echoed in messages.
func sanitize(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// requestID honours a sane incoming X-Request-Id, else makes one.
func requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && len(v) <= 128 && printableASCII(v) {
		return v
	}
	return NewID("req")
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// serveModels lists the models a key may use, in Anthropic's shape when
// the request carries anthropic-version (Anthropic's SDKs and Claude Code
// send it), in OpenAI's otherwise.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, one string) {
	s := g.snap.Load()
	d := openAIDialect
	if len(r.Header["Anthropic-Version"]) > 0 {
		d = anthropicDialect
	}
	c, err := g.authenticate(r, s)
	if err != nil {
		d.writeError(w, err)
		return
	}
	var aliases []string
	if c.key != nil {
		aliases = c.key.models
	} else {
		for a := range s.aliases {
			aliases = append(aliases, a)
		}
		slices.Sort(aliases)
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	describe := func(alias string) model {
		gs := c.grants(s, alias)
		m := model{ID: alias, Object: "model", OwnedBy: gs[0].upstream.Provider, Created: gs[0].model.CreatedAt.Unix()}
		return m
	}
	if one != "" && len(c.grants(s, one)) == 0 {
		d.writeError(w, modelNotFound(one))
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	if d == anthropicDialect {
		writeAnthropicModels(w, s, c, aliases, one)
		return
	}
	if one != "" {
		json.NewEncoder(w).Encode(describe(one))
		return
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: make([]model, 0, len(aliases))}
	for _, a := range aliases {
		list.Data = append(list.Data, describe(a))
	}
	json.NewEncoder(w).Encode(list)
}

// writeAnthropicModels answers GET /v1/models[/one] in Anthropic's shape.
// The list is never paged: has_more is false.
func writeAnthropicModels(w http.ResponseWriter, s *snapshot, c caller, aliases []string, one string) {
	type model struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	describe := func(alias string) model {
		gs := c.grants(s, alias)
		return model{Type: "model", ID: alias, DisplayName: alias, CreatedAt: gs[0].model.CreatedAt.UTC().Format(time.RFC3339)}
	}
	if one != "" {
		json.NewEncoder(w).Encode(describe(one))
		return
	}
	list := struct {
		Data    []model `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}{Data: make([]model, 0, len(aliases))}
	for _, a := range aliases {
		list.Data = append(list.Data, describe(a))
	}
	if len(aliases) > 0 {
		list.FirstID, list.LastID = &aliases[0], &aliases[len(aliases)-1]
	}
	json.NewEncoder(w).Encode(list)
}
