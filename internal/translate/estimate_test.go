package translate_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// TestEstimateCorpus checks the estimate against the counts Anthropic
// published: never more than 10% under, and not wildly over.
func TestEstimateCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/tochat/count_tokens/*.json")
	if len(files) == 0 {
		t.Fatal("no corpus")
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			InputTokens int64           `json:"input_tokens"`
			Request     json.RawMessage `json:"request"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got, err := translate.EstimateInputTokens(c.Request)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		ratio := float64(got) / float64(c.InputTokens)
		t.Logf("%s: estimate %d, Anthropic %d (%.2f)", filepath.Base(file), got, c.InputTokens, ratio)
		if ratio < 0.9 || ratio > 1.6 {
			t.Errorf("%s: estimate %d for Anthropic's %d (ratio %.2f; want 0.9 to 1.6)", filepath.Base(file), got, c.InputTokens, ratio)
		}
	}
}

// TestEstimateGrows checks that every kind of content adds to the
// estimate, so that no part of a conversation counts as nothing.
func TestEstimateGrows(t *testing.T) {
	base := `{"messages":[{"role":"user","content":"hi"}]}`
	baseN, err := translate.EstimateInputTokens([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"system":"Be brief.","messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"Read","input":{"file_path":"/a"}}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"1 package main"},{"type":"text","text":"hi"}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"u"}}]},{"type":"text","text":"hi"}]}]}`,
		`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}]}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"adaptive"}}`,
		`{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}},{"type":"text","text":"hi"}]}]}`,
		`{"messages":[{"role":"user","content":"hi 日本語 😀"}]}`,
	} {
		n, err := translate.EstimateInputTokens([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if n <= baseN {
			t.Errorf("%s: %d, no more than %d for %s", body, n, baseN, base)
		}
	}
}

func TestEstimateRefuses(t *testing.T) {
	for _, body := range []string{`{`, `{"model":"m"}`, `{"messages":[{"role":"user","content":7}]}`} {
		_, err := translate.EstimateInputTokens([]byte(body))
		var re *translate.RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: err = %v; want a *RequestError", body, err)
		}
	}
}

// TestEstimateClaudeCode checks the estimate of the Claude Code-like
// request is in the range its size suggests (about 3.5 bytes of JSON
// per token).
func TestEstimateClaudeCode(t *testing.T) {
	body := claudeCodeBody(t, 50_000)
	n, err := translate.EstimateInputTokens(body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes: %d tokens", len(body), n)
	if n < int64(len(body))/6 || n > int64(len(body))/2 {
		t.Errorf("%d bytes: %d tokens", len(body), n)
	}
}

func BenchmarkEstimateInputTokens(b *testing.B) {
	body := claudeCodeBody(b, 50_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := translate.EstimateInputTokens(body); err != nil {
			b.Fatal(err)
		}
	}
}
