package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/azure"
	"github.com/go-llm-proxy/llmproxy/provider/azure/azuretest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

// responder builds an Azure connection's provider to fake (whose
// endpoint is given as the portal may show it, with /openai).
func responder(t *testing.T, fake *azuretest.Server, settings map[string]string) *azure.Provider {
	t.Helper()
	p, err := azure.New(llmproxy.Connection{Name: "az", Provider: llmproxy.KindAzure, Endpoint: fake.URL + "/openai/",
		Credentials: llmproxy.Credentials{APIKey: fake.APIKey}, Settings: settings}, llmproxy.ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*azure.Provider)
}

func newFake(t *testing.T) *azuretest.Server {
	fake := azuretest.NewServer()
	t.Cleanup(fake.Close)
	return fake
}

func responsesRequest(body string, stream bool) *llmproxy.Request {
	return &llmproxy.Request{Body: []byte(body), Model: "gpt", RemoteModel: deployment, Stream: stream, Endpoint: llmproxy.EndpointResponses}
}

func TestNativeResponsesSetting(t *testing.T) {
	fake := newFake(t)
	if !responder(t, fake, nil).NativeResponses(deployment) {
		t.Fatal("an azure connection does not serve the Responses API natively by default")
	}
	if responder(t, fake, map[string]string{openai.SettingResponses: "translate"}).NativeResponses(deployment) {
		t.Fatal("responses=translate left NativeResponses true")
	}
	_, err := azure.New(llmproxy.Connection{Name: "az", Provider: llmproxy.KindAzure, Endpoint: fake.URL,
		Credentials: llmproxy.Credentials{APIKey: "k"}, Settings: map[string]string{openai.SettingResponses: "always"}}, llmproxy.ProviderOptions{})
	if !errors.Is(err, llmproxy.ErrInvalid) || !strings.Contains(err.Error(), "responses") || !strings.Contains(err.Error(), "always") {
		t.Fatalf("bad responses setting: %v", err)
	}
}

// TestResponsesV1: the body goes to /openai/v1/responses with only the
// model changed (to the deployment), the api-key header and no
// api-version, even with an api_version setting (for the deployment
// routes).
func TestResponsesV1(t *testing.T) {
	fake := newFake(t)
	fake.Deployments = []string{deployment}
	p := responder(t, fake, map[string]string{azure.SettingAPIVersion: "2024-10-21"})
	body := `{"model":"gpt","input":"hi","store":true,"x_new":[1, 2]}`
	res, err := p.Responses(context.Background(), responsesRequest(body, false))
	if err != nil {
		t.Fatal(err)
	}
	c := fake.LastCall()
	if c.Operation != "responses" || c.Method != "POST" || c.APIVersion != "" || c.Deployment != deployment || c.Header.Get("Api-Key") != fake.APIKey || c.Header.Get("Authorization") != "" {
		t.Fatalf("call %+v", c)
	}
	if want := strings.Replace(body, `"gpt"`, `"`+deployment+`"`, 1); string(c.Body) != want {
		t.Fatalf("upstream body %s, want %s", c.Body, want)
	}
	var r struct{ ID, Model, Status string }
	if json.Unmarshal(res.Body, &r) != nil || r.Model != deployment || r.Status != "completed" || res.Header.Get("X-Request-Id") != "fake-request-id" {
		t.Fatalf("answer %s %v", res.Body, res.Header)
	}

	// The stored response's resources, under the same base.
	got, err := p.ResponseResource(context.Background(), "GET", r.ID+"/input_items", "limit=5")
	if err != nil || !strings.Contains(string(got.Body), `"object":"list"`) {
		t.Fatalf("input_items: %s %v", got.Body, err)
	}
	if c := fake.LastCall(); c.Operation != "responses/"+r.ID+"/input_items" || c.Method != "GET" {
		t.Fatalf("call %+v", c)
	}
	if _, err := p.ResponseResource(context.Background(), "DELETE", r.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, err = p.ResponseResource(context.Background(), "GET", r.ID, "")
	var e *llmproxy.Error
	if !errors.As(err, &e) || e.Status != 404 || !strings.Contains(e.Message, r.ID) {
		t.Fatalf("GET after DELETE: %v", err)
	}

	// An unknown deployment is the gateway's configuration: 502.
	_, err = p.Responses(context.Background(), &llmproxy.Request{Body: []byte(body), RemoteModel: "nope", Endpoint: llmproxy.EndpointResponses})
	if !errors.As(err, &e) || e.Status != 502 {
		t.Fatalf("unknown deployment: %v", err)
	}
}

func TestResponsesStream(t *testing.T) {
	fake := newFake(t)
	fake.Responses.SetHandler(func(r *fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		if out, _, ok := r.FunctionCallOutput(); ok {
			return &fakeopenai.Turn{Text: "done: " + out, StallAfter: 1}
		}
		return &fakeopenai.Turn{Calls: []fakeopenai.FunctionCall{{Name: "exec_command", Arguments: `{"cmd":"ls"}`}}}
	})
	p := responder(t, fake, nil)
	res, err := p.Responses(context.Background(), responsesRequest(`{"model":"gpt","input":"go","stream":true}`, true))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(fake.LastCall().Body), "stream_options") {
		t.Fatal("stream_options sent to the Responses API")
	}
	var types []string
	for {
		d, err := res.Stream.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Type string }
		json.Unmarshal(d, &ev)
		types = append(types, ev.Type)
	}
	res.Stream.Close()
	if len(types) != 8 || types[len(types)-1] != "response.completed" || types[3] != "response.function_call_arguments.delta" {
		t.Fatalf("events %v", types)
	}

	// The first event arrives while the fake holds the rest; Close ends
	// the upstream call.
	res, err = p.Responses(context.Background(), responsesRequest(`{"model":"gpt","stream":true,"input":[{"type":"function_call_output","call_id":"c","output":"x"}]}`, true))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := res.Stream.Next(); err != nil || !strings.Contains(string(d), "response.created") {
		t.Fatalf("first event %s %v", d, err)
	}
	res.Stream.Close()
	select {
	case <-fake.LastCall().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call went on after Close")
	}
}

func TestResponsesErrors(t *testing.T) {
	fake := newFake(t)
	fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Text: "a b c", ErrorAfter: 2, ErrorCode: "server_error", ErrorMessage: "overloaded"}
	})
	p := responder(t, fake, nil)
	res, err := p.Responses(context.Background(), responsesRequest(`{"model":"gpt","input":"go","stream":true}`, true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	var e *llmproxy.Error
	for i := 0; ; i++ {
		if _, err = res.Stream.Next(); err != nil {
			if !errors.As(err, &e) || e.Message != "overloaded" || e.Status != 502 || i != 2 {
				t.Fatalf("after %d events: %v", i, err)
			}
			break
		}
	}
	fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Error: azuretest.ErrorAnswer(400, "BadRequest", "Invalid value for 'input'.")}
	})
	_, err = p.Responses(context.Background(), responsesRequest(`{"model":"gpt","input":"x"}`, false))
	if !errors.As(err, &e) || e.Status != 400 || e.Message != "Invalid value for 'input'." || e.Code != "BadRequest" {
		t.Fatalf("400: %v", err)
	}
	fake.APIKey = "rotated"
	_, err = p.Responses(context.Background(), responsesRequest(`{"model":"gpt","input":"x"}`, false))
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || strings.Contains(e.Message, "subscription key") {
		t.Fatalf("refused key: %v", err)
	}
}
