// Package admin is the administrative side of llm-proxy: the validated
// operations on a Storage that the CLI, the admin REST API and the config
// file's apply share, so that they check input alike.
package admin

import (
	"context"
	"fmt"

	"github.com/go-llm-proxy/llmproxy"
)

// Service performs the administrative operations on a Storage: adding,
// listing, changing and deleting connections, models and virtual keys,
// changing a key's assignments and limits, and summing usage. The CLI and
// the admin API both use it, so that they validate alike.
//
// Every write checks everything first — the input and the records it
// refers to — and then writes once, so a refused operation changes
// nothing. Errors carry a message written for the user and wrap one of
// llmproxy.ErrInvalid, llmproxy.ErrNotFound, llmproxy.ErrAlreadyExists or llmproxy.ErrInUse (check with
// errors.Is); they never contain a provider key or a key secret.
//
// Updates of a key's assignments read the key and write it back whole;
// two admins changing the same key at the same instant may lose one of
// the two changes (the last write wins), never corrupt the key.
type Service struct {
	// Storage is where the records live. Required.
	Storage llmproxy.Storage
	// Kinds lists the provider kinds a new connection may have, e.g. the
	// keys of llmproxy.Config.Providers. Nil accepts any non-empty kind. The
	// standard kinds (llmproxy.KindOpenAI …) are validated by their own rules
	// either way.
	Kinds []string
	// Providers, when set, checks a new or changed connection the way the
	// Gateway will use it: AddConnection and UpdateConnection build the
	// connection's provider once (a llmproxy.NewProviderFunc does no
	// network I/O) and refuse the connection if that fails, e.g. an Azure
	// api_version of the wrong form.
	Providers map[string]llmproxy.NewProviderFunc
}

// Default endpoints of the provider kinds that have one.
const (
	DefaultOpenAIEndpoint = "https://api.openai.com/v1"
	DefaultGoogleEndpoint = "https://generativelanguage.googleapis.com/v1beta/openai"
	// DefaultAnthropicEndpoint is Anthropic's API, without /v1.
	DefaultAnthropicEndpoint = "https://api.anthropic.com"
)

// adminError is an error whose message is meant for the user as it is. It
// wraps a sentinel error for errors.Is.
type adminError struct {
	msg  string
	kind error
}

func (e *adminError) Error() string { return e.msg }
func (e *adminError) Unwrap() error { return e.kind }

func adminErrorf(kind error, format string, args ...any) error {
	return &adminError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// Usage sums the usage records that f selects, by key and model alias.
// f.KeyID may also be a key's name. Keys that were deleted keep their
// usage, so an unknown key ID is not an error.
func (a *Service) Usage(ctx context.Context, f llmproxy.UsageFilter) ([]llmproxy.UsageSummary, error) {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, adminErrorf(llmproxy.ErrInvalid, "the usage period is empty: since must be before until")
	}
	if f.KeyID != "" {
		if k, err := a.KeyByIDOrName(ctx, f.KeyID); err == nil {
			f.KeyID = k.ID
		}
	}
	return a.Storage.SumUsage(ctx, f)
}
