package llmproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

func TestPassthroughNonStreaming(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	status, h, body := e.post("/v1/chat/completions", keyConn, "application/json",
		`{"model":"gpt-alias","messages":[{"role":"user","content":"hi"}],"x_unknown":{"keep":[1,"two",null]},"temperature":0.5}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	// The client sees the gateway's request id (the access log's and the
	// ledger's), and the upstream's beside it.
	if id := h.Get("X-Request-Id"); !strings.HasPrefix(id, "req") || id == fakeopenai.RequestID {
		t.Errorf("X-Request-Id = %q; want the gateway's", id)
	}
	if got := h.Get("X-Upstream-Request-Id"); got != fakeopenai.RequestID {
		t.Errorf("X-Upstream-Request-Id = %q; want the upstream's %q", got, fakeopenai.RequestID)
	}
	if !strings.Contains(body, fakeopenai.Reply("remote-model-1", "hi")) {
		t.Errorf("body = %s", body)
	}
	up := e.fake.Last()
	if up.JSON["model"] != "remote-model-1" {
		t.Errorf("upstream saw model %v", up.JSON["model"])
	}
	if got := up.Header.Get("Authorization"); got != "Bearer "+upstreamKey {
		t.Errorf("upstream saw Authorization %q", got)
	}
	if !strings.Contains(string(up.Body), `"x_unknown":{"keep":[1,"two",null]},"temperature":0.5`) {
		t.Errorf("unknown fields not passed through: %s", up.Body)
	}
	sums := e.usage(llmproxy.UsageFilter{KeyID: e.connKey.ID})
	if len(sums) != 1 || sums[0].Requests != 1 || sums[0].PromptTokens != fakeopenai.PromptTokens || sums[0].EstimatedTokens != 0 {
		t.Errorf("usage = %+v", sums)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	cases := []struct {
		name, path, ct, body string
		status               int
		param, want          string
	}{
		{"malformed", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[`, 400, "", "not valid JSON"},
		{"missing model", "/v1/chat/completions", "application/json", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model", "model"},
		{"model not a string", "/v1/chat/completions", "application/json", `{"model":1,"messages":[{"role":"user","content":"x"}]}`, 400, "model", "string"},
		{"empty messages", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[]}`, 400, "messages", "empty"},
		{"message not an object", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"},"hi"]}`, 400, "messages[1]", "object"},
		{"message role missing", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[{"content":"x"}]}`, 400, "messages[0].role", "role"},
		{"stream not bool", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","stream":1,"messages":[1]}`, 400, "stream", "boolean"},
		{"wrong content type", "/v1/chat/completions", "multipart/form-data; boundary=x", `{"model":"gpt-alias","messages":[1]}`, 400, "", "Content-Type"},
		{"empty body", "/v1/chat/completions", "application/json", ``, 400, "", "empty"},
		{"unknown path", "/v1/nothing", "application/json", `{}`, 404, "", "Unknown request URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := e.post(c.path, keyConn, c.ct, c.body)
			var env struct {
				Error struct {
					Message string
					Type    string
					Param   *string
				}
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || h.Get("Content-Type") != "application/json" {
				t.Fatalf("not an OpenAI JSON error: %s", body)
			}
			param := ""
			if env.Error.Param != nil {
				param = *env.Error.Param
			}
			if status != c.status || param != c.param || !strings.Contains(env.Error.Message, c.want) {
				t.Errorf("got %d param=%q %q", status, param, env.Error.Message)
			}
		})
	}
	status, _, body := e.post("/v1/chat/completions", keyConn, "", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Errorf("no content type (curl -d): %d %s", status, body)
	}
	status, _, _ = e.post("/v1/chat/completions", keyConn, "application/x-www-form-urlencoded", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Errorf("form content type (curl -d): %d", status)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/chat/completions", nil)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET chat: %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := len(e.fake.Requests()); n != 2 {
		t.Errorf("upstream got %d requests, want only the 2 good ones", n)
	}
}

// chunked hides a reader's length, so the request is sent chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestBadInputTable: every kind of bad request is answered by the gateway
// itself with an OpenAI error naming the problem; none reaches the
// upstream.
func TestBadInputTable(t *testing.T) {
	h := newHardEnv(t)
	const chat = "/v1/chat/completions"
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	padded := func(n int) string { // a valid body of exactly n bytes
		s := `{"model":"ok",` + msgs + `,"user":""}`
		return s[:len(s)-2] + strings.Repeat("x", n-len(s)) + `"}`
	}
	type header = [2]string
	cases := []struct {
		name, method, path string
		headers            []header
		body               string
		chunked            bool
		status             int
		param, code, want  string
		allow              string
	}{
		// Malformed and truncated JSON.
		{name: "truncated object", body: `{"model":"ok",` + msgs[:20], status: 400, want: "truncated"},
		{name: "truncated in a string", body: `{"model":"o`, status: 400, want: "truncated"},
		{name: "truncated after key", body: `{"model"`, status: 400, want: "truncated"},
		{name: "trailing garbage", body: `{"model":"ok",` + msgs + `} {}`, status: 400, want: "not valid JSON"},
		{name: "single quotes", body: `{'model':'ok'}`, status: 400, want: "not valid JSON"},
		{name: "invalid UTF-8 in a string", body: "{\"model\":\"ok\xff\"," + msgs + "}", status: 400, want: "invalid UTF-8 at byte 12"},
		{name: "NUL byte", body: "{\"model\":\"ok\"\x00," + msgs + "}", status: 400, want: "not valid JSON"},
		{name: "empty body", body: ``, status: 400, want: "empty"},
		{name: "whitespace body", body: " \n\t ", status: 400, want: "empty"},
		{name: "array body", body: `[{"model":"ok"}]`, status: 400, want: "JSON object"},
		{name: "string body", body: `"hello"`, status: 400, want: "JSON object"},
		{name: "null body", body: `null`, status: 400, want: "JSON object"},
		// Wrong JSON types.
		{name: "model number", body: `{"model":42,` + msgs + `}`, status: 400, param: "model", want: "model must be a string, got a number"},
		{name: "model array", body: `{"model":["ok"],` + msgs + `}`, status: 400, param: "model", want: "got an array"},
		{name: "model object", body: `{"model":{"id":"ok"},` + msgs + `}`, status: 400, param: "model", want: "got an object"},
		{name: "model bool", body: `{"model":true,` + msgs + `}`, status: 400, param: "model", want: "got a boolean"},
		{name: "model null", body: `{"model":null,` + msgs + `}`, status: 400, param: "model", want: "got null"},
		{name: "model empty", body: `{"model":"",` + msgs + `}`, status: 400, param: "model", want: "model parameter"},
		{name: "model missing", body: `{` + msgs + `}`, status: 400, param: "model", want: "model parameter"},
		{name: "messages string", body: `{"model":"ok","messages":"hi"}`, status: 400, param: "messages", want: "messages must be an array, got a string"},
		{name: "messages object", body: `{"model":"ok","messages":{"role":"user"}}`, status: 400, param: "messages", want: "got an object"},
		{name: "messages number", body: `{"model":"ok","messages":1}`, status: 400, param: "messages", want: "got a number"},
		{name: "messages null", body: `{"model":"ok","messages":null}`, status: 400, param: "messages", want: "got null"},
		{name: "messages missing", body: `{"model":"ok"}`, status: 400, param: "messages", want: "messages parameter"},
		{name: "messages empty", body: `{"model":"ok","messages":[]}`, status: 400, param: "messages", want: "must not be empty"},
		{name: "messages empty with spaces", body: `{"model":"ok","messages":[ ` + "\n" + ` ]}`, status: 400, param: "messages", want: "must not be empty"},
		{name: "stream string", body: `{"model":"ok",` + msgs + `,"stream":"true"}`, status: 400, param: "stream", want: "stream must be a boolean, got a string"},
		{name: "stream number", body: `{"model":"ok",` + msgs + `,"stream":1}`, status: 400, param: "stream", want: "got a number"},
		{name: "stream object", body: `{"model":"ok",` + msgs + `,"stream":{}}`, status: 400, param: "stream", want: "got an object"},
		{name: "max_tokens string", body: `{"model":"ok",` + msgs + `,"max_tokens":"10"}`, status: 400, param: "max_tokens", want: "non-negative integer"},
		{name: "max_tokens negative", body: `{"model":"ok",` + msgs + `,"max_tokens":-5}`, status: 400, param: "max_tokens", want: "non-negative integer"},
		{name: "duplicate model", body: `{"model":"ok","model":"boom",` + msgs + `}`, status: 400, param: "model", want: "more than once"},
		{name: "stream_options not object", body: `{"model":"ok",` + msgs + `,"stream":true,"stream_options":true}`, status: 400, param: "stream_options", want: "object"},
		{name: "embeddings input missing", path: "/v1/embeddings", body: `{"model":"ok"}`, status: 400, param: "input", want: "input parameter"},
		{name: "embeddings streamed", path: "/v1/embeddings", body: `{"model":"ok","input":"x","stream":true}`, status: 400, param: "stream", want: "cannot be streamed"},
		{name: "embeddings model number", path: "/v1/embeddings", body: `{"model":7,"input":"x"}`, status: 400, param: "model", want: "must be a string"},
		// Size.
		{name: "over the limit, Content-Length", body: padded(hardLimit + 1), status: 413, code: "request_too_large", want: fmt.Sprintf("limit of %d bytes", hardLimit)},
		{name: "over the limit, chunked", body: padded(hardLimit + 1), chunked: true, status: 413, code: "request_too_large", want: "larger than the limit"},
		{name: "far over the limit, chunked", body: padded(20 * hardLimit), chunked: true, status: 413, code: "request_too_large", want: "larger than the limit"},
		// Content types.
		{name: "multipart", headers: []header{{"Content-Type", "multipart/form-data; boundary=x"}}, body: `{"model":"ok",` + msgs + `}`, status: 400, want: `unsupported Content-Type "multipart/form-data; boundary=x"`},
		{name: "xml", headers: []header{{"Content-Type", "application/xml"}}, body: `{"model":"ok",` + msgs + `}`, status: 400, want: "Content-Type"},
		{name: "octet-stream", headers: []header{{"Content-Type", "application/octet-stream"}}, body: `{"model":"ok",` + msgs + `}`, status: 400, want: "Content-Type"},
		{name: "unparsable content type", headers: []header{{"Content-Type", "json;;;=="}}, body: `{"model":"ok",` + msgs + `}`, status: 400, want: "Content-Type"},
		// Paths.
		{name: "unknown path", path: "/v1/nothing", body: `{}`, status: 404, code: "unknown_url", want: "Unknown request URL: POST /v1/nothing"},
		{name: "unknown version", path: "/v2/chat/completions", body: `{}`, status: 404, code: "unknown_url", want: "Unknown request URL"},
		{name: "path below chat", path: "/v1/chat/completions/x", body: `{}`, status: 404, code: "unknown_url", want: "Unknown request URL"},
		{name: "root", method: "GET", path: "/", status: 404, code: "unknown_url", want: "Unknown request URL: GET /"},
		{name: "admin path without admin API", method: "GET", path: "/v1/admin", status: 404, code: "unknown_url", want: "Unknown request URL"},
		{name: "invalid UTF-8 path", path: "/v1/%ff%fe", body: `{}`, status: 404, code: "unknown_url", want: "\uFFFD"},
		{name: "very long path", path: "/" + strings.Repeat("a", 5000), body: `{}`, status: 404, code: "unknown_url", want: "…"},
		// Methods.
		{name: "GET chat", method: "GET", status: 405, code: "method_not_allowed", want: "method GET is not allowed on /v1/chat/completions; use POST", allow: "POST"},
		{name: "PUT chat", method: "PUT", body: `{"model":"ok",` + msgs + `}`, status: 405, code: "method_not_allowed", want: "use POST", allow: "POST"},
		{name: "DELETE embeddings", method: "DELETE", path: "/v1/embeddings", status: 405, code: "method_not_allowed", want: "use POST", allow: "POST"},
		{name: "POST models", path: "/v1/models", body: `{}`, status: 405, code: "method_not_allowed", want: "use GET or HEAD", allow: "GET, HEAD"},
		{name: "DELETE one model", method: "DELETE", path: "/v1/models/ok", status: 405, code: "method_not_allowed", want: "use GET", allow: "GET, HEAD"},
		{name: "POST healthz", path: "/healthz", body: `{}`, status: 405, code: "method_not_allowed", want: "use GET", allow: "GET, HEAD"},
		{name: "custom method", method: "BREW", status: 405, code: "method_not_allowed", want: "method BREW", allow: "POST"},
		// Keys and headers.
		{name: "no key", headers: []header{{"Authorization", ""}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "didn't provide an API key"},
		{name: "Basic auth", headers: []header{{"Authorization", "Basic c2stcHJveHk6MTIz"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "bare key without Bearer", headers: []header{{"Authorization", keyConn}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "empty bearer", headers: []header{{"Authorization", "Bearer"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "bearer of spaces", headers: []header{{"Authorization", "Bearer    "}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "space inside the key", headers: []header{{"Authorization", "Bearer sk-proxy 123"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "tab inside the key", headers: []header{{"Authorization", "Bearer sk-proxy\t123"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "non-ASCII key", headers: []header{{"Authorization", "Bearer sk-proxy-123\u00e9"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "invalid UTF-8 key", headers: []header{{"Authorization", "Bearer sk-\xff\xfe"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "key with the right prefix", headers: []header{{"Authorization", "Bearer " + keyConn + "4"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "Incorrect API key"},
		{name: "api-key with space", headers: []header{{"Authorization", ""}, {"Api-Key", "sk-proxy 123"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "api-key non-ASCII", headers: []header{{"Authorization", ""}, {"Api-Key", "sk-pr\u00f6xy"}}, body: `{"model":"ok",` + msgs + `}`, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "bad key on models", method: "GET", path: "/v1/models", headers: []header{{"Authorization", "Bearer no such key"}}, status: 401, code: "invalid_api_key", want: "API key"},
		{name: "bad key wins over bad body", headers: []header{{"Authorization", "Bearer nope"}}, body: `{`, status: 401, code: "invalid_api_key", want: "Incorrect API key"},
		// Not a bad request, but nothing to forward: unknown or forbidden model.
		{name: "unknown model", body: `{"model":"nope",` + msgs + `}`, status: 404, param: "model", code: "model_not_found", want: "The model `nope` does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method, path := c.method, c.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = chat
			}
			var body io.Reader
			if c.body != "" || method == http.MethodPost {
				body = strings.NewReader(c.body)
				if c.chunked {
					body = chunked{body}
				}
			}
			req, err := http.NewRequest(method, h.url, body)
			must(t, err)
			req.URL.Opaque = path // sent as is: no cleaning, no escaping
			req.Header.Set("Authorization", "Bearer "+keyConn)
			req.Header.Set("Content-Type", "application/json")
			for _, hd := range c.headers {
				if hd[1] == "" {
					req.Header.Del(hd[0])
				} else {
					req.Header[hd[0]] = []string{hd[1]}
				}
			}
			resp, got := do(t, req)
			e := checkError(t, resp, got, c.status, c.want)
			if param := deref(e.Error.Param); param != c.param {
				t.Errorf("param %q, want %q", param, c.param)
			}
			if code := deref(e.Error.Code); c.code != "" && code != c.code {
				t.Errorf("code %q, want %q", code, c.code)
			}
			if allow := resp.Header.Get("Allow"); allow != c.allow {
				t.Errorf("Allow %q, want %q", allow, c.allow)
			}
			if strings.Contains(got, keyConn) || strings.Contains(got, upstreamKey) {
				t.Errorf("the answer shows a key: %s", got)
			}
		})
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("%d bad requests reached the upstream", n)
	}

	// The edges of the limit: a body of exactly the limit is served, either
	// way it is sent.
	for _, isChunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(padded(hardLimit))
		if isChunked {
			body = chunked{body}
		}
		req, _ := http.NewRequest(http.MethodPost, h.url+chat, body)
		req.Header.Set("Authorization", "Bearer "+keyConn)
		if resp, got := do(t, req); resp.StatusCode != 200 {
			t.Errorf("a body of exactly the limit (chunked %v): %d %s", isChunked, resp.StatusCode, got)
		}
	}
	if n := len(h.fake.Requests()); n != 2 {
		t.Errorf("upstream got %d requests, want the 2 at the limit", n)
	}
}

// rawExchange writes a raw HTTP request on a new connection, half-closes
// it, and returns the raw answer.
func rawExchange(t *testing.T, url, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, request)
	must(t, err)
	conn.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(conn)
	return string(b)
}

// TestBadInputRawHTTP: requests a well-behaved client cannot send.
func TestBadInputRawHTTP(t *testing.T) {
	h := newHardEnv(t)
	auth := "Authorization: Bearer " + keyConn + "\r\n"
	cases := []struct {
		name, request, want string
	}{
		// The body ends before its Content-Length.
		{"short body", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n" + `{"model":"ok"`,
			`"message":"the request body could not be read: it ended early"`},
		// A Content-Length over the limit is refused before the body is read.
		{"declared too large", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 999999999\r\n\r\n{",
			"HTTP/1.1 413 "},
		// An X-Request-Id that would inject a header is replaced.
		{"request id with spaces", "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc def<script>\r\n\r\n", "X-Request-Id: req"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rawExchange(t, h.url, c.request)
			if !strings.Contains(got, c.want) {
				t.Errorf("answer %q does not contain %q", got, c.want)
			}
			if !strings.Contains(got, `{"error":`) && !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain") {
				t.Errorf("not an OpenAI error: %q", got)
			}
		})
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("%d bad requests reached the upstream", n)
	}
}

func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	cases := []struct {
		upstream, status int
		retryAfter       string
	}{
		{429, 429, "2"},
		{400, 400, ""},
		{401, 502, ""},
		{500, 502, ""},
		{503, 503, "1"},
	}
	for _, c := range cases {
		e.fake.SetFail(c.upstream)
		status, h, body := e.post("/v1/chat/completions", keyConn, "", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
		if status != c.status || h.Get("Retry-After") != c.retryAfter || !strings.Contains(body, `"error"`) {
			t.Errorf("upstream %d: got %d retry-after=%q %s", c.upstream, status, h.Get("Retry-After"), body)
		}
		if strings.Contains(body, upstreamKey) {
			t.Errorf("upstream key leaked: %s", body)
		}
	}
}

func TestFirstByteTimeout(t *testing.T) {
	a, b, url := twoUpstreams(t, llmproxy.Config{})
	a.SetDelay(2*time.Second, 0)
	b.SetDelay(2*time.Second, 0)
	start := time.Now()
	s, body := postTo(t, url, dualBody)
	if s != 504 || !strings.Contains(body, "did not answer within 300ms") {
		t.Errorf("%d %s", s, body)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v", d)
	}
	waitFor(t, func() bool { return a.Cancelled()+b.Cancelled() == 2 })
}

// TestUpstreamEchoedKeyNeverLeaks: an upstream that puts the key it was
// sent into its error messages (some OpenAI-compatible servers do) must
// not make the gateway show that key to the client or write it to a log.
func TestUpstreamEchoedKeyNeverLeaks(t *testing.T) {

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		msg := `{"error":{"message":"bad request for key ` + r.Header.Get("Authorization") + `","type":"invalid_request_error","param":null,"code":null}}`
		switch {
		case bytes.Contains(body, []byte(`"stream":true`)):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: "+msg+"\n\n")
		case bytes.Contains(body, []byte("429")):
			w.WriteHeader(429)
			io.WriteString(w, msg)
		case bytes.Contains(body, []byte("500")):
			w.WriteHeader(500)
			io.WriteString(w, msg)
		default:
			w.WriteHeader(400)
			io.WriteString(w, msg)
		}
	}))
	t.Cleanup(echo.Close)
	ctx := context.Background()
	store := memory.New()
	must(t, store.CreateConnection(ctx, &llmproxy.Connection{ID: "c1", Name: "echo", Provider: llmproxy.KindCompatible, Endpoint: echo.URL + "/v1", Credentials: llmproxy.Credentials{APIKey: upstreamKey}}))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "m", Remote: "r", ConnectionID: "c1"}))
	var logs lockedBuffer
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, MasterKey: masterKey, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	for _, text := range []string{"400", "429", "500"} {
		for _, stream := range []bool{false, true} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
				strings.NewReader(fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"user","content":%q}]}`, stream, text)))
			req.Header.Set("Authorization", "Bearer "+masterKey)
			resp, body := do(t, req)
			if strings.Contains(body, upstreamKey) {
				t.Errorf("%s stream=%v: the client got the upstream key: %d %s", text, stream, resp.StatusCode, body)
			}
		}
	}
	if strings.Contains(logs.String(), upstreamKey) {
		t.Errorf("the log shows the upstream key:\n%s", logs.String())
	}
}
