package adminapi

import (
	"fmt"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// The JSON shapes of the API, the same as llm-proxy's --json output. The
// answers are built field by field so that nothing secret (a provider key,
// a key's hash) can slip into one.

// Connection is a connection as answered.
type Connection struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Provider    string            `json:"provider"`
	Endpoint    string            `json:"endpoint,omitempty"`
	Credentials []string          `json:"credentials"` // which are set, never their values
	Settings    map[string]string `json:"settings,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// ConnectionView is c as answered (and as llm-proxy --json prints it).
func ConnectionView(c *llmproxy.Connection) Connection {
	creds := c.Credentials.Set()
	if creds == nil {
		creds = []string{}
	}
	return Connection{c.ID, c.Name, c.Provider, c.Endpoint, creds, c.Settings, c.CreatedAt, c.UpdatedAt}
}

// ConnectionInput is the body of POST /connections.
type ConnectionInput struct {
	Name            string            `json:"name"`
	Provider        string            `json:"provider"`
	Endpoint        string            `json:"endpoint,omitempty"`
	APIKey          string            `json:"api_key,omitempty"`
	AccessKeyID     string            `json:"access_key_id,omitempty"`
	SecretAccessKey string            `json:"secret_access_key,omitempty"`
	SessionToken    string            `json:"session_token,omitempty"`
	Settings        map[string]string `json:"settings,omitempty"`
}

func (in *ConnectionInput) connection() *llmproxy.Connection {
	return &llmproxy.Connection{
		Name: in.Name, Provider: in.Provider, Endpoint: in.Endpoint, Settings: in.Settings,
		Credentials: llmproxy.Credentials{APIKey: in.APIKey, AccessKeyID: in.AccessKeyID, SecretAccessKey: in.SecretAccessKey, SessionToken: in.SessionToken},
	}
}

// ConnectionUpdate is the body of PATCH /connections/{id}: the fields
// given change; absent or null fields stay. "" removes a credential, or
// returns the endpoint to the kind's default. Settings sets the settings
// it names and leaves the others; "" removes one. Provider, when given,
// must be the connection's own kind: a kind does not change.
type ConnectionUpdate struct {
	Name            *string           `json:"name,omitempty"`
	Provider        *string           `json:"provider,omitempty"`
	Endpoint        *string           `json:"endpoint,omitempty"`
	APIKey          *string           `json:"api_key,omitempty"`
	AccessKeyID     *string           `json:"access_key_id,omitempty"`
	SecretAccessKey *string           `json:"secret_access_key,omitempty"`
	SessionToken    *string           `json:"session_token,omitempty"`
	Settings        map[string]string `json:"settings,omitempty"`
}

func (u *ConnectionUpdate) update() admin.ConnectionUpdate {
	return admin.ConnectionUpdate{Name: u.Name, Provider: u.Provider, Endpoint: u.Endpoint, APIKey: u.APIKey,
		AccessKeyID: u.AccessKeyID, SecretAccessKey: u.SecretAccessKey, SessionToken: u.SessionToken, Settings: u.Settings}
}

// Model is a model as answered and as created (id and times are ignored
// on input; connection_id may name the connection on input).
type Model struct {
	ID           string `json:"id,omitempty"`
	Name         string `json:"name"`
	Remote       string `json:"remote"`
	ConnectionID string `json:"connection_id"`
	Weight       int    `json:"weight,omitempty"`
	// Price overrides the price table for this model (dollars per
	// million tokens); absent when the table applies.
	Price     *pricing.Price `json:"price,omitempty"`
	CreatedAt time.Time      `json:"created_at,omitzero"`
	UpdatedAt time.Time      `json:"updated_at,omitzero"`
}

// ModelView is m as answered.
func ModelView(m *llmproxy.Model) Model {
	return Model{m.ID, m.Name, m.Remote, m.ConnectionID, m.Weight, m.Price, m.CreatedAt, m.UpdatedAt}
}

// ModelUpdate is the body of PATCH /models/{id}: the fields given
// change; absent or null fields stay. ConnectionID, when given, must name
// the model's own connection: a model does not move.
type ModelUpdate struct {
	Name         *string `json:"name,omitempty"`
	Remote       *string `json:"remote,omitempty"`
	Weight       *int    `json:"weight,omitempty"`
	ConnectionID *string `json:"connection_id,omitempty"`
	// Price replaces the model's price override; clear_price removes it.
	Price      *pricing.Price `json:"price,omitempty"`
	ClearPrice bool           `json:"clear_price,omitempty"`
}

func (u *ModelUpdate) update() admin.ModelUpdate {
	return admin.ModelUpdate{Name: u.Name, Remote: u.Remote, Weight: u.Weight, ConnectionID: u.ConnectionID, Price: u.Price, ClearPrice: u.ClearPrice}
}

// Assignment is a key's right to a connection or a model, with limits.
// TokenWindow is a duration such as "90s", "24h" or "30d"; empty is a
// lifetime quota.
type Assignment struct {
	ID           string  `json:"id,omitempty"`
	ConnectionID string  `json:"connection_id,omitempty"`
	ModelID      string  `json:"model_id,omitempty"`
	TPS          float64 `json:"tps,omitempty"`
	Burst        int     `json:"burst,omitempty"`
	TokenLimit   int64   `json:"token_limit,omitempty"`
	TokenWindow  string  `json:"token_window,omitempty"`
	// Budget limits what this assignment's requests may spend.
	Budget *Budget `json:"budget,omitempty"`
}

func (a *Assignment) assignment() (llmproxy.Assignment, error) {
	w, err := llmproxy.ParseWindow(a.TokenWindow)
	if err != nil {
		return llmproxy.Assignment{}, fmt.Errorf("token_window: %w", err)
	}
	return llmproxy.Assignment{ConnectionID: a.ConnectionID, ModelID: a.ModelID, TPS: a.TPS, Burst: a.Burst, TokenLimit: a.TokenLimit,
		TokenWindow: w, Budget: a.Budget.budget()}, nil
}

// Budget is a spending limit in US dollars per calendar period: period
// is daily, weekly, monthly (when omitted) or total; tz is the IANA time
// zone whose midnight starts a period (omitted: UTC).
type Budget struct {
	USD    float64 `json:"usd"`
	Period string  `json:"period,omitempty"`
	TZ     string  `json:"tz,omitempty"`
	// Alerts are the fractions of usd (in (0, 1]) at which alerts fire;
	// omitted means the default 0.5, 0.8, 1.
	Alerts []float64 `json:"alerts,omitempty"`
}

// BudgetView is b as answered; nil for no budget.
func BudgetView(b *llmproxy.Budget) *Budget {
	if b == nil {
		return nil
	}
	return &Budget{USD: b.USD, Period: b.Period, TZ: b.TZ, Alerts: b.Alerts}
}

func (b *Budget) budget() *llmproxy.Budget {
	if b == nil {
		return nil
	}
	return &llmproxy.Budget{USD: b.USD, Period: b.Period, TZ: b.TZ, Alerts: b.Alerts}
}

// Key is a virtual key as answered: never its secret, except Key in the
// answer of POST /keys when the secret was generated.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Budget limits what the key may spend over all its assignments.
	Budget      *Budget      `json:"budget,omitempty"`
	Assignments []Assignment `json:"assignments"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Key         string       `json:"key,omitempty"`
}

// KeyView is k as answered, without its secret.
func KeyView(k *llmproxy.VirtualKey) Key {
	v := Key{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Budget: BudgetView(k.Budget), Assignments: []Assignment{}, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt
		v.ExpiresAt = &t
	}
	for _, a := range k.Assignments {
		aj := Assignment{ID: a.ID, ConnectionID: a.ConnectionID, ModelID: a.ModelID, TPS: a.TPS, Burst: a.Burst, TokenLimit: a.TokenLimit,
			Budget: BudgetView(a.Budget)}
		if a.TokenWindow > 0 {
			aj.TokenWindow = llmproxy.FormatWindow(a.TokenWindow)
		}
		v.Assignments = append(v.Assignments, aj)
	}
	return v
}

// KeyInput is the body of POST /keys. Key is the secret; empty generates
// one, answered once.
type KeyInput struct {
	Name        string       `json:"name"`
	Key         string       `json:"key,omitempty"`
	ExpiresAt   *time.Time   `json:"expires_at,omitempty"`
	Budget      *Budget      `json:"budget,omitempty"`
	Assignments []Assignment `json:"assignments"`
}

// KeyUpdate is the body of PATCH /keys/{id}: the limits given change, on
// the assignment that connection_id or model_id selects, or on every
// assignment when neither is given. A zero limit removes it. expires_at
// null or absent leaves the expiry; "" removes it. budget replaces the
// key's own budget, or with connection_id or model_id that assignment's;
// clear_budget removes it.
type KeyUpdate struct {
	ConnectionID string   `json:"connection_id,omitempty"`
	ModelID      string   `json:"model_id,omitempty"`
	TPS          *float64 `json:"tps,omitempty"`
	Burst        *int     `json:"burst,omitempty"`
	TokenLimit   *int64   `json:"token_limit,omitempty"`
	TokenWindow  *string  `json:"token_window,omitempty"`
	ExpiresAt    *string  `json:"expires_at,omitempty"`
	Budget       *Budget  `json:"budget,omitempty"`
	ClearBudget  bool     `json:"clear_budget,omitempty"`
}

func (u *KeyUpdate) update() (admin.KeyUpdate, error) {
	ku := admin.KeyUpdate{ConnectionID: u.ConnectionID, ModelID: u.ModelID,
		Limits: admin.LimitChange{TPS: u.TPS, Burst: u.Burst, TokenLimit: u.TokenLimit}}
	if u.ConnectionID != "" || u.ModelID != "" {
		ku.Limits.Budget, ku.Limits.ClearBudget = u.Budget.budget(), u.ClearBudget
	} else {
		ku.Budget, ku.ClearBudget = u.Budget.budget(), u.ClearBudget
	}
	if u.TokenWindow != nil {
		w, err := llmproxy.ParseWindow(*u.TokenWindow)
		if err != nil {
			return ku, fmt.Errorf("token_window: %w", err)
		}
		ku.Limits.TokenWindow = &w
	}
	if u.ExpiresAt != nil {
		var t time.Time
		if s := strings.TrimSpace(*u.ExpiresAt); s != "" {
			var err error
			if t, err = time.Parse(time.RFC3339, s); err != nil {
				return ku, fmt.Errorf("expires_at: %q is not an RFC 3339 time (or \"\" to remove the expiry)", s)
			}
		}
		ku.ExpiresAt = &t
	}
	return ku, nil
}

// Usage is one key's use of one model alias.
type Usage struct {
	// The dimensions the report groups by (the by parameter; key and
	// model by default); the others are left out. KeyID is "" for the
	// master key; Day is a UTC date (2026-01-31).
	KeyID            *string `json:"key_id,omitempty"`
	KeyName          string  `json:"key_name,omitempty"`
	AssignmentID     *string `json:"assignment_id,omitempty"`
	Model            *string `json:"model,omitempty"`
	ConnectionID     *string `json:"connection_id,omitempty"`
	Day              string  `json:"day,omitempty"`
	Requests         int64   `json:"requests"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	EstimatedTokens  int64   `json:"estimated_tokens"`
	// The prompt tokens read from and written to the upstream's prompt
	// cache (part of PromptTokens).
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	// CostUSD and CostMicros are the known cost, in dollars and exactly
	// in micro-dollars; UnknownCost counts the requests whose cost is
	// unknown (no price for their model, or written before the ledger
	// recorded cost), which they leave out.
	CostUSD     float64 `json:"cost_usd"`
	CostMicros  int64   `json:"cost_micros"`
	UnknownCost int64   `json:"unknown_cost"`
}

// List is the answer of a listing.
type List[T any] struct {
	Data []T `json:"data"`
}
