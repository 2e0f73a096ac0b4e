package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

// FuzzTranslateRequest: the translation never panics, and every request
// either is refused with a 400 *llmproxy.Error or yields a Converse
// request that Bedrock accepts (checked by validConverse, written apart
// from the translator's own checks).
func FuzzTranslateRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/request/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":" "}]},{"role":"assistant","content":"x"}]}`))
	f.Add([]byte(`{"messages":[{"role":"tool","tool_call_id":"a","content":"x"}],"tool_choice":"none"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := translateRequest(body, "m:0")
		if err != nil {
			var e *llmproxy.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Message == "" {
				t.Fatalf("error %v is not a 400 *llmproxy.Error", err)
			}
			return
		}
		if err := validConverse(in); err != nil {
			t.Fatalf("invalid Converse request from %s: %v", body, err)
		}
	})
}

// validConverse checks what Bedrock's Converse API requires of a request.
func validConverse(in *bedrockruntime.ConverseInput) error {
	if aws.ToString(in.ModelId) == "" {
		return errors.New("no model id")
	}
	if len(in.Messages) == 0 {
		return errors.New("no messages")
	}
	for i, s := range in.System {
		t, ok := s.(*types.SystemContentBlockMemberText)
		if !ok || strings.TrimSpace(t.Value) == "" {
			return fmt.Errorf("system[%d] is not a non-blank text", i)
		}
	}
	if ic := in.InferenceConfig; ic != nil && ic.MaxTokens != nil && *ic.MaxTokens < 1 {
		return errors.New("maxTokens < 1")
	}
	declared := map[string]bool{}
	if tc := in.ToolConfig; tc != nil {
		if len(tc.Tools) == 0 {
			return errors.New("toolConfig without tools")
		}
		for i, tool := range tc.Tools {
			spec, ok := tool.(*types.ToolMemberToolSpec)
			if !ok {
				return fmt.Errorf("tools[%d] is not a toolSpec", i)
			}
			name := aws.ToString(spec.Value.Name)
			if name == "" || declared[name] {
				return fmt.Errorf("tools[%d]: empty or duplicate name %q", i, name)
			}
			declared[name] = true
			schema, ok := spec.Value.InputSchema.(*types.ToolInputSchemaMemberJson)
			if !ok {
				return fmt.Errorf("tools[%d] has no JSON schema", i)
			}
			if err := jsonObject(schema.Value); err != nil {
				return fmt.Errorf("tools[%d] schema: %v", i, err)
			}
		}
		if c, ok := tc.ToolChoice.(*types.ToolChoiceMemberTool); ok && !declared[aws.ToString(c.Value.Name)] {
			return fmt.Errorf("toolChoice names an undeclared tool")
		}
	}
	var pending map[string]bool
	for i, m := range in.Messages {
		want := types.ConversationRoleUser
		if i%2 == 1 {
			want = types.ConversationRoleAssistant
		}
		if m.Role != want {
			return fmt.Errorf("messages[%d] has role %s, want %s (roles must alternate, starting with user)", i, m.Role, want)
		}
		if len(m.Content) == 0 {
			return fmt.Errorf("messages[%d] has no content", i)
		}
		uses := map[string]bool{}
		seenOther := false
		for j, b := range m.Content {
			switch v := b.(type) {
			case *types.ContentBlockMemberText:
				seenOther = true
				if strings.TrimSpace(v.Value) == "" {
					return fmt.Errorf("messages[%d].content[%d] is blank text", i, j)
				}
			case *types.ContentBlockMemberImage:
				seenOther = true
				src, ok := v.Value.Source.(*types.ImageSourceMemberBytes)
				if m.Role != types.ConversationRoleUser || !ok || len(src.Value) == 0 || v.Value.Format == "" {
					return fmt.Errorf("messages[%d].content[%d] is a bad image", i, j)
				}
			case *types.ContentBlockMemberToolUse:
				id, name := aws.ToString(v.Value.ToolUseId), aws.ToString(v.Value.Name)
				if m.Role != types.ConversationRoleAssistant || id == "" || uses[id] || !declared[name] {
					return fmt.Errorf("messages[%d].content[%d] is a bad tool use", i, j)
				}
				if err := jsonObject(v.Value.Input); err != nil {
					return fmt.Errorf("messages[%d].content[%d] input: %v", i, j, err)
				}
				uses[id] = true
			case *types.ContentBlockMemberToolResult:
				id := aws.ToString(v.Value.ToolUseId)
				if m.Role != types.ConversationRoleUser || seenOther || !pending[id] || len(v.Value.Content) == 0 || in.ToolConfig == nil {
					return fmt.Errorf("messages[%d].content[%d] is a tool result that does not answer the previous turn's tool use first", i, j)
				}
				delete(pending, id)
			default:
				return fmt.Errorf("messages[%d].content[%d] has unexpected type %T", i, j, b)
			}
		}
		if len(pending) > 0 {
			return fmt.Errorf("messages[%d] leaves tool uses unanswered", i)
		}
		pending = uses
	}
	if len(pending) > 0 {
		return errors.New("the last turn's tool uses are unanswered")
	}
	return nil
}

func jsonObject(d document.Interface) error {
	if d == nil {
		return errors.New("missing")
	}
	b, err := d.MarshalSmithyDocument()
	if err != nil {
		return err
	}
	var m map[string]any
	return json.Unmarshal(b, &m)
}

// TestGoldenRequestsAreValid runs the fuzz property on the golden cases.
func TestGoldenRequestsAreValid(t *testing.T) {
	files, _ := filepath.Glob("testdata/request/*.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		in, err := translateRequest(b, "m:0")
		if err == nil {
			if err := validConverse(in); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		}
	}
}

func BenchmarkTranslateRequest(b *testing.B) {
	for _, name := range []string{"simple", "tool_roundtrip", "multipart_image"} {
		body, err := os.ReadFile("testdata/request/" + name + ".json")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := translateRequest(body, "anthropic.claude-3-5-sonnet-20240620-v1:0"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTranslateResponse measures a Converse answer (as the SDK
// decoded it from the fake) to chat.completion JSON.
func BenchmarkTranslateResponse(b *testing.B) {
	srv := bedrocktest.NewServer()
	defer srv.Close()
	pr, err := New(llmproxy.Connection{Name: "b", Endpoint: srv.URL, Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "s"},
		Settings: map[string]string{SettingRegion: "us-east-1", SettingMaxAttempts: "1"}}, llmproxy.ProviderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := pr.(*Provider)
	for _, name := range []string{"text", "tool_use"} {
		answer, err := os.ReadFile("testdata/response/" + name + ".json")
		if err != nil {
			b.Fatal(err)
		}
		srv.Handler = func(*bedrocktest.Call) *bedrocktest.Reply { return &bedrocktest.Reply{Body: answer} }
		in, _ := translateRequest([]byte(`{"messages":[{"role":"user","content":"hi"}]}`), "m")
		out, err := p.client.Converse(context.Background(), in)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				if _, err := appendResponse(buf[:0], "chatcmpl-x", 1, "claude", out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamChunk measures one ConverseStream event to one
// chat.completion.chunk.
func BenchmarkStreamChunk(b *testing.B) {
	for _, tc := range []struct {
		name string
		ev   types.ConverseStreamOutput
	}{
		{"text", &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{
			ContentBlockIndex: aws.Int32(0), Delta: &types.ContentBlockDeltaMemberText{Value: "Hello, world! This is a typical \"chunk\"."}}}},
		{"tool_arguments", &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{
			ContentBlockIndex: aws.Int32(1), Delta: &types.ContentBlockDeltaMemberToolUse{Value: types.ToolUseBlockDelta{Input: aws.String(`{"city":"Par`)}}}}},
		{"usage", &types.ConverseStreamOutputMemberMetadata{Value: types.ConverseStreamMetadataEvent{
			Usage: &types.TokenUsage{InputTokens: aws.Int32(100), OutputTokens: aws.Int32(50), TotalTokens: aws.Int32(150)}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newStream(nil, "b", "claude", time.Now())
			s.started = true
			s.tools = []toolBlock{{block: 1, index: 0}}
			b.ReportAllocs()
			for b.Loop() {
				if s.chunk(tc.ev) == nil {
					b.Fatal("no chunk")
				}
			}
		})
	}
}
