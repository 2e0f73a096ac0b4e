package llmproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// exchange is the state of one request through the path.
type exchange struct {
	reqID    string
	start    time.Time
	caller   caller
	endpoint string
	dialect  *dialect // the client's API: its errors and stream framing
	parsed   *parsedBody
	body     []byte
	// limits
	limited    *Assignment // the assignment whose limits were taken
	reserved   int64       // tokens reserved against its token limit
	reservedAt time.Time
	tokenKey   string
	spend      *spending // what is reserved against budgets
	info       RequestInfo
	// capture, when set, sees every event of a stream before the client
	// does (the Responses API's conversation state keeps what it needs).
	capture func(data []byte)
	resp    *responseState // a Responses API request's state; nil for others
}

// fail answers err and notes its status.
func (x *exchange) fail(w http.ResponseWriter, err error) {
	e := AsError(err)
	x.info.Status = e.Status
	x.dialect.writeError(w, e)
}

// inference serves a request of an inference route (chat, embeddings,
// messages, count_tokens). A stream is relayed from
// here, not from inside serveInference, so that its goroutine waits for
// each event on a shallow stack: the garbage collector then shrinks the
// stack that parsing and routing grew, and with thousands of streams open
// stacks are a large part of the gateway's memory.
func (g *Gateway) inference(w http.ResponseWriter, r *http.Request, reqID, endpoint string) {
	x := &exchange{reqID: reqID, start: time.Now(), endpoint: endpoint, dialect: dialectOf(endpoint)}
	x.info = RequestInfo{RequestID: reqID, Route: endpoint, Method: r.Method, Start: x.start}
	defer g.observe(&x.info)
	if st := g.serveInference(w, r, x); st != nil {
		g.relay(w, r, x, st.gr, st.stream, st.status, st.cancel)
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
func (g *Gateway) serveInference(w http.ResponseWriter, r *http.Request, x *exchange) *streamStart {
	s := g.snap.Load()
	reqID, endpoint := x.reqID, x.endpoint
	c, err := g.authenticate(r, s)
	if err != nil {
		x.fail(w, err)
		return nil
	}
	x.caller = c
	x.info.Authenticated = true
	if c.key != nil {
		x.info.KeyID, x.info.KeyName = c.key.key.ID, c.key.key.Name
	}
	if ct := r.Header.Get("Content-Type"); !acceptedContentType(ct) {
		x.fail(w, BadRequest("", "unsupported Content-Type %q; send application/json", sanitize(ct)))
		return nil
	}
	if x.body, err = g.readBody(r); err != nil {
		x.fail(w, err)
		return nil
	}
	if x.parsed, err = parseBody(x.body, endpoint); err != nil {
		x.fail(w, err)
		return nil
	}
	gs := c.grants(s, x.parsed.model)
	if len(gs) == 0 {
		x.fail(w, modelNotFound(x.parsed.model))
		return nil
	}
	x.info.Model = x.parsed.model
	if endpoint == EndpointResponses {
		if gs, err = g.prepareResponses(r.Context(), x, gs); err != nil {
			x.fail(w, err)
			return nil
		}
	}
	gs = g.order(gs)
	var lastErr error
	var tried grant
	for i, gr := range gs {
		if gr.assignment != x.limited || i == 0 || x.spend != nil { // a budget reserves at the price of the model tried
			if err := g.takeLimits(r.Context(), w, x, gr); err != nil {
				e := AsError(err)
				switch {
				case e.Code == "rate_limit_exceeded":
					x.info.Refused = "requests"
				case e.Type == TypeInsufficientQuota || e.Code == "model_not_priced":
					x.info.Refused = "budget"
				default:
					x.info.Refused = "tokens"
				}
				x.noteRoute(gr)
				g.record(x, gr, e.Status, Usage{}, false, false)
				x.fail(w, err)
				return nil
			}
		}
		tried = gr
		x.noteRoute(gr)
		x.info.Attempts++
		resp, cancel, err := g.forward(r.Context(), r, x, gr)
		gr.upstream.health.note(err)
		if err == nil {
			return g.respond(w, x, gr, resp, cancel)
		}
		cancel(nil)
		lastErr = err
		if r.Context().Err() != nil || !retryable(err) || i == len(gs)-1 {
			break
		}
		g.log.Warn("upstream failed; trying the next model", "request_id", reqID, "connection", gr.upstream.ID, "err", err)
	}
	e := AsError(lastErr)
	if e.Status >= 500 || e.Status == http.StatusTooManyRequests {
		x.info.UpstreamError = true
		g.log.Warn("upstream error", "request_id", reqID, "connection", tried.upstream.ID, "status", e.Status, "err", lastErr)
	}
	g.settle(x, Usage{})
	g.record(x, tried, e.Status, Usage{}, false, false)
	x.fail(w, e)
	return nil
}

// noteRoute records the chosen route in the request's info.
func (x *exchange) noteRoute(gr grant) {
	ce := gr.upstream
	x.info.RemoteModel = gr.model.Remote
	x.info.Provider, x.info.ConnectionID, x.info.Connection = ce.Provider, ce.ID, ce.Name
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

// errFirstByte and errIdle are why an upstream call was cut short.
var (
	errFirstByte = &Error{Status: http.StatusGatewayTimeout, Type: TypeUpstream, Code: "upstream_timeout", Message: "the upstream did not answer in time"}
	errIdle      = &Error{Status: http.StatusGatewayTimeout, Type: TypeUpstream, Code: "upstream_timeout", Message: "the upstream stream stalled: no data within the idle timeout"}
)

// forward calls the provider under a context that the first-byte timeout
// cancels; the returned cancel must be called when the answer is done
// with (with nil), and is what the stream idle timeout uses.
func (g *Gateway) forward(ctx context.Context, r *http.Request, x *exchange, gr grant) (*Response, context.CancelCauseFunc, error) {
	ce := gr.upstream
	ctx, cancel := context.WithCancelCause(ctx)
	if ce.provider == nil {
		return nil, cancel, UpstreamError(fmt.Sprintf("connection %q is not usable", ce.Name), ce.err)
	}
	req := &Request{Body: x.body, Model: x.parsed.model, RemoteModel: gr.model.Remote, Stream: x.parsed.stream, Header: r.Header,
		Endpoint: x.endpoint, fields: x.parsed.fields}
	timer := time.AfterFunc(ce.firstByte, func() { cancel(errFirstByte) })
	defer timer.Stop()
	start := time.Now()
	var resp *Response
	var err error
	switch x.endpoint {
	case EndpointEmbeddings:
		em, ok := ce.provider.(Embedder)
		if !ok {
			return nil, cancel, BadRequest("model", "the model `%s` does not support embeddings", sanitize(x.parsed.model))
		}
		resp, err = em.Embeddings(ctx, req)
	case EndpointMessages:
		resp, err = messages(ctx, ce, req)
	case EndpointCountTokens:
		resp, err = countTokens(ctx, ce, req)
	case EndpointResponses:
		resp, err = g.responses(ctx, x, ce, req)
	default:
		resp, err = ce.provider.ChatCompletion(ctx, req)
	}
	x.info.Upstream = time.Since(start)
	if err != nil {
		err = scrub(&ce.Credentials, err)
		if cause := context.Cause(ctx); cause == errFirstByte {
			err = &Error{Status: errFirstByte.Status, Type: errFirstByte.Type, Code: errFirstByte.Code,
				Message: fmt.Sprintf("the upstream of connection %q did not answer within %s", ce.Name, ce.firstByte), Err: err}
		}
	}
	return resp, cancel, err
}

// record queues the usage record of a request.
func (g *Gateway) record(x *exchange, gr grant, status int, u Usage, estimated, streamed bool) {
	if gr.target == nil {
		return
	}
	rec := UsageRecord{
		ID:               NewID("use"),
		Time:             x.start,
		RequestID:        x.reqID,
		Model:            x.parsed.model,
		RemoteModel:      gr.model.Remote,
		ConnectionID:     gr.model.ConnectionID,
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		TotalTokens:      u.TotalTokens,
		Estimated:        estimated,
		Status:           status,
		Latency:          time.Since(x.start),
		CacheReadTokens:  u.CacheReadTokens,
		CacheWriteTokens: u.CacheWriteTokens,
		CostKnown:        gr.priced,
		Streamed:         streamed,
		Endpoint:         x.endpoint,
	}
	if x.caller.key != nil {
		rec.KeyID = x.caller.key.key.ID
	}
	if gr.assignment != nil {
		rec.AssignmentID = gr.assignment.ID
	}
	if gr.priced {
		rec.CostMicros = gr.price.Cost(u.PromptTokens, u.CompletionTokens, u.CacheReadTokens, u.CacheWriteTokens)
	}
	x.info.Status, x.info.Usage, x.info.Estimated, x.info.Streamed = status, u, estimated, streamed
	x.info.CostMicros, x.info.CostKnown = rec.CostMicros, rec.CostKnown
	g.ledger.add(rec)
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
