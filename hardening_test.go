package llmproxy_test

import (
	"bufio"
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
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

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

// TestProviderPanic: a provider that panics answers 500 in OpenAI's shape
// with the request id, is logged with it, and the gateway keeps serving.
func TestProviderPanic(t *testing.T) {
	h := newHardEnv(t)
	post := func(model string, stream bool) (*http.Response, string) {
		body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi there"}]}`, model, stream)
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+keyConn)
		return do(t, req)
	}
	for i := range 3 {
		resp, body := post("boom", i%2 == 1)
		id := resp.Header.Get("X-Request-Id")
		e := checkError(t, resp, body, 500, "internal error (request "+id+")")
		if e.Error.Type != llmproxy.TypeServer {
			t.Errorf("type %q", e.Error.Type)
		}
		if strings.Contains(body, "nil map") || strings.Contains(body, "goroutine") {
			t.Errorf("the panic value or a stack reached the client: %s", body)
		}
		if logs := h.logs.String(); !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "request_id="+id) {
			t.Errorf("panic of %s not logged with its id:\n%s", id, logs)
		}
		// And the next request is served.
		if resp, body := post("ok", false); resp.StatusCode != 200 {
			t.Fatalf("after a panic: %d %s", resp.StatusCode, body)
		}
	}

	// A panic mid-stream, after the 200 went out: the client's stream
	// ends without [DONE] and the server carries on.
	resp, body := post("boom-stream", true)
	if resp.StatusCode != 200 || strings.Contains(body, "[DONE]") {
		t.Errorf("panic mid-stream: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(body, "internal error (request "+resp.Header.Get("X-Request-Id")+")") {
		t.Errorf("the client was not told of the panic mid-stream: %q", body)
	}
	if strings.Contains(body, "index out of range") {
		t.Errorf("panic value reached the client: %q", body)
	}
	if resp, body := post("ok", true); resp.StatusCode != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("stream after a panic: %d %q", resp.StatusCode, body)
	}
	if n := h.gw.Stats().InFlightStreams; n != 0 {
		t.Errorf("%d streams still counted in flight after the panic", n)
	}
}

// TestProviderPanicMidStream is what a panic after the stream began
// should do: end the stream with an SSE error event (not a bare JSON
// object after the events, with a "superfluous WriteHeader" log) and
// record the usage of what was streamed, so the ledger counts every
// answered request and the token reservation is settled.
func TestProviderPanicMidStream(t *testing.T) {

	h := newHardEnv(t)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"boom-stream","stream":true,"messages":[{"role":"user","content":"hi there"}]}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, body := do(t, req)
	if resp.StatusCode != 200 || !strings.Contains(body, "\n\ndata: {\"error\":{\"message\":\"internal error (request ") {
		t.Errorf("panic mid-stream not ended by an SSE error event: %q", body)
	}
	if strings.Contains(h.logs.String(), "superfluous") {
		t.Error("superfluous WriteHeader")
	}
	h.gw.Close()
	sums, err := h.store.SumUsage(context.Background(), llmproxy.UsageFilter{})
	must(t, err)
	if len(sums) != 1 || sums[0].Requests != 1 || sums[0].CompletionTokens == 0 {
		t.Errorf("usage of the panicked stream: %+v", sums)
	}
}

// TestPanicUnderLoad: panics in many concurrent requests leave every
// other request served.
func TestPanicUnderLoad(t *testing.T) {
	h := newHardEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model, want := "ok", 200
			if i%2 == 0 {
				model, want = "boom", 500
			}
			req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions",
				strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`))
			req.Header.Set("Authorization", "Bearer "+keyConn)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				errs <- fmt.Errorf("%s: %d, want %d", model, resp.StatusCode, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzKeyHeaders: whatever the Authorization and api-key headers hold,
// the gateway answers without panicking: 200 only for the real key
// (however it is padded), otherwise 401 in OpenAI's shape; it never echoes
// the header, and only an authenticated request reaches the upstream.
func FuzzKeyHeaders(f *testing.F) {
	for _, s := range [][2]string{
		{"Bearer " + keyConn, ""}, {"", keyConn}, {"bearer  " + keyConn + " ", ""}, {"Basic abc", keyConn},
		{"Bearer", ""}, {"Bearer ", ""}, {"Bearer sk proxy", ""}, {"Bearer sk-\xff", ""}, {"", " "},
		{"Bearer " + masterKey, ""}, {"BEARER " + keyConn, "x"}, {"Bearer \x00", ""}, {"Bearer é", "é"},
	} {
		f.Add(s[0], s[1])
	}
	ctx := context.Background()
	store := memory.New()
	fake := fakeopenai.New(f, upstreamKey)
	conn := &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(f, store.CreateConnection(ctx, conn))
	must(f, store.CreateModel(ctx, &llmproxy.Model{Name: "ok", Remote: "remote-ok", ConnectionID: conn.ID}))
	must(f, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Prefix: llmproxy.KeyPrefix(keyConn),
		Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, MasterKey: masterKey,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(f, err)
	f.Cleanup(func() { gw.Close() })
	const body = `{"model":"ok","messages":[{"role":"user","content":"x"}]}`
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		if authorization != "" {
			req.Header["Authorization"] = []string{authorization}
		}
		if apiKey != "" {
			req.Header["Api-Key"] = []string{apiKey}
		}
		before := len(fake.Requests())
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		forwarded := len(fake.Requests()) - before
		var e openAIError
		switch w.Code {
		case 200:
			if forwarded != 1 {
				t.Fatalf("200 with %d upstream calls", forwarded)
			}
			used := apiKey
			if authorization != "" {
				used = strings.TrimSpace(authorization[len("bearer "):])
			}
			if used != keyConn && used != masterKey {
				t.Fatalf("authorization %q api-key %q let in", authorization, apiKey)
			}
		case 401:
			if forwarded != 0 {
				t.Fatalf("401 with %d upstream calls", forwarded)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || deref(e.Error.Code) != "invalid_api_key" {
				t.Fatalf("401 body %q", w.Body)
			}
			for _, v := range []string{authorization, apiKey} {
				if len(v) > 8 && strings.Contains(w.Body.String(), v) {
					t.Fatalf("the answer echoes the header %q: %s", v, w.Body)
				}
			}
		default:
			t.Fatalf("status %d for authorization %q api-key %q: %s", w.Code, authorization, apiKey, w.Body)
		}
	})
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
