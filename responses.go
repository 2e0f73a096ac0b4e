package llmproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// The Responses API (POST /v1/responses) is served natively by providers
// that are Responders for the model, and translated through Chat
// Completions for the others. Its conversation state — store and
// previous_response_id — is the gateway's on translated connections: it
// keeps each stored response (its input items and the response object)
// in the Storage's ResponseStore. On native connections the upstream
// keeps the content, and the gateway keeps only whose response it is and
// which connection holds it: the upstream sees one real key for every
// virtual key, so the gateway itself refuses another key's GET, DELETE or
// previous_response_id.

// responseState is what the gateway tracks of one Responses API request.
type responseState struct {
	store ResponseStore   // nil: the Storage keeps no conversation state
	prev  *StoredResponse // the response previous_response_id continues
	// history is the conversation before this request's input, for a
	// translated answer: prev's items, then its output.
	history []byte
	// native is set once a Responder serves the request; then upstreamID
	// is the upstream's response id, when seen. For a translated answer
	// translated is the translation and id the response's id.
	native     bool
	upstreamID string
	translated *translate.ResponsesRequest
	id         string
	final      []byte // the translated response object, captured from the stream
}

// DefaultResponseRetention is how long stored responses are kept when
// Config.ResponseRetention is zero: 30 days, as OpenAI keeps them.
const DefaultResponseRetention = 30 * 24 * time.Hour

// prepareResponses loads what previous_response_id continues, checking it
// belongs to the caller, and narrows the grants to the connection that
// holds it when that connection keeps it (native).
func (g *Gateway) prepareResponses(ctx context.Context, x *exchange, gs []grant) ([]grant, error) {
	st := &responseState{}
	st.store, _ = g.cfg.Storage.(ResponseStore)
	x.resp = st
	id := x.parsed.previousID
	if id == "" {
		return gs, nil
	}
	prev, err := g.ownedResponse(ctx, st.store, x.caller, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, previousNotFound(id)
		}
		return nil, err
	}
	st.prev = prev
	if !prev.Native {
		st.history = joinArrays(prev.Items, jsonscan.Field(prev.Response, "output"))
		return gs, nil
	}
	var on []grant
	for _, gr := range gs {
		if gr.upstream.ID == prev.ConnectionID {
			on = append(on, gr)
		}
	}
	if len(on) == 0 {
		return nil, previousNotFound(id)
	}
	return on, nil
}

// previousNotFound is OpenAI's answer to an unknown previous_response_id:
// a 400 naming the parameter, with code previous_response_not_found.
func previousNotFound(id string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: "previous_response_id", Code: "previous_response_not_found",
		Message: fmt.Sprintf("Previous response with id '%s' not found.", sanitize(id))}
}

func responseNotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: "not_found",
		Message: fmt.Sprintf("Response with id '%s' not found.", sanitize(id))}
}

// ownedResponse returns the stored response id if it belongs to c: to
// anyone else it does not exist (ErrNotFound), so that keys cannot probe.
func (g *Gateway) ownedResponse(ctx context.Context, store ResponseStore, c caller, id string) (*StoredResponse, error) {
	if store == nil {
		return nil, ErrNotFound
	}
	rec, err := store.GetResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.KeyID != c.keyID() {
		return nil, ErrNotFound
	}
	return rec, nil
}

// keyID is the ID of the caller's virtual key; "" for the master key.
func (c caller) keyID() string {
	if c.key == nil {
		return ""
	}
	return c.key.key.ID
}

// responses sends a Responses API request to connection ce: natively when
// its provider serves the Responses API for the model (and the
// conversation, if continued, is the upstream's), else translated
// through Chat Completions.
func (g *Gateway) responses(ctx context.Context, x *exchange, ce *upstream, req *Request) (*Response, error) {
	st := x.resp
	keep := st.store != nil && x.parsed.store
	if rp, ok := ce.provider.(Responder); ok && rp.NativeResponses(req.RemoteModel) && (st.prev == nil || st.prev.Native) {
		st.native, st.translated = true, nil
		if keep && req.Stream {
			x.capture = func(data []byte) {
				if st.upstreamID == "" && string(eventName(data)) == "response.created" {
					st.upstreamID = jsonString(jsonscan.Field(jsonscan.Field(data, "response"), "id"))
				}
			}
		}
		return rp.Responses(ctx, req)
	}
	st.native = false
	rr, err := translate.ResponsesToChat(req.Body, translate.ResponsesOptions{
		Model: req.RemoteModel, Stream: req.Stream, History: st.history,
		MaxCompletionTokens: ce.Provider == KindOpenAI,
	})
	if err != nil {
		return nil, requestError(err)
	}
	st.translated, st.id = rr, NewID("resp")
	chat := &Request{Body: rr.Chat, Model: req.Model, RemoteModel: req.RemoteModel, Stream: req.Stream, Header: req.Header, Endpoint: EndpointChat}
	resp, err := ce.provider.ChatCompletion(ctx, chat)
	if err != nil {
		return nil, err
	}
	if len(rr.DroppedTools) > 0 {
		// Codex offers hosted tools (web_search, a namespace tool) that a
		// Chat Completions upstream cannot run: they are left out, and
		// said so.
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		resp.Header["X-Llm-Proxy-Dropped-Tools"] = []string{strings.Join(rr.DroppedTools, ", ")}
		g.log.Info("hosted tools left out of a translated Responses request", "request_id", x.reqID, "tools", rr.DroppedTools)
	}
	meta := translate.ResponseMeta{ID: st.id, Model: req.Model, CreatedAt: x.start}
	if resp.Stream != nil {
		if keep {
			x.capture = func(data []byte) {
				switch string(eventName(data)) {
				case "response.completed", "response.incomplete", "response.failed":
					st.final = bytes.Clone(jsonscan.Field(data, "response"))
				}
			}
		}
		resp.Stream = translate.ChatStreamToResponses(resp.Stream, rr, meta)
		return resp, nil
	}
	if resp.Body, err = translate.ChatToResponsesResponse(resp.Body, rr, meta); err != nil {
		return nil, UpstreamError("the upstream's answer could not be read as a chat completion", err)
	}
	return resp, nil
}

// keepResponse stores a Responses API answer when the request asked for
// it (store, the default): body is a non-streaming answer, nil for a
// stream (what its events showed is used). It is written before the
// request ends, so that a client's next request can continue it.
func (g *Gateway) keepResponse(x *exchange, gr grant, body []byte) {
	st := x.resp
	if st == nil || st.store == nil || !x.parsed.store {
		return
	}
	rec := &StoredResponse{KeyID: x.caller.keyID(), ConnectionID: gr.upstream.ID, Model: x.parsed.model,
		PreviousID: x.parsed.previousID, CreatedAt: x.start, ExpiresAt: x.start.Add(g.retention())}
	if st.native {
		rec.ID, rec.Native = st.upstreamID, true
		if body != nil {
			rec.ID = jsonString(jsonscan.Field(body, "id"))
		}
	} else if st.translated != nil {
		rec.ID, rec.Response = st.id, st.final
		if body != nil {
			rec.Response = body
		}
		rec.Items = joinArrays(st.history, st.translated.Input)
	}
	if rec.ID == "" || (!rec.Native && rec.Response == nil) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.store.PutResponse(ctx, rec); err != nil {
		// Never the content: it is the client's conversation.
		g.log.Warn("a response could not be stored; previous_response_id will not find it",
			"request_id", x.reqID, "response_id", rec.ID, "err", err)
	}
}

func (g *Gateway) retention() time.Duration {
	if g.cfg.ResponseRetention > 0 {
		return g.cfg.ResponseRetention
	}
	return DefaultResponseRetention
}

// jsonString is the text of a JSON string value; "" for anything else.
func jsonString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s)
	return s
}

// joinArrays concatenates JSON arrays (nil counts as empty).
func joinArrays(arrays ...[]byte) []byte {
	out := []byte{'['}
	for _, a := range arrays {
		a = bytes.TrimSpace(a)
		if len(a) < 2 || a[0] != '[' {
			continue
		}
		inner := bytes.TrimSpace(a[1 : len(a)-1])
		if len(inner) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, inner...)
	}
	return append(out, ']')
}

// serveResponse answers GET and DELETE /v1/responses/{id} and GET
// /v1/responses/{id}/input_items for the key that created the response:
// from the store for a translated one, from its upstream for a native one.
func (g *Gateway) serveResponse(w http.ResponseWriter, r *http.Request, rest string) {
	s := g.snap.Load()
	c, err := g.authenticate(r, s)
	if err != nil {
		WriteError(w, err)
		return
	}
	id, sub, _ := strings.Cut(rest, "/")
	if sub != "" && (sub != "input_items" || r.Method != http.MethodGet) {
		WriteError(w, &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: "unknown_url",
			Message: fmt.Sprintf("Unknown request URL: %s %s.", sanitize(r.Method), sanitize(r.URL.Path))})
		return
	}
	store, _ := g.cfg.Storage.(ResponseStore)
	rec, err := g.ownedResponse(r.Context(), store, c, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			err = responseNotFound(id)
		}
		WriteError(w, err)
		return
	}
	if rec.Native {
		g.serveNativeResponse(w, r, s, store, rec, rest)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	switch {
	case r.Method == http.MethodDelete:
		if err := store.DeleteResponse(r.Context(), id); err != nil && !errors.Is(err, ErrNotFound) {
			WriteError(w, err)
			return
		}
		fmt.Fprintf(w, `{"id":%s,"object":"response","deleted":true}`+"\n", AppendJSONString(nil, id))
	case sub == "input_items":
		list, err := inputItems(rec, r.URL.Query())
		if err != nil {
			WriteError(w, err)
			return
		}
		w.Write(list)
	default:
		w.Write(rec.Response)
	}
}

// serveNativeResponse forwards GET or DELETE of a native response to the
// connection that holds it.
func (g *Gateway) serveNativeResponse(w http.ResponseWriter, r *http.Request, s *snapshot, store ResponseStore, rec *StoredResponse, path string) {
	ce := s.conns[rec.ConnectionID]
	rp, ok := Responder(nil), false
	if ce != nil && ce.provider != nil {
		rp, ok = ce.provider.(Responder)
	}
	if !ok {
		WriteError(w, UpstreamError("the connection that holds this response is gone or no longer serves the Responses API", nil))
		return
	}
	resp, err := rp.ResponseResource(r.Context(), r.Method, path, r.URL.RawQuery)
	if err != nil {
		WriteError(w, scrub(&ce.Credentials, err))
		return
	}
	if r.Method == http.MethodDelete {
		if err := store.DeleteResponse(r.Context(), rec.ID); err != nil && !errors.Is(err, ErrNotFound) {
			g.log.Warn("a deleted response's record could not be removed", "response_id", rec.ID, "err", err)
		}
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(resp.Body)
}

// inputItems lists a stored response's input items as OpenAI does:
// newest first unless order=asc, limit 1–100 (default 20), after an item
// id. Items the client sent without an id are given one from their
// position, the same on every call.
func inputItems(rec *StoredResponse, q map[string][]string) ([]byte, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	limit := 20
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, BadRequest("limit", "limit must be an integer from 1 to 100, got %q", sanitize(v))
		}
		limit = n
	}
	order := get("order")
	if order == "" {
		order = "desc"
	}
	if order != "asc" && order != "desc" {
		return nil, BadRequest("order", "order must be asc or desc, got %q", sanitize(order))
	}
	type item struct {
		id  string
		raw []byte
	}
	var items []item
	jsonscan.Elements(rec.Items, func(i int, raw []byte) bool {
		id := jsonString(jsonscan.Field(raw, "id"))
		if id == "" && len(raw) > 1 && raw[0] == '{' {
			id = "item_" + strings.TrimPrefix(rec.ID, "resp_") + "_" + strconv.Itoa(i)
			with := AppendJSONString([]byte(`{"id":`), id)
			if inner := bytes.TrimSpace(raw[1 : len(raw)-1]); len(inner) > 0 {
				with = append(append(with, ','), inner...)
			}
			raw = append(with, '}')
		}
		items = append(items, item{id, raw})
		return true
	})
	if order == "desc" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if after := get("after"); after != "" {
		for i := range items {
			if items[i].id == after {
				items = items[i+1:]
				break
			}
		}
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	b := []byte(`{"object":"list","data":[`)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.raw...)
	}
	b = append(b, `],"first_id":`...)
	if len(items) > 0 {
		b = AppendJSONString(b, items[0].id)
		b = append(b, `,"last_id":`...)
		b = AppendJSONString(b, items[len(items)-1].id)
	} else {
		b = append(b, `null,"last_id":null`...)
	}
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, more)
	return append(b, "}\n"...), nil
}

// expireResponses deletes expired stored responses now and then every
// hour, until ctx ends.
func (g *Gateway) expireResponses(ctx context.Context, store ResponseStore) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := store.DeleteExpiredResponses(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			g.log.Warn("expired responses could not be deleted; will retry", "err", err)
		} else if n > 0 {
			g.log.Info("expired responses deleted", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
