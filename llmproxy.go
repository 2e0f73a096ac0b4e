package llmproxy

import (
	"log/slog"
	"net/http"
	"time"
)

// Endpoints the gateway serves, as recorded in UsageRecord.Endpoint.
const (
	endpointChat       = "chat"
	endpointEmbeddings = "embeddings"
)

// Config configures a Gateway. Storage and Providers are required; every
// other field's zero value is a reasonable default.
type Config struct {
	// Storage holds the configuration and receives the usage ledger.
	Storage Storage
	// Providers maps a Connection.Provider kind to the constructor of its
	// Provider. A connection of a kind missing here answers 502.
	Providers map[string]NewProviderFunc
	// MasterKey, when set, may use every model without an assignment.
	// It is compared in constant time.
	MasterKey string
	// Limiter keeps request-rate and token counters. Nil means in-process
	// counters (NewLocalLimiter).
	Limiter Limiter
	// Logger receives warnings and errors, never a secret. Nil discards.
	Logger *slog.Logger
	// PollInterval is how often the configuration version is checked;
	// zero means 1s, so a change is live within 2s.
	PollInterval time.Duration
	// HTTPClient is used by providers for upstream calls. Nil means a
	// client with a transport tuned for many concurrent upstream
	// connections. It should have no Timeout: streams may be long.
	HTTPClient *http.Client
	// MaxBodyBytes caps a request body; zero means 32 MiB (room for
	// images as data URLs). Larger bodies answer 413.
	MaxBodyBytes int64
	// DefaultMaxTokens is the completion estimate reserved against a
	// token limit when a request names no max_tokens; zero means 4096.
	DefaultMaxTokens int64
	// UsageBuffer bounds the usage records waiting to be written; zero
	// means 65536. When it is full, requests wait for room rather than
	// drop a record.
	UsageBuffer int
	// UsageFlushInterval is the longest a usage record waits before its
	// batch is written; zero means 200ms.
	UsageFlushInterval time.Duration
}
