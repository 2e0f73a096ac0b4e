package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// newProcess is a CLI environment on one database.
func newProcess(t *testing.T, dbType, dsn string) *process {
	env := append(os.Environ(), "DB_TYPE="+dbType, "DB_DSN="+dsn, "MASTER_KEY="+masterKey, "PORT=", "REDIS_URL=",
		"ENCRYPTION_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	return &process{t: t, bin: binary(t), env: env, dir: t.TempDir()}
}

// Two server processes on one database follow the CLI: a key added works on
// both within 2s, a key deleted stops working on both within 2s.
func TestTwoServersFollowTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dbType, dsn := be.setup(t)
			p := newProcess(t, dbType, dsn)
			up := fakeopenai.New(t, upstreamKey)
			conn := strings.TrimSpace(p.cli("connection", "add", "--name", "c", "--provider", "compatible", "--endpoint", up.BaseURL(), "--api-key", upstreamKey, "-q"))
			p.cli("model", "add", "--name", "m", "--remote", "r", "--conn-id", conn, "-q")
			a, b := p.serve(), p.serve()
			status := func(s *server, key string) int {
				resp, _ := post(t, s.base+"/v1/chat/completions", key, `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
				return resp.StatusCode
			}
			added := time.Now()
			id := strings.TrimSpace(p.cli("vkey", "add", "--name", "late", "--key", "sk-late-key-1", "--conn-id", conn, "-q"))
			for _, s := range []*server{a, b} {
				waitFor(t, 2*time.Second, "the new key works", func() bool { return status(s, "sk-late-key-1") == 200 })
			}
			t.Logf("%s: new key live on both servers after %v", be.name, time.Since(added).Round(time.Millisecond))
			deleted := time.Now()
			p.cli("vkey", "delete", id)
			for _, s := range []*server{a, b} {
				waitFor(t, 2*time.Second, "the deleted key is refused", func() bool { return status(s, "sk-late-key-1") == 401 })
			}
			t.Logf("%s: deleted key refused on both servers after %v", be.name, time.Since(deleted).Round(time.Millisecond))
		})
	}
}

// SIGTERM under load: the server drains, exits 0, and every request that
// got an answer has a ledger record.
func TestSIGTERMUnderLoadLosesNoUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, be := range backends[:2] { // sqlite and postgres
		t.Run(be.name, func(t *testing.T) {
			dbType, dsn := be.setup(t)
			p := newProcess(t, dbType, dsn)
			up := fakeopenai.New(t, upstreamKey)
			up.SetDelay(0, 5*time.Millisecond)
			conn := strings.TrimSpace(p.cli("connection", "add", "--name", "c", "--provider", "compatible", "--endpoint", up.BaseURL(), "--api-key", upstreamKey, "-q"))
			p.cli("model", "add", "--name", "m", "--remote", "r", "--conn-id", conn, "-q")
			p.cli("vkey", "add", "--name", "k", "--key", "sk-load-key-1", "--conn-id", conn, "-q")
			srv := p.serve()
			var answered atomic.Int64
			var stop atomic.Bool
			var wg sync.WaitGroup
			client := &http.Client{Timeout: 10 * time.Second}
			for w := range 16 {
				wg.Go(func() {
					body := `{"model":"m","messages":[{"role":"user","content":"a b c"}]}`
					if w%2 == 1 {
						body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c"}]}`
					}
					for i := 0; i < 2000 && !stop.Load(); i++ {
						req, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/chat/completions", strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer sk-load-key-1")
						resp, err := client.Do(req)
						if err != nil {
							continue // refused once the server stopped accepting
						}
						b, rerr := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 && rerr == nil && (w%2 == 0 || strings.HasSuffix(string(b), "data: [DONE]\n\n")) {
							answered.Add(1)
						}
					}
				})
			}
			time.Sleep(1500 * time.Millisecond)
			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-srv.exited:
				if err != nil {
					t.Fatalf("serve exited with %v\n%s", err, srv.logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not exit after SIGTERM")
			}
			stop.Store(true)
			wg.Wait()
			var rows []struct{ Requests int64 }
			if err := json.Unmarshal([]byte(p.cli("usage", "--json")), &rows); err != nil {
				t.Fatal(err)
			}
			var recorded int64
			for _, r := range rows {
				recorded += r.Requests
			}
			t.Logf("%s: %d answered, %d recorded", be.name, answered.Load(), recorded)
			if answered.Load() < 100 || recorded < answered.Load() {
				t.Errorf("%d requests answered, %d recorded", answered.Load(), recorded)
			}
		})
	}
}
