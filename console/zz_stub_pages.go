package console

// Stubs of the data pages' API (branch console-pages), so that this
// branch builds on its own; replaced when that branch is merged.

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

type pageEnv struct {
	Storage llmproxy.Storage
	Admin   *admin.Service
	Now     time.Time
}

type overviewPage struct{}
type usagePage struct{}
type requestsPage struct{}

func loadOverview(ctx context.Context, env pageEnv, keyID string, q url.Values) (*overviewPage, error) {
	return &overviewPage{}, nil
}

func loadUsage(ctx context.Context, env pageEnv, keyID string, q url.Values) (*usagePage, error) {
	return &usagePage{}, nil
}

func writeUsageCSV(ctx context.Context, w io.Writer, env pageEnv, keyID string, q url.Values) error {
	_, err := io.WriteString(w, "key,model\n")
	return err
}

func loadRequests(ctx context.Context, env pageEnv, keyID string, q url.Values) (*requestsPage, error) {
	return &requestsPage{}, nil
}

func pageFuncs() template.FuncMap {
	return template.FuncMap{
		"usd": func(micros int64) string { return fmt.Sprintf("$%d.%06d", micros/1e6, micros%1e6) },
		"num": func(n int64) string { return fmt.Sprint(n) },
	}
}
