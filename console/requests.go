package console

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// requestsPage is the newest ledger records, filtered, a page at a time.
type requestsPage struct {
	// The filters as given in the form.
	Key, Model, Status string
	Before             time.Time // the page's cursor; zero for the newest
	Rows               []requestLine
	OlderHref          string // the next page back; "" at the end
	NewestHref         string // back to the newest records; "" on them
	Note               string // why there are no records to list, when there are none
}

// requestLine is one ledger record as the page lists it.
type requestLine struct {
	Key keyRef
	llmproxy.UsageRecord
}

// requestsPerPage is how many records a page lists.
const requestsPerPage = 50

// loadRequests reads the newest ledger records that q selects (key, a
// key's name or ID; model, an alias; status, a code or "errors"; before,
// the cursor of the "Older" link): of every key for the admin (keyID
// ""), else of key keyID only.
func loadRequests(ctx context.Context, env pageEnv, keyID string, q url.Values) (*requestsPage, error) {
	f := llmproxy.RecentFilter{Limit: requestsPerPage}
	p := &requestsPage{}
	var err error
	if p.Key, err = param(q, "key"); err != nil {
		return nil, err
	}
	if f.KeyID, err = keyFilter(ctx, env, keyID, q); err != nil {
		return nil, err
	}
	if p.Model, err = param(q, "model"); err != nil {
		return nil, err
	}
	f.Model = p.Model
	if p.Status, err = param(q, "status"); err != nil {
		return nil, err
	}
	switch p.Status {
	case "":
	case "errors":
		f.Errors = true
	default:
		code, err := strconv.Atoi(p.Status)
		if err != nil || code < 100 || code > 599 {
			return nil, badQuery("status", "%q is neither an HTTP status code (100 to 599) nor \"errors\"", p.Status)
		}
		f.Status = code
	}
	before, err := param(q, "before")
	if err != nil {
		return nil, err
	}
	if before != "" {
		t, err := time.Parse(time.RFC3339Nano, before)
		if err != nil {
			return nil, badQuery("before", "%q is not an RFC 3339 time", before)
		}
		f.Before, p.Before = t, t
		p.NewestHref = "/ui/requests?" + requestParams(q, "").Encode()
	}

	tr, ok := env.Storage.(llmproxy.TrafficReporter)
	if !ok {
		p.Note = "This store cannot list its recent requests (it keeps no indexed recent-requests query)."
		return p, nil
	}
	records, err := tr.RecentUsage(ctx, f)
	if err != nil {
		return nil, err
	}
	names, err := keyNames(ctx, env)
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		p.Rows = append(p.Rows, requestLine{Key: keyRefOf(r.KeyID, names, keyID), UsageRecord: r})
	}
	// A full page may have older records behind it. The cursor is the
	// oldest record's time: RecentFilter pages by time alone.
	if len(records) == requestsPerPage {
		last := records[len(records)-1].Time.UTC().Format(time.RFC3339Nano)
		p.OlderHref = "/ui/requests?" + requestParams(q, last).Encode()
	}
	return p, nil
}

// requestParams are q's filters with cursor before (none when "").
func requestParams(q url.Values, before string) url.Values {
	v := url.Values{}
	for _, k := range []string{"key", "model", "status"} {
		if s, _ := param(q, k); s != "" {
			v.Set(k, s)
		}
	}
	if before != "" {
		v.Set("before", before)
	}
	return v
}
