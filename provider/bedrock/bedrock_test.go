package bedrock_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

var _ llmproxy.NewProviderFunc = bedrock.New

func TestValidate(t *testing.T) {
	region := map[string]string{bedrock.SettingRegion: "eu-west-3"}
	for _, tc := range []struct {
		name string
		conn llmproxy.Connection
		ok   bool
	}{
		{"region and default chain", llmproxy.Connection{Settings: region}, true},
		{"endpoint without region", llmproxy.Connection{Endpoint: "https://vpce.example.com"}, true},
		{"static credentials", llmproxy.Connection{Settings: region, Credentials: llmproxy.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s", SessionToken: "t"}}, true},
		{"api key", llmproxy.Connection{Settings: region, Credentials: llmproxy.Credentials{APIKey: "k"}}, true},
		{"no region", llmproxy.Connection{}, false},
		{"access key without secret", llmproxy.Connection{Settings: region, Credentials: llmproxy.Credentials{AccessKeyID: "AKID"}}, false},
		{"secret without access key", llmproxy.Connection{Settings: region, Credentials: llmproxy.Credentials{SecretAccessKey: "s"}}, false},
		{"session token alone", llmproxy.Connection{Settings: region, Credentials: llmproxy.Credentials{SessionToken: "t"}}, false},
		{"api key and static", llmproxy.Connection{Settings: region, Credentials: llmproxy.Credentials{APIKey: "k", AccessKeyID: "AKID", SecretAccessKey: "s"}}, false},
		{"bad max_attempts", llmproxy.Connection{Settings: map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "0"}}, false},
		{"endpoint not a URL", llmproxy.Connection{Endpoint: "vpce.example.com"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.conn.Name = "b"
			err := bedrock.Validate(tc.conn)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, llmproxy.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if err != nil && strings.Contains(err.Error(), "AKID") {
				t.Errorf("error %q shows a credential", err)
			}
			_, nerr := bedrock.New(tc.conn, llmproxy.ProviderOptions{})
			if (nerr == nil) != tc.ok {
				t.Errorf("New = %v, want ok=%v", nerr, tc.ok)
			}
		})
	}
}

// TestModelIDs: ids with ':' and inference profile ARNs reach Bedrock as
// one percent-encoded path segment.
func TestModelIDs(t *testing.T) {
	srv, p := newFake(t)
	for _, tc := range []struct{ model, path string }{
		{"anthropic.claude-3-haiku-20240307-v1:0", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"},
		{"us.anthropic.claude-3-5-sonnet-20241022-v2:0", "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream"},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse-stream"},
	} {
		req := chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, true)
		req.RemoteModel = tc.model
		res, err := p.ChatCompletion(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		drain(t, res.Stream)
		c := srv.LastCall()
		if c.ModelID != tc.model || c.Path != tc.path {
			t.Errorf("model %s reached the fake as %s (%s), want path %s", tc.model, c.ModelID, c.Path, tc.path)
		}
	}
}

func drain(t *testing.T, s llmproxy.EventStream) [][]byte {
	t.Helper()
	defer s.Close()
	var out [][]byte
	for {
		b, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), b...))
	}
}

// TestUpstreamErrors: Bedrock's HTTP errors become OpenAI errors with a
// sensible status, never a 401, never a credential.
func TestUpstreamErrors(t *testing.T) {
	srv, p := newFake(t)
	for _, tc := range []struct {
		status      int
		errorType   string
		message     string
		wantStatus  int
		wantType    string
		retry       bool
		showMessage bool
	}{
		{400, "ThrottlingException", "Too many requests", 429, llmproxy.TypeRateLimit, true, true},
		{429, "ServiceQuotaExceededException", "quota", 429, llmproxy.TypeRateLimit, true, true},
		{400, "ValidationException", "messages.0.content: blank text", 400, llmproxy.TypeInvalidRequest, false, true},
		{403, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized", 502, llmproxy.TypeUpstream, false, false},
		{403, "UnrecognizedClientException", "The security token included in the request is invalid.", 502, llmproxy.TypeUpstream, false, false},
		{403, "ExpiredTokenException", "The security token included in the request is expired", 502, llmproxy.TypeUpstream, false, false},
		{404, "ResourceNotFoundException", "Model not found in arn:aws:bedrock:us-east-1:123456789012", 502, llmproxy.TypeUpstream, false, false},
		{424, "ModelErrorException", "The model crashed", 502, llmproxy.TypeUpstream, false, true},
		{408, "ModelTimeoutException", "timeout", 504, llmproxy.TypeUpstream, false, false},
		{429, "ModelNotReadyException", "warming up", 503, llmproxy.TypeUpstream, true, false},
		{503, "ServiceUnavailableException", "Service is down", 503, llmproxy.TypeUpstream, true, false},
		{500, "InternalServerException", "oops", 502, llmproxy.TypeUpstream, false, false},
		{500, "", "", 502, llmproxy.TypeUpstream, false, false},
	} {
		t.Run(tc.errorType, func(t *testing.T) {
			srv.Handler = func(*bedrocktest.Call) *bedrocktest.Reply {
				return bedrocktest.Error(tc.status, tc.errorType, tc.message)
			}
			for _, stream := range []bool{false, true} {
				_, err := p.ChatCompletion(context.Background(), chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, stream))
				var e *llmproxy.Error
				if !errors.As(err, &e) {
					t.Fatalf("stream=%v: %v is not an *llmproxy.Error", stream, err)
				}
				if e.Status != tc.wantStatus || e.Type != tc.wantType {
					t.Errorf("stream=%v: got %d %s (%s), want %d %s", stream, e.Status, e.Type, e.Message, tc.wantStatus, tc.wantType)
				}
				if (e.RetryAfter > 0) != tc.retry {
					t.Errorf("stream=%v: RetryAfter = %v, want set=%v", stream, e.RetryAfter, tc.retry)
				}
				if shown := tc.message != "" && strings.Contains(e.Message, tc.message); shown != tc.showMessage {
					t.Errorf("stream=%v: message %q shows the upstream's = %v, want %v", stream, e.Message, shown, tc.showMessage)
				}
				if strings.Contains(e.Message, "123456789012") || strings.Contains(e.Message, "AKIDTEST") || strings.Contains(e.Message, "fake-secret") {
					t.Errorf("message %q reveals the account or credentials", e.Message)
				}
			}
		})
	}
}

func TestWrongCredentials(t *testing.T) {
	srv, _ := newFake(t)
	for name, creds := range map[string]llmproxy.Credentials{
		"unknown key":  {AccessKeyID: "AKIDOTHER", SecretAccessKey: "fake-secret"},
		"wrong secret": {AccessKeyID: "AKIDTEST", SecretAccessKey: "not-the-secret"},
	} {
		p, err := bedrock.New(llmproxy.Connection{Name: "b", Endpoint: srv.URL, Credentials: creds,
			Settings: map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}}, llmproxy.ProviderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.ChatCompletion(context.Background(), chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, false))
		if e := llmproxy.AsError(err); e.Status != http.StatusBadGateway || e.Type != llmproxy.TypeUpstream || strings.Contains(e.Message, creds.SecretAccessKey) {
			t.Errorf("%s: got %d %s %q, want a 502 upstream_error", name, e.Status, e.Type, e.Message)
		}
	}
}

// TestBearerAPIKey: a connection with an API key uses Bedrock API keys.
func TestBearerAPIKey(t *testing.T) {
	srv := bedrocktest.NewTLSServer()
	defer srv.Close()
	srv.AccessKeyID = "" // accept bearer tokens
	p, err := bedrock.New(llmproxy.Connection{Name: "b", Endpoint: srv.URL, Credentials: llmproxy.Credentials{APIKey: "bedrock-api-key"},
		Settings: map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}}, llmproxy.ProviderOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ChatCompletion(context.Background(), chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, false)); err != nil {
		t.Fatal(err)
	}
	if got := srv.LastCall().Header.Get("Authorization"); got != "Bearer bedrock-api-key" {
		t.Errorf("Authorization = %q", got)
	}
}

// TestToolRoundTrip: the default fake model calls a tool, gets its
// result, and answers; streamed and not.
func TestToolRoundTrip(t *testing.T) {
	_, p := newFake(t)
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	for _, stream := range []bool{false, true} {
		first := `{"model":"claude","messages":[{"role":"user","content":"Weather in Paris?"}],` + tools + `}`
		res, err := p.ChatCompletion(context.Background(), chat(first, stream))
		if err != nil {
			t.Fatal(err)
		}
		var call struct{ ID, Name, Args string }
		if stream {
			for _, b := range drain(t, res.Stream) {
				var c struct {
					Choices []struct {
						Delta struct {
							ToolCalls []struct {
								Index    int
								ID       string
								Function struct{ Name, Arguments string }
							} `json:"tool_calls"`
						}
					}
				}
				json.Unmarshal(b, &c)
				for _, ch := range c.Choices {
					for _, tc := range ch.Delta.ToolCalls {
						if tc.Index != 0 {
							t.Errorf("tool call index %d", tc.Index)
						}
						call.ID += tc.ID
						call.Name += tc.Function.Name
						call.Args += tc.Function.Arguments
					}
				}
			}
		} else {
			var c struct {
				Choices []struct {
					Message struct {
						ToolCalls []struct {
							ID       string
							Function struct{ Name, Arguments string }
						} `json:"tool_calls"`
					}
					FinishReason string `json:"finish_reason"`
				}
			}
			json.Unmarshal(res.Body, &c)
			if len(c.Choices) != 1 || len(c.Choices[0].Message.ToolCalls) != 1 || c.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("no tool call in %s", res.Body)
			}
			tc := c.Choices[0].Message.ToolCalls[0]
			call.ID, call.Name, call.Args = tc.ID, tc.Function.Name, tc.Function.Arguments
		}
		if call.Name != "get_weather" || call.Args != `{"city":"test"}` || call.ID == "" {
			t.Fatalf("stream=%v: tool call %+v", stream, call)
		}
		second := `{"model":"claude","messages":[{"role":"user","content":"Weather in Paris?"},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"` + call.ID + `","type":"function","function":{"name":"get_weather","arguments":` + string(llmproxy.AppendJSONString(nil, call.Args)) + `}}]},` +
			`{"role":"tool","tool_call_id":"` + call.ID + `","content":"18C and sunny"}],` + tools + `}`
		res, err = p.ChatCompletion(context.Background(), chat(second, false))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Body), `"content":"The tool said: 18C and sunny"`) {
			t.Errorf("final answer: %s", res.Body)
		}
	}
}

// TestStreamCancel: when the client goes away, the stream ends.
func TestStreamCancel(t *testing.T) {
	srv, p := newFake(t)
	srv.Handler = func(*bedrocktest.Call) *bedrocktest.Reply {
		return &bedrocktest.Reply{Events: []bedrocktest.Event{{Type: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)}}, HoldOpen: true}
	}
	ctx, cancel := context.WithCancel(context.Background())
	res, err := p.ChatCompletion(ctx, chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Stream.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = res.Stream.Next()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == io.EOF {
			t.Errorf("a cut stream ended as if complete")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error after cancel = %v, want context.Canceled in the chain", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after the client went away")
	}
	res.Stream.Close()
}

func TestEmbeddings(t *testing.T) {
	srv, p := newFake(t)
	e := p.(llmproxy.Embedder)
	embed := func(body string) (*llmproxy.Response, error) {
		return e.Embeddings(context.Background(), &llmproxy.Request{Body: []byte(body), Model: "titan", RemoteModel: "amazon.titan-embed-text-v2:0"})
	}
	type answer struct {
		Object string
		Data   []struct {
			Object    string
			Index     int
			Embedding json.RawMessage
		}
		Model string
		Usage llmproxy.Usage
	}
	res, err := embed(`{"model":"titan","input":["hello world","good bye now"],"dimensions":256}`)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if err := json.Unmarshal(res.Body, &a); err != nil {
		t.Fatal(err)
	}
	if a.Object != "list" || a.Model != "titan" || len(a.Data) != 2 || a.Usage.PromptTokens != 5 || a.Usage.TotalTokens != 5 {
		t.Fatalf("answer %+v", a)
	}
	var floats [2][]float32
	for i, d := range a.Data {
		if d.Index != i || d.Object != "embedding" {
			t.Errorf("data[%d] = %+v", i, d)
		}
		json.Unmarshal(d.Embedding, &floats[i])
		if len(floats[i]) != 256 {
			t.Errorf("data[%d] has %d dimensions", i, len(floats[i]))
		}
	}
	calls := srv.Calls()
	if len(calls) != 2 || calls[0].Operation != bedrocktest.OpInvoke || calls[0].Path != "/model/amazon.titan-embed-text-v2%3A0/invoke" {
		t.Fatalf("calls: %+v", calls)
	}
	var sent struct {
		InputText  string `json:"inputText"`
		Dimensions int    `json:"dimensions"`
	}
	json.Unmarshal(calls[0].Body, &sent)
	if sent.Dimensions != 256 || (sent.InputText != "hello world" && sent.InputText != "good bye now") {
		t.Errorf("sent %s", calls[0].Body)
	}

	// base64: little-endian float32s of the same vector.
	res, err = embed(`{"model":"titan","input":"hello world","dimensions":256,"encoding_format":"base64"}`)
	if err != nil {
		t.Fatal(err)
	}
	a = answer{}
	json.Unmarshal(res.Body, &a)
	var s string
	json.Unmarshal(a.Data[0].Embedding, &s)
	bin, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(bin) != 4*256 {
		t.Fatalf("base64 embedding: %v, %d bytes", err, len(bin))
	}
	for i := range 256 {
		if f := math.Float32frombits(binary.LittleEndian.Uint32(bin[4*i:])); f != floats[0][i] {
			t.Fatalf("base64 float %d = %v, want %v", i, f, floats[0][i])
		}
	}

	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"model":"titan","input":[1,2,3]}`, 400},
		{`{"model":"titan","input":[]}`, 400},
		{`{"model":"titan","input":""}`, 400},
		{`{"model":"titan","input":"x","encoding_format":"int8"}`, 400},
		{`{"model":"titan","input":"x","dimensions":300}`, 400}, // Titan's own validation
	} {
		_, err := embed(tc.body)
		if got := llmproxy.AsError(err).Status; got != tc.status {
			t.Errorf("%s: status %d (%v), want %d", tc.body, got, err, tc.status)
		}
	}
}

// TestEmbeddingsRequestID: an embeddings answer carries Bedrock's request
// ids of its InvokeModel calls, in input order, as a chat answer carries
// its one.
func TestEmbeddingsRequestID(t *testing.T) {
	srv, p := newFake(t)
	srv.Handler = func(c *bedrocktest.Call) *bedrocktest.Reply {
		var in struct{ InputText string }
		json.Unmarshal(c.Body, &in)
		r := bedrocktest.EmbeddingReply([]float64{0.5}, 1)
		r.Header = http.Header{"X-Amzn-Requestid": {"id-" + in.InputText}}
		return r
	}
	embed := func(input string) http.Header {
		t.Helper()
		res, err := p.(llmproxy.Embedder).Embeddings(context.Background(),
			&llmproxy.Request{Body: []byte(`{"model":"titan","input":` + input + `}`), Model: "titan", RemoteModel: "amazon.titan-embed-text-v2:0"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Header
	}
	if got := embed(`"a"`).Values("X-Request-Id"); len(got) != 1 || got[0] != "id-a" {
		t.Errorf("one input: X-Request-Id %q, want [id-a]", got)
	}
	if got := embed(`["a","b","c"]`).Values("X-Request-Id"); len(got) != 1 || got[0] != "id-a, id-b, id-c" {
		t.Errorf("three inputs: X-Request-Id %q, want [id-a, id-b, id-c]", got)
	}
	many := make([]string, 40)
	for i := range many {
		many[i] = `"` + strconv.Itoa(i) + `"`
	}
	if got := embed("[" + strings.Join(many, ",") + "]").Get("X-Request-Id"); strings.Count(got, ",") != 15 || !strings.HasPrefix(got, "id-0, id-1, ") {
		t.Errorf("40 inputs: X-Request-Id %q, want the first 16 ids", got)
	}
}

// TestConcurrentStreams: streams on one connection run at once, each
// getting its own answer. Under -race it also shows that they share no
// unguarded state (the SDK's client-wide event stream codec did).
func TestConcurrentStreams(t *testing.T) {
	_, p := newFake(t)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			want := "You said: stream number " + strconv.Itoa(i)
			res, err := p.ChatCompletion(context.Background(), chat(`{"model":"claude","messages":[{"role":"user","content":"stream number `+strconv.Itoa(i)+`"}],"stream":true}`, true))
			if err != nil {
				errs <- err
				return
			}
			defer res.Stream.Close()
			var text strings.Builder
			for {
				d, err := res.Stream.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					errs <- err
					return
				}
				var c struct {
					Choices []struct{ Delta struct{ Content string } }
				}
				json.Unmarshal(d, &c)
				for _, ch := range c.Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			if text.String() != want {
				errs <- fmt.Errorf("stream %d: %q, want %q", i, text.String(), want)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
