package llmproxy

import "testing"

func TestTopLevelField(t *testing.T) {
	body := []byte(`{"id":"x","choices":[{"delta":{"content":"usage \"q\""}}], "usage" : {"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`)
	u, ok := usageOf(body)
	if !ok || u != (Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}) {
		t.Errorf("usageOf = %+v %v", u, ok)
	}
	if isUsageOnly(body) {
		t.Error("chunk with choices taken for the usage chunk")
	}
	if !isUsageOnly([]byte(`{"choices":[ ],"usage":{}}`)) {
		t.Error("usage chunk not recognised")
	}
	for _, bad := range []string{``, `{`, `{"a`, `{"a":`, `{"a":"\`, `[]`, `{"usage":nul`} {
		usageOf([]byte(bad)) // must not panic
	}
}
