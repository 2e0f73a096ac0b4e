package bedrock

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/go-llm-proxy/llmproxy"
)

// retryAfter is the Retry-After advised on throttling: Bedrock sends
// none, and its token buckets refill within seconds.
const retryAfter = time.Second

// upstreamError maps an error of a Bedrock call to the error the client
// sees. Context errors are returned as they are (the gateway answers 499
// or 504). The provider's message is shown only where it is about the
// client's request (validation); messages about the gateway's own AWS
// account (access denied names the IAM principal and account) stay in
// the internal cause.
func (p *Provider) upstreamError(err error, model string) error {
	return mapError(err, p.name, model)
}

// streamError maps an error that ended a stream.
func streamError(err error, provider string) error {
	return mapError(err, provider, "")
}

func mapError(err error, provider, model string) error {
	var done *llmproxy.Error
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &done) {
		return err
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			return &llmproxy.Error{Status: http.StatusBadGateway, Type: llmproxy.TypeUpstream, Code: "upstream_error",
				Message: "Bedrock failed to answer (HTTP " + http.StatusText(re.HTTPStatusCode()) + ")", Err: err}
		}
		if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "failed to refresh cached credentials") {
			return llmproxy.UpstreamError("the gateway has no usable AWS credentials for this Bedrock connection; an administrator must configure them", err)
		}
		return llmproxy.UpstreamError("could not get an answer from Bedrock", err)
	}
	code, msg := api.ErrorCode(), api.ErrorMessage()
	// Event stream exceptions are named after their union member
	// ("throttlingException"); HTTP errors after their shape.
	if code != "" {
		code = strings.ToUpper(code[:1]) + code[1:]
	}
	e := &llmproxy.Error{Err: err}
	switch code {
	case "ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException":
		e.Status, e.Type, e.Code, e.RetryAfter = http.StatusTooManyRequests, llmproxy.TypeRateLimit, "rate_limit_exceeded", retryAfter
		e.Message = "Bedrock is throttling requests for this model; retry after a short wait"
		if msg != "" {
			e.Message += " (" + msg + ")"
		}
	case "ValidationException":
		e.Status, e.Type = http.StatusBadRequest, llmproxy.TypeInvalidRequest
		e.Message = msg
		if e.Message == "" {
			e.Message = "Bedrock rejected the request as invalid"
		}
	case "AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException",
		"InvalidSignatureException", "IncompleteSignature", "MissingAuthenticationTokenException",
		"SignatureDoesNotMatch", "InvalidClientTokenId", "UnauthorizedException":
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = "Bedrock refused the gateway's credentials for this connection (" + code + "); an administrator must fix the connection's credentials or IAM permissions"
	case "ResourceNotFoundException":
		// The client named an alias that exists; the gateway maps it to a
		// model Bedrock does not have (wrong id, region or access). That
		// is the gateway's configuration, not the client's request.
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_model_not_found"
		e.Message = "Bedrock does not know the model this gateway uses"
		if model != "" {
			e.Message += " for " + quote(model)
		}
		e.Message += " in this connection's region; an administrator must fix the model's remote name or the connection's region"
	case "ModelNotReadyException", "ServiceUnavailableException":
		e.Status, e.Type, e.Code, e.RetryAfter = http.StatusServiceUnavailable, llmproxy.TypeUpstream, "upstream_unavailable", retryAfter
		e.Message = "Bedrock is unavailable for this model right now; retry later"
	case "ModelTimeoutException":
		e.Status, e.Type, e.Code = http.StatusGatewayTimeout, llmproxy.TypeUpstream, "upstream_timeout"
		e.Message = "the model took too long to answer on Bedrock"
	case "ModelErrorException", "ModelStreamErrorException":
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = "the model failed while answering on Bedrock"
		if msg != "" {
			e.Message += ": " + msg
		}
	default:
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = "Bedrock answered with an error (" + code + ")"
	}
	return e
}

func quote(s string) string { return string(llmproxy.AppendJSONString(nil, s)) }
