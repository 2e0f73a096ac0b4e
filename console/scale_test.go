package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/storage/postgres"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

// TestPagesAtScale times every page of the console, as the admin, on a
// big ledger made beforehand with `llm-proxy usage generate` (issue 17:
// every page within 300 ms on 10 million rows). It runs only when
// LLMPROXY_CONSOLE_SCALE names the store: sqlite:PATH or postgres:URL.
//
//	DB_TYPE=sqlite DB_URL=/tmp/scale.db llm-proxy usage generate --rows 10000000
//	LLMPROXY_CONSOLE_SCALE=sqlite:/tmp/scale.db go test -run TestPagesAtScale -v ./console
func TestPagesAtScale(t *testing.T) {
	spec := os.Getenv("LLMPROXY_CONSOLE_SCALE")
	if spec == "" {
		t.Skip("LLMPROXY_CONSOLE_SCALE is not set (sqlite:PATH or postgres:URL of a generated ledger)")
	}
	ctx := context.Background()
	kind, dsn, _ := strings.Cut(spec, ":")
	var store llmproxy.Storage
	var err error
	switch kind {
	case "sqlite":
		store, err = sqlite.Open(ctx, dsn, sqlite.Options{})
	case "postgres":
		store, err = postgres.Open(ctx, dsn, postgres.Options{})
	default:
		t.Fatalf("LLMPROXY_CONSOLE_SCALE=%q: want sqlite:PATH or postgres:URL", spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := New(Config{Admin: &admin.Service{Storage: store}, MasterKey: testMaster})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{id: "scale", csrf: "scale", admin: true, created: time.Now(), seen: time.Now()}
	c.sessions.add(s, time.Now())
	// The ledger's newest records, for filters that find something.
	recent, err := store.(llmproxy.TrafficReporter).RecentUsage(ctx, llmproxy.RecentFilter{Limit: 1})
	if err != nil || len(recent) == 0 {
		t.Fatalf("the ledger is empty (%v): generate it first", err)
	}
	r0 := recent[0]
	pages := []string{
		"/ui/", "/ui/?range=7d", "/ui/?range=30d",
		"/ui/keys", "/ui/connections", "/ui/models",
		"/ui/usage?range=30d&by=key", "/ui/usage?range=30d&by=model", "/ui/usage?range=30d&by=day", "/ui/usage?range=all&by=connection",
		"/ui/usage.csv?range=30d&by=key,model",
		"/ui/requests", "/ui/requests?key=" + r0.KeyID, "/ui/requests?model=" + r0.Model,
		"/ui/requests?status=200", "/ui/requests?status=errors", "/ui/requests?key=" + r0.KeyID + "&model=" + r0.Model,
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%-52s %9s %9s\n", "page", "median", "max")
	for _, p := range pages {
		var times []time.Duration
		for range 5 {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.id})
			w := httptest.NewRecorder()
			start := time.Now()
			c.ServeHTTP(w, req)
			times = append(times, time.Since(start))
			if w.Code != http.StatusOK {
				body, _ := io.ReadAll(w.Body)
				t.Fatalf("GET %s: %d %s", p, w.Code, body)
			}
		}
		slices.Sort(times)
		fmt.Fprintf(&out, "%-52s %9s %9s\n", p, times[len(times)/2].Round(100*time.Microsecond), times[len(times)-1].Round(100*time.Microsecond))
		if times[len(times)/2] > 300*time.Millisecond {
			t.Errorf("GET %s: median %v; want within 300 ms", p, times[len(times)/2])
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Fprintf(&out, "heap in use after every page, over before the console: %.1f MB\n", float64(int64(after.HeapInuse)-int64(before.HeapInuse))/1e6)
	t.Log("\n" + out.String())
}
