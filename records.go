package llmproxy

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy/pricing"
)

// Provider kinds understood by the standard providers. A Connection's
// Provider names one of the keys of Config.Providers; these are the ones
// cmd/llm-proxy wires.
const (
	KindOpenAI     = "openai"     // api.openai.com
	KindGoogle     = "google"     // Gemini through its OpenAI-compatible endpoint
	KindAzure      = "azure"      // Azure OpenAI
	KindBedrock    = "bedrock"    // AWS Bedrock Converse
	KindCompatible = "compatible" // any other OpenAI-compatible server
	KindAnthropic  = "anthropic"  // Anthropic's Messages API (api.anthropic.com)
)

// Connection is a real provider account: which kind of provider, where it
// is, and the credentials to reach it.
type Connection struct {
	ID       string
	Name     string // unique
	Provider string // a provider kind, e.g. KindOpenAI
	Endpoint string // base URL; empty means the provider's default
	// Credentials are the secrets used to reach the provider. Storage
	// backends keep them encrypted; they never appear in a listing, a log
	// line or an error.
	Credentials Credentials
	// Settings holds provider-specific options that are not secret, such
	// as "api_version" (Azure) or "region" (Bedrock). Nil means none.
	Settings  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Credentials are a connection's secrets. Its String, GoString and
// LogValue methods redact every value, so printing or logging a Connection
// cannot leak them.
type Credentials struct {
	APIKey          string // OpenAI, Google, Azure, compatible servers
	AccessKeyID     string // Bedrock static credentials
	SecretAccessKey string
	SessionToken    string
}

// IsZero reports whether no credential is set.
func (c Credentials) IsZero() bool { return c == Credentials{} }

// Set names the credentials that are set, e.g. "api_key", for listings.
func (c Credentials) Set() []string {
	var s []string
	for _, f := range []struct {
		name, v string
	}{{"api_key", c.APIKey}, {"access_key_id", c.AccessKeyID}, {"secret_access_key", c.SecretAccessKey}, {"session_token", c.SessionToken}} {
		if f.v != "" {
			s = append(s, f.name)
		}
	}
	return s
}

func (c Credentials) String() string {
	return "credentials(" + strings.Join(c.Set(), ",") + ")"
}

// GoString redacts like String.
func (c Credentials) GoString() string { return c.String() }

// LogValue redacts like String.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON writes only which credentials are set, never their values.
func (c Credentials) MarshalJSON() ([]byte, error) {
	set := c.Set()
	if len(set) == 0 {
		return []byte("[]"), nil
	}
	return []byte(`["` + strings.Join(set, `","`) + `"]`), nil
}

// Validate reports what is wrong with c as a new or updated record, with a
// message fit for a user. providers, when non-nil, lists the known kinds.
func (c *Connection) Validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return invalidf("connection name is empty")
	}
	if c.Provider == "" {
		return invalidf("connection %q has no provider", c.Name)
	}
	return nil
}

// Model maps an alias that clients use to a model name on one connection.
// Several models may share an alias (on different connections); the
// gateway then spreads requests across them by Weight.
type Model struct {
	ID           string
	Name         string // the alias clients send, e.g. "gemini-flash"
	Remote       string // the provider's model name, e.g. "gemini-1.5-flash"
	ConnectionID string
	// Weight is the share of requests this model gets among the models
	// with the same alias. Zero means 1.
	Weight int
	// Price, when set, overrides the price table (package pricing) for
	// this model: what its requests cost, in dollars per million tokens.
	Price     *pricing.Price
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Validate reports what is wrong with m as a new or updated record.
func (m *Model) Validate() error {
	switch {
	case strings.TrimSpace(m.Name) == "":
		return invalidf("model name is empty")
	case strings.TrimSpace(m.Remote) == "":
		return invalidf("model %q has no remote model name", m.Name)
	case m.ConnectionID == "":
		return invalidf("model %q has no connection", m.Name)
	case m.Weight < 0:
		return invalidf("model %q has a negative weight", m.Name)
	}
	return nil
}

// VirtualKey is a key that clients send instead of a provider key. Only a
// hash of its secret is stored. Its assignments live inside it, so that a
// key and its rights are always written together (one row set in one
// transaction, or one document).
type VirtualKey struct {
	ID     string
	Name   string // unique
	Hash   string // HashKey of the secret
	Prefix string // KeyPrefix of the secret, safe to show
	// ExpiresAt is when the key stops working. Zero means never.
	ExpiresAt time.Time
	// Budget, when set, limits what the key may spend in dollars, over
	// all its assignments together.
	Budget      *Budget
	Assignments []Assignment
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Expired reports whether k has expired at now.
func (k *VirtualKey) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Validate reports what is wrong with k as a new or updated record.
func (k *VirtualKey) Validate() error {
	switch {
	case strings.TrimSpace(k.Name) == "":
		return invalidf("key name is empty")
	case len(k.Hash) != 64:
		return invalidf("key %q has no valid hash", k.Name)
	}
	seen := map[string]bool{}
	for i := range k.Assignments {
		a := &k.Assignments[i]
		if err := a.Validate(); err != nil {
			return err
		}
		target := a.ConnectionID + "/" + a.ModelID
		if seen[target] {
			return invalidf("key %q is assigned %s twice", k.Name, a.Target())
		}
		seen[target] = true
	}
	return nil
}

// Assignment gives a virtual key the right to use a whole connection (every
// model on it, including models added later) or a single model, with
// optional limits.
type Assignment struct {
	ID           string
	ConnectionID string // set for a connection-wide assignment
	ModelID      string // set for a single-model assignment
	// TPS is the allowed requests per second; zero means unlimited.
	TPS float64
	// Burst is how many requests may arrive at once; zero means
	// max(1, ceil(TPS)).
	Burst int
	// TokenLimit is the number of tokens allowed per TokenWindow; zero
	// means unlimited.
	TokenLimit int64
	// TokenWindow is the window of TokenLimit, e.g. 24h. Zero means the
	// limit is a lifetime quota.
	TokenWindow time.Duration
	// Budget, when set, limits what the assignment's requests may spend
	// in dollars.
	Budget *Budget
}

// Budget periods: a budget starts again at midnight (daily), on Monday
// at midnight (weekly) or on the 1st at midnight (monthly), in its time
// zone; a total budget never starts again.
const (
	BudgetDaily   = "daily"
	BudgetWeekly  = "weekly"
	BudgetMonthly = "monthly"
	BudgetTotal   = "total"
)

// Budget is a spending limit in US dollars per calendar period. It is
// enforced as token limits are: an estimate of a request's cost is
// reserved before it is forwarded and settled to the real cost after.
type Budget struct {
	// USD is what may be spent per period.
	USD float64
	// Period is BudgetDaily, BudgetWeekly, BudgetMonthly or BudgetTotal.
	Period string
	// TZ is the IANA time zone (e.g. "Asia/Bangkok") whose midnight
	// starts a period; empty means UTC.
	TZ string
	// Alerts are the fractions of USD (each in (0, 1], e.g. 0.5, 0.8, 1)
	// at which a budget alert fires; nil means AlertThresholds.
	Alerts []float64
}

// SameBudget reports whether a and b are the same budget (or both nil).
// Budget has a slice, so it cannot be compared with ==.
func SameBudget(a, b *Budget) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.USD != b.USD || a.Period != b.Period || a.TZ != b.TZ || len(a.Alerts) != len(b.Alerts) {
		return false
	}
	for i := range a.Alerts {
		if a.Alerts[i] != b.Alerts[i] {
			return false
		}
	}
	return true
}

// Target describes what a is for, e.g. "connection conn_…".
func (a *Assignment) Target() string {
	if a.ModelID != "" {
		return "model " + a.ModelID
	}
	return "connection " + a.ConnectionID
}

// Validate reports what is wrong with a.
func (a *Assignment) Validate() error {
	switch {
	case (a.ConnectionID == "") == (a.ModelID == ""):
		return invalidf("an assignment names exactly one of a connection or a model")
	case a.TPS < 0 || a.Burst < 0 || a.TokenLimit < 0 || a.TokenWindow < 0:
		return invalidf("assignment for %s has a negative limit", a.Target())
	}
	return nil
}

// EffectiveBurst is the bucket size for a's request rate.
func (a *Assignment) EffectiveBurst() int {
	if a.Burst > 0 {
		return a.Burst
	}
	b := int(a.TPS)
	if float64(b) < a.TPS {
		b++
	}
	return max(b, 1)
}

// UsageRecord is one request as recorded in the usage ledger.
type UsageRecord struct {
	// ID is unique per record, so that a batch written twice (a retry
	// after a timeout) is stored once.
	ID               string
	Time             time.Time
	RequestID        string
	KeyID            string // empty for the master key
	AssignmentID     string
	Model            string // the alias the client asked for
	RemoteModel      string
	ConnectionID     string
	PromptTokens     int64 // every input token, cached ones included
	CompletionTokens int64
	TotalTokens      int64
	// CacheReadTokens and CacheWriteTokens are the prompt tokens read from
	// and written to the upstream's prompt cache (part of PromptTokens).
	CacheReadTokens  int64
	CacheWriteTokens int64
	// CostMicros is what the request cost, in micro-dollars, from its
	// usage and the model's price; CostKnown is false (and the ledger
	// holds NULL) when the model has no known price.
	CostMicros int64
	CostKnown  bool
	// Estimated is true when the counts are the gateway's estimate
	// rather than the upstream's report (e.g. a client hung up mid-stream
	// before the usage arrived).
	Estimated bool
	Status    int // HTTP status returned to the client
	Latency   time.Duration
	Streamed  bool
	Endpoint  string // EndpointChat, EndpointEmbeddings, EndpointMessages or EndpointCountTokens
}

// UsageFilter selects usage records. Zero fields select everything.
type UsageFilter struct {
	KeyID        string
	AssignmentID string
	Model        string
	ConnectionID string
	Since        time.Time // inclusive
	Until        time.Time // exclusive
}

// UsageSummary is the sum of the records of one key and model alias.
type UsageSummary struct {
	KeyID            string
	Model            string
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	EstimatedTokens  int64 // part of TotalTokens that was estimated
	// CacheReadTokens and CacheWriteTokens sum the records' counts of
	// prompt tokens read from and written to the upstream's prompt cache
	// (part of PromptTokens). Records written before the ledger had these
	// columns count 0.
	CacheReadTokens  int64
	CacheWriteTokens int64
	// CostMicros sums the known costs, in micro-dollars; UnknownCost
	// counts the requests whose cost is unknown (no price for their
	// model), which CostMicros leaves out.
	CostMicros  int64
	UnknownCost int64
}

// UsageGroup is a dimension a usage report groups by.
type UsageGroup string

// The dimensions of a usage report (UsageReporter.UsageReport).
const (
	GroupKey        UsageGroup = "key"
	GroupAssignment UsageGroup = "assignment"
	GroupModel      UsageGroup = "model"
	GroupConnection UsageGroup = "connection"
	GroupDay        UsageGroup = "day" // UTC
)

// UsageGroups are the valid UsageGroup values, in report order.
var UsageGroups = []UsageGroup{GroupKey, GroupAssignment, GroupModel, GroupConnection, GroupDay}

// ParseUsageGroups parses a list of dimensions ("key", "model", …, each
// possibly a comma-separated list). A dimension named twice counts once;
// an unknown one is ErrInvalid naming it.
func ParseUsageGroups(names []string) ([]UsageGroup, error) {
	var out []UsageGroup
	for _, n := range names {
		for _, f := range strings.Split(n, ",") {
			g := UsageGroup(strings.TrimSpace(f))
			if g == "" {
				continue
			}
			if !slices.Contains(UsageGroups, g) {
				return nil, fmt.Errorf("%w: by: unknown dimension %q (want key, assignment, model, connection or day)", ErrInvalid, g)
			}
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out, nil
}

// CheckUsageGroups returns ErrInvalid naming the first dimension of by
// that is not a UsageGroup.
func CheckUsageGroups(by []UsageGroup) error {
	for _, g := range by {
		if !slices.Contains(UsageGroups, g) {
			return fmt.Errorf("%w: by: unknown dimension %q (want key, assignment, model, connection or day)", ErrInvalid, g)
		}
	}
	return nil
}

// UsageRow is one row of a usage report: the sums of one group. The
// dimension fields the report does not group by are empty (Day zero).
type UsageRow struct {
	KeyID        string
	AssignmentID string
	Model        string
	ConnectionID string
	Day          time.Time // UTC midnight
	// The sums, as in UsageSummary.
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	EstimatedTokens  int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	CostMicros       int64
	UnknownCost      int64
}

// Add adds r's sums to u (the dimensions stay u's).
func (u *UsageRow) Add(r UsageRow) {
	u.Requests += r.Requests
	u.PromptTokens += r.PromptTokens
	u.CompletionTokens += r.CompletionTokens
	u.TotalTokens += r.TotalTokens
	u.EstimatedTokens += r.EstimatedTokens
	u.CacheReadTokens += r.CacheReadTokens
	u.CacheWriteTokens += r.CacheWriteTokens
	u.CostMicros += r.CostMicros
	u.UnknownCost += r.UnknownCost
}

// AddRecord adds one ledger record to u's sums.
func (u *UsageRow) AddRecord(r *UsageRecord) {
	u.Requests++
	u.PromptTokens += r.PromptTokens
	u.CompletionTokens += r.CompletionTokens
	u.TotalTokens += r.TotalTokens
	if r.Estimated {
		u.EstimatedTokens += r.TotalTokens
	}
	u.CacheReadTokens += r.CacheReadTokens
	u.CacheWriteTokens += r.CacheWriteTokens
	if r.CostKnown {
		u.CostMicros += r.CostMicros
	} else {
		u.UnknownCost++
	}
}

// RollupOf returns the daily rollup group of record r: its key,
// assignment, model alias, connection and UTC day, with zero sums.
func RollupOf(r *UsageRecord) UsageRow {
	t := r.Time.UTC()
	return UsageRow{KeyID: r.KeyID, AssignmentID: r.AssignmentID, Model: r.Model, ConnectionID: r.ConnectionID,
		Day: time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)}
}

// Rollups sums records into daily rollups, ordered by day, key,
// assignment, model and connection.
func Rollups(records []UsageRecord) []UsageRow {
	idx := map[UsageRow]int{}
	var out []UsageRow
	for i := range records {
		g := RollupOf(&records[i])
		j, ok := idx[g]
		if !ok {
			j = len(out)
			idx[g] = j
			out = append(out, g)
		}
		out[j].AddRecord(&records[i])
	}
	SortUsageRows(out)
	return out
}

// SortUsageRows orders rows by key, assignment, model, connection and
// day: the order of a usage report.
func SortUsageRows(rows []UsageRow) {
	slices.SortFunc(rows, func(a, b UsageRow) int {
		return cmp.Or(strings.Compare(a.KeyID, b.KeyID), strings.Compare(a.AssignmentID, b.AssignmentID),
			strings.Compare(a.Model, b.Model), strings.Compare(a.ConnectionID, b.ConnectionID), a.Day.Compare(b.Day))
	})
}

// GroupUsageRows sums rows (rollups, or rows of a finer grouping) into
// the groups of the dimensions in by, ordered as SortUsageRows. It is
// how a backend without a query language builds a report.
func GroupUsageRows(rows []UsageRow, by []UsageGroup) []UsageRow {
	idx := map[UsageRow]int{}
	var out []UsageRow
	for _, r := range rows {
		var g UsageRow
		for _, d := range by {
			switch d {
			case GroupKey:
				g.KeyID = r.KeyID
			case GroupAssignment:
				g.AssignmentID = r.AssignmentID
			case GroupModel:
				g.Model = r.Model
			case GroupConnection:
				g.ConnectionID = r.ConnectionID
			case GroupDay:
				g.Day = r.Day
			}
		}
		j, ok := idx[g]
		if !ok {
			j = len(out)
			idx[g] = j
			out = append(out, g)
		}
		out[j].Add(r)
	}
	SortUsageRows(out)
	return out
}

// ReportDays returns the UTC days [from, to) whose rollups a report over
// f covers: the days that overlap [f.Since, f.Until). Zero bounds stay
// zero (unbounded).
func ReportDays(f UsageFilter) (from, to time.Time) {
	day := func(t time.Time) time.Time {
		t = t.UTC()
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	if !f.Since.IsZero() {
		from = day(f.Since)
	}
	if !f.Until.IsZero() {
		to = day(f.Until)
		if !to.Equal(f.Until) {
			to = to.AddDate(0, 0, 1)
		}
	}
	return from, to
}

// RollupSelected reports whether rollup r is in a report over f (whose
// days are [from, to), see ReportDays).
func RollupSelected(r *UsageRow, f UsageFilter, from, to time.Time) bool {
	switch {
	case f.KeyID != "" && r.KeyID != f.KeyID,
		f.AssignmentID != "" && r.AssignmentID != f.AssignmentID,
		f.Model != "" && r.Model != f.Model,
		f.ConnectionID != "" && r.ConnectionID != f.ConnectionID,
		!from.IsZero() && r.Day.Before(from),
		!to.IsZero() && !r.Day.Before(to):
		return false
	}
	return true
}

// HashKey returns the stored form of a virtual key's secret: the hex
// SHA-256 of it. Keys are high-entropy or chosen by an admin; a fast hash
// keeps the per-request lookup cheap.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// KeyPrefix returns the part of a secret that is safe to show in listings:
// at most a third of it, and no more than 6 characters.
func KeyPrefix(secret string) string {
	n := min(len(secret)/3, 6)
	return secret[:n]
}

// NewKeySecret returns a new random virtual key secret: "sk-" and 40
// random characters.
func NewKeySecret() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [40]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("llmproxy: no randomness: %v", err)) // crypto/rand never fails on Linux
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "sk-" + string(b[:])
}

// NewID returns a new identifier with the given prefix, e.g.
// "conn_01jd…". IDs sort by creation time (millisecond resolution) and
// carry 80 random bits.
func NewID(prefix string) string {
	const crockford = "0123456789abcdefghjkmnpqrstvwxyz"
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("llmproxy: no randomness: %v", err))
	}
	// 128 bits -> 26 base32 characters.
	var out [26]byte
	var acc uint64
	var bits uint
	j := 0
	for _, x := range b {
		acc = acc<<8 | uint64(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[j] = crockford[(acc>>bits)&31]
			j++
		}
	}
	out[j] = crockford[(acc<<(5-bits))&31]
	return prefix + "_" + string(out[:])
}

// ParseWindow parses a duration as token windows and expiries are written:
// Go's "90s", "1m", "24h", and whole days "30d". Empty is zero.
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			if days > int(math.MaxInt64/int64(24*time.Hour)) {
				return 0, fmt.Errorf("%q is too long a duration (at most %d days)", s, math.MaxInt64/int64(24*time.Hour))
			}
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 90s, 1m, 24h or 30d", s)
	}
	return d, nil
}

// FormatWindow writes d as ParseWindow reads it: "30d", "24h", "1m",
// "90s".
func FormatWindow(d time.Duration) string {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") { // "1m0s" -> "1m", "1h0m0s" -> "1h0m"
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") { // "1h0m" -> "1h"
		s = s[:len(s)-2]
	}
	return s
}

// StoredResponse is a Responses API response the gateway keeps. For a
// translated connection it holds the conversation, so that
// previous_response_id can continue it and GET can return it; for a
// native one (the upstream keeps the content) only who owns it and which
// connection holds it. Its content never appears in a log.
type StoredResponse struct {
	ID           string // the response id the client saw, "resp_…"
	KeyID        string // the virtual key that created it; "" for the master key
	ConnectionID string // the connection that produced it
	Model        string // the alias the client asked for
	// Native is set when the upstream holds the response: Items and
	// Response are then empty.
	Native     bool
	PreviousID string // the previous_response_id it continued, if any
	// Items is the conversation's input, a JSON array of Responses input
	// items: the previous response's Items and output, then this
	// request's input (what GET /v1/responses/{id}/input_items lists).
	Items []byte
	// Response is the response object as the client received it (JSON).
	Response  []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}
