// Package azure is the provider for Azure OpenAI. Requests are passed
// through as for OpenAI (provider/openai's Passthrough), to
//
//	{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…
//	{endpoint}/openai/deployments/{deployment}/embeddings?api-version=…
//
// where the deployment is the model's remote name, with the connection's
// key in the api-key header.
//
// The Responses API is served natively, through Azure's v1 API:
//
//	POST       {endpoint}/openai/v1/responses
//	GET/DELETE {endpoint}/openai/v1/responses/{id}
//	GET        {endpoint}/openai/v1/responses/{id}/input_items
//
// with the deployment in the body's "model" (the remote name, as for
// chat) and no api-version: Microsoft's documentation gives the v1 API
// (generally available since August 2025) as the one the Responses API
// needs for its current features, without dated api-version values. The
// older preview route, /openai/responses?api-version=2025-03-01-preview,
// is not used; api_version applies to the deployment routes only.
package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

// Settings: the keys of Connection.Settings that an Azure connection
// reads, and how its other fields are used. Validate checks them.
//
//   - "api_version" (SettingAPIVersion): the Azure OpenAI API version,
//     e.g. "2024-10-21" or "2025-01-01-preview"; default
//     DefaultAPIVersion. Stream usage (stream_options), which the gateway
//     relies on to account streamed tokens, needs 2024-09-01-preview or
//     later.
//   - "responses" (openai.SettingResponses): "native" (the default, also
//     "auto") serves Responses requests through Azure's v1 Responses
//     API; "translate" has the gateway serve them through chat
//     completions instead (for a resource or region without the
//     Responses API).
//   - Endpoint (required): the resource's URL,
//     https://{resource}.openai.azure.com.
//   - Credentials.APIKey (required): one of the resource's keys.
const SettingAPIVersion = "api_version"

// DefaultAPIVersion is the latest generally available Azure OpenAI data
// plane version this provider was tested against.
const DefaultAPIVersion = "2024-10-21"

var apiVersionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)

// Validate reports, with a message fit for the user who configures conn,
// what makes conn unusable as an Azure OpenAI connection. Errors wrap
// llmproxy.ErrInvalid.
func Validate(conn llmproxy.Connection) error {
	c := conn.Credentials
	switch {
	case conn.Endpoint == "":
		return invalidf("azure connection %q needs an endpoint: https://{resource}.openai.azure.com", conn.Name)
	case !strings.HasPrefix(conn.Endpoint, "https://") && !strings.HasPrefix(conn.Endpoint, "http://"):
		return invalidf("azure connection %q: the endpoint must be an http(s) URL such as https://{resource}.openai.azure.com, got %q", conn.Name, conn.Endpoint)
	case c.APIKey == "":
		return invalidf("azure connection %q needs an API key (one of the resource's keys)", conn.Name)
	case c.AccessKeyID != "" || c.SecretAccessKey != "" || c.SessionToken != "":
		return invalidf("azure connection %q: access keys and session tokens are AWS credentials; Azure uses an API key", conn.Name)
	}
	if _, err := url.Parse(conn.Endpoint); err != nil {
		return invalidf("azure connection %q: the endpoint is not a valid URL", conn.Name)
	}
	if v, ok := conn.Settings[SettingAPIVersion]; ok && !apiVersionRE.MatchString(v) {
		return invalidf("azure connection %q: %s must look like 2024-10-21 or 2025-01-01-preview, got %q", conn.Name, SettingAPIVersion, v)
	}
	if _, err := openai.NativeResponsesSetting(conn, true); err != nil {
		return err
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{llmproxy.ErrInvalid}, args...)...)
}

// Provider serves one Azure OpenAI connection. It is safe for concurrent
// use.
type Provider struct {
	pass *openai.Passthrough
}

var (
	_ llmproxy.Provider  = (*Provider)(nil)
	_ llmproxy.Embedder  = (*Provider)(nil)
	_ llmproxy.Responder = (*Provider)(nil)
)

// New builds the provider of an Azure OpenAI connection (a
// llmproxy.NewProviderFunc). It does no network I/O.
func New(conn llmproxy.Connection, opts llmproxy.ProviderOptions) (llmproxy.Provider, error) {
	if err := Validate(conn); err != nil {
		return nil, err
	}
	base := strings.TrimRight(conn.Endpoint, "/")
	// Accept the endpoint as the Azure portal sometimes shows it.
	base = strings.TrimSuffix(base, "/openai")
	version := conn.Settings[SettingAPIVersion]
	if version == "" {
		version = DefaultAPIVersion
	}
	query := "?api-version=" + url.QueryEscape(version)
	key := []string{conn.Credentials.APIKey}
	native, _ := openai.NativeResponsesSetting(conn, true) // checked by Validate
	responsesURL := base + "/openai/v1/responses"
	return &Provider{pass: &openai.Passthrough{
		Name:            conn.Name,
		Client:          opts.HTTPClient,
		ServesResponses: native,
		URL: func(endpoint, deployment string) string {
			if endpoint == llmproxy.EndpointResponses {
				return responsesURL
			}
			op := "/chat/completions"
			if endpoint == llmproxy.EndpointEmbeddings {
				op = "/embeddings"
			}
			return base + "/openai/deployments/" + url.PathEscape(deployment) + op + query
		},
		SetHeaders: func(h http.Header) { h["Api-Key"] = key },
	}}, nil
}

// ChatCompletion forwards a chat completion to the deployment named by
// req.RemoteModel.
func (p *Provider) ChatCompletion(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	res, err := p.pass.ChatCompletion(ctx, req)
	if err != nil || res.Stream == nil {
		return res, err
	}
	res.Stream = &filterStream{EventStream: res.Stream}
	return res, nil
}

// Embeddings forwards an embeddings request to the deployment named by
// req.RemoteModel.
func (p *Provider) Embeddings(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	return p.pass.Embeddings(ctx, req)
}

// NativeResponses reports whether Responses requests go to Azure's
// Responses API (the "responses" setting; true unless "translate").
func (p *Provider) NativeResponses(deployment string) bool { return p.pass.NativeResponses(deployment) }

// Responses forwards a Responses API request to the v1 Responses API,
// with req.RemoteModel (the deployment) as the body's model.
func (p *Provider) Responses(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	return p.pass.Responses(ctx, req)
}

// ResponseResource forwards GET or DELETE of a stored response (see
// openai.Passthrough.ResponseResource).
func (p *Provider) ResponseResource(ctx context.Context, method, path, rawQuery string) (*llmproxy.Response, error) {
	return p.pass.ResponseResource(ctx, method, path, rawQuery)
}

// filterStream drops the chunks Azure adds to OpenAI's stream that carry
// only content filter results for the prompt: they have an empty id and
// no choices, and the Node SDK's stream helper and openai-go do not
// expect a chunk whose id differs from the others.
type filterStream struct {
	llmproxy.EventStream
}

var promptFilter = []byte(`"prompt_filter_results"`)

func (s *filterStream) Next() ([]byte, error) {
	for {
		b, err := s.EventStream.Next()
		if err != nil || !bytes.Contains(b, promptFilter) {
			return b, err
		}
		var c struct {
			ID      string            `json:"id"`
			Choices []json.RawMessage `json:"choices"`
			Usage   json.RawMessage   `json:"usage"`
		}
		if json.Unmarshal(b, &c) != nil || c.ID != "" || len(c.Choices) > 0 || (len(c.Usage) > 0 && string(c.Usage) != "null") {
			return b, nil
		}
	}
}
