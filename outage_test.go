package llmproxy_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/mongodb"
)

// A database that goes away while the gateway serves: requests keep being
// authorized from the snapshot, usage writes wait in the ledger and are
// retried, and nothing is lost once the database is back. The database is
// a FerretDB of the test's own (./scripts/test.sh builds it and sets
// LLMPROXY_FERRETDB_BIN), stopped and restarted on the same port and data.
func TestDatabaseOutageLosesNoUsage(t *testing.T) {
	bin := os.Getenv("LLMPROXY_FERRETDB_BIN")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LLMPROXY_FERRETDB_BIN is not set (./scripts/test.sh sets it)")
		}
		t.Skip("LLMPROXY_FERRETDB_BIN is not set (run ./scripts/test.sh)")
	}
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-listen", addr, "-dir", dir)
		must(t, cmd.Start())
		waitFor(t, func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		return cmd
	}
	db := start()
	defer func() { db.Process.Kill(); db.Wait() }()

	ctx := context.Background()
	sealer, _ := secret.NewAESGCM(make([]byte, 32))
	store, err := mongodb.Open(ctx, "mongodb://"+addr+"/outage", mongodb.Options{Sealer: sealer})
	must(t, err)
	defer store.Close()
	fake := fakeopenai.New(t, upstreamKey)
	c := &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, store.CreateConnection(ctx, c))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "gpt-alias", Remote: "remote-model-1", ConnectionID: c.ID}))
	must(t, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Assignments: []llmproxy.Assignment{{ConnectionID: c.ID}}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, PollInterval: 100 * time.Millisecond, UsageFlushInterval: 50 * time.Millisecond,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()

	answered := 0
	for range 5 {
		if send(t, srv.URL) == 200 {
			answered++
		}
	}
	waitFor(t, func() bool { return gw.Stats().LedgerWritten == 5 })
	db.Process.Kill()
	db.Wait()
	for range 20 {
		if s := send(t, srv.URL); s != 200 {
			t.Fatalf("with the database down: %d", s)
		}
		answered++
	}
	time.Sleep(300 * time.Millisecond)           // the ledger tries and fails
	if st := gw.Stats(); st.LedgerWritten != 5 { // the batch waits in a retry or a write that cannot finish
		t.Errorf("during the outage: %+v", st)
	}
	db = start()
	deadline := time.Now().Add(30 * time.Second)
	for gw.Stats().LedgerWritten < int64(answered) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	srv.Close()
	must(t, gw.Close())
	sums, err := store.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, err)
	if len(sums) != 1 || sums[0].Requests != int64(answered) {
		t.Errorf("ledger holds %+v, want %d requests", sums, answered)
	}
	if st := gw.Stats(); st.LedgerDropped != 0 {
		t.Errorf("dropped %d records", st.LedgerDropped)
	}
}
