// Package admin is the administrative side of llm-proxy: the validated
// operations on a Storage that the CLI, the admin REST API and the config
// file's apply share, so that they check input alike.
package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

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

// ---- connections ----

// AddConnection validates c and stores it. The provider kind is
// normalised ("openai-compatible" is accepted for llmproxy.KindCompatible), a
// missing endpoint gets the kind's default, and the settings and
// credentials are checked against what the kind needs:
//
//   - openai, google: an API key; the endpoint defaults to the public one.
//   - compatible: an endpoint; the API key is optional.
//   - azure: an endpoint and an API key; Settings["api_version"] optional.
//   - bedrock: Settings["region"] unless an endpoint is given; static
//     credentials (access key ID and secret, optional session token) or
//     none for the AWS default credential chain.
//   - every kind: Settings["first_byte_timeout"] and
//     Settings["idle_timeout"] (llmproxy.SettingFirstByteTimeout,
//     llmproxy.SettingIdleTimeout), when set, are positive durations
//     such as "30s" or "2m".
//
// On success c holds the stored record (ID, normalised fields, times).
func (a *Service) AddConnection(ctx context.Context, c *llmproxy.Connection) error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return adminErrorf(llmproxy.ErrInvalid, "a connection needs a name")
	}
	if err := a.checkConnection(c); err != nil {
		return err
	}
	all, err := a.allConnections(ctx)
	if err != nil {
		return err
	}
	for i := range all {
		if all[i].Name == c.Name {
			return adminErrorf(llmproxy.ErrAlreadyExists, "connection %q already exists", c.Name)
		}
	}
	c.ID = ""
	if err := a.Storage.CreateConnection(ctx, c); err != nil {
		if errors.Is(err, llmproxy.ErrAlreadyExists) {
			return adminErrorf(llmproxy.ErrAlreadyExists, "connection %q already exists", c.Name)
		}
		return fmt.Errorf("storing connection %q: %w", c.Name, err)
	}
	return nil
}

// checkConnection normalises c and checks it as the Gateway will use it:
// normalizeConnection's rules, then, with a.Providers, by building its
// provider once.
func (a *Service) checkConnection(c *llmproxy.Connection) error {
	if err := a.normalizeConnection(c); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if newProvider := a.Providers[c.Provider]; newProvider != nil {
		if _, err := newProvider(*c, llmproxy.ProviderOptions{}); err != nil {
			// Providers' messages are written for the user; drop the
			// sentinel's "invalid: " prefix.
			msg := strings.TrimPrefix(err.Error(), llmproxy.ErrInvalid.Error()+": ")
			return adminErrorf(llmproxy.ErrInvalid, "%s", msg)
		}
	}
	return nil
}

// durationSettings are the connection settings the Gateway reads as
// durations. They are checked as the Gateway parses them
// (time.ParseDuration, positive), so that a typo is refused here rather
// than logged and ignored by every replica.
var durationSettings = []string{llmproxy.SettingFirstByteTimeout, llmproxy.SettingIdleTimeout}

// normalizeConnection checks c's kind, endpoint, settings and credentials
// and fills in defaults.
func (a *Service) normalizeConnection(c *llmproxy.Connection) error {
	kind := normalizeKind(c.Provider)
	if kind == "" {
		return adminErrorf(llmproxy.ErrInvalid, "connection %q needs a provider (%s)", c.Name, a.kindList())
	}
	if a.Kinds != nil && !slices.Contains(a.Kinds, kind) {
		return adminErrorf(llmproxy.ErrInvalid, "unknown provider %q (known: %s)", c.Provider, a.kindList())
	}
	c.Provider = kind

	c.Endpoint = strings.TrimRight(strings.TrimSpace(c.Endpoint), "/")
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return adminErrorf(llmproxy.ErrInvalid, "endpoint %q is not an http(s) URL", c.Endpoint)
		}
		if u.User != nil {
			return adminErrorf(llmproxy.ErrInvalid, "endpoint must not contain credentials; pass the API key separately")
		}
	}

	// Drop empty settings so that "not given" and "given empty" agree.
	for k, v := range c.Settings {
		if strings.TrimSpace(v) == "" {
			delete(c.Settings, k)
		} else {
			c.Settings[k] = strings.TrimSpace(v)
		}
	}
	if len(c.Settings) == 0 {
		c.Settings = nil
	}
	for _, k := range durationSettings {
		if v, ok := c.Settings[k]; ok {
			if d, err := time.ParseDuration(v); err != nil || d <= 0 {
				return adminErrorf(llmproxy.ErrInvalid, "%s %q is not a positive duration such as 30s, 2m or 1h30m", k, v)
			}
		}
	}
	setting := func(k string) bool { _, ok := c.Settings[k]; return ok }
	cred := c.Credentials
	awsCreds := cred.AccessKeyID != "" || cred.SecretAccessKey != "" || cred.SessionToken != ""

	// notFor rejects what kind does not use.
	notFor := func(what string, given bool) error {
		if given {
			return adminErrorf(llmproxy.ErrInvalid, "%s is not used by %s connections", what, kind)
		}
		return nil
	}
	switch kind {
	case llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindCompatible, llmproxy.KindAzure:
		if err := errors.Join(
			notFor("region", setting("region")),
			notFor("an AWS access key", awsCreds),
		); err != nil {
			return adminErrorf(llmproxy.ErrInvalid, "%s", firstLine(err))
		}
		if kind != llmproxy.KindAzure {
			if err := notFor("api_version", setting("api_version")); err != nil {
				return err
			}
		}
	case llmproxy.KindBedrock:
		if err := errors.Join(
			notFor("an API key", cred.APIKey != ""),
			notFor("api_version", setting("api_version")),
		); err != nil {
			return adminErrorf(llmproxy.ErrInvalid, "%s (bedrock uses AWS credentials)", firstLine(err))
		}
	}

	switch kind {
	case llmproxy.KindOpenAI, llmproxy.KindGoogle:
		if c.Endpoint == "" {
			c.Endpoint = DefaultOpenAIEndpoint
			if kind == llmproxy.KindGoogle {
				c.Endpoint = DefaultGoogleEndpoint
			}
		}
		if cred.APIKey == "" {
			return adminErrorf(llmproxy.ErrInvalid, "%s connection %q needs an API key", kind, c.Name)
		}
	case llmproxy.KindCompatible:
		if c.Endpoint == "" {
			return adminErrorf(llmproxy.ErrInvalid, "compatible connection %q needs an endpoint (the server's base URL, e.g. http://localhost:11434/v1)", c.Name)
		}
	case llmproxy.KindAzure:
		if c.Endpoint == "" {
			return adminErrorf(llmproxy.ErrInvalid, "azure connection %q needs an endpoint (https://RESOURCE.openai.azure.com)", c.Name)
		}
		if cred.APIKey == "" {
			return adminErrorf(llmproxy.ErrInvalid, "azure connection %q needs an API key", c.Name)
		}
	case llmproxy.KindBedrock:
		if !setting("region") && c.Endpoint == "" {
			return adminErrorf(llmproxy.ErrInvalid, "bedrock connection %q needs a region (or an endpoint)", c.Name)
		}
		if (cred.AccessKeyID == "") != (cred.SecretAccessKey == "") {
			return adminErrorf(llmproxy.ErrInvalid, "bedrock connection %q needs both an access key ID and a secret access key, or neither (to use the AWS default credential chain)", c.Name)
		}
		if cred.SessionToken != "" && cred.AccessKeyID == "" {
			return adminErrorf(llmproxy.ErrInvalid, "bedrock connection %q has a session token without an access key ID and secret", c.Name)
		}
	}
	return nil
}

// firstLine returns the first line of a joined error.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func (a *Service) kindList() string {
	kinds := a.Kinds
	if kinds == nil {
		kinds = []string{llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindAzure, llmproxy.KindBedrock, llmproxy.KindCompatible}
	}
	kinds = slices.Clone(kinds)
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}

// ConnectionByIDOrName returns the connection whose ID or name is s.
func (a *Service) ConnectionByIDOrName(ctx context.Context, s string) (*llmproxy.Connection, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, adminErrorf(llmproxy.ErrInvalid, "no connection ID given")
	}
	c, err := a.Storage.Connection(ctx, s)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, llmproxy.ErrNotFound) {
		return nil, err
	}
	all, err := a.allConnections(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == s {
			return &all[i], nil
		}
	}
	return nil, adminErrorf(llmproxy.ErrNotFound, "connection %q not found", s)
}

// ListConnections lists connections in ID order.
func (a *Service) ListConnections(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Connection, error) {
	return a.Storage.Connections(ctx, opts)
}

func (a *Service) allConnections(ctx context.Context) ([]llmproxy.Connection, error) {
	return a.Storage.Connections(ctx, llmproxy.ListOptions{})
}

// DeleteConnection deletes the connection whose ID or name is idOrName.
// A connection that models or key assignments still use is not deleted
// (llmproxy.ErrInUse), and the error names what uses it.
func (a *Service) DeleteConnection(ctx context.Context, idOrName string) (*llmproxy.Connection, error) {
	c, err := a.ConnectionByIDOrName(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	models, err := a.Storage.Models(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range models {
		if m.ConnectionID == c.ID {
			names = append(names, fmt.Sprintf("%s (%s)", m.Name, m.ID))
		}
	}
	if len(names) > 0 {
		return nil, adminErrorf(llmproxy.ErrInUse, "connection %q still has models: %s; delete them first", c.Name, strings.Join(names, ", "))
	}
	if keys := a.keysUsing(ctx, func(as *llmproxy.Assignment) bool { return as.ConnectionID == c.ID }); len(keys) > 0 {
		return nil, adminErrorf(llmproxy.ErrInUse, "connection %q is assigned to keys: %s; unassign it first", c.Name, strings.Join(keys, ", "))
	}
	if err := a.Storage.DeleteConnection(ctx, c.ID); err != nil {
		return nil, a.deleteError("connection", c.Name, err)
	}
	return c, nil
}

// ConnectionUpdate is a change to a connection. Nil fields stay as they
// are; a field set to "" removes the value (an endpoint then returns to
// the kind's default, where it has one). The result must be a valid
// connection of its kind, checked exactly as AddConnection checks a new
// one.
type ConnectionUpdate struct {
	// Name renames the connection; names are unique.
	Name *string
	// Provider, when set, must name the connection's own kind: a
	// connection's kind never changes (its credentials, settings and
	// models' remote names belong to the kind), so another kind is
	// refused; delete the connection and add it again instead.
	Provider *string
	Endpoint *string
	// APIKey replaces the API key, e.g. to rotate it.
	APIKey *string
	// AccessKeyID and SecretAccessKey replace Bedrock's static
	// credentials; they change together (both set, or both nil). A new
	// pair also drops the old session token, which belongs to the old
	// pair, unless SessionToken is set too. Both "" return to the AWS
	// default credential chain.
	AccessKeyID     *string
	SecretAccessKey *string
	SessionToken    *string
	// Settings sets the settings it names and leaves the others; a value
	// of "" removes that setting (e.g. idle_timeout returns to the
	// server's default).
	Settings map[string]string
}

// IsZero reports whether u changes nothing.
func (u ConnectionUpdate) IsZero() bool {
	return u.Name == nil && u.Provider == nil && u.Endpoint == nil && u.APIKey == nil && u.AccessKeyID == nil &&
		u.SecretAccessKey == nil && u.SessionToken == nil && len(u.Settings) == 0
}

// normalizeKind is the stored form of a provider kind as given.
func normalizeKind(kind string) string {
	kind = strings.ToLower(strings.TrimSpace(kind))
	if kind == "openai-compatible" {
		return llmproxy.KindCompatible
	}
	return kind
}

// UpdateConnection changes the connection whose ID or name is idOrName,
// in one write, and returns it as stored. Running Gateways pick the
// change up at their next poll; a connection whose endpoint, credentials
// or settings changed gets a new provider there.
func (a *Service) UpdateConnection(ctx context.Context, idOrName string, u ConnectionUpdate) (*llmproxy.Connection, error) {
	cur, err := a.ConnectionByIDOrName(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if u.IsZero() {
		return nil, adminErrorf(llmproxy.ErrInvalid, "nothing to change: give a name, an endpoint, credentials or settings")
	}
	if u.Provider != nil {
		if kind := normalizeKind(*u.Provider); kind != cur.Provider {
			return nil, adminErrorf(llmproxy.ErrInvalid, "connection %q is a %s connection and cannot become %q: a provider kind does not change; delete the connection and add it again", cur.Name, cur.Provider, strings.TrimSpace(*u.Provider))
		}
	}
	if (u.AccessKeyID == nil) != (u.SecretAccessKey == nil) {
		return nil, adminErrorf(llmproxy.ErrInvalid, "connection %q: change the AWS access key ID and secret access key together", cur.Name)
	}
	c := *cur
	c.Settings = maps.Clone(cur.Settings)
	if u.Name != nil {
		c.Name = strings.TrimSpace(*u.Name)
		if c.Name == "" {
			return nil, adminErrorf(llmproxy.ErrInvalid, "a connection needs a name")
		}
	}
	if u.Endpoint != nil {
		c.Endpoint = *u.Endpoint
	}
	if u.APIKey != nil {
		c.Credentials.APIKey = *u.APIKey
	}
	if u.AccessKeyID != nil {
		c.Credentials.AccessKeyID, c.Credentials.SecretAccessKey = *u.AccessKeyID, *u.SecretAccessKey
		c.Credentials.SessionToken = ""
	}
	if u.SessionToken != nil {
		c.Credentials.SessionToken = *u.SessionToken
	}
	for k, v := range u.Settings {
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			return nil, adminErrorf(llmproxy.ErrInvalid, "%q is not a setting name", k)
		}
		if c.Settings == nil {
			c.Settings = map[string]string{}
		}
		c.Settings[k] = v // normalizeConnection drops the empty ones
	}
	if err := a.checkConnection(&c); err != nil {
		return nil, err
	}
	exists := adminErrorf(llmproxy.ErrAlreadyExists, "connection %q already exists", c.Name)
	if c.Name != cur.Name {
		all, err := a.allConnections(ctx)
		if err != nil {
			return nil, err
		}
		for i := range all {
			if all[i].Name == c.Name && all[i].ID != c.ID {
				return nil, exists
			}
		}
	}
	if err := a.Storage.UpdateConnection(ctx, &c); err != nil {
		switch {
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			return nil, exists
		case errors.Is(err, llmproxy.ErrNotFound):
			return nil, adminErrorf(llmproxy.ErrNotFound, "connection %q no longer exists", cur.Name)
		}
		return nil, fmt.Errorf("updating connection %q: %w", cur.Name, err)
	}
	return &c, nil
}

// keysUsing names the keys that have an assignment matching f. Errors
// are ignored: the store's own check on delete is the last word.
func (a *Service) keysUsing(ctx context.Context, f func(*llmproxy.Assignment) bool) []string {
	keys, err := a.Storage.Keys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil
	}
	var names []string
	for _, k := range keys {
		for i := range k.Assignments {
			if f(&k.Assignments[i]) {
				names = append(names, fmt.Sprintf("%s (%s)", k.Name, k.ID))
				break
			}
		}
	}
	return names
}

func (a *Service) deleteError(what, name string, err error) error {
	switch {
	case errors.Is(err, llmproxy.ErrNotFound):
		return adminErrorf(llmproxy.ErrNotFound, "%s %q not found", what, name)
	case errors.Is(err, llmproxy.ErrInUse):
		return adminErrorf(llmproxy.ErrInUse, "%s %q is still in use", what, name)
	}
	return fmt.Errorf("deleting %s %q: %w", what, name, err)
}

// ---- models ----

// MaxModelWeight is the largest weight a model may have. The Gateway
// sums the weights of an alias's models to pick one; the cap keeps that
// sum far from overflowing.
const MaxModelWeight = 1_000_000

// AddModel validates m and stores it. m.ConnectionID may name the
// connection by ID or by name; the stored record holds its ID. An alias
// may exist once per connection. The weight is 0 (meaning 1) to
// MaxModelWeight.
func (a *Service) AddModel(ctx context.Context, m *llmproxy.Model) error {
	if err := checkModelFields(m); err != nil {
		return err
	}
	if strings.TrimSpace(m.ConnectionID) == "" {
		return adminErrorf(llmproxy.ErrInvalid, "model %q needs a connection ID", m.Name)
	}
	c, err := a.ConnectionByIDOrName(ctx, m.ConnectionID)
	if err != nil {
		return err
	}
	m.ConnectionID = c.ID
	if err := a.checkModel(ctx, m, c); err != nil {
		return err
	}
	m.ID = ""
	if err := a.Storage.CreateModel(ctx, m); err != nil {
		switch {
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			return modelExists(m, c)
		case errors.Is(err, llmproxy.ErrNotFound):
			return adminErrorf(llmproxy.ErrNotFound, "connection %q not found", c.ID)
		}
		return fmt.Errorf("storing model %q: %w", m.Name, err)
	}
	return nil
}

// checkModelFields trims m's alias and remote name and checks them and
// the weight.
func checkModelFields(m *llmproxy.Model) error {
	m.Name = strings.TrimSpace(m.Name)
	m.Remote = strings.TrimSpace(m.Remote)
	switch {
	case m.Name == "":
		return adminErrorf(llmproxy.ErrInvalid, "a model needs a name (the alias clients send)")
	case m.Remote == "":
		return adminErrorf(llmproxy.ErrInvalid, "model %q needs a remote model name", m.Name)
	case m.Weight < 0:
		return adminErrorf(llmproxy.ErrInvalid, "model %q: weight must not be negative", m.Name)
	case m.Weight > MaxModelWeight:
		return adminErrorf(llmproxy.ErrInvalid, "model %q: weight must be at most %d", m.Name, MaxModelWeight)
	}
	return nil
}

// checkModel checks m, on connection c, as a record and against the
// stored models: its (alias, connection) pair must be free, m itself
// aside.
func (a *Service) checkModel(ctx context.Context, m *llmproxy.Model, c *llmproxy.Connection) error {
	if err := m.Validate(); err != nil {
		return err
	}
	models, err := a.Storage.Models(ctx, llmproxy.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range models {
		if o.Name == m.Name && o.ConnectionID == c.ID && o.ID != m.ID {
			return modelExists(m, c)
		}
	}
	return nil
}

func modelExists(m *llmproxy.Model, c *llmproxy.Connection) error {
	return adminErrorf(llmproxy.ErrAlreadyExists, "model %q already exists on connection %q", m.Name, c.Name)
}

// ModelUpdate is a change to a model. Nil fields stay as they are.
type ModelUpdate struct {
	// Name is the alias clients send; unique per connection.
	Name *string
	// Remote is the provider's model name.
	Remote *string
	// Weight is the model's share among the models of its alias: 0
	// (meaning 1) to MaxModelWeight.
	Weight *int
	// ConnectionID, when set, must name the model's own connection (by ID
	// or name): a model does not move to another connection, since the
	// keys assigned to it, or to either connection, would silently gain
	// or lose it. Add the model on the other connection and delete this
	// one instead.
	ConnectionID *string
}

// IsZero reports whether u changes nothing.
func (u ModelUpdate) IsZero() bool {
	return u.Name == nil && u.Remote == nil && u.Weight == nil && u.ConnectionID == nil
}

// UpdateModel changes the model with the given ID, in one write, and
// returns it as stored. The result is checked as AddModel checks a new
// model.
func (a *Service) UpdateModel(ctx context.Context, id string, u ModelUpdate) (*llmproxy.Model, error) {
	cur, err := a.Model(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.IsZero() {
		return nil, adminErrorf(llmproxy.ErrInvalid, "nothing to change: give a name, a remote model name or a weight")
	}
	c, err := a.Storage.Connection(ctx, cur.ConnectionID)
	if err != nil {
		if errors.Is(err, llmproxy.ErrNotFound) {
			return nil, adminErrorf(llmproxy.ErrNotFound, "connection %q of model %q not found", cur.ConnectionID, cur.ID)
		}
		return nil, err
	}
	if u.ConnectionID != nil {
		if to := strings.TrimSpace(*u.ConnectionID); to != c.ID && to != c.Name {
			return nil, adminErrorf(llmproxy.ErrInvalid, "model %q (%s) cannot move from connection %q to %q: add the model on that connection and delete this one", cur.Name, cur.ID, c.Name, to)
		}
	}
	m := *cur
	if u.Name != nil {
		m.Name = *u.Name
	}
	if u.Remote != nil {
		m.Remote = *u.Remote
	}
	if u.Weight != nil {
		m.Weight = *u.Weight
	}
	if err := checkModelFields(&m); err != nil {
		return nil, err
	}
	if err := a.checkModel(ctx, &m, c); err != nil {
		return nil, err
	}
	if err := a.Storage.UpdateModel(ctx, &m); err != nil {
		switch {
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			return nil, modelExists(&m, c)
		case errors.Is(err, llmproxy.ErrNotFound):
			return nil, adminErrorf(llmproxy.ErrNotFound, "model %q no longer exists", cur.ID)
		}
		return nil, fmt.Errorf("updating model %q: %w", cur.ID, err)
	}
	return &m, nil
}

// ListModels lists models in ID order.
func (a *Service) ListModels(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Model, error) {
	return a.Storage.Models(ctx, opts)
}

// Model returns the model with the given ID.
func (a *Service) Model(ctx context.Context, id string) (*llmproxy.Model, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, adminErrorf(llmproxy.ErrInvalid, "no model ID given")
	}
	m, err := a.Storage.Model(ctx, id)
	if errors.Is(err, llmproxy.ErrNotFound) {
		return nil, adminErrorf(llmproxy.ErrNotFound, "model %q not found", id)
	}
	return m, err
}

// DeleteModel deletes the model with the given ID. A model that a key is
// assigned is not deleted (llmproxy.ErrInUse).
func (a *Service) DeleteModel(ctx context.Context, id string) (*llmproxy.Model, error) {
	m, err := a.Model(ctx, id)
	if err != nil {
		return nil, err
	}
	if keys := a.keysUsing(ctx, func(as *llmproxy.Assignment) bool { return as.ModelID == m.ID }); len(keys) > 0 {
		return nil, adminErrorf(llmproxy.ErrInUse, "model %q (%s) is assigned to keys: %s; unassign it first", m.Name, m.ID, strings.Join(keys, ", "))
	}
	if err := a.Storage.DeleteModel(ctx, m.ID); err != nil {
		return nil, a.deleteError("model", m.ID, err)
	}
	return m, nil
}

// ---- virtual keys ----

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
// are; a zero value removes that limit.
type LimitChange struct {
	TPS         *float64
	Burst       *int
	TokenLimit  *int64
	TokenWindow *time.Duration
}

// IsZero reports whether l changes nothing.
func (l LimitChange) IsZero() bool {
	return l.TPS == nil && l.Burst == nil && l.TokenLimit == nil && l.TokenWindow == nil
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
}

// UpdateKey changes the limits and expiry of the key whose ID or name is
// keyID, in one write.
func (a *Service) UpdateKey(ctx context.Context, keyID string, u KeyUpdate) (*llmproxy.VirtualKey, error) {
	k, err := a.KeyByIDOrName(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if u.Limits.IsZero() && u.ExpiresAt == nil {
		return nil, adminErrorf(llmproxy.ErrInvalid, "nothing to change: give a limit or an expiry")
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

// ---- usage ----

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
