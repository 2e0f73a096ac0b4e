// Package bedrock is the provider for Amazon Bedrock. It translates
// OpenAI chat completions to Bedrock's Converse and ConverseStream APIs
// and back (tools and streaming included), serves OpenAI embeddings
// with Titan text embedding models through InvokeModel, and serves
// Anthropic's Messages API natively for Anthropic's models through
// InvokeModel and InvokeModelWithResponseStream (see Provider.Messages),
// with token counts from Bedrock's CountTokens.
//
// Requests are signed by the AWS SDK (SigV4) with the connection's static
// credentials, or with the SDK's default credential chain (environment,
// shared files, instance or task role) when the connection has none. A
// connection's API key, when set, is used as a Bedrock API key (bearer
// token) instead.
package bedrock

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/schemas"
	"github.com/aws/smithy-go/auth/bearer"
	"github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/go-llm-proxy/llmproxy"
)

// Settings: the keys of Connection.Settings that a Bedrock connection
// reads, and how its other fields are used. Validate checks them.
//
//   - "region" (SettingRegion): the AWS region, e.g. "us-east-1".
//     Required unless Endpoint is set (then it defaults to DefaultRegion
//     and is only used for signing).
//   - "max_attempts" (SettingMaxAttempts): how many times the SDK tries a
//     call that failed with throttling, a 5xx or a network error; a
//     positive integer, default DefaultMaxAttempts.
//   - "messages" (SettingMessages): how Anthropic Messages requests are
//     served: "auto" (the default) natively for the models
//     NativeMessages recognizes as Anthropic's; "native" natively for
//     every model of the connection (application inference profiles
//     and provisioned models of Claude, whose ARNs do not name it);
//     "translate" never natively (the gateway translates them to
//     Converse), for an IAM policy that allows Converse only.
//   - "anthropic_beta_allow" (SettingBetaAllow): anthropic-beta flags
//     forwarded to Bedrock besides DefaultBetas, comma separated; "*"
//     forwards every flag the client sends.
//   - "anthropic_beta_deny" (SettingBetaDeny): flags never forwarded,
//     comma separated (e.g. those a model refuses); "*" forwards none.
//     It wins over the allow list. See Provider.Messages.
//   - Endpoint: an optional base URL replacing Bedrock's regional one
//     (VPC endpoints, tests).
//   - Credentials: AccessKeyID and SecretAccessKey together (with an
//     optional SessionToken) for static credentials; or APIKey for a
//     Bedrock API key; or none, for the SDK's default credential chain.
const (
	SettingRegion      = "region"
	SettingMaxAttempts = "max_attempts"
	SettingMessages    = "messages"
	SettingBetaAllow   = "anthropic_beta_allow"
	SettingBetaDeny    = "anthropic_beta_deny"
)

// Values of the "messages" setting.
const (
	MessagesAuto      = "auto"
	MessagesNative    = "native"
	MessagesTranslate = "translate"
)

// Defaults for the settings.
const (
	DefaultRegion      = "us-east-1"
	DefaultMaxAttempts = 3
)

// Validate reports, with a message fit for the user who configures conn,
// what makes conn unusable as a Bedrock connection. Errors wrap
// llmproxy.ErrInvalid.
func Validate(conn llmproxy.Connection) error {
	c := conn.Credentials
	switch {
	case conn.Settings[SettingRegion] == "" && conn.Endpoint == "":
		return invalidf("bedrock connection %q needs a region (e.g. us-east-1), or an endpoint", conn.Name)
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		return invalidf("bedrock connection %q: static credentials need both an access key id and a secret access key", conn.Name)
	case c.SessionToken != "" && c.AccessKeyID == "":
		return invalidf("bedrock connection %q: a session token is only meaningful with an access key id and a secret access key", conn.Name)
	case c.APIKey != "" && c.AccessKeyID != "":
		return invalidf("bedrock connection %q: set either an API key or static credentials, not both", conn.Name)
	}
	if s, ok := conn.Settings[SettingMaxAttempts]; ok {
		if n, err := strconv.Atoi(s); err != nil || n < 1 {
			return invalidf("bedrock connection %q: %s must be a positive integer, got %q", conn.Name, SettingMaxAttempts, s)
		}
	}
	switch m := conn.Settings[SettingMessages]; m {
	case "", MessagesAuto, MessagesNative, MessagesTranslate:
	default:
		return invalidf("bedrock connection %q: %s must be auto, native or translate, got %q", conn.Name, SettingMessages, m)
	}
	for _, k := range []string{SettingBetaAllow, SettingBetaDeny} {
		if _, err := parseBetaList(conn.Settings[k]); err != nil {
			return invalidf("bedrock connection %q: %s: %v", conn.Name, k, err)
		}
	}
	if conn.Endpoint != "" && !strings.HasPrefix(conn.Endpoint, "https://") && !strings.HasPrefix(conn.Endpoint, "http://") {
		return invalidf("bedrock connection %q: the endpoint must be an http(s) URL, got %q", conn.Name, conn.Endpoint)
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{llmproxy.ErrInvalid}, args...)...)
}

// Provider serves one Bedrock connection. It is safe for concurrent use.
type Provider struct {
	name   string
	client *bedrockruntime.Client
	now    func() time.Time
	log    *slog.Logger
	// messages is the "messages" setting; betas the anthropic-beta
	// flags this connection forwards.
	messages string
	betas    betaPolicy
}

var (
	_ llmproxy.Provider     = (*Provider)(nil)
	_ llmproxy.Embedder     = (*Provider)(nil)
	_ llmproxy.Messenger    = (*Provider)(nil)
	_ llmproxy.TokenCounter = (*Provider)(nil)
)

// New builds the provider of a Bedrock connection (a
// llmproxy.NewProviderFunc). It does no network I/O; with no credentials
// on conn it reads the SDK's default configuration (environment, shared
// files), whose credentials are resolved on first use.
func New(conn llmproxy.Connection, opts llmproxy.ProviderOptions) (llmproxy.Provider, error) {
	if err := Validate(conn); err != nil {
		return nil, err
	}
	region := conn.Settings[SettingRegion]
	attempts := DefaultMaxAttempts
	if s, ok := conn.Settings[SettingMaxAttempts]; ok {
		attempts, _ = strconv.Atoi(s) // checked by Validate
	}
	o := bedrockruntime.Options{
		Region:           region,
		RetryMaxAttempts: attempts,
	}
	if conn.Endpoint != "" {
		o.BaseEndpoint = aws.String(strings.TrimRight(conn.Endpoint, "/"))
	}
	if opts.HTTPClient != nil {
		o.HTTPClient = opts.HTTPClient
	}
	c := conn.Credentials
	switch {
	case c.APIKey != "":
		o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: c.APIKey}}
		o.AuthSchemePreference = []string{"httpBearerAuth"}
	case c.AccessKeyID != "":
		o.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	default:
		loadOpts := []func(*config.LoadOptions) error{}
		if region != "" {
			loadOpts = append(loadOpts, config.WithRegion(region))
		}
		cfg, err := config.LoadDefaultConfig(context.Background(), loadOpts...)
		if err != nil {
			return nil, fmt.Errorf("bedrock connection %q: loading the AWS default configuration: %w", conn.Name, err)
		}
		o.Credentials = cfg.Credentials
		if o.Region == "" {
			o.Region = cfg.Region
		}
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{name: conn.Name, client: bedrockruntime.New(o), now: time.Now, log: log,
		messages: conn.Settings[SettingMessages], betas: newBetaPolicy(conn.Settings)}, nil
}

// ChatCompletion translates an OpenAI chat completion request to a
// Converse (or, for a stream, ConverseStream) call on req.RemoteModel (a
// model id such as "anthropic.claude-3-5-sonnet-20240620-v1:0", or an
// inference profile id or ARN) and its answer back to OpenAI's shape.
func (p *Provider) ChatCompletion(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	in, err := translateRequest(req.Body, req.RemoteModel)
	if err != nil {
		return nil, err
	}
	if req.Stream {
		out, err := p.client.ConverseStream(ctx, streamInput(in), ownProtocol)
		if err != nil {
			return nil, p.upstreamError(err, req.Model)
		}
		return &llmproxy.Response{
			Header: requestIDHeader(out.ResultMetadata),
			Stream: newStream(out.GetStream(), p.name, req.Model, p.now()),
		}, nil
	}
	out, err := p.client.Converse(ctx, in)
	if err != nil {
		return nil, p.upstreamError(err, req.Model)
	}
	body, err := appendResponse(nil, newID(), p.now().Unix(), req.Model, out)
	if err != nil {
		return nil, llmproxy.UpstreamError("Bedrock answered with a message the gateway cannot read", err)
	}
	return &llmproxy.Response{Header: requestIDHeader(out.ResultMetadata), Body: body}, nil
}

// ownProtocol gives one ConverseStream call a protocol of its own. The
// client's (smithy-go v1.28.9's restjson1) holds one event stream codec
// whose payload buffer and lazily made decoder every stream's reader
// goroutine writes without a lock: concurrent streams on one connection
// race (harmlessly today, since the buffer stays nil, but a change to
// smithy-go could mix one stream's events into another's). A protocol
// is two small allocations.
func ownProtocol(o *bedrockruntime.Options) {
	o.Protocol = restjson1.New(schemas.AmazonBedrockFrontendService)
}

// requestIDHeader passes Bedrock's request id on as x-request-id, which
// helps when asking AWS support about a call.
func requestIDHeader(md middleware.Metadata) http.Header {
	id, ok := awsmiddleware.GetRequestIDMetadata(md)
	if !ok || id == "" {
		return nil
	}
	return http.Header{"X-Request-Id": {id}}
}
