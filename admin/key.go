package admin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// MinKeySecretLength is the shortest secret AddKey accepts.
const MinKeySecretLength = 8

// AddKey validates k and stores it with the given secret, or with a new
// one from llmproxy.NewKeySecret when secret is empty. Only llmproxy.HashKey(secret) and
// llmproxy.KeyPrefix(secret) are stored; the secret is returned so the caller can
// show it once. k.Assignments may name connections by ID or name and
// models by ID; every one must exist. On success k holds the stored record.
func (a *Service) AddKey(ctx context.Context, k *llmproxy.VirtualKey, secret string) (string, error) {
	k.Name = strings.TrimSpace(k.Name)
	if k.Name == "" {
		return "", adminErrorf(llmproxy.ErrInvalid, "a key needs a name")
	}
	if secret == "" {
		secret = llmproxy.NewKeySecret()
	} else if err := checkKeySecret(secret); err != nil {
		return "", err
	}
	if !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(time.Now()) {
		return "", adminErrorf(llmproxy.ErrInvalid, "key %q would expire in the past (%s)", k.Name, k.ExpiresAt.Format(time.RFC3339))
	}
	if err := CheckBudget(k.Budget); err != nil {
		return "", err
	}
	for i := range k.Assignments {
		k.Assignments[i].ID = ""
		if err := a.resolveAssignment(ctx, &k.Assignments[i]); err != nil {
			return "", err
		}
	}
	if err := a.checkDistinct(k.Name, k.Assignments); err != nil {
		return "", err
	}
	k.Hash = llmproxy.HashKey(secret)
	k.Prefix = llmproxy.KeyPrefix(secret)
	if err := k.Validate(); err != nil {
		return "", err
	}
	keys, err := a.Storage.Keys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, o := range keys {
		if o.Name == k.Name {
			return "", adminErrorf(llmproxy.ErrAlreadyExists, "key %q already exists", k.Name)
		}
		if o.Hash == k.Hash {
			return "", adminErrorf(llmproxy.ErrAlreadyExists, "another key already has this secret; choose a different one")
		}
	}
	k.ID = ""
	if err := a.Storage.CreateKey(ctx, k); err != nil {
		switch {
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			return "", adminErrorf(llmproxy.ErrAlreadyExists, "key %q already exists (or another key has this secret)", k.Name)
		case errors.Is(err, llmproxy.ErrNotFound):
			return "", adminErrorf(llmproxy.ErrNotFound, "key %q refers to a connection or model that no longer exists", k.Name)
		}
		return "", fmt.Errorf("storing key %q: %w", k.Name, err)
	}
	return secret, nil
}

func checkKeySecret(s string) error {
	if len(s) < MinKeySecretLength {
		return adminErrorf(llmproxy.ErrInvalid, "a key secret must be at least %d characters", MinKeySecretLength)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > '~' {
			return adminErrorf(llmproxy.ErrInvalid, "a key secret may contain only printable ASCII characters without spaces")
		}
	}
	return nil
}

// resolveAssignment checks as's target exists and its limits make sense,
// and turns a connection name into its ID.
func (a *Service) resolveAssignment(ctx context.Context, as *llmproxy.Assignment) error {
	// The budget is checked first: bad input is named before any lookup.
	if err := CheckBudget(as.Budget); err != nil {
		return err
	}
	as.ConnectionID = strings.TrimSpace(as.ConnectionID)
	as.ModelID = strings.TrimSpace(as.ModelID)
	switch {
	case as.ConnectionID == "" && as.ModelID == "":
		return adminErrorf(llmproxy.ErrInvalid, "an assignment needs a connection ID or a model ID")
	case as.ConnectionID != "" && as.ModelID != "":
		return adminErrorf(llmproxy.ErrInvalid, "an assignment is for a connection or for a model, not both")
	case as.ConnectionID != "":
		c, err := a.ConnectionByIDOrName(ctx, as.ConnectionID)
		if err != nil {
			return err
		}
		as.ConnectionID = c.ID
	default:
		if _, err := a.Model(ctx, as.ModelID); err != nil {
			return err
		}
	}
	return checkLimits(as)
}

// CheckBudget checks a budget of a key or an assignment; nil (no budget)
// is fine. An empty Period becomes BudgetMonthly; an empty TZ stays, and
// means UTC. The errors name the field (budget, budget period, budget
// time zone) and the bad value.
func CheckBudget(b *llmproxy.Budget) error {
	if b == nil {
		return nil
	}
	if math.IsNaN(b.USD) || math.IsInf(b.USD, 0) || b.USD <= 0 {
		return adminErrorf(llmproxy.ErrInvalid, "budget must be a positive number of US dollars, not %v", b.USD)
	}
	b.Period = strings.TrimSpace(b.Period)
	switch b.Period {
	case "":
		b.Period = llmproxy.BudgetMonthly
	case llmproxy.BudgetDaily, llmproxy.BudgetWeekly, llmproxy.BudgetMonthly, llmproxy.BudgetTotal:
	default:
		return adminErrorf(llmproxy.ErrInvalid, "budget period %q: want daily, weekly, monthly or total", b.Period)
	}
	b.TZ = strings.TrimSpace(b.TZ)
	if b.TZ != "" {
		// time.LoadLocation also takes "Local", which would make the
		// period depend on the machine the proxy runs on.
		if _, err := time.LoadLocation(b.TZ); err != nil || b.TZ == "Local" {
			return adminErrorf(llmproxy.ErrInvalid, "budget time zone %q is not an IANA time zone name (e.g. UTC, Asia/Bangkok)", b.TZ)
		}
	}
	return checkAlerts(b)
}

// maxAlerts bounds a budget's alert thresholds.
const maxAlerts = 10

// checkAlerts checks b.Alerts and sorts and deduplicates them, so that
// equal budgets store equal lists. An empty list is the default
// thresholds, as an absent one is: every reader (the admin API omits an
// empty list) then sees the same thing.
func checkAlerts(b *llmproxy.Budget) error {
	if len(b.Alerts) == 0 {
		b.Alerts = nil
		return nil
	}
	if len(b.Alerts) > maxAlerts {
		return adminErrorf(llmproxy.ErrInvalid, "budget alerts: at most %d thresholds, not %d", maxAlerts, len(b.Alerts))
	}
	for _, t := range b.Alerts {
		if math.IsNaN(t) || math.IsInf(t, 0) || t <= 0 || t > 1 {
			return adminErrorf(llmproxy.ErrInvalid, "budget alert threshold %v: want a fraction of the budget above 0 and at most 1", t)
		}
	}
	a := append([]float64{}, b.Alerts...)
	slices.Sort(a)
	b.Alerts = slices.Compact(a)
	return nil
}

func checkLimits(as *llmproxy.Assignment) error {
	switch {
	case math.IsNaN(as.TPS) || math.IsInf(as.TPS, 0) || as.TPS < 0:
		return adminErrorf(llmproxy.ErrInvalid, "tps must be a non-negative number")
	case as.Burst < 0:
		return adminErrorf(llmproxy.ErrInvalid, "burst must not be negative")
	case as.Burst > 0 && as.TPS == 0:
		return adminErrorf(llmproxy.ErrInvalid, "burst needs a tps limit")
	case as.TokenLimit < 0:
		return adminErrorf(llmproxy.ErrInvalid, "token limit must not be negative")
	case as.TokenWindow < 0:
		return adminErrorf(llmproxy.ErrInvalid, "token window must not be negative")
	case as.TokenWindow > 0 && as.TokenLimit == 0:
		return adminErrorf(llmproxy.ErrInvalid, "a token window needs a token limit")
	case as.TokenWindow > 0 && as.TokenWindow < time.Second:
		return adminErrorf(llmproxy.ErrInvalid, "token window must be at least 1s")
	}
	return nil
}

func (a *Service) checkDistinct(name string, as []llmproxy.Assignment) error {
	seen := map[string]bool{}
	for i := range as {
		t := as[i].ConnectionID + "/" + as[i].ModelID
		if seen[t] {
			return adminErrorf(llmproxy.ErrInvalid, "key %q is assigned %s twice", name, as[i].Target())
		}
		seen[t] = true
	}
	return nil
}

// KeyByIDOrName returns the key whose ID or name is s.
func (a *Service) KeyByIDOrName(ctx context.Context, s string) (*llmproxy.VirtualKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, adminErrorf(llmproxy.ErrInvalid, "no key ID given")
	}
	k, err := a.Storage.Key(ctx, s)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, llmproxy.ErrNotFound) {
		return nil, err
	}
	keys, err := a.Storage.Keys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].Name == s {
			return &keys[i], nil
		}
	}
	return nil, adminErrorf(llmproxy.ErrNotFound, "key %q not found", s)
}

// ListKeys lists keys in ID order.
func (a *Service) ListKeys(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.VirtualKey, error) {
	return a.Storage.Keys(ctx, opts)
}

// DeleteKey deletes the key whose ID or name is idOrName. Its usage
// records stay.
func (a *Service) DeleteKey(ctx context.Context, idOrName string) (*llmproxy.VirtualKey, error) {
	k, err := a.KeyByIDOrName(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := a.Storage.DeleteKey(ctx, k.ID); err != nil {
		return nil, a.deleteError("key", k.Name, err)
	}
	return k, nil
}

// AssignKey gives the key whose ID or name is keyID the right to as's
// connection (by ID or name) or model, with as's limits. A target the key
// already has is refused; change its limits with UpdateKey.
func (a *Service) AssignKey(ctx context.Context, keyID string, as llmproxy.Assignment) (*llmproxy.VirtualKey, error) {
	k, err := a.KeyByIDOrName(ctx, keyID)
	if err != nil {
		return nil, err
	}
	as.ID = ""
	if err := a.resolveAssignment(ctx, &as); err != nil {
		return nil, err
	}
	if i := findAssignment(k.Assignments, as.ConnectionID, as.ModelID); i >= 0 {
		return nil, adminErrorf(llmproxy.ErrAlreadyExists, "key %q is already assigned %s; change its limits with update", k.Name, as.Target())
	}
	k.Assignments = append(k.Assignments, as)
	return k, a.writeKey(ctx, k)
}

// UnassignKey removes the key's assignment of the given connection (by
// ID or name) or model.
func (a *Service) UnassignKey(ctx context.Context, keyID, connectionID, modelID string) (*llmproxy.VirtualKey, error) {
	k, err := a.KeyByIDOrName(ctx, keyID)
	if err != nil {
		return nil, err
	}
	i, err := a.targetIndex(ctx, k, connectionID, modelID)
	if err != nil {
		return nil, err
	}
	k.Assignments = slices.Delete(k.Assignments, i, i+1)
	return k, a.writeKey(ctx, k)
}

// targetIndex finds the assignment of k for a connection (ID or name) or
// model.
func (a *Service) targetIndex(ctx context.Context, k *llmproxy.VirtualKey, connectionID, modelID string) (int, error) {
	connectionID, modelID = strings.TrimSpace(connectionID), strings.TrimSpace(modelID)
	switch {
	case connectionID == "" && modelID == "":
		return -1, adminErrorf(llmproxy.ErrInvalid, "name a connection ID or a model ID")
	case connectionID != "" && modelID != "":
		return -1, adminErrorf(llmproxy.ErrInvalid, "name a connection ID or a model ID, not both")
	}
	target := "model " + modelID
	if connectionID != "" {
		target = "connection " + connectionID
		if i := findAssignment(k.Assignments, connectionID, ""); i >= 0 {
			return i, nil
		}
		// Perhaps a name.
		if c, err := a.ConnectionByIDOrName(ctx, connectionID); err == nil {
			connectionID = c.ID
		}
	}
	if i := findAssignment(k.Assignments, connectionID, modelID); i >= 0 {
		return i, nil
	}
	return -1, adminErrorf(llmproxy.ErrNotFound, "key %q is not assigned %s", k.Name, target)
}

func findAssignment(as []llmproxy.Assignment, connectionID, modelID string) int {
	return slices.IndexFunc(as, func(a llmproxy.Assignment) bool {
		return a.ConnectionID == connectionID && a.ModelID == modelID
	})
}

// LimitChange changes an assignment's limits. Nil fields stay as they
// are; a zero value removes that limit. Budget, when not nil, replaces
// the assignment's budget; ClearBudget removes it.
type LimitChange struct {
	TPS         *float64
	Burst       *int
	TokenLimit  *int64
	TokenWindow *time.Duration
	Budget      *llmproxy.Budget
	ClearBudget bool
}

// IsZero reports whether l changes nothing.
func (l LimitChange) IsZero() bool {
	return l.TPS == nil && l.Burst == nil && l.TokenLimit == nil && l.TokenWindow == nil && l.Budget == nil && !l.ClearBudget
}

// Apply sets the limits of as that l changes.
func (l LimitChange) Apply(as *llmproxy.Assignment) {
	if l.TPS != nil {
		as.TPS = *l.TPS
	}
	if l.Burst != nil {
		as.Burst = *l.Burst
	}
	if l.TokenLimit != nil {
		as.TokenLimit = *l.TokenLimit
	}
	if l.TokenWindow != nil {
		as.TokenWindow = *l.TokenWindow
	}
	switch {
	case l.Budget != nil:
		b := *l.Budget
		as.Budget = &b
	case l.ClearBudget:
		as.Budget = nil
	}
}

// KeyUpdate is a change to a virtual key.
type KeyUpdate struct {
	// ConnectionID (ID or name) or ModelID, when one is set, selects the
	// assignment whose limits change; when both are empty, Limits apply
	// to every assignment of the key.
	ConnectionID string
	ModelID      string
	Limits       LimitChange
	// ExpiresAt, when not nil, sets the expiry; a zero time removes it.
	ExpiresAt *time.Time
	// Budget, when not nil, replaces the key's own budget (over all its
	// assignments); ClearBudget removes it. An assignment's budget is
	// changed through Limits.
	Budget      *llmproxy.Budget
	ClearBudget bool
}

// UpdateKey changes the limits and expiry of the key whose ID or name is
// keyID, in one write.
func (a *Service) UpdateKey(ctx context.Context, keyID string, u KeyUpdate) (*llmproxy.VirtualKey, error) {
	k, err := a.KeyByIDOrName(ctx, keyID)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Limits.IsZero() && u.ExpiresAt == nil && u.Budget == nil && !u.ClearBudget:
		return nil, adminErrorf(llmproxy.ErrInvalid, "nothing to change: give a limit, an expiry or a budget")
	case u.Budget != nil && u.ClearBudget, u.Limits.Budget != nil && u.Limits.ClearBudget:
		return nil, adminErrorf(llmproxy.ErrInvalid, "set a budget or clear it, not both")
	}
	for _, b := range []*llmproxy.Budget{u.Budget, u.Limits.Budget} {
		if err := CheckBudget(b); err != nil {
			return nil, err
		}
	}
	if !u.Limits.IsZero() {
		var sel []int
		if u.ConnectionID != "" || u.ModelID != "" {
			i, err := a.targetIndex(ctx, k, u.ConnectionID, u.ModelID)
			if err != nil {
				return nil, err
			}
			sel = []int{i}
		} else {
			for i := range k.Assignments {
				sel = append(sel, i)
			}
			if len(sel) == 0 {
				return nil, adminErrorf(llmproxy.ErrInvalid, "key %q has no assignments to set limits on; use assign", k.Name)
			}
		}
		for _, i := range sel {
			as := &k.Assignments[i]
			u.Limits.Apply(as)
			if err := checkLimits(as); err != nil {
				return nil, err
			}
		}
	}
	if u.ExpiresAt != nil {
		if !u.ExpiresAt.IsZero() && !u.ExpiresAt.After(time.Now()) {
			return nil, adminErrorf(llmproxy.ErrInvalid, "key %q would expire in the past (%s)", k.Name, u.ExpiresAt.Format(time.RFC3339))
		}
		k.ExpiresAt = *u.ExpiresAt
	}
	switch {
	case u.Budget != nil:
		b := *u.Budget
		k.Budget = &b
	case u.ClearBudget:
		k.Budget = nil
	}
	return k, a.writeKey(ctx, k)
}

func (a *Service) writeKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	if err := a.Storage.UpdateKey(ctx, k); err != nil {
		if errors.Is(err, llmproxy.ErrNotFound) {
			return adminErrorf(llmproxy.ErrNotFound, "key %q (or a connection or model it is assigned) no longer exists", k.Name)
		}
		return fmt.Errorf("updating key %q: %w", k.Name, err)
	}
	return nil
}
