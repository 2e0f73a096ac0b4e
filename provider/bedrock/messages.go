package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// AnthropicVersion is the anthropic_version Bedrock requires in an
// Anthropic Messages body (the only value it accepts).
const AnthropicVersion = "bedrock-2023-05-31"

// DefaultBetas are the anthropic-beta flags forwarded to Bedrock: those
// Bedrock's documentation lists for Claude's Messages API on
// InvokeModel. Bedrock refuses a whole request with "invalid beta flag"
// (a 400 ValidationException) when it carries a flag it does not know,
// and clients made for Anthropic's own API send many (Claude Code sends
// claude-code-20250219, fine-grained-tool-streaming-2025-05-14,
// mcp-servers-…, prompt-caching-scope-…), so the other flags are
// dropped. Whether a listed flag is accepted also depends on the model
// (a model may refuse flags older models took): the
// anthropic_beta_allow and anthropic_beta_deny settings adjust the list
// per connection.
var DefaultBetas = []string{
	"computer-use-2024-10-22",
	"computer-use-2025-01-24",
	"computer-use-2025-11-24",
	"token-efficient-tools-2025-02-19",
	"interleaved-thinking-2025-05-14",
	"output-128k-2025-02-19",
	"dev-full-thinking-2025-05-14",
	"context-1m-2025-08-07",
	"context-management-2025-06-27",
	"effort-2025-11-24",
	"tool-search-tool-2025-10-19",
	"tool-examples-2025-10-29",
}

// NativeMessages reports whether Messages serves remoteModel. With the
// connection's "messages" setting at its default (auto) that is the
// case for Anthropic's models, named as Bedrock names them:
//
//   - a model id starting with "anthropic." (anthropic.claude-…);
//   - a cross-region inference profile id: a geography prefix of
//     lowercase letters and dashes, then "anthropic." (us.anthropic.…,
//     eu., apac., jp., au., us-gov., global.anthropic.…);
//   - the ARN of either (…:foundation-model/anthropic.…,
//     …:inference-profile/us.anthropic.…).
//
// ARNs of application inference profiles, provisioned and custom
// models do not name their model: set "messages" to "native" on a
// connection whose models are all Claude, or the gateway translates
// them through Converse. "translate" turns native serving off.
func (p *Provider) NativeMessages(remoteModel string) bool {
	switch p.messages {
	case MessagesNative:
		return true
	case MessagesTranslate:
		return false
	}
	return anthropicModel(remoteModel)
}

// anthropicModel applies NativeMessages' rule to a model id or ARN.
func anthropicModel(model string) bool {
	id := resourceID(model)
	if strings.HasPrefix(id, "anthropic.") {
		return true
	}
	geo, rest, ok := strings.Cut(id, ".")
	return ok && isGeography(geo) && strings.HasPrefix(rest, "anthropic.")
}

// resourceID returns the model or inference profile id an ARN names
// (arn:aws:bedrock:REGION:ACCOUNT:foundation-model/ID or
// …:inference-profile/ID; the id may hold colons), "" for the ARNs
// whose id is opaque, and a plain id as it is.
func resourceID(model string) string {
	if !strings.HasPrefix(model, "arn:") {
		return model
	}
	parts := strings.SplitN(model, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	typ, id, _ := strings.Cut(parts[5], "/")
	if typ == "foundation-model" || typ == "inference-profile" {
		return id
	}
	return ""
}

// isGeography reports whether s can be an inference profile's
// geography prefix (us, eu, apac, us-gov, global, …).
func isGeography(s string) bool {
	if len(s) < 2 || len(s) > 12 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// Messages serves an Anthropic Messages request on req.RemoteModel with
// InvokeModel, or InvokeModelWithResponseStream for a stream, sending
// the client's body with only its top level changed:
//
//   - "model" and "stream" are removed (Bedrock takes the model from
//     the path and the stream from the operation, and refuses both
//     keys as extraneous);
//   - "anthropic_version":"bedrock-2023-05-31" is added first, unless
//     the body has an anthropic_version (a client that speaks Bedrock's
//     dialect), which is kept for Bedrock to judge; the client's
//     anthropic-version header is Anthropic's API version and is not
//     forwarded;
//   - "anthropic_beta" holds the flags of the client's anthropic-beta
//     headers (comma separated, any number of headers) and of an
//     anthropic_beta array in the body, in that order without
//     repeats, less those the connection does not forward (see
//     DefaultBetas; the dropped ones are logged at debug level); it is
//     left out when none remain.
//
// Every other member (messages with thinking blocks and their
// signatures, cache_control marks, tools, fields the gateway does not
// know) is copied byte for byte. The answer is Bedrock's: the Message
// JSON for a non-streaming request, and for a stream each event's JSON
// as it arrives (the last one carries Bedrock's
// amazon-bedrock-invocationMetrics, left in place).
//
// Errors carry Anthropic's error types (see anthropicError):
// throttling is 429 rate_limit_error, Bedrock's ServiceUnavailable and
// ModelNotReady 529 overloaded_error (Claude Code retries both, with
// backoff), a validation error 400 invalid_request_error with Bedrock's
// message, anything else from Bedrock api_error with the status the
// chat path gives it (502, 504).
func (p *Provider) Messages(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	body, err := p.invokeBody(req, false)
	if err != nil {
		return nil, err
	}
	if req.Stream {
		out, err := p.client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String(req.RemoteModel), Body: body,
			ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
		}, ownProtocol)
		if err != nil {
			return nil, anthropicError(p.upstreamError(err, req.Model))
		}
		return &llmproxy.Response{
			Header: requestIDHeader(out.ResultMetadata),
			Stream: newMessageStream(out.GetStream(), p.name),
		}, nil
	}
	out, err := p.client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId: aws.String(req.RemoteModel), Body: body,
		ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
	})
	if err != nil {
		return nil, anthropicError(p.upstreamError(err, req.Model))
	}
	if !isJSONObject(out.Body) {
		return nil, anthropicError(llmproxy.UpstreamError("Bedrock answered with a message the gateway cannot read", nil))
	}
	return &llmproxy.Response{Header: requestIDHeader(out.ResultMetadata), Body: out.Body}, nil
}

// invokeBody builds the body Bedrock gets for req (see Messages). For
// CountTokens (count), a body without max_tokens gets the smallest one
// Bedrock's schema accepts: it is required there, and counting does not
// depend on it.
func (p *Provider) invokeBody(req *llmproxy.Request, count bool) ([]byte, error) {
	members, err := topLevel(req.Body)
	if err != nil {
		return nil, err
	}
	flags := headerBetas(req.Header)
	for _, m := range members {
		if m.key == "anthropic_beta" {
			fromBody, err := bodyBetas(req.Body[m.value:m.end])
			if err != nil {
				return nil, err
			}
			flags = append(flags, fromBody...)
		}
	}
	kept, dropped := p.betas.filter(flags)
	if len(dropped) > 0 {
		p.log.Debug("bedrock: anthropic-beta flags not forwarded", "connection", p.name, "model", req.RemoteModel, "flags", dropped)
	}
	return assembleBody(req.Body, members, kept, count), nil
}

// member is a top-level member of a JSON object: its key (unescaped),
// where it starts (the key's opening quote), where its value starts
// and where it ends.
type member struct {
	key               string
	start, value, end int
}

// topLevel locates the members of the JSON object body.
func topLevel(body []byte) ([]member, error) {
	if !isJSONObject(body) {
		return nil, llmproxy.BadRequest("", "the request body must be a JSON object")
	}
	var out []member
	i := jsonscan.SkipSpace(body, 0) + 1
	for {
		i = jsonscan.SkipSpace(body, i)
		if body[i] == '}' {
			return out, nil
		}
		if body[i] == ',' {
			i = jsonscan.SkipSpace(body, i+1)
		}
		m := member{start: i}
		i = jsonscan.SkipString(body, i)
		m.key = string(body[m.start+1 : i-1])
		if strings.IndexByte(m.key, '\\') >= 0 {
			json.Unmarshal(body[m.start:i], &m.key) // valid JSON: cannot fail
		}
		i = jsonscan.SkipSpace(body, jsonscan.SkipSpace(body, i)+1) // past ':'
		m.value = i
		m.end = jsonscan.SkipValue(body, i)
		i = m.end
		out = append(out, m)
	}
}

// isJSONObject reports whether b is valid JSON whose value is an object.
func isJSONObject(b []byte) bool {
	i := jsonscan.SkipSpace(b, 0)
	return i < len(b) && b[i] == '{' && jsonscan.Valid(b)
}

// assembleBody writes Bedrock's body: the added members first, then the
// client's members but model, stream and anthropic_beta, as they were.
func assembleBody(body []byte, members []member, betas []string, count bool) []byte {
	out := make([]byte, 0, len(body)+64+32*len(betas))
	out = append(out, '{')
	has := func(key string) bool {
		for _, m := range members {
			if m.key == key {
				return true
			}
		}
		return false
	}
	if !has("anthropic_version") {
		out = append(out, `"anthropic_version":"`+AnthropicVersion+`",`...)
	}
	if len(betas) > 0 {
		out = append(out, `"anthropic_beta":[`...)
		for i, b := range betas {
			if i > 0 {
				out = append(out, ',')
			}
			out = llmproxy.AppendJSONString(out, b)
		}
		out = append(out, "],"...)
	}
	if count && !has("max_tokens") {
		out = append(out, `"max_tokens":`...)
		out = strconv.AppendInt(out, countMaxTokens(body), 10)
		out = append(out, ',')
	}
	for _, m := range members {
		switch m.key {
		case "model", "stream", "anthropic_beta":
			continue
		}
		out = append(out, body[m.start:m.end]...)
		out = append(out, ',')
	}
	if out[len(out)-1] == ',' {
		out = out[:len(out)-1]
	}
	return append(out, '}')
}

// countMaxTokens is the max_tokens given to a count_tokens body without
// one: 1, or one more than the thinking budget (Bedrock refuses a
// max_tokens not above thinking.budget_tokens).
func countMaxTokens(body []byte) int64 {
	if n, ok := jsonscan.Count(jsonscan.Field(jsonscan.Field(body, "thinking"), "budget_tokens")); ok {
		return n + 1
	}
	return 1
}

// headerBetas returns the flags of the anthropic-beta headers.
func headerBetas(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Anthropic-Beta") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// bodyBetas reads the anthropic_beta member of a body: an array of
// strings.
func bodyBetas(raw []byte) ([]string, error) {
	var flags []string
	if err := json.Unmarshal(raw, &flags); err != nil || bytes.Equal(raw, []byte("null")) {
		return nil, llmproxy.BadRequest("anthropic_beta", "anthropic_beta must be an array of strings, got %s", jsonscan.Kind(raw))
	}
	return flags, nil
}

// betaPolicy is which anthropic-beta flags a connection forwards.
type betaPolicy struct {
	allowAll, denyAll bool
	allow, deny       map[string]bool
}

// newBetaPolicy reads the anthropic_beta_allow and anthropic_beta_deny
// settings (checked by Validate).
func newBetaPolicy(settings map[string]string) betaPolicy {
	p := betaPolicy{allow: map[string]bool{}, deny: map[string]bool{}}
	for _, f := range DefaultBetas {
		p.allow[f] = true
	}
	allow, _ := parseBetaList(settings[SettingBetaAllow])
	for _, f := range allow {
		p.allowAll = p.allowAll || f == "*"
		p.allow[f] = true
	}
	deny, _ := parseBetaList(settings[SettingBetaDeny])
	for _, f := range deny {
		p.denyAll = p.denyAll || f == "*"
		p.deny[f] = true
	}
	return p
}

// filter splits flags into those forwarded and those dropped, each
// without repeats, in their order.
func (p betaPolicy) filter(flags []string) (kept, dropped []string) {
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		if seen[f] {
			continue
		}
		seen[f] = true
		if !p.denyAll && !p.deny[f] && (p.allowAll || p.allow[f]) {
			kept = append(kept, f)
		} else {
			dropped = append(dropped, f)
		}
	}
	return kept, dropped
}

// parseBetaList reads a comma-separated list of beta flags, or "*".
func parseBetaList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "*" {
			out = append(out, f)
			continue
		}
		if f == "" || strings.Trim(f, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			return nil, fmt.Errorf("%q is not a beta flag (lowercase letters, digits and dashes, e.g. interleaved-thinking-2025-05-14), nor *", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// Anthropic's error types, as the Messages path reports them.
const (
	typeAPIError   = "api_error"
	typeOverloaded = "overloaded_error"
	typeTooLarge   = "request_too_large"
	// statusOverloaded is Anthropic's status for overloaded_error.
	statusOverloaded = 529
)

// anthropicError gives an error of the Messages path (an *llmproxy.Error
// from mapError) Anthropic's error type for its status, as Anthropic's
// API would answer: Bedrock's "unavailable" (503) becomes 529
// overloaded_error, which Claude Code treats as an overload and
// retries; 429 stays rate_limit_error; a 5xx is api_error. Context
// errors pass unchanged.
func anthropicError(err error) error {
	var e *llmproxy.Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Status == http.StatusServiceUnavailable {
		e.Status = statusOverloaded
	}
	e.Type = anthropicType(e.Status)
	return err
}

// anthropicType is Anthropic's error type for an HTTP status.
func anthropicType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return llmproxy.TypeInvalidRequest
	case http.StatusUnauthorized:
		return llmproxy.TypeAuthentication
	case http.StatusForbidden:
		return llmproxy.TypePermission
	case http.StatusNotFound:
		return llmproxy.TypeNotFound
	case http.StatusRequestEntityTooLarge:
		return typeTooLarge
	case http.StatusTooManyRequests:
		return llmproxy.TypeRateLimit
	case statusOverloaded:
		return typeOverloaded
	}
	return typeAPIError
}

// statusOf is the HTTP status of an Anthropic error type, for the error
// events of a stream.
func statusOf(typ string) int {
	for _, s := range []int{400, 401, 403, 404, 413, 429, statusOverloaded} {
		if anthropicType(s) == typ {
			return s
		}
	}
	return http.StatusInternalServerError
}
