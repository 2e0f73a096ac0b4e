package bedrock_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

// A Bedrock connection with static credentials, pointed at a fake Bedrock
// (in production Endpoint is empty and the region picks Bedrock's own).
func ExampleNew() {
	fake := bedrocktest.NewServer()
	defer fake.Close()
	p, err := bedrock.New(llmproxy.Connection{
		Name:        "aws-main",
		Provider:    llmproxy.KindBedrock,
		Endpoint:    fake.URL,
		Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Settings:    map[string]string{bedrock.SettingRegion: "us-east-1"},
	}, llmproxy.ProviderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := p.ChatCompletion(context.Background(), &llmproxy.Request{
		Body:        []byte(`{"model":"claude","messages":[{"role":"user","content":"Hello"}]}`),
		Model:       "claude",
		RemoteModel: "anthropic.claude-3-haiku-20240307-v1:0",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var answer struct {
		Model   string
		Choices []struct {
			Message      struct{ Content string }
			FinishReason string `json:"finish_reason"`
		}
	}
	json.Unmarshal(res.Body, &answer)
	fmt.Println(answer.Model, answer.Choices[0].Message.Content, answer.Choices[0].FinishReason)
	fmt.Println(fake.LastCall().Path)
	// Output:
	// claude You said: Hello stop
	// /model/anthropic.claude-3-haiku-20240307-v1%3A0/converse
}
