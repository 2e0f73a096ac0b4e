package node_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// A fakeTurn is what a fake model answers: a text, or a call of the
// function name with args.
type fakeTurn struct {
	text string
	name string
	args map[string]any
}

// A turnInput is what a fake model reads of a request, the same in
// both dialects.
type turnInput struct {
	tools    []string                   // the function tools offered, in order
	schemas  map[string]json.RawMessage // their parameter schemas
	outputs  []string                   // the tool outputs that end the input
	lastUser string                     // the text of the last user message
	messages int                        // how many messages and items the input holds
}

// sdkTurn is the model of the SDK tests, as the other fakes' default
// ones: offered tools and no tool output yet, it calls the first tool
// with {"city":"Paris"}; given tool outputs it answers "The tool said:
// …"; otherwise "You said: …" and the last user text.
func sdkTurn(in turnInput) fakeTurn {
	switch {
	case len(in.outputs) > 0:
		return fakeTurn{text: "The tool said: " + strings.Join(in.outputs, "; ")}
	case len(in.tools) > 0:
		return fakeTurn{name: in.tools[0], args: map[string]any{"city": "Paris"}}
	}
	return fakeTurn{text: "You said: " + in.lastUser}
}

// readResponsesInput reads a Responses API request body: function tools
// (namespace and hosted tools are not the model's to call here), input
// as a string or items, the function_call_output items that end it.
func readResponsesInput(body []byte) (turnInput, error) {
	var req struct {
		Tools []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"tools"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return turnInput{}, err
	}
	in := turnInput{schemas: map[string]json.RawMessage{}}
	for _, t := range req.Tools {
		if t.Type == "function" {
			in.tools = append(in.tools, t.Name)
			in.schemas[t.Name] = t.Parameters
		}
	}
	var text string
	if json.Unmarshal(req.Input, &text) == nil {
		in.lastUser, in.messages = text, 1
		return in, nil
	}
	var items []struct {
		Type    string          `json:"type"`
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
		Output  json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(req.Input, &items); err != nil {
		return turnInput{}, fmt.Errorf("input: %v", err)
	}
	in.messages = len(items)
	for _, it := range items {
		switch {
		case it.Type == "function_call_output":
			in.outputs = append(in.outputs, jsonText(it.Output))
		case it.Role == "user":
			in.lastUser, in.outputs = contentText(it.Content), nil
		default:
			in.outputs = nil
		}
	}
	return in, nil
}

// readChatInput reads a Chat Completions request body: function tools,
// the tool messages that end the conversation, the last user text.
func readChatInput(body []byte) (turnInput, error) {
	var req struct {
		Tools []struct {
			Function struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return turnInput{}, err
	}
	in := turnInput{schemas: map[string]json.RawMessage{}, messages: len(req.Messages)}
	for _, t := range req.Tools {
		in.tools = append(in.tools, t.Function.Name)
		in.schemas[t.Function.Name] = t.Function.Parameters
	}
	for _, m := range req.Messages {
		switch m.Role {
		case "tool":
			in.outputs = append(in.outputs, contentText(m.Content))
		case "user":
			in.lastUser, in.outputs = contentText(m.Content), nil
		default:
			in.outputs = nil
		}
	}
	return in, nil
}

// contentText is the text of a message's content: a string, or the
// text of its parts (any of input_text, output_text or text).
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// jsonText is a tool output: a JSON string's value, else its parts'
// text, else the JSON itself.
func jsonText(raw json.RawMessage) string {
	if t := contentText(raw); t != "" {
		return t
	}
	return string(raw)
}

// responsesModel plays model on fakeopenai's Responses API: a text, or
// one function call with the call_id call_fake_1 (as on the chat fake).
func responsesModel(model func(turnInput) fakeTurn) func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
	return func(r *fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		in, err := readResponsesInput(r.Body)
		if err != nil {
			return &fakeopenai.Turn{Error: fakeopenai.ErrorAnswer(http.StatusBadRequest, err.Error())}
		}
		tr := model(in)
		if tr.name == "" {
			return &fakeopenai.Turn{Text: tr.text}
		}
		args, _ := json.Marshal(tr.args)
		return &fakeopenai.Turn{Calls: []fakeopenai.FunctionCall{{Name: tr.name, Arguments: string(args), CallID: "call_fake_1"}}}
	}
}
