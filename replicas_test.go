package llmproxy_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/testdb"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/redislimit"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/postgres"
)

// replicas starts n gateways on one PostgreSQL database, each with its
// own Store and its own Redis limiter client, as n processes would be.
func replicas(t *testing.T, n int, a llmproxy.Assignment) []string {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	redisURL, prefix := testdb.RedisURL(t)
	fake := fakeopenai.New(t, upstreamKey)
	sealer, _ := secret.NewAESGCM(make([]byte, 32))
	var urls []string
	for i := range n {
		store, err := postgres.Open(ctx, dsn, postgres.Options{Sealer: sealer})
		must(t, err)
		t.Cleanup(func() { store.Close() })
		if i == 0 {
			c := &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
			must(t, store.CreateConnection(ctx, c))
			must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "gpt-alias", Remote: "remote-model-1", ConnectionID: c.ID}))
			a.ConnectionID = c.ID
			must(t, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Assignments: []llmproxy.Assignment{a}}))
		}
		lim, err := redislimit.Open(redisURL, redislimit.Options{Prefix: prefix, Timeout: time.Second}) // generous: a loaded CI machine must not fall back to local limits
		must(t, err)
		t.Cleanup(func() { lim.Close() })
		gw, err := llmproxy.New(llmproxy.Config{Storage: store, Limiter: lim, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
		must(t, err)
		srv := httptest.NewServer(gw)
		t.Cleanup(func() { srv.Close(); gw.Close() })
		urls = append(urls, srv.URL)
	}
	return urls
}

// Three replicas on one PostgreSQL and one Redis: a tps 10 key admits
// 10/s in total, and a token limit holds in total.
func TestReplicasShareLimits(t *testing.T) {
	urls := replicas(t, 3, llmproxy.Assignment{TPS: 10})
	began := time.Now()
	counts := fire(t, urls, 60, 12) // drains the shared burst of 10
	if most := 10 + refill(10, time.Since(began)); counts[200] < 10 || counts[200] > most {
		t.Errorf("burst across 3 replicas: %v, want 10 to %d admitted", counts, most)
	}
	got := steady(t, urls, 45, 3*time.Second)
	t.Logf("tps 10 across 3 replicas: burst admitted %d of 60; then 45 rps for 3s admitted %d (%.2f/s, configured 10/s)", counts[200], got, float64(got)/3)
	if !within(got, 30, 0.1) {
		t.Errorf("45 rps over 3 replicas for 3s admitted %d, want 30 ±10%%", got)
	}
}

func TestReplicasShareTokenLimit(t *testing.T) {
	urls := replicas(t, 3, llmproxy.Assignment{TokenLimit: 500, TokenWindow: time.Hour})
	counts := fire(t, urls, 60, 12)
	// 17 tokens per request settle; reservations of ~27 keep concurrent
	// requests from overrunning: about 500/17 pass in total, not 3x.
	t.Logf("token limit 500 across 3 replicas: %d of 60 admitted (17 tokens each)", counts[200])
	if counts[200] > 500/17+1 || counts[200] < 500/27 {
		t.Errorf("token limit across 3 replicas: %v", counts)
	}
}

// Redis going away mid-test: requests flow under local limits without
// waiting on Redis; Redis back: limits are shared again.
func TestRedisOutage(t *testing.T) {
	// A Redis of the test's own, to stop and restart: a missing one
	// skips here, and fails under CI=true.
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			testdb.Unavailable(t, bin, err)
		}
	}
	port := freePort(t)
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		waitFor(t, func() bool {
			c, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", port))
			ok := err == nil
			if ok {
				c.Close()
			}
			return ok
		})
		return cmd
	}
	redisCmd := startRedis()
	defer func() { redisCmd.Process.Kill(); redisCmd.Wait() }()
	e := newEnv(t, llmproxy.Assignment{TPS: 1000})
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	lim, err := redislimit.Open(url, redislimit.Options{Timeout: 100 * time.Millisecond})
	must(t, err)
	defer lim.Close()
	gw, err := llmproxy.New(llmproxy.Config{Storage: e.store, Limiter: lim, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	defer func() { srv.Close(); gw.Close() }()
	countKeys := func() int {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(port), "dbsize").Output()
		var n int
		fmt.Sscan(string(out), &n)
		return n
	}
	if s := send(t, srv.URL); s != 200 || countKeys() == 0 {
		t.Fatalf("shared limiter unused: %d, %d keys", s, countKeys())
	}
	redisCmd.Process.Kill()
	redisCmd.Wait()
	for range 20 {
		start := time.Now()
		if s := send(t, srv.URL); s != 200 {
			t.Errorf("during the outage: %d", s)
		}
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Errorf("a request waited %v during the outage", d)
		}
	}
	redisCmd = startRedis()
	waitFor(t, func() bool { send(t, srv.URL); return countKeys() > 0 })
}
