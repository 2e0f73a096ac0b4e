package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

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
	case llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindCompatible, llmproxy.KindAzure, llmproxy.KindAnthropic:
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
	case llmproxy.KindAnthropic:
		if c.Endpoint == "" {
			c.Endpoint = DefaultAnthropicEndpoint
		}
		if cred.APIKey == "" {
			return adminErrorf(llmproxy.ErrInvalid, "anthropic connection %q needs an API key", c.Name)
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
		kinds = []string{llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindAzure, llmproxy.KindBedrock, llmproxy.KindCompatible, llmproxy.KindAnthropic}
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
