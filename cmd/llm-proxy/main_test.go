package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/syncbuf"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// The guide's provider key, as in DESIGN.md; a secret no output may show.
const upstreamKey = "AIza-upstream-secret-0123456789"

// cli runs the command in-process against one SQLite database.
type cli struct {
	t   *testing.T
	dir string
	env map[string]string
	// outputs collects everything printed, to check no secret leaks.
	mu      sync.Mutex
	outputs []string
}

func newCLI(t *testing.T) *cli {
	dir := t.TempDir()
	return &cli{t: t, dir: dir, env: map[string]string{"DB_DSN": filepath.Join(dir, "llm-proxy.db")}}
}

func (c *cli) getenv(k string) string { return c.env[k] }

// run runs args and returns stdout, stderr and the error.
func (c *cli) run(args ...string) (string, string, error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, c.getenv, &out, &errOut)
	c.mu.Lock()
	c.outputs = append(c.outputs, out.String(), errOut.String())
	c.mu.Unlock()
	return out.String(), errOut.String(), err
}

// ok runs args, fails the test on an error, and returns stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("llm-proxy %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fail runs args, checks they fail with exactly one line on stderr and
// nothing on stdout, and returns that line.
func (c *cli) fail(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("llm-proxy %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	if out != "" {
		c.t.Errorf("llm-proxy %s: stdout %q on error", strings.Join(args, " "), out)
	}
	if !strings.HasPrefix(errOut, "llm-proxy: ") || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		c.t.Errorf("llm-proxy %s: stderr %q, want one line starting with llm-proxy:", strings.Join(args, " "), errOut)
	}
	return strings.TrimSuffix(errOut, "\n")
}

// counts returns how many connections, models and keys are stored.
func (c *cli) counts() [3]int {
	c.t.Helper()
	var n [3]int
	for i, what := range []string{"connection", "model", "vkey"} {
		var list []map[string]any
		if err := json.Unmarshal([]byte(c.ok(what, "list", "--json")), &list); err != nil {
			c.t.Fatal(err)
		}
		n[i] = len(list)
	}
	return n
}

// checkNoSecrets fails if any output showed one of secrets.
func (c *cli) checkNoSecrets(secrets ...string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.outputs {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				c.t.Errorf("an output shows the secret %q:\n%s", s, o)
			}
		}
	}
}

// guide runs the four commands of the guide and returns the IDs.
func (c *cli) guide(endpoint string) (connID, modelID string) {
	c.t.Helper()
	connID = strings.TrimSpace(c.ok("connection", "add", "--name", "google-ai", "--provider", "google", "--endpoint", endpoint, "--api-key", upstreamKey, "-q"))
	modelID = strings.TrimSpace(c.ok("model", "add", "--name", "gemini-flash", "--remote", "gemini-1.5-flash", "--conn-id", connID, "-q"))
	c.ok("vkey", "add", "--name", "Mobile-App", "--key", "sk-proxy-123", "--conn-id", connID)
	c.ok("vkey", "add", "--name", "Tester", "--key", "sk-tester-456", "--model-id", modelID)
	return connID, modelID
}

var idLine = regexp.MustCompile(`(?m)^ID:\s+(\S+)$`)

func TestGuideCommands(t *testing.T) {
	c := newCLI(t)
	// Exactly as the guide writes them; IDs taken from the printed record.
	out := c.ok("connection", "add", "--name", "google-ai", "--provider", "google", "--endpoint", "https://generativelanguage.googleapis.com/v1beta/openai", "--api-key", "AIza...")
	m := idLine.FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], "conn_") || !strings.Contains(out, "google-ai") || !strings.Contains(out, "api_key") {
		t.Fatalf("connection add printed:\n%s", out)
	}
	connID := m[1]
	out = c.ok("model", "add", "--name", "gemini-flash", "--remote", "gemini-1.5-flash", "--conn-id", connID)
	m = idLine.FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], "model_") || !strings.Contains(out, "gemini-1.5-flash") {
		t.Fatalf("model add printed:\n%s", out)
	}
	modelID := m[1]
	out = c.ok("vkey", "add", "--name", "Mobile-App", "--key", "sk-proxy-123", "--conn-id", connID)
	if !strings.Contains(out, "Mobile-App") || !strings.Contains(out, "connection google-ai ("+connID+")") {
		t.Fatalf("vkey add printed:\n%s", out)
	}
	out = c.ok("vkey", "add", "--name", "Tester", "--key", "sk-tester-456", "--model-id", modelID)
	if !strings.Contains(out, "model gemini-flash ("+modelID+")") {
		t.Fatalf("vkey add printed:\n%s", out)
	}

	// Tables.
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"connection", "list"}, []string{"ID", "NAME", "PROVIDER", connID, "google-ai", "google", "https://generativelanguage.googleapis.com/v1beta/openai", "api_key"}},
		{[]string{"model", "list"}, []string{"REMOTE", modelID, "gemini-flash", "gemini-1.5-flash", "google-ai (" + connID + ")"}},
		{[]string{"vkey", "list"}, []string{"PREFIX", "Mobile-App", "Tester", "sk-p…", "sk-t…"}},
		{[]string{"connection", "show", "google-ai"}, []string{connID, "Provider:", "google"}},
		{[]string{"connection", "show", connID}, []string{"google-ai"}},
	} {
		out := c.ok(tt.args...)
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
	}
	if n := c.counts(); n != [3]int{1, 1, 2} {
		t.Errorf("counts = %v", n)
	}
	// JSON listings parse and carry no hash or secret.
	var keys []map[string]any
	if err := json.Unmarshal([]byte(c.ok("vkey", "list", "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	if keys[0]["name"] != "Mobile-App" || keys[0]["prefix"] != "sk-p" {
		t.Errorf("vkey list --json: %v", keys[0])
	}
	for _, k := range keys {
		for _, field := range []string{"hash", "Hash", "key"} {
			if _, ok := k[field]; ok {
				t.Errorf("vkey list --json has field %q", field)
			}
		}
	}
	var conn map[string]any
	if err := json.Unmarshal([]byte(c.ok("connection", "show", "google-ai", "--json")), &conn); err != nil {
		t.Fatal(err)
	}
	if conn["id"] != connID || fmt.Sprint(conn["credentials"]) != "[api_key]" {
		t.Errorf("connection show --json: %v", conn)
	}
	c.checkNoSecrets("AIza...", "sk-proxy-123", "sk-tester-456", llmproxy.HashKey("sk-proxy-123"))

	// Secrets at rest: the key file is private, the database holds no
	// provider key in clear.
	st, err := os.Stat(c.env["DB_DSN"] + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	db, _ := os.ReadFile(c.env["DB_DSN"])
	wal, _ := os.ReadFile(c.env["DB_DSN"] + "-wal")
	if bytes.Contains(append(db, wal...), []byte("AIza...")) || bytes.Contains(append(db, wal...), []byte("sk-proxy-123")) {
		t.Error("the database file holds a secret in clear")
	}
}

func TestQuiet(t *testing.T) {
	c := newCLI(t)
	conn := c.ok("connection", "add", "--name", "local", "--provider", "openai-compatible", "--endpoint", "http://127.0.0.1:1/v1", "-q")
	if !regexp.MustCompile(`^conn_[0-9a-z]{26}\n$`).MatchString(conn) {
		t.Fatalf("connection add -q printed %q", conn)
	}
	connID := strings.TrimSpace(conn)
	model := c.ok("model", "add", "--name", "m", "--remote", "r", "--conn-id", connID, "--weight", "2", "-q")
	if !regexp.MustCompile(`^model_[0-9a-z]{26}\n$`).MatchString(model) {
		t.Fatalf("model add -q printed %q", model)
	}
	key := c.ok("vkey", "add", "--name", "k", "--key", "sk-chosen-secret", "--conn-id", connID, "-q")
	if !regexp.MustCompile(`^key_[0-9a-z]{26}\n$`).MatchString(key) {
		t.Fatalf("vkey add -q printed %q", key)
	}
	// A generated secret comes on the line after the ID.
	gen := c.ok("vkey", "add", "--name", "g", "--conn-id", "local", "-q")
	if !regexp.MustCompile(`^key_[0-9a-z]{26}\nsk-[A-Za-z0-9]{40}\n$`).MatchString(gen) {
		t.Fatalf("vkey add -q (generated) printed %q", gen)
	}
}

func TestGeneratedKeyShownOnce(t *testing.T) {
	c := newCLI(t)
	connID := strings.TrimSpace(c.ok("connection", "add", "--name", "local", "--provider", "compatible", "--endpoint", "http://127.0.0.1:1/v1", "-q"))
	out := c.ok("vkey", "add", "--name", "gen", "--conn-id", connID)
	secret := regexp.MustCompile(`(?m)^Key: (sk-[A-Za-z0-9]{40})$`).FindStringSubmatch(out)
	if secret == nil || !strings.Contains(out, "only time") {
		t.Fatalf("vkey add printed:\n%s", out)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(c.ok("vkey", "add", "--name", "gen2", "--conn-id", connID, "--json")), &js); err != nil {
		t.Fatal(err)
	}
	secret2, _ := js["key"].(string)
	if !strings.HasPrefix(secret2, "sk-") || secret2 == secret[1] {
		t.Fatalf("vkey add --json: key %q", secret2)
	}
	// Chosen keys are not echoed.
	if out := c.ok("vkey", "add", "--name", "chosen", "--key", "sk-chosen-123", "--conn-id", connID, "--json"); strings.Contains(out, "sk-chosen-123") {
		t.Fatalf("vkey add echoed a chosen key:\n%s", out)
	}
	c.mu.Lock()
	c.outputs = nil // the creation outputs are the one place secrets may appear
	c.mu.Unlock()
	c.ok("vkey", "list")
	c.ok("vkey", "list", "--json")
	c.ok("usage")
	c.checkNoSecrets(secret[1], secret2, "sk-chosen-123")
}

func TestErrors(t *testing.T) {
	c := newCLI(t)
	connID, modelID := c.guide("http://127.0.0.1:1/v1")
	before := c.counts()
	tests := []struct {
		name string
		args []string
		want string // the stderr line, without "llm-proxy: "
	}{
		{"duplicate connection", []string{"connection", "add", "--name", "google-ai", "--provider", "google", "--api-key", "AIza..."}, `connection "google-ai" already exists`},
		{"unknown provider", []string{"connection", "add", "--name", "x", "--provider", "foo"}, `unknown provider "foo" (known: anthropic, azure, bedrock, compatible, google, openai)`},
		{"compatible without endpoint", []string{"connection", "add", "--name", "x", "--provider", "compatible"}, `compatible connection "x" needs an endpoint (the server's base URL, e.g. http://localhost:11434/v1)`},
		{"openai without key", []string{"connection", "add", "--name", "x", "--provider", "openai"}, `openai connection "x" needs an API key`},
		{"region on google", []string{"connection", "add", "--name", "x", "--provider", "google", "--api-key", "k-123", "--region", "us-east-1"}, `region is not used by google connections`},
		{"bad endpoint", []string{"connection", "add", "--name", "x", "--provider", "compatible", "--endpoint", "localhost:1234"}, `endpoint "localhost:1234" is not an http(s) URL`},
		{"missing flag", []string{"connection", "add", "--provider", "openai"}, `required flag(s) "name" not set`},
		{"unknown flag", []string{"model", "add", "--nme", "x"}, `unknown flag: --nme (see llm-proxy model add --help)`},
		{"bad flag value", []string{"vkey", "add", "--name", "x", "--conn-id", connID, "--tps", "fast"}, `invalid argument "fast" for "--tps" flag: strconv.ParseFloat: parsing "fast": invalid syntax (see llm-proxy vkey add --help)`},
		{"unknown connection", []string{"model", "add", "--name", "m", "--remote", "r", "--conn-id", "conn_nope"}, `connection "conn_nope" not found`},
		{"duplicate model", []string{"model", "add", "--name", "gemini-flash", "--remote", "r", "--conn-id", connID}, `model "gemini-flash" already exists on connection "google-ai"`},
		{"duplicate key", []string{"vkey", "add", "--name", "Mobile-App", "--conn-id", connID}, `key "Mobile-App" already exists`},
		{"duplicate secret", []string{"vkey", "add", "--name", "other", "--key", "sk-proxy-123", "--conn-id", connID}, `another key already has this secret; choose a different one`},
		{"vkey without target", []string{"vkey", "add", "--name", "x"}, `at least one of the flags in the group [conn-id model-id] is required`},
		{"vkey unknown model among good ones", []string{"vkey", "add", "--name", "x", "--conn-id", connID, "--model-id", modelID, "--model-id", "model_nope"}, `model "model_nope" not found`},
		{"bad window", []string{"vkey", "add", "--name", "x", "--conn-id", connID, "--token-limit", "5", "--token-window", "daily"}, `--token-window: "daily" is not a duration like 90s, 1m, 24h or 30d`},
		{"bad expiry", []string{"vkey", "add", "--name", "x", "--conn-id", connID, "--expires", "soon"}, `--expires: "soon" is not a duration (720h, 30d), a date (2026-12-31), an RFC 3339 time, or "never"`},
		{"show unknown", []string{"connection", "show", "nope"}, `connection "nope" not found`},
		{"show without arg", []string{"connection", "show"}, `llm-proxy connection show takes one argument: the connection's ID or name`},
		{"delete unknown connection", []string{"connection", "delete", "conn_nope"}, `connection "conn_nope" not found`},
		{"delete connection in use", []string{"connection", "delete", connID}, `connection "google-ai" still has models: gemini-flash (` + modelID + `); delete them first`},
		{"delete model in use", []string{"model", "delete", modelID}, `model "gemini-flash" (` + modelID + `) is assigned to keys: Tester (`},
		{"delete unknown model", []string{"model", "delete", "model_nope"}, `model "model_nope" not found`},
		{"delete unknown key", []string{"vkey", "delete", "key_nope"}, `key "key_nope" not found`},
		{"assign twice", []string{"vkey", "assign", "Mobile-App", "--conn-id", connID}, `key "Mobile-App" is already assigned connection ` + connID + `; change its limits with update`},
		{"assign both", []string{"vkey", "assign", "Mobile-App", "--conn-id", connID, "--model-id", modelID}, `if any flags in the group [conn-id model-id] are set none of the others can be; [conn-id model-id] were all set`},
		{"unassign not assigned", []string{"vkey", "unassign", "Tester", "--conn-id", connID}, `key "Tester" is not assigned connection ` + connID},
		{"update nothing", []string{"vkey", "update", "Tester"}, `nothing to change: give a limit, an expiry or a budget`},
		{"update burst only", []string{"vkey", "update", "Tester", "--burst", "3"}, `burst needs a tps limit`},
		{"unknown command", []string{"conection", "list"}, `unknown command "conection" for "llm-proxy" Did you mean this? connection`},
		{"bad since", []string{"usage", "--since", "yesterday"}, `--since: "yesterday" is not a duration (24h, 30d), a date (2026-01-31) or an RFC 3339 time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			if got := c.fail(tt.args...); got != "llm-proxy: "+tt.want && !(strings.HasSuffix(tt.want, "(") && strings.HasPrefix(got, "llm-proxy: "+tt.want)) {
				t.Errorf("stderr:\n  %s\nwant:\n  llm-proxy: %s", got, tt.want)
			}
		})
	}
	c.t = t
	if after := c.counts(); after != before {
		t.Errorf("refused commands changed the database: %v -> %v", before, after)
	}
	c.checkNoSecrets(upstreamKey, "sk-tester-456")
}

func TestDatabaseConfig(t *testing.T) {
	c := newCLI(t)
	c.env["DB_TYPE"] = "oracle"
	if got := c.fail("connection", "list"); got != `llm-proxy: unknown DB_TYPE "oracle": use sqlite, postgres or mongodb` {
		t.Errorf("got %s", got)
	}
	// The flag wins over the environment.
	other := filepath.Join(c.dir, "other.db")
	c.ok("--db-type", "sqlite", "--db-dsn", other, "connection", "add", "--name", "x", "--provider", "compatible", "--endpoint", "http://h/v1")
	if _, err := os.Stat(other); err != nil {
		t.Errorf("--db-dsn ignored: %v", err)
	}
	if _, err := os.Stat(other + ".key"); err != nil {
		t.Errorf("no key file beside the database: %v", err)
	}
	c.env["DB_TYPE"] = "postgres"
	c.env["DB_DSN"] = "postgres://127.0.0.1:1/none"
	if got := c.fail("migrate"); !strings.Contains(got, "ENCRYPTION_KEY is not set") {
		t.Errorf("postgres without ENCRYPTION_KEY: %s", got)
	}

	// With ENCRYPTION_KEY no key file is made; a wrong one cannot read the
	// secrets back, and says so.
	c.env["DB_TYPE"] = ""
	c.env["DB_DSN"] = filepath.Join(c.dir, "enc.db")
	c.env["ENCRYPTION_KEY"] = "correct horse battery staple"
	c.ok("connection", "add", "--name", "o", "--provider", "openai", "--api-key", upstreamKey)
	if _, err := os.Stat(c.env["DB_DSN"] + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was made although ENCRYPTION_KEY is set: %v", err)
	}
	c.env["ENCRYPTION_KEY"] = "wrong"
	if got := c.fail("connection", "show", "o"); !strings.Contains(got, "ENCRYPTION_KEY") {
		t.Errorf("wrong key: %s", got)
	}
	c.env["ENCRYPTION_KEY"] = "correct horse battery staple"
	c.ok("connection", "show", "o")

	if got := c.ok("migrate"); !regexp.MustCompile(`^sqlite database schema is at version [1-9]\d*\n$`).MatchString(got) {
		t.Errorf("migrate printed %q", got)
	}
	c.checkNoSecrets(upstreamKey)
}

func TestAssignUpdate(t *testing.T) {
	c := newCLI(t)
	connID, modelID := c.guide("http://127.0.0.1:1/v1")
	type assignment struct {
		ConnectionID string  `json:"connection_id"`
		ModelID      string  `json:"model_id"`
		TPS          float64 `json:"tps"`
		Burst        int     `json:"burst"`
		TokenLimit   int64   `json:"token_limit"`
		TokenWindow  string  `json:"token_window"`
	}
	type key struct {
		ID          string       `json:"id"`
		ExpiresAt   *time.Time   `json:"expires_at"`
		Assignments []assignment `json:"assignments"`
	}
	parse := func(out string) key {
		t.Helper()
		var k key
		if err := json.Unmarshal([]byte(out), &k); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		return k
	}
	k := parse(c.ok("vkey", "add", "--name", "batch", "--key", "sk-batch-000", "--model-id", modelID, "--tps", "5", "--token-limit", "100000", "--token-window", "24h", "--expires", "30d", "--json"))
	if len(k.Assignments) != 1 || (k.Assignments[0] != assignment{ModelID: modelID, TPS: 5, TokenLimit: 100000, TokenWindow: "24h"}) {
		t.Fatalf("vkey add with limits: %+v", k.Assignments)
	}
	if k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 29*24*time.Hour {
		t.Fatalf("expires %v", k.ExpiresAt)
	}
	k = parse(c.ok("vkey", "assign", k.ID, "--conn-id", "google-ai", "--tps", "1", "--burst", "2", "--json"))
	if len(k.Assignments) != 2 || (k.Assignments[1] != assignment{ConnectionID: connID, TPS: 1, Burst: 2}) {
		t.Fatalf("vkey assign: %+v", k.Assignments)
	}
	k = parse(c.ok("vkey", "update", "batch", "--conn-id", connID, "--token-limit", "50", "--token-window", "30d", "--json"))
	if (k.Assignments[1] != assignment{ConnectionID: connID, TPS: 1, Burst: 2, TokenLimit: 50, TokenWindow: "30d"}) || k.Assignments[0].TokenLimit != 100000 {
		t.Fatalf("vkey update one: %+v", k.Assignments)
	}
	k = parse(c.ok("vkey", "update", "batch", "--tps", "0", "--burst", "0", "--expires", "never", "--json"))
	if k.Assignments[0].TPS != 0 || k.Assignments[1].TPS != 0 || k.Assignments[1].TokenLimit != 50 || k.ExpiresAt != nil {
		t.Fatalf("vkey update all: %+v, expires %v", k.Assignments, k.ExpiresAt)
	}
	out := c.ok("vkey", "unassign", "batch", "--model-id", modelID)
	if strings.Contains(out, "model gemini-flash") || !strings.Contains(out, "connection google-ai") {
		t.Fatalf("vkey unassign printed:\n%s", out)
	}
	if out := c.ok("vkey", "list"); !strings.Contains(out, "tokens=50/30d") {
		t.Errorf("vkey list:\n%s", out)
	}
	if out := c.ok("vkey", "delete", k.ID); !strings.Contains(out, "deleted key "+k.ID+" (batch)") {
		t.Errorf("vkey delete printed %q", out)
	}
	c.ok("vkey", "delete", "Tester")
	if out := c.ok("model", "delete", modelID); !strings.Contains(out, "deleted model") {
		t.Errorf("model delete printed %q", out)
	}
	c.ok("vkey", "delete", "Mobile-App")
	if out := c.ok("connection", "delete", connID); !strings.Contains(out, "deleted connection "+connID+" (google-ai)") {
		t.Errorf("connection delete printed %q", out)
	}
	if n := c.counts(); n != [3]int{} {
		t.Errorf("left %v", n)
	}
}

// syncBuffer is a buffer safe for a writer and the test at once.
type syncBuffer = syncbuf.Buffer

var listenAddr = regexp.MustCompile(`msg="llm-proxy listening" addr=(\S+)`)

// waitListening waits for serve's "listening" log line and returns the
// address.
func waitListening(t *testing.T, logs interface{ String() string }, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenAddr.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", logs.String())
	return ""
}

// TestServeGracefulShutdown starts serve in-process, begins a slow
// stream, cancels (as SIGTERM would) and checks that the stream is
// finished, serve returns nil, and the request's usage was written.
func TestServeGracefulShutdown(t *testing.T) {
	up := fakeopenai.New(t, upstreamKey)
	c := newCLI(t)
	c.guide(up.BaseURL())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "10s"}, c.getenv, io.Discard, &logs)
	}()
	addr := waitListening(t, &logs, done)
	base := "http://" + addr

	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()

	// A stream of ~8 chunks, 150ms apart: it is in flight when we stop.
	up.SetDelay(0, 150*time.Millisecond)
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-flash","stream":true,"messages":[{"role":"user","content":"one two three"}]}`))
	req.Header.Set("Authorization", "Bearer sk-proxy-123")
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, resp)
	}
	cancel() // SIGTERM
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.HasSuffix(string(body), "data: [DONE]\n\n") || !strings.Contains(string(body), "three") {
		t.Fatalf("the stream in flight was cut: %v\n%s", err, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	// New connections are refused once stopped.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
	// The ledger was flushed on the way out.
	var sums []struct {
		Requests int64 `json:"requests"`
		Total    int64 `json:"total_tokens"`
	}
	json.Unmarshal([]byte(c.ok("usage", "--json")), &sums)
	if len(sums) != 1 || sums[0].Requests != 1 || sums[0].Total == 0 {
		t.Fatalf("usage after shutdown: %+v\nlogs:\n%s", sums, logs.String())
	}
	c.checkNoSecrets(upstreamKey)
	if strings.Contains(logs.String(), upstreamKey) || strings.Contains(logs.String(), "sk-proxy-123") {
		t.Error("serve logged a secret")
	}
}

func TestServeGraceExpires(t *testing.T) {
	up := fakeopenai.New(t, upstreamKey)
	c := newCLI(t)
	c.guide(up.BaseURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "300ms"}, c.getenv, io.Discard, &logs)
	}()
	base := "http://" + waitListening(t, &logs, done)
	up.SetDelay(0, time.Second) // a stream far longer than the grace period
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-flash","stream":true,"messages":[{"role":"user","content":"a b c d e f g h"}]}`))
	req.Header.Set("Authorization", "Bearer sk-proxy-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("shutdown took %v with a 300ms grace period", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its grace period")
	}
	if !strings.Contains(logs.String(), "grace period over") {
		t.Errorf("no log of the grace period ending:\n%s", logs.String())
	}
}

func TestServeBadConfig(t *testing.T) {
	c := newCLI(t)
	c.env["PORT"] = "http"
	if got := c.fail("serve"); got != `llm-proxy: PORT="http" is not a port number` {
		t.Errorf("got %s", got)
	}
	c.env["PORT"] = ""
	c.env["UPSTREAM_CLIENT"] = "curl"
	if got := c.fail("serve", "--addr", "127.0.0.1:0"); got != `llm-proxy: UPSTREAM_CLIENT="curl": want net/http or h1client` {
		t.Errorf("got %s", got)
	}
	c.env["UPSTREAM_CLIENT"] = ""
	// A port in use.
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, c.getenv, io.Discard, &logs) }()
	addr := waitListening(t, &logs, done)
	if got := c.fail("serve", "--addr", addr); !strings.Contains(got, "address already in use") {
		t.Errorf("port in use: %s", got)
	}
	cancel()
	<-done
}

// startServe runs serve in-process until the test ends and returns its
// base URL and logs.
func startServe(t *testing.T, c *cli) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "1s"}, c.getenv, io.Discard, &logs)
	}()
	addr := waitListening(t, &logs, done)
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + addr, &logs
}

func chat(t *testing.T, base, key string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-flash","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeSharedLimits: with REDIS_URL, two servers share one key's
// request rate; with a Redis that does not answer, serve still starts.
func TestServeSharedLimits(t *testing.T) {
	url := os.Getenv("LLMPROXY_TEST_REDIS")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LLMPROXY_TEST_REDIS is not set (./scripts/test.sh sets it)")
		}
		t.Skip("LLMPROXY_TEST_REDIS is not set (./scripts/test.sh sets it)")
	}
	up := fakeopenai.New(t, upstreamKey)
	c := newCLI(t)
	_, modelID := c.guide(up.BaseURL())
	// One request per 10s: the second, on either server, is refused.
	c.ok("vkey", "add", "--name", "limited", "--key", "sk-limited-123", "--model-id", modelID, "--tps", "0.1", "--burst", "1", "-q")
	c.env["REDIS_URL"] = url
	a, logsA := startServe(t, c)
	b, _ := startServe(t, c)
	if !strings.Contains(logsA.String(), "shared_limits=true") {
		t.Errorf("serve did not use REDIS_URL:\n%s", logsA.String())
	}
	if got := chat(t, a, "sk-limited-123"); got != 200 {
		t.Fatalf("first request on A: %d", got)
	}
	if got := chat(t, b, "sk-limited-123"); got != 429 {
		t.Errorf("second request, on B: %d, want 429 (the limit is shared)", got)
	}

	// A Redis that is not there: serve starts, warns, limits locally.
	c.env["REDIS_URL"] = "redis://127.0.0.1:1/0"
	d, logsD := startServe(t, c)
	if !strings.Contains(logsD.String(), "Redis does not answer") {
		t.Errorf("no warning about Redis:\n%s", logsD.String())
	}
	if got := chat(t, d, "sk-proxy-123"); got != 200 {
		t.Errorf("request with Redis down: %d", got)
	}
	c.env["REDIS_URL"] = "http://not-redis"
	if got := c.fail("serve", "--addr", "127.0.0.1:0"); !strings.Contains(got, "REDIS_URL") {
		t.Errorf("bad REDIS_URL: %s", got)
	}
}

func TestProviderFlags(t *testing.T) {
	c := newCLI(t)
	var az map[string]any
	json.Unmarshal([]byte(c.ok("connection", "add", "--name", "az", "--provider", "azure", "--endpoint", "https://res.openai.azure.com/", "--api-key", "azure-secret-key-1", "--api-version", "2024-10-21", "--json")), &az)
	if az["endpoint"] != "https://res.openai.azure.com" || fmt.Sprint(az["settings"]) != "map[api_version:2024-10-21]" || fmt.Sprint(az["credentials"]) != "[api_key]" {
		t.Errorf("azure: %v", az)
	}
	out := c.ok("connection", "add", "--name", "claude", "--provider", "bedrock", "--region", "us-east-1", "--access-key-id", "AKIAEXAMPLE0001", "--secret-access-key", "aws-secret-key-1", "--session-token", "aws-session-token-1")
	for _, w := range []string{"bedrock", "region:", "us-east-1", "access_key_id, secret_access_key, session_token"} {
		if !strings.Contains(out, w) {
			t.Errorf("bedrock add lacks %q:\n%s", w, out)
		}
	}
	c.ok("connection", "add", "--name", "claude-chain", "--provider", "bedrock", "--region", "eu-west-1")
	c.ok("connection", "add", "--name", "vpc", "--provider", "bedrock", "--endpoint", "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "x", "--provider", "azure", "--api-key", "k-123"}, `azure connection "x" needs an endpoint (https://RESOURCE.openai.azure.com)`},
		{[]string{"--name", "x", "--provider", "azure", "--endpoint", "https://r.openai.azure.com"}, `azure connection "x" needs an API key`},
		{[]string{"--name", "x", "--provider", "azure", "--endpoint", "https://r.openai.azure.com", "--api-key", "k-123", "--api-version", "latest"}, `azure connection "x": api_version must look like 2024-10-21 or 2025-01-01-preview, got "latest"`},
		{[]string{"--name", "x", "--provider", "bedrock"}, `bedrock connection "x" needs a region (or an endpoint)`},
		{[]string{"--name", "x", "--provider", "bedrock", "--region", "us-east-1", "--access-key-id", "AKIA1"}, `bedrock connection "x" needs both an access key ID and a secret access key, or neither (to use the AWS default credential chain)`},
		{[]string{"--name", "x", "--provider", "bedrock", "--region", "us-east-1", "--api-key", "k-123"}, `an API key is not used by bedrock connections (bedrock uses AWS credentials)`},
		{[]string{"--name", "x", "--provider", "openai", "--api-key", "k-123", "--api-version", "2024-10-21"}, `api_version is not used by openai connections`},
		{[]string{"--name", "x", "--provider", "compatible", "--endpoint", "http://h/v1", "--secret-access-key", "s"}, `an AWS access key is not used by compatible connections`},
	} {
		if got := c.fail(append([]string{"connection", "add"}, tt.args...)...); got != "llm-proxy: "+tt.want {
			t.Errorf("%v:\n  %s\nwant\n  llm-proxy: %s", tt.args, got, tt.want)
		}
	}
	c.ok("connection", "list")
	c.ok("connection", "list", "--json")
	c.checkNoSecrets("azure-secret-key-1", "aws-secret-key-1", "aws-session-token-1")
	if n := c.counts(); n[0] != 4 {
		t.Errorf("%d connections, want 4", n[0])
	}
}
