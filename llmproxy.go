package llmproxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoints the gateway serves, as recorded in UsageRecord.Endpoint and
// named in RequestInfo.Route.
const (
	EndpointChat        = "chat"
	EndpointEmbeddings  = "embeddings"
	EndpointMessages    = "messages"     // Anthropic's POST /v1/messages
	EndpointCountTokens = "count_tokens" // Anthropic's POST /v1/messages/count_tokens
	EndpointResponses   = "responses"    // OpenAI's Responses API, POST /v1/responses
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
	// client with NewTransport's Transport (net/http's, tuned; HTTP/2 for
	// HTTPS upstreams that offer it); an HTTP1Transport is faster for
	// plain-HTTP upstreams, within the limits its doc lists. It should have
	// no Timeout: streams may be long. A client with no Timeout, Jar or
	// CheckRedirect has its Transport called directly (a redirect is then
	// followed through the client).
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
	// FirstByteTimeout bounds the wait for an upstream's answer (headers
	// of a stream; the whole body otherwise) before answering 504; zero
	// means 10 minutes. A connection's "first_byte_timeout" setting
	// overrides it.
	FirstByteTimeout time.Duration
	// StreamIdleTimeout ends a stream whose upstream sends nothing for
	// this long, with an SSE error event; zero means 5 minutes. A
	// connection's "idle_timeout" setting overrides it. Long healthy
	// streams are never cut.
	StreamIdleTimeout time.Duration
	// Observers are told about every answered request (metrics, access
	// logs).
	Observers []Observer
	// UsageFlushInterval is the longest a usage record waits before its
	// batch is written; zero means 200ms.
	UsageFlushInterval time.Duration
	// ResponseRetention is how long the Responses API's stored responses
	// are kept (when Storage is a ResponseStore); zero means 30 days.
	// Expired ones are deleted in the background every hour.
	ResponseRetention time.Duration
	// AlertWebhooks are the URLs budget alerts are POSTed to (see
	// AlertOutbox); none means no alerts. Storage must implement
	// AlertOutbox, as every standard backend does.
	AlertWebhooks []string
	// AlertWebhookSecret, when set, signs every alert's body
	// (HeaderAlertSignature).
	AlertWebhookSecret string
	// AlertRetryBase is the wait after an alert's first failed delivery,
	// doubled after each further one up to an hour; zero means 1s.
	AlertRetryBase time.Duration
}

// Gateway is the LLM gateway: an http.Handler serving OpenAI's API
// (POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models) to
// virtual keys, plus GET /healthz. Build it with New and Close it when done
// to flush the usage ledger.
//
// The configuration is served from an in-memory snapshot that follows the
// Storage: a change made by the CLI or another replica is live within two
// poll intervals, and requests keep being served from the last snapshot
// while the database is unreachable.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	snap    atomic.Pointer[snapshot]
	limiter Limiter
	local   *LocalLimiter // fallback when a shared limiter fails
	// expiring holds the budget counters (key → period end) the limiters
	// were told to drop after their period; expirySwept is when it was
	// last pruned.
	expiryMu    sync.RWMutex
	expiring    map[string]time.Time
	expirySwept time.Time
	// sharedDownUntil (unix ns) skips a failing shared limiter for a while.
	sharedDownUntil atomic.Int64
	sharedDown      atomic.Bool
	ledger          *ledger
	master          [32]byte // SHA-256 of MasterKey; hashing makes the compare length-independent
	hasMaster       bool
	stop            context.CancelFunc
	watchDone       chan struct{}
	background      sync.WaitGroup // the other goroutines stop cancels
	closeOnce       sync.Once
	streams         atomic.Int64 // in flight
	// outbox is set when budget alerts are on (webhooks configured).
	outbox          AlertOutbox
	alertWake       chan struct{}
	alertClient     *http.Client
	alertsEnqueued  atomic.Int64
	alertsDelivered atomic.Int64
	alertFailures   atomic.Int64
}

// Stats returns the Gateway's live gauges and counters.
func (g *Gateway) Stats() Stats {
	return Stats{
		InFlightStreams: g.streams.Load(),
		LedgerPending:   g.ledger.pending(),
		LedgerWritten:   g.ledger.written.Load(),
		LedgerDropped:   g.ledger.dropped.Load(),
		LedgerFailures:  g.ledger.failures.Load(),
		LedgerLastFlush: time.Duration(g.ledger.lastFlush.Load()),
		AlertsEnqueued:  g.alertsEnqueued.Load(),
		AlertsDelivered: g.alertsDelivered.Load(),
		AlertFailures:   g.alertFailures.Load(),
	}
}

// New checks cfg, loads the configuration from cfg.Storage, and starts
// following its changes.
func New(cfg Config) (*Gateway, error) {
	if cfg.Storage == nil {
		return nil, errors.New("llmproxy: Config.Storage is nil")
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("llmproxy: Config.Providers is empty")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = 4096
	}
	if cfg.UsageBuffer <= 0 {
		cfg.UsageBuffer = 65536
	}
	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = 10 * time.Minute
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = 5 * time.Minute
	}
	if cfg.UsageFlushInterval <= 0 {
		cfg.UsageFlushInterval = 200 * time.Millisecond
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, client: cfg.HTTPClient, limiter: cfg.Limiter, local: NewLocalLimiter()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.client == nil {
		g.client = &http.Client{Transport: NewTransport()}
	}
	if g.limiter == nil {
		g.limiter = g.local
	}
	if g.cfg.AlertRetryBase <= 0 {
		g.cfg.AlertRetryBase = time.Second
	}
	if len(cfg.AlertWebhooks) > 0 {
		ob, ok := cfg.Storage.(AlertOutbox)
		if !ok {
			return nil, fmt.Errorf("llmproxy: Config.AlertWebhooks is set but %T keeps no alert outbox", cfg.Storage)
		}
		for _, u := range cfg.AlertWebhooks {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return nil, fmt.Errorf("llmproxy: Config.AlertWebhooks: %q is not an http(s) URL", u)
			}
		}
		g.outbox, g.alertWake = ob, make(chan struct{}, 1)
		g.alertClient = &http.Client{Transport: NewTransport()}
	}
	if cfg.MasterKey != "" {
		g.master, g.hasMaster = sha256.Sum256([]byte(cfg.MasterKey)), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	s, err := g.loadSnapshot(ctx, nil)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("llmproxy: loading the configuration: %w", err)
	}
	g.snap.Store(s)
	g.ledger = newLedger(cfg.Storage, g.log, cfg.UsageBuffer, cfg.UsageFlushInterval)
	var watchCtx context.Context
	watchCtx, g.stop = context.WithCancel(context.Background())
	g.watchDone = make(chan struct{})
	go g.watch(watchCtx)
	if store, ok := cfg.Storage.(ResponseStore); ok {
		g.background.Add(1)
		go func() { defer g.background.Done(); g.expireResponses(watchCtx, store) }()
	}
	if g.outbox != nil {
		g.background.Add(1)
		go func() { defer g.background.Done(); g.sendAlerts(watchCtx) }()
	}
	return g, nil
}

// Refresh reloads the configuration now if it changed, instead of at the
// next poll.
func (g *Gateway) Refresh(ctx context.Context) error { return g.refresh(ctx) }

// Close stops following the configuration and writes every queued usage
// record. Call it after the HTTP server has stopped serving (e.g. after
// http.Server.Shutdown), so no request finishes after it.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.stop()
		<-g.watchDone
		g.background.Wait()
		g.ledger.close()
	})
	return nil
}
