package console

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/pricing"
)

// modelRow is a model as the console shows it.
type modelRow struct {
	ID, Alias, Remote        string
	Connection, ConnectionID string
	Weight                   int
	Price                    string // what its requests are charged at, and where that price comes from
}

func modelRowOf(m *llmproxy.Model, n *names) modelRow {
	row := modelRow{ID: m.ID, Alias: m.Name, Remote: m.Remote, ConnectionID: m.ConnectionID,
		Connection: n.conn(m.ConnectionID), Weight: max(m.Weight, 1)}
	switch {
	case m.Price != nil:
		row.Price = describePrice(*m.Price) + " (set on the model)"
	default:
		if p, _, ok := pricing.Lookup(n.conns[m.ConnectionID].Provider, m.Remote); ok {
			row.Price = describePrice(p) + " (price table)"
		} else {
			row.Price = "unknown: requests are not charged"
		}
	}
	return row
}

// describePrice writes a price per million tokens.
func describePrice(p pricing.Price) string {
	s := dollars(p.Input) + " in · " + dollars(p.Output) + " out · " + dollars(p.CachedInput) + " cached in"
	if p.CacheWrite > 0 {
		s += " · " + dollars(p.CacheWrite) + " cache write"
	}
	return s + " per 1M tokens"
}

type modelsPage struct {
	Rows []modelRow
}

func (c *Console) models(w http.ResponseWriter, r *http.Request, s *session) {
	n, err := c.loadNames(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &modelsPage{}
	for _, m := range n.models {
		p.Rows = append(p.Rows, modelRowOf(&m, n))
	}
	sort.Slice(p.Rows, func(i, j int) bool { return p.Rows[i].ID < p.Rows[j].ID })
	c.render(w, r, http.StatusOK, "models", newView(s, "Models", "models", p))
}

// priceForm holds the price fields as typed (dollars per million
// tokens).
type priceForm struct {
	InputPrice, OutputPrice, CachedInputPrice, CacheWritePrice string
}

func readPriceForm(f url.Values) priceForm {
	return priceForm{strings.TrimSpace(f.Get("input_price")), strings.TrimSpace(f.Get("output_price")),
		strings.TrimSpace(f.Get("cached_input_price")), strings.TrimSpace(f.Get("cache_write_price"))}
}

func priceFormOf(p *pricing.Price) priceForm {
	if p == nil {
		return priceForm{}
	}
	f := priceForm{formatNumber(p.Input), formatNumber(p.Output), formatNumber(p.CachedInput), ""}
	if p.CacheWrite > 0 {
		f.CacheWritePrice = formatNumber(p.CacheWrite)
	}
	return f
}

// parse returns the price override the fields give, nil when all are
// empty (the price table applies). As with the CLI's flags, input and
// output go together; cached input defaults to the input price, cache
// writes to it as well (CacheWrite zero).
func (f priceForm) parse() (*pricing.Price, error) {
	if f == (priceForm{}) {
		return nil, nil
	}
	if f.InputPrice == "" {
		return nil, fieldError("Input price", "a price override needs the input and the output price")
	}
	if f.OutputPrice == "" {
		return nil, fieldError("Output price", "a price override needs the input and the output price")
	}
	var p pricing.Price
	for _, x := range []struct {
		label, v string
		to       *float64
	}{{"Input price", f.InputPrice, &p.Input}, {"Output price", f.OutputPrice, &p.Output},
		{"Cached input price", f.CachedInputPrice, &p.CachedInput}, {"Cache write price", f.CacheWritePrice, &p.CacheWrite}} {
		if x.v == "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimPrefix(x.v, "$"), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fieldError(x.label, "want dollars per million tokens, 0 or more, e.g. 2.5")
		}
		*x.to = v
	}
	if f.CachedInputPrice == "" {
		p.CachedInput = p.Input
	}
	return &p, nil
}

// modelForm is the new-model form as typed.
type modelForm struct {
	Name, Connection, Remote string
	priceForm
	Connections []string
}

func (c *Console) newModel(w http.ResponseWriter, r *http.Request, s *session) {
	names, err := c.connectionNames(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "models_new", newView(s, "New model", "models", &modelForm{Connections: names}))
}

func (c *Console) createModel(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	f := modelForm{Name: strings.TrimSpace(r.PostForm.Get("name")), Connection: strings.TrimSpace(r.PostForm.Get("connection")),
		Remote: strings.TrimSpace(r.PostForm.Get("remote")), priceForm: readPriceForm(r.PostForm)}
	m := &llmproxy.Model{Name: f.Name, Remote: f.Remote, ConnectionID: f.Connection}
	var err error
	if m.Price, err = f.priceForm.parse(); err == nil {
		err = c.admin.AddModel(ctx, m)
	}
	if err != nil {
		status, msg := formErrorStatus(err)
		if status == http.StatusInternalServerError {
			c.fail(w, r, s, err)
			return
		}
		if f.Connections, err = c.connectionNames(ctx); err != nil {
			c.fail(w, r, s, err)
			return
		}
		v := newView(s, "New model", "models", &f)
		v.Error = msg
		c.render(w, r, status, "models_new", v)
		return
	}
	c.log.Info("console: model created", "model_id", m.ID, "name", m.Name)
	http.Redirect(w, r, Prefix+"/models/"+url.PathEscape(m.ID), http.StatusSeeOther)
}

// testResult is the answer of the Test button's request.
type testResult struct {
	Endpoint  string // the gateway path it was sent to
	Alias     string // the model alias it was sent for
	Status    int
	LatencyMS int64
	OK        bool
	Message   string // the gateway's error message, provider secrets removed
}

// modelPage is a model with its edit form and, after the Test button,
// the test's result.
type modelPage struct {
	Model   modelRow
	Prices  priceForm
	CanTest bool
	Test    *testResult
}

func (c *Console) model(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderModel(w, r, s, http.StatusOK, nil, nil, "")
}

// renderModel answers the model page, with the prices as typed after a
// refused edit, a test's result, or an error.
func (c *Console) renderModel(w http.ResponseWriter, r *http.Request, s *session, status int, typed *priceForm, test *testResult, msg string) {
	ctx := r.Context()
	m, err := c.admin.Model(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	n, err := c.loadNames(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &modelPage{Model: modelRowOf(m, n), Prices: priceFormOf(m.Price), CanTest: c.gateway != nil, Test: test}
	if typed != nil {
		p.Prices = *typed
	}
	v := newView(s, "Model "+m.Name, "models", p)
	v.Error = msg
	c.render(w, r, status, "models_show", v)
}

// updateModel sets the model's price override to the form's; all fields
// empty removes it, so that the price table applies again.
func (c *Console) updateModel(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	id := r.PathValue("id")
	f := readPriceForm(r.PostForm)
	p, err := f.parse()
	if err == nil {
		u := admin.ModelUpdate{Price: p, ClearPrice: p == nil}
		if p == nil {
			// Clearing what is not set would change nothing: say so.
			var m *llmproxy.Model
			if m, err = c.admin.Model(ctx, id); err == nil && m.Price == nil {
				err = fieldError("Input price", "type the prices to set; with all fields empty the price table applies, as it does now")
			}
		}
		if err == nil {
			_, err = c.admin.UpdateModel(ctx, id, u)
		}
	}
	if err != nil {
		status, msg := errorStatus(err)
		if status == http.StatusInternalServerError || status == http.StatusNotFound {
			c.fail(w, r, s, err)
			return
		}
		c.renderModel(w, r, s, status, &f, nil, msg)
		return
	}
	c.log.Info("console: model price changed", "model_id", id)
	http.Redirect(w, r, Prefix+"/models/"+url.PathEscape(id), http.StatusSeeOther)
}

// deleteModel deletes it with the CLI's protection: a model a key is
// assigned is refused, the error naming the keys.
func (c *Console) deleteModel(w http.ResponseWriter, r *http.Request, s *session) {
	m, err := c.admin.DeleteModel(r.Context(), r.PathValue("id"))
	if err != nil {
		status, msg := errorStatus(err)
		if status == http.StatusConflict {
			c.renderModel(w, r, s, status, nil, nil, msg)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: model deleted", "model_id", m.ID, "name", m.Name)
	http.Redirect(w, r, Prefix+"/models", http.StatusSeeOther)
}

// testTimeout bounds the Test button's request.
const testTimeout = 60 * time.Second

// testModel sends one tiny request for the model's alias through the
// Gateway, in-process, with the master key: a chat completion of at
// most one token, or an embedding of one word for an embedding model.
// Models sharing the alias are picked among as the Gateway picks for
// any client.
func (c *Console) testModel(w http.ResponseWriter, r *http.Request, s *session) {
	if c.gateway == nil {
		c.errorPage(w, r, s, http.StatusNotFound, "The Test button is off: the console has no gateway to send through.")
		return
	}
	ctx := r.Context()
	m, err := c.admin.Model(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	res := c.sendTest(ctx, m)
	if conn, err := c.storage.Connection(ctx, m.ConnectionID); err == nil {
		res.Message = redact(res.Message, conn.Credentials)
	}
	c.log.Info("console: model tested", "model_id", m.ID, "status", res.Status, "latency_ms", res.LatencyMS)
	c.renderModel(w, r, s, http.StatusOK, nil, &res, "")
}

// isEmbedding guesses whether m is an embedding model from its names,
// as the providers name them (text-embedding-3-small, gemini-embedding-001,
// amazon.titan-embed-text-v2).
func isEmbedding(m *llmproxy.Model) bool {
	return strings.Contains(strings.ToLower(m.Remote), "embed") || strings.Contains(strings.ToLower(m.Name), "embed")
}

func (c *Console) sendTest(ctx context.Context, m *llmproxy.Model) testResult {
	path := "/v1/chat/completions"
	body := map[string]any{"model": m.Name, "max_tokens": 1,
		"messages": []map[string]string{{"role": "user", "content": "Say OK."}}}
	if isEmbedding(m) {
		path = "/v1/embeddings"
		body = map[string]any{"model": m.Name, "input": "ping"}
	}
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return testResult{Endpoint: path, Alias: m.Name, Message: "the request could not be built"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.masterKey)
	req.RemoteAddr = "127.0.0.1:0"
	rec := &captureWriter{header: http.Header{}}
	start := time.Now()
	c.gateway.ServeHTTP(rec, req)
	res := testResult{Endpoint: path, Alias: m.Name, Status: rec.status(), LatencyMS: time.Since(start).Milliseconds()}
	res.OK = res.Status < 300
	if !res.OK {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(rec.body.Bytes(), &e) == nil {
			res.Message = e.Error.Message
		}
		if len(res.Message) > 300 {
			res.Message = res.Message[:300] + "…"
		}
	}
	return res
}

// redact removes a connection's secrets from an upstream's message (some
// providers echo the key they were sent).
func redact(msg string, cr llmproxy.Credentials) string {
	for _, secret := range []string{cr.APIKey, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken} {
		if len(secret) >= 4 {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	return msg
}

// captureWriter keeps the status and the start of the body of the
// Gateway's answer to a test request.
type captureWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

// maxCapture bounds the body kept: only an error's message is read.
const maxCapture = 64 << 10

func (cw *captureWriter) Header() http.Header { return cw.header }

func (cw *captureWriter) WriteHeader(code int) {
	if cw.code == 0 {
		cw.code = code
	}
}

func (cw *captureWriter) Write(p []byte) (int, error) {
	cw.WriteHeader(http.StatusOK)
	if room := maxCapture - cw.body.Len(); room > 0 {
		cw.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (cw *captureWriter) Flush() {}

func (cw *captureWriter) status() int {
	if cw.code == 0 {
		return http.StatusOK
	}
	return cw.code
}
