package bedrock

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/go-llm-proxy/llmproxy"
)

// CountTokens counts the input tokens of an Anthropic Messages body with
// Bedrock's CountTokens (its invokeModel input: the body Messages would
// send, with a max_tokens when the client's has none). It serves the
// models NativeMessages serves, and returns an error wrapping
// llmproxy.ErrUnsupported, for the gateway to answer its estimate, when:
//
//   - NativeMessages is false for the model;
//   - the model is named by an ARN that does not name its model
//     (application inference profiles, provisioned models), which
//     CountTokens does not take;
//   - Bedrock answers that it cannot count tokens for the model (a
//     ValidationException saying so; not every model or region has
//     CountTokens), or refuses the operation (AccessDeniedException:
//     an IAM policy that allows InvokeModel but not CountTokens;
//     UnknownOperationException: an endpoint without it). The refusal
//     is logged as a warning, as it is the gateway's configuration.
//
// CountTokens takes foundation model ids only: a cross-region inference
// profile (us.anthropic.claude-…) is counted with the model id it names
// (anthropic.claude-…), which counts the same tokens.
func (p *Provider) CountTokens(ctx context.Context, req *llmproxy.Request) (int64, error) {
	if !p.NativeMessages(req.RemoteModel) {
		return 0, fmt.Errorf("bedrock: counting the tokens of %q: %w", req.RemoteModel, llmproxy.ErrUnsupported)
	}
	id := countModelID(req.RemoteModel)
	if id == "" {
		return 0, fmt.Errorf("bedrock: CountTokens takes model ids, not an ARN such as %q: %w", req.RemoteModel, llmproxy.ErrUnsupported)
	}
	body, err := p.invokeBody(req, true)
	if err != nil {
		return 0, err
	}
	out, err := p.client.CountTokens(ctx, &bedrockruntime.CountTokensInput{
		ModelId: aws.String(id),
		Input:   &types.CountTokensInputMemberInvokeModel{Value: types.InvokeModelTokensRequest{Body: body}},
	})
	if err != nil {
		mapped := anthropicError(p.upstreamError(err, req.Model))
		if code, ok := countUnsupported(err); ok {
			if code != "ValidationException" {
				p.log.Warn("bedrock: CountTokens refused; the gateway estimates instead", "connection", p.name, "model", id, "error", code)
			}
			return 0, fmt.Errorf("%w: %w", llmproxy.ErrUnsupported, mapped)
		}
		return 0, mapped
	}
	if out.InputTokens == nil || *out.InputTokens < 0 {
		return 0, anthropicError(llmproxy.UpstreamError("Bedrock answered CountTokens without a token count", nil))
	}
	return int64(*out.InputTokens), nil
}

// countModelID is the model id CountTokens is asked about for model: the
// id an ARN names, without an inference profile's geography prefix; ""
// when the ARN does not name its model.
func countModelID(model string) string {
	id := resourceID(model)
	if geo, rest, ok := strings.Cut(id, "."); ok && isGeography(geo) && strings.HasPrefix(rest, "anthropic.") {
		return rest
	}
	return id
}

// countUnsupported reports whether err says that Bedrock does not count
// tokens for this model or connection, and its error code.
func countUnsupported(err error) (string, bool) {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return "", false
	}
	switch code := api.ErrorCode(); code {
	case "AccessDeniedException", "UnknownOperationException":
		return code, true
	case "ValidationException":
		msg := strings.ToLower(api.ErrorMessage())
		return code, strings.Contains(msg, "count") && (strings.Contains(msg, "support") || strings.Contains(msg, "not available"))
	}
	return "", false
}
