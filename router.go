package llmproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ServeHTTP routes a request. The request path is: authenticate the key
// from the snapshot, resolve the model alias against its assignments,
// apply limits, forward to the provider, and account the usage off the
// hot path.
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
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path {
	case "/v1/chat/completions", "/chat/completions":
		if allow(w, r, http.MethodPost) {
			g.inference(w, r, reqID, endpointChat)
		}
	case "/v1/embeddings", "/embeddings":
		if allow(w, r, http.MethodPost) {
			g.inference(w, r, reqID, endpointEmbeddings)
		}
	case "/v1/models", "/models":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			g.serveModels(w, r, "")
		}
	case "/healthz", "/health":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			w.Header()["Content-Type"] = []string{"application/json"}
			io.WriteString(w, `{"status":"ok"}`+"\n")
		}
	default:
		if m, ok := strings.CutPrefix(path, "/v1/models/"); ok && m != "" {
			if allow(w, r, http.MethodGet, http.MethodHead) {
				g.serveModels(w, r, m)
			}
			return
		}
		WriteError(w, &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: "unknown_url",
			Message: fmt.Sprintf("Unknown request URL: %s %s. Supported: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models.", r.Method, sanitize(r.URL.Path))})
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

var (
	errNoKey = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."}
	errBadKey = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "Incorrect API key provided."}
	errNotBearer = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "The Authorization header must carry the API key as 'Bearer YOUR_API_KEY'."}
	errKeyChars = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "Incorrect API key provided: it contains whitespace or non-ASCII characters."}
	errExpiredKey = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "This API key has expired."}
)

// caller is who sent a request: the master key (key nil) or a virtual key.
type caller struct {
	key *keyEntry
}

// authenticate finds the caller from the Authorization (Bearer) or api-key
// header, in the snapshot: no database round trip.
func (g *Gateway) authenticate(r *http.Request, s *snapshot) (caller, error) {
	secret := ""
	if v := r.Header["Authorization"]; len(v) > 0 {
		a := strings.TrimSpace(v[0])
		if a == "" {
			return caller{}, errNoKey
		}
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
			if strings.EqualFold(a, "bearer") {
				return caller{}, errNoKey
			}
			return caller{}, errNotBearer
		}
		secret = strings.TrimSpace(a[7:])
	} else if v := r.Header["Api-Key"]; len(v) > 0 {
		secret = strings.TrimSpace(v[0])
	}
	if secret == "" {
		return caller{}, errNoKey
	}
	if !printableASCII(secret) {
		return caller{}, errKeyChars
	}
	// Providers never see the client's key.
	delete(r.Header, "Authorization")
	delete(r.Header, "Api-Key")
	sum := sha256.Sum256([]byte(secret))
	if g.hasMaster && subtle.ConstantTimeCompare(sum[:], g.master[:]) == 1 {
		return caller{}, nil
	}
	e := s.keys[sum]
	if e == nil {
		return caller{}, errBadKey
	}
	if e.key.Expired(time.Now()) {
		return caller{}, errExpiredKey
	}
	return caller{key: e}, nil
}

// grants returns what c may use under alias; nil when nothing (or the
// alias does not exist: both answer the same, so keys cannot probe).
func (c caller) grants(s *snapshot, alias string) []grant {
	if c.key != nil {
		return c.key.grants[alias]
	}
	return s.aliases[alias]
}

func modelNotFound(alias string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", sanitize(alias))}
}

func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, one string) {
	s := g.snap.Load()
	c, err := g.authenticate(r, s)
	if err != nil {
		WriteError(w, err)
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
		m := model{ID: alias, Object: "model", OwnedBy: gs[0].route.conn.conn.Provider, Created: gs[0].route.model.CreatedAt.Unix()}
		return m
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	if one != "" {
		if len(c.grants(s, one)) == 0 {
			WriteError(w, modelNotFound(one))
			return
		}
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

// acceptedContentType reports whether a request body of type ct may be
// read as JSON. Form-encoded is accepted because curl -d sends it by
// default.
func acceptedContentType(ct string) bool {
	if ct == "" || ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/x-www-form-urlencoded", "text/plain":
		return true
	}
	return strings.HasSuffix(mt, "+json")
}

// readBody reads the request body within the configured limit.
func (g *Gateway) readBody(r *http.Request) ([]byte, error) {
	limit := g.cfg.MaxBodyBytes
	tooLarge := func() error {
		return &Error{Status: http.StatusRequestEntityTooLarge, Type: TypeInvalidRequest, Code: "request_too_large",
			Message: fmt.Sprintf("the request body is larger than the limit of %d bytes", limit)}
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 {
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if int64(len(body)) > limit {
			return nil, tooLarge()
		}
	}
	if err != nil {
		return nil, BadRequest("", "the request body could not be read: it ended early")
	}
	return body, nil
}

// attempt is the state of one request through the path.
type attempt struct {
	reqID    string
	start    time.Time
	caller   caller
	endpoint string
	parsed   *parsedBody
	body     []byte
	// limits
	limited    *Assignment // the assignment whose limits were taken
	reserved   int64       // tokens reserved against its token limit
	reservedAt time.Time
	tokenKey   string
	info       RequestInfo
}

// fail answers err and notes its status.
func (a *attempt) fail(w http.ResponseWriter, err error) {
	e := AsError(err)
	a.info.Status = e.Status
	WriteError(w, e)
}

// inference serves a chat or embeddings request. A stream is relayed from
// here, not from inside serveInference, so that its goroutine waits for
// each event on a shallow stack: the garbage collector then shrinks the
// stack that parsing and routing grew, and with thousands of streams open
// stacks are a large part of the gateway's memory.
func (g *Gateway) inference(w http.ResponseWriter, r *http.Request, reqID, endpoint string) {
	a := &attempt{reqID: reqID, start: time.Now(), endpoint: endpoint}
	a.info = RequestInfo{RequestID: reqID, Route: endpoint, Method: r.Method, Start: a.start}
	defer g.observe(&a.info)
	if st := g.serveInference(w, r, a); st != nil {
		g.relay(w, r, a, st.gr, st.stream, st.status, st.cancel)
	}
}

// streamStart is a stream whose head is decided and whose events are to
// be relayed.
type streamStart struct {
	gr     grant
	stream EventStream
	status int
	cancel context.CancelCauseFunc
}

// serveInference authenticates, checks and routes a request, calls the
// upstream and answers it, except for a stream's events: it returns the
// stream for inference to relay.
func (g *Gateway) serveInference(w http.ResponseWriter, r *http.Request, a *attempt) *streamStart {
	s := g.snap.Load()
	reqID, endpoint := a.reqID, a.endpoint
	c, err := g.authenticate(r, s)
	if err != nil {
		a.fail(w, err)
		return nil
	}
	a.caller = c
	a.info.Authenticated = true
	if c.key != nil {
		a.info.KeyID, a.info.KeyName = c.key.key.ID, c.key.key.Name
	}
	if ct := r.Header.Get("Content-Type"); !acceptedContentType(ct) {
		a.fail(w, BadRequest("", "unsupported Content-Type %q; send application/json", sanitize(ct)))
		return nil
	}
	if a.body, err = g.readBody(r); err != nil {
		a.fail(w, err)
		return nil
	}
	if a.parsed, err = parseBody(a.body, endpoint); err != nil {
		a.fail(w, err)
		return nil
	}
	gs := c.grants(s, a.parsed.model)
	if len(gs) == 0 {
		a.fail(w, modelNotFound(a.parsed.model))
		return nil
	}
	a.info.Model = a.parsed.model
	gs = g.order(gs)
	var lastErr error
	var tried grant
	for i, gr := range gs {
		if gr.assignment != a.limited || i == 0 {
			if err := g.takeLimits(r.Context(), w, a, gr); err != nil {
				var e *Error
				if errors.As(err, &e) && e.Code == "rate_limit_exceeded" {
					a.info.Refused = "requests"
				} else {
					a.info.Refused = "tokens"
				}
				a.noteRoute(gr)
				g.record(a, gr, http.StatusTooManyRequests, Usage{}, false, false)
				a.fail(w, err)
				return nil
			}
		}
		tried = gr
		a.noteRoute(gr)
		a.info.Attempts++
		resp, cancel, err := g.forward(r.Context(), r, a, gr)
		gr.route.conn.health.note(err)
		if err == nil {
			return g.respond(w, a, gr, resp, cancel)
		}
		cancel(nil)
		lastErr = err
		if r.Context().Err() != nil || !retryable(err) || i == len(gs)-1 {
			break
		}
		g.log.Warn("upstream failed; trying the next model", "request_id", reqID, "connection", gr.route.conn.conn.ID, "err", err)
	}
	e := AsError(lastErr)
	if e.Status >= 500 || e.Status == http.StatusTooManyRequests {
		a.info.UpstreamError = true
		g.log.Warn("upstream error", "request_id", reqID, "connection", tried.route.conn.conn.ID, "status", e.Status, "err", lastErr)
	}
	g.settle(a, Usage{})
	g.record(a, tried, e.Status, Usage{}, false, false)
	a.fail(w, e)
	return nil
}

// noteRoute records the chosen route in the request's info.
func (a *attempt) noteRoute(gr grant) {
	ce := gr.route.conn
	a.info.RemoteModel = gr.route.model.Remote
	a.info.Provider, a.info.ConnectionID, a.info.Connection = ce.conn.Provider, ce.conn.ID, ce.conn.Name
}

// observe hands a finished request to the observers.
func (g *Gateway) observe(info *RequestInfo) {
	if len(g.cfg.Observers) == 0 {
		return
	}
	info.Total = time.Since(info.Start)
	for _, o := range g.cfg.Observers {
		o.ObserveRequest(info)
	}
}

// retryable reports whether another model of the alias may be tried: the
// upstream could not be reached, or it answered 429 or 5xx.
func retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// errFirstByte and errIdle are why an upstream call was cut short.
var (
	errFirstByte = &Error{Status: http.StatusGatewayTimeout, Type: TypeUpstream, Code: "upstream_timeout", Message: "the upstream did not answer in time"}
	errIdle      = &Error{Status: http.StatusGatewayTimeout, Type: TypeUpstream, Code: "upstream_timeout", Message: "the upstream stream stalled: no data within the idle timeout"}
)

// forward calls the provider under a context that the first-byte timeout
// cancels; the returned cancel must be called when the answer is done
// with (with nil), and is what the stream idle timeout uses.
func (g *Gateway) forward(ctx context.Context, r *http.Request, a *attempt, gr grant) (*Response, context.CancelCauseFunc, error) {
	ce := gr.route.conn
	ctx, cancel := context.WithCancelCause(ctx)
	if ce.provider == nil {
		return nil, cancel, UpstreamError(fmt.Sprintf("connection %q is not usable", ce.conn.Name), ce.err)
	}
	req := &Request{Body: a.body, Model: a.parsed.model, RemoteModel: gr.route.model.Remote, Stream: a.parsed.stream, Header: r.Header, fields: a.parsed.fields}
	timer := time.AfterFunc(ce.firstByte, func() { cancel(errFirstByte) })
	defer timer.Stop()
	start := time.Now()
	var resp *Response
	var err error
	if a.endpoint == endpointEmbeddings {
		em, ok := ce.provider.(Embedder)
		if !ok {
			return nil, cancel, BadRequest("model", "the model `%s` does not support embeddings", sanitize(a.parsed.model))
		}
		resp, err = em.Embeddings(ctx, req)
	} else {
		resp, err = ce.provider.ChatCompletion(ctx, req)
	}
	a.info.Upstream = time.Since(start)
	if err != nil {
		err = scrub(&ce.conn.Credentials, err)
		if cause := context.Cause(ctx); cause == errFirstByte {
			err = &Error{Status: errFirstByte.Status, Type: errFirstByte.Type, Code: errFirstByte.Code,
				Message: fmt.Sprintf("the upstream of connection %q did not answer within %s", ce.conn.Name, ce.firstByte), Err: err}
		}
	}
	return resp, cancel, err
}

// takeLimits applies gr's assignment's request rate and token limit, and
// sets the x-ratelimit-* headers.
func (g *Gateway) takeLimits(ctx context.Context, w http.ResponseWriter, a *attempt, gr grant) error {
	g.settle(a, Usage{}) // release a reservation made for an earlier route
	as := gr.assignment
	if as == nil || (as.TPS <= 0 && as.TokenLimit <= 0) {
		return nil
	}
	now := time.Now()
	var n int64
	if as.TokenLimit > 0 {
		n = estimateTokens(a, g.cfg.DefaultMaxTokens)
	}
	var rd, td Decision
	err := g.limit(func(l Limiter) (err error) {
		rd, td = Decision{}, Decision{}
		if t, ok := l.(LimitTaker); ok && as.TPS > 0 && as.TokenLimit > 0 {
			rd, td, err = t.Take(ctx, gr.rateKey, as.TPS, as.EffectiveBurst(), gr.tokenKey, n, as.TokenLimit, as.TokenWindow, now)
			return err
		}
		if as.TPS > 0 {
			if rd, err = l.AllowRequest(ctx, gr.rateKey, as.TPS, as.EffectiveBurst(), now); err != nil || !rd.Allowed {
				return err
			}
		}
		if as.TokenLimit > 0 {
			td, err = l.ReserveTokens(ctx, gr.tokenKey, n, as.TokenLimit, as.TokenWindow, now)
		}
		return err
	})
	if err != nil {
		return err
	}
	// The six values are appended to one buffer and cut from one string:
	// two allocations for all of them.
	var buf [160]byte
	b := buf[:0]
	var from, to [6]int // value i is b[from[i]:to[i]]
	num := func(i int, v int64) { from[i] = len(b); b = strconv.AppendInt(b, v, 10); to[i] = len(b) }
	reset := func(i int, d time.Duration) { from[i] = len(b); b = appendReset(b, d); to[i] = len(b) }
	if as.TPS > 0 {
		num(0, rd.Limit)
		num(1, rd.Remaining)
		reset(2, rd.Reset)
	}
	if as.TokenLimit > 0 {
		num(3, td.Limit)
		num(4, td.Remaining)
		reset(5, td.Reset)
	}
	all := string(b)
	vals := make([]string, 6)
	h := w.Header()
	set := func(i int, k string) {
		vals[i] = all[from[i]:to[i]]
		h[k] = vals[i : i+1 : i+1]
	}
	if as.TPS > 0 {
		set(0, "X-Ratelimit-Limit-Requests")
		set(1, "X-Ratelimit-Remaining-Requests")
		set(2, "X-Ratelimit-Reset-Requests")
		if !rd.Allowed {
			return &Error{Status: http.StatusTooManyRequests, Type: TypeRateLimit, Code: "rate_limit_exceeded", RetryAfter: rd.RetryAfter,
				Message: fmt.Sprintf("Rate limit reached for requests: limit %g per second. Retry after %s.", as.TPS, formatReset(rd.RetryAfter))}
		}
	}
	if as.TokenLimit > 0 {
		set(3, "X-Ratelimit-Limit-Tokens")
		set(4, "X-Ratelimit-Remaining-Tokens")
		set(5, "X-Ratelimit-Reset-Tokens")
		if !td.Allowed {
			e := &Error{Status: http.StatusTooManyRequests, Type: TypeRateLimit, Code: "tokens_exceeded", RetryAfter: td.RetryAfter,
				Message: fmt.Sprintf("Token limit reached: %d tokens per %s; this request needs about %d.", as.TokenLimit, windowName(as.TokenWindow), n)}
			if as.TokenWindow == 0 {
				e.Code, e.Message = "insufficient_quota", fmt.Sprintf("Token quota of %d exhausted; this request needs about %d.", as.TokenLimit, n)
			}
			return e
		}
		a.limited, a.reserved, a.reservedAt, a.tokenKey = as, n, now, gr.tokenKey
	}
	return nil
}

// limit runs f on the configured limiter, falling back to the local one
// when a shared limiter fails, so the request path never hangs on it:
// after a failure the shared limiter is left alone for a second, then
// tried again.
func (g *Gateway) limit(f func(Limiter) error) error {
	if g.limiter == Limiter(g.local) {
		return f(g.local)
	}
	now := time.Now().UnixNano()
	if now >= g.sharedDownUntil.Load() {
		err := f(g.limiter)
		if err == nil {
			if g.sharedDown.CompareAndSwap(true, false) {
				g.log.Info("shared limiter is back; limits are shared again")
			}
			return nil
		}
		g.sharedDownUntil.Store(now + int64(time.Second))
		if !g.sharedDown.Swap(true) {
			g.log.Warn("shared limiter failed; using per-replica limits until it is back", "err", err)
		}
	}
	return f(g.local)
}

func windowName(w time.Duration) string {
	if w == 0 {
		return "lifetime"
	}
	return w.String()
}

// formatReset writes a duration as OpenAI's x-ratelimit-reset-* do: "1s",
// "6m0s", "20ms".
func formatReset(d time.Duration) string { return string(appendReset(nil, d)) }

// appendReset appends formatReset(d) to b: d rounded to the millisecond
// below a second, to the second above, in time.Duration's notation.
func appendReset(b []byte, d time.Duration) []byte {
	if d <= 0 {
		return append(b, "0s"...)
	}
	if d < time.Second {
		ms := int64(d.Round(time.Millisecond) / time.Millisecond)
		switch {
		case ms == 0:
			return append(b, "0s"...)
		case ms >= 1000:
			return append(b, "1s"...)
		}
		return append(strconv.AppendInt(b, ms, 10), "ms"...)
	}
	secs := int64(d.Round(time.Second) / time.Second)
	h, m, sec := secs/3600, secs/60%60, secs%60
	if h > 0 {
		b = append(strconv.AppendInt(b, h, 10), 'h')
	}
	if h > 0 || m > 0 {
		b = append(strconv.AppendInt(b, m, 10), 'm')
	}
	return append(strconv.AppendInt(b, sec, 10), 's')
}

// estimateTokens is the reservation for a request: its prompt at about
// four bytes a token, plus the completion it may produce.
func estimateTokens(a *attempt, defaultMax int64) int64 {
	f := &a.parsed.fields
	prompt := f.messages
	if a.endpoint == endpointEmbeddings {
		prompt = f.input
	}
	n := int64(prompt.end-prompt.start)/4 + 1
	if a.endpoint == endpointChat {
		if a.parsed.maxTokens > 0 {
			n += a.parsed.maxTokens
		} else {
			n += defaultMax
		}
	}
	return n
}

// settle corrects the token reservation with the real usage.
func (g *Gateway) settle(a *attempt, u Usage) {
	if a.limited == nil {
		return
	}
	delta := u.TotalTokens - a.reserved
	key, window, at := a.tokenKey, a.limited.TokenWindow, a.reservedAt
	a.limited, a.reserved = nil, 0
	if delta == 0 {
		return
	}
	if g.limiter == Limiter(g.local) {
		g.local.AdjustTokens(context.Background(), key, delta, window, at)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.limiter.AdjustTokens(ctx, key, delta, window, at); err != nil {
		g.local.AdjustTokens(ctx, key, delta, window, at)
	}
}

// record queues the usage record of a request.
func (g *Gateway) record(a *attempt, gr grant, status int, u Usage, estimated, streamed bool) {
	if gr.route == nil {
		return
	}
	rec := UsageRecord{
		ID:               NewID("use"),
		Time:             a.start,
		RequestID:        a.reqID,
		Model:            a.parsed.model,
		RemoteModel:      gr.route.model.Remote,
		ConnectionID:     gr.route.model.ConnectionID,
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		TotalTokens:      u.TotalTokens,
		Estimated:        estimated,
		Status:           status,
		Latency:          time.Since(a.start),
		Streamed:         streamed,
		Endpoint:         a.endpoint,
	}
	if a.caller.key != nil {
		rec.KeyID = a.caller.key.key.ID
	}
	if gr.assignment != nil {
		rec.AssignmentID = gr.assignment.ID
	}
	a.info.Status, a.info.Usage, a.info.Estimated, a.info.Streamed = status, u, estimated, streamed
	g.ledger.add(rec)
}

// respond writes a provider's answer and accounts for it.
func (g *Gateway) respond(w http.ResponseWriter, a *attempt, gr grant, resp *Response, cancel context.CancelCauseFunc) *streamStart {
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if resp.Stream == nil {
		vals := make([]string, 2)
		vals[0], vals[1] = "application/json", strconv.Itoa(len(resp.Body))
		h["Content-Type"], h["Content-Length"] = vals[0:1:1], vals[1:2:2]
		w.WriteHeader(status)
		w.Write(resp.Body)
		u, ok := usageOf(resp.Body)
		if !ok {
			u = Usage{PromptTokens: estimateTokens(a, 0)}
			u.CompletionTokens = int64(len(resp.Body)) / 4
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
		}
		g.settle(a, u)
		// Send the answer once the limits hold the real usage (a client's
		// next request must see it), but before the ledger and the
		// observers, which need not delay the client.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		g.record(a, gr, status, u, !ok, false)
		cancel(nil)
		return nil
	}
	return &streamStart{gr: gr, stream: resp.Stream, status: status, cancel: cancel}
}

var (
	sseData    = []byte("data: ")
	sseEnd     = []byte("\n\n")
	sseDone    = []byte("data: [DONE]\n\n")
	usageKey   = []byte(`"usage"`)
	contentKey = []byte(`"content":"`)
	argsKey    = []byte(`"arguments":"`)
)

// relay streams events to the client as they arrive, flushing each, and
// accounts the stream's usage: the upstream's usage chunk when it comes
// (hidden from a client that did not ask for it), otherwise an estimate
// from the text streamed.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, a *attempt, gr grant, st EventStream, status int, cancel context.CancelCauseFunc) {
	defer cancel(nil)
	defer st.Close()
	g.streams.Add(1)
	defer g.streams.Add(-1)
	// The idle watch cuts a stream that stalls; every event keeps it alive.
	idle := gr.route.conn.idle
	var stalled atomic.Bool
	watch := watchIdle(idle, func() { stalled.Store(true); cancel(errIdle) })
	defer watch.stop()
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	h["X-Accel-Buffering"] = []string{"no"}
	w.WriteHeader(status)
	flusher, _ := w.(http.Flusher)
	if b, ok := st.(interface{ Buffered() int }); (!ok || b.Buffered() == 0) && flusher != nil {
		flusher.Flush() // else the head goes out with the first event
	}
	ready, _ := st.(interface{ Ready() bool })
	firstOut := true
	var usage Usage
	gotUsage := false
	var textBytes int64
	clientGone := false
	for {
		data, err := g.next(st, a.reqID)
		if err != nil {
			err = scrub(&gr.route.conn.conn.Credentials, err)
			watch.stop()
			if err == io.EOF {
				_, werr := w.Write(sseDone)
				clientGone = werr != nil
			} else if r.Context().Err() != nil {
				clientGone = true
			} else {
				a.info.UpstreamError = true
				e := AsError(err)
				if stalled.Load() {
					e = &Error{Status: errIdle.Status, Type: errIdle.Type, Code: errIdle.Code, Err: err,
						Message: fmt.Sprintf("the upstream of connection %q sent nothing for %s; the stream was ended", gr.route.conn.conn.Name, idle)}
				}
				g.log.Warn("stream failed", "request_id", a.reqID, "connection", gr.route.conn.conn.ID, "err", err)
				w.Write(sseData)
				w.Write(e.AppendJSON(nil))
				w.Write(sseEnd)
			}
			break // written with the terminator when the handler returns, after the usage is settled
		}
		watch.event()
		if a.info.FirstToken == 0 {
			a.info.FirstToken = time.Since(a.start)
		}
		if bytes.Contains(data, usageKey) {
			if u, ok := usageOf(data); ok {
				usage, gotUsage = u, true
				if !a.parsed.includeUsage && isUsageOnly(data) {
					continue
				}
			}
		}
		textBytes += stringBytesAfter(data, contentKey) + stringBytesAfter(data, argsKey)
		// The ResponseWriter buffers: three writes cost no copy of ours and
		// no buffer held per open stream.
		w.Write(sseData)
		w.Write(data)
		if _, err := w.Write(sseEnd); err != nil {
			clientGone = true
			break
		}
		// The first event leaves at once (with the head, when they came
		// together); later events that arrived together leave together:
		// flush once the next one is not already here.
		if flusher != nil && (firstOut || ready == nil || !ready.Ready()) {
			flusher.Flush()
		}
		firstOut = false
	}
	estimated := !gotUsage
	if estimated {
		usage.PromptTokens = estimateTokens(a, 0)
		usage.CompletionTokens = (textBytes + 3) / 4
		usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	}
	if clientGone {
		status = 499
	}
	// The end of the stream is written but not flushed: it goes out with
	// the chunked body's terminator when the handler returns, in one
	// write, and only after the limits hold the stream's real usage (so
	// that the client's next request sees it).
	g.settle(a, usage)
	g.record(a, gr, status, usage, estimated, true)
}

// next reads the next event, turning a provider's panic into an error so
// that the stream ends with an SSE error event and is still accounted.
func (g *Gateway) next(st EventStream, reqID string) (data []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			g.log.Error("panic in a stream", "request_id", reqID, "panic", fmt.Sprint(p))
			data, err = nil, &Error{Status: http.StatusInternalServerError, Type: TypeServer, Message: "internal error (request " + reqID + ")"}
		}
	}()
	return st.Next()
}

// scrub removes a connection's secrets from an upstream error: some
// servers echo the key they were sent in their error messages, and those
// reach clients and logs.
func scrub(c *Credentials, err error) error {
	secrets := [...]string{c.APIKey, c.SecretAccessKey, c.SessionToken}
	text, e := err.Error(), AsError(err)
	found := false
	for _, s := range secrets {
		if len(s) >= 4 && (strings.Contains(text, s) || strings.Contains(e.Message, s)) {
			found = true
		}
	}
	if !found {
		return err
	}
	clean := func(t string) string {
		for _, s := range secrets {
			if len(s) >= 4 {
				t = strings.ReplaceAll(t, s, "[redacted]")
			}
		}
		return t
	}
	out := *e
	out.Message = clean(e.Message)
	out.Err = errors.New(clean(text))
	return &out
}

// usageOf reads the top-level "usage" object of an OpenAI answer or chunk.
func usageOf(body []byte) (Usage, bool) {
	raw := topLevelField(body, "usage")
	if len(raw) == 0 || raw[0] != '{' {
		return Usage{}, false
	}
	var u Usage
	for _, f := range [...]struct {
		name string
		dst  *int64
	}{{"prompt_tokens", &u.PromptTokens}, {"completion_tokens", &u.CompletionTokens}, {"total_tokens", &u.TotalTokens}} {
		if v := topLevelField(raw, f.name); len(v) > 0 && v[0] != 'n' {
			n, ok := parseCount(v)
			if !ok {
				return Usage{}, false
			}
			*f.dst = n
		}
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u, true
}

// parseCount reads a non-negative JSON integer without allocating.
func parseCount(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isUsageOnly reports whether a chunk is the usage chunk: empty choices.
func isUsageOnly(chunk []byte) bool {
	raw := bytes.TrimSpace(topLevelField(chunk, "choices"))
	return len(raw) == 0 || (raw[0] == '[' && len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0)
}

// stringBytesAfter sums the lengths of the JSON strings that follow each
// occurrence of key (e.g. `"content":"`) in data.
func stringBytesAfter(data, key []byte) int64 {
	var n int64
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return n
		}
		start := i + len(key) - 1 // at the opening quote
		end := skipString(data, start)
		n += int64(end - start - 2)
		data = data[end:]
	}
}

// topLevelField returns the raw value of a top-level field of a JSON
// object, or nil. It is bounds-safe on malformed input.
func topLevelField(b []byte, name string) []byte {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil
	}
	i++
	for i < len(b) {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return nil
		}
		ks := i
		i = skipString(b, i)
		if i > len(b) || i-ks < 2 {
			return nil
		}
		key := b[ks+1 : i-1]
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return nil
		}
		end := skipValue(b, i)
		if end > len(b) {
			return nil
		}
		if string(key) == name {
			return b[i:end]
		}
		i = end
	}
	return nil
}
