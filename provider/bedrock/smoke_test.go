package bedrock_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

func TestSmoke(t *testing.T) {
	srv := bedrocktest.NewServer()
	srv.SecretAccessKey = "secret"
	defer srv.Close()
	p, err := bedrock.New(llmproxy.Connection{Name: "b", Endpoint: srv.URL, Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, Settings: map[string]string{"region": "us-east-1", "max_attempts": "1"}}, llmproxy.ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"model":"claude","messages":[{"role":"user","content":"hello there"}],"tools":[{"type":"function","function":{"name":"get","parameters":{"type":"object","properties":{"n":{"type":"integer","maximum":12345678901234567890}},"required":["n"]}}}]}`
	res, err := p.ChatCompletion(context.Background(), &llmproxy.Request{Body: []byte(body), Model: "claude", RemoteModel: "arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-3-5:0"})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(string(res.Body), res.Header)
	c := srv.LastCall()
	fmt.Println(c.ModelID, string(c.Body))
	res, err = p.ChatCompletion(context.Background(), &llmproxy.Request{Body: []byte(body), Model: "claude", RemoteModel: "m:0", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := res.Stream.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(string(b))
	}
}
