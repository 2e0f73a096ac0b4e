package console

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// The data pages (overview, usage, requests) are loaded by plain
// functions of a pageEnv, a key scope and the query string, so that the
// handler only authenticates and renders, and the figures are tested
// without HTTP.

// pageEnv is what the data pages read: the store (its daily rollups,
// hourly traffic and recent records), the admin operations (key and
// connection names, budgets) and the time the page is drawn at.
type pageEnv struct {
	Storage llmproxy.Storage
	Admin   *admin.Service
	Now     time.Time
}

// queryError is a query parameter the page cannot use. Its message names
// the parameter and is written for the user; it wraps llmproxy.ErrInvalid.
type queryError struct {
	param, msg string
}

func (e *queryError) Error() string { return e.param + ": " + e.msg }
func (e *queryError) Unwrap() error { return llmproxy.ErrInvalid }

func badQuery(param, format string, args ...any) error {
	return &queryError{param: param, msg: fmt.Sprintf(format, args...)}
}

// param returns the one value of query parameter name, trimmed ("" when
// absent); a parameter given twice is refused rather than half read.
func param(q url.Values, name string) (string, error) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vs[0]), nil
	}
	return "", badQuery(name, "given %d times; give it once", len(vs))
}

// rangeOption is one of the fixed ranges a page offers ("24h", "7d",
// "30d"): how far back it reaches and the step of its charts.
type rangeOption struct {
	Name  string // the query value
	Label string // the link text
	Span  time.Duration
	Step  time.Duration // time.Hour or 24h
}

var (
	range24h = rangeOption{"24h", "24 h", 24 * time.Hour, time.Hour}
	range7d  = rangeOption{"7d", "7 d", 7 * 24 * time.Hour, time.Hour}
	range30d = rangeOption{"30d", "30 d", 30 * 24 * time.Hour, 24 * time.Hour}
)

// overviewRanges are the overview's ranges; the first is the default.
var overviewRanges = []rangeOption{range24h, range7d, range30d}

// parseRange reads parameter range among opts; absent is the first.
func parseRange(q url.Values, opts []rangeOption) (rangeOption, error) {
	v, err := param(q, "range")
	if err != nil || v == "" {
		return opts[0], err
	}
	names := make([]string, len(opts))
	for i, o := range opts {
		if o.Name == v {
			return o, nil
		}
		names[i] = o.Name
	}
	return rangeOption{}, badQuery("range", "%q is not one of %s", v, strings.Join(names, ", "))
}

// rangeLink is a link to the same page over another range.
type rangeLink struct {
	Label, Href string
	Current     bool
}

// rangeLinks links page (a path) over each of opts, keeping the query
// parameters in keep and dropping the others (a custom since/until).
func rangeLinks(page string, opts []rangeOption, current string, q url.Values, keep ...string) []rangeLink {
	links := make([]rangeLink, len(opts))
	for i, o := range opts {
		v := url.Values{}
		for _, k := range keep {
			if vs := q[k]; len(vs) > 0 && strings.TrimSpace(strings.Join(vs, "")) != "" {
				v[k] = vs
			}
		}
		v.Set("range", o.Name)
		links[i] = rangeLink{Label: o.Label, Href: page + "?" + v.Encode(), Current: o.Name == current}
	}
	return links
}

// utcDay is the UTC midnight starting the day t falls in.
func utcDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// parseSince reads a start as `llm-proxy usage --since` does: a duration
// back from now (24h, 30d), an RFC 3339 time or a date (its UTC
// midnight).
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := llmproxy.ParseWindow(v); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, badQuery("since", "%q is not a duration (24h, 30d), a date (2026-01-31) or an RFC 3339 time", v)
}

// parseUntil reads an end: a date is inclusive (up to the next UTC
// midnight), an RFC 3339 time exclusive.
func parseUntil(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, badQuery("until", "%q is not a date (2026-01-31, included) or an RFC 3339 time", v)
}

// keyRef is a key as a page shows it: its name, linked to its page when
// the viewer may open it.
type keyRef struct {
	ID   string
	Name string // "(master key)", the key's name, or the ID of a deleted key
	Href string // "" when not linked
}

// keyNames returns every key's name by ID.
func keyNames(ctx context.Context, env pageEnv) (map[string]string, error) {
	ks, err := env.Admin.ListKeys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(ks))
	for _, k := range ks {
		m[k.ID] = k.Name
	}
	return m, nil
}

// connectionNames returns every connection's name by ID.
func connectionNames(ctx context.Context, env pageEnv) (map[string]string, error) {
	cs, err := env.Admin.ListConnections(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cs))
	for _, c := range cs {
		m[c.ID] = c.Name
	}
	return m, nil
}

// keyRefOf names key id for a viewer whose scope is scope ("" for the
// admin): linked when the key exists and the viewer may open its page.
func keyRefOf(id string, keyNames map[string]string, scope string) keyRef {
	if id == "" {
		return keyRef{Name: "(master key)"}
	}
	name, ok := keyNames[id]
	if !ok {
		return keyRef{ID: id, Name: id}
	}
	r := keyRef{ID: id, Name: name}
	if scope == "" || scope == id {
		r.Href = "/ui/keys/" + url.PathEscape(id)
	}
	return r
}

// keyFilter reads parameter key (a key's ID or name) into the key ID to
// filter by. A key's own view (scope set) is always filtered to it and
// refuses any other key. The admin's view passes an unknown value on as
// an ID, as `llm-proxy usage --key` does: a deleted key's ID still
// selects its usage.
func keyFilter(ctx context.Context, env pageEnv, scope string, q url.Values) (string, error) {
	v, err := param(q, "key")
	if err != nil {
		return "", err
	}
	if v == "" {
		return scope, nil
	}
	k, err := env.Admin.KeyByIDOrName(ctx, v)
	switch {
	case err == nil:
		v = k.ID
	case !errors.Is(err, llmproxy.ErrNotFound):
		return "", err
	}
	if scope != "" && v != scope {
		return "", badQuery("key", "this session sees only its own key's usage")
	}
	return v, nil
}

// connectionFilter reads parameter connection (an ID or a name) into the
// connection ID to filter by; an unknown value is passed on as an ID.
func connectionFilter(ctx context.Context, env pageEnv, q url.Values) (string, error) {
	v, err := param(q, "connection")
	if err != nil || v == "" {
		return v, err
	}
	c, err := env.Admin.ConnectionByIDOrName(ctx, v)
	switch {
	case err == nil:
		return c.ID, nil
	case errors.Is(err, llmproxy.ErrNotFound):
		return v, nil
	}
	return "", err
}
