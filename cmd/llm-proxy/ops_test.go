package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

const opsMaster = "master-secret-key-ops"

// serveWith runs serve with args until the test ends; it returns the
// main address and the logs. The listening line is found in text or JSON.
func serveWith(t *testing.T, c *cli, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--shutdown-grace", "1s"}, args...), c.getenv, io.Discard, &logs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	addr := findLog(t, &logs, done, "llm-proxy listening")
	return "http://" + addr, &logs
}

var (
	textAddr = regexp.MustCompile(`msg="([^"]+)" addr=(\S+)`)
	jsonAddr = regexp.MustCompile(`"msg":"([^"]+)","addr":"([^"]+)"`)
)

// findLog waits for the log line msg with an addr and returns the addr.
func findLog(t *testing.T, logs *syncBuffer, done <-chan error, msg string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, re := range []*regexp.Regexp{textAddr, jsonAddr} {
			for _, m := range re.FindAllStringSubmatch(logs.String(), -1) {
				if m[1] == msg {
					return m[2]
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q in the logs:\n%s", msg, logs.String())
	return ""
}

func httpGet(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeOperations: metrics, JSON access logs and the admin API on
// the main listener, with the guide's configuration.
func TestServeOperations(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	c := newCLI(t)
	c.guide(fake.BaseURL())
	c.env["MASTER_KEY"] = opsMaster
	c.env["LOG_FORMAT"] = "json"
	base, logs := serveWith(t, c, "--addr", "127.0.0.1:0")

	if got := chat(t, base, "sk-proxy-123"); got != 200 {
		t.Fatalf("chat: %d", got)
	}
	if got := chat(t, base, "sk-wrong-key-000"); got != 401 {
		t.Fatalf("chat with a wrong key: %d", got)
	}
	status, body := httpGet(t, base+"/metrics", opsMaster)
	if status != 200 || !strings.Contains(body, `llmproxy_requests_total{model="gemini-flash",provider="google",route="chat",status_class="2xx"} 1`) ||
		!strings.Contains(body, `llmproxy_tokens_total{key="Mobile-App",model="gemini-flash",type="prompt"}`) ||
		!strings.Contains(body, "llmproxy_ledger_dropped_total 0") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d\n%s", status, body)
	}

	// The admin API: master key only.
	if status, body := httpGet(t, base+"/admin/v1/keys", opsMaster); status != 200 || !strings.Contains(body, `"name":"Mobile-App"`) {
		t.Errorf("admin API with the master key: %d %s", status, body)
	}
	if status, _ := httpGet(t, base+"/admin/v1/keys", "sk-proxy-123"); status != 403 {
		t.Errorf("admin API with a virtual key: %d", status)
	}
	if status, _ := httpGet(t, base+"/admin/v1/keys", ""); status != 401 {
		t.Errorf("admin API without a key: %d", status)
	}
	if status, body := httpGet(t, base+"/admin/v1/openapi.json", opsMaster); status != 200 || !json.Valid([]byte(body)) {
		t.Errorf("openapi.json: %d", status)
	}

	// One JSON access-log line per chat request.
	deadline := time.Now().Add(5 * time.Second)
	var lines []map[string]any
	for {
		lines = lines[:0]
		for l := range strings.Lines(logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("LOG_FORMAT=json wrote a non-JSON line: %q", l)
			}
			if m["msg"] == "request" && m["route"] == "chat" {
				lines = append(lines, m)
			}
		}
		if len(lines) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(lines) != 2 || lines[0]["key_name"] != "Mobile-App" || lines[0]["status"] != 200.0 || lines[1]["status"] != 401.0 || lines[0]["request_id"] == "" {
		t.Errorf("access log lines: %v", lines)
	}
	for _, s := range []string{upstreamKey, "sk-proxy-123", "sk-wrong-key-000", opsMaster} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log shows the secret %q", s)
		}
	}
}

func TestServeMetricsSettings(t *testing.T) {
	c := newCLI(t)
	c.ok("migrate")

	// A listener of its own, scraped without a token.
	base, logs := serveWith(t, c, "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	maddr := findLog(t, logs, nil, "metrics listening")
	if status, body := httpGet(t, "http://"+maddr+"/metrics", ""); status != 200 || !strings.Contains(body, "llmproxy_inflight_streams 0") {
		t.Errorf("metrics listener: %d", status)
	}
	if status, _ := httpGet(t, base+"/metrics", ""); status != 404 {
		t.Errorf("/metrics on the main listener with --metrics-addr: %d", status)
	}
	// No master key: no admin API.
	if status, _ := httpGet(t, base+"/admin/v1/keys", "anything"); status != 404 {
		t.Errorf("admin API without MASTER_KEY: %d", status)
	}

	// Off, by flag and by environment.
	base, _ = serveWith(t, c, "--addr", "127.0.0.1:0", "--no-metrics")
	if status, _ := httpGet(t, base+"/metrics", ""); status != 404 {
		t.Errorf("--no-metrics: %d", status)
	}
	c.env["METRICS"] = "off"
	base, _ = serveWith(t, c, "--addr", "127.0.0.1:0")
	if status, _ := httpGet(t, base+"/metrics", ""); status != 404 {
		t.Errorf("METRICS=off: %d", status)
	}
	delete(c.env, "METRICS")

	for _, bad := range []struct{ env, val, want string }{
		{"LOG_FORMAT", "xml", `LOG_FORMAT="xml": use text or json`},
		{"LOG_LEVEL", "loud", `LOG_LEVEL="loud": use debug, info, warn or error`},
		{"METRICS", "maybe", `METRICS="maybe": use on or off`},
	} {
		c.env[bad.env] = bad.val
		if got := c.fail("serve", "--addr", "127.0.0.1:0"); got != "llm-proxy: "+bad.want {
			t.Errorf("%s=%s: %q", bad.env, bad.val, got)
		}
		delete(c.env, bad.env)
	}
}

// TestServeMetricsNeedAToken: on the main listener, which every client
// reaches, /metrics (every key's name and usage) answers only
// METRICS_TOKEN or the master key; with neither configured, nobody, with
// an answer that says how to enable it.
func TestServeMetricsNeedAToken(t *testing.T) {
	const token = "metrics-token-for-prometheus"
	fake := fakeopenai.New(t, upstreamKey)
	c := newCLI(t)
	c.guide(fake.BaseURL())
	type ask struct {
		auth   string // the Authorization header
		status int
	}
	for _, cfg := range []struct {
		name, master, token string
		asks                []ask
	}{
		{"both", opsMaster, token, []ask{
			{"", 401},
			{"Bearer ", 401},
			{"Bearer wrong-token", 401},
			{"Bearer " + token + "x", 401},
			{"Bearer sk-proxy-123", 401}, // a virtual key reads no other team's usage
			{"Basic " + token, 401},
			{"Bearer " + opsMaster, 200},
			{"Bearer " + token, 200},
			{"bearer " + token, 200},
		}},
		{"METRICS_TOKEN only", "", token, []ask{
			{"", 401},
			{"Bearer " + opsMaster, 401},
			{"Bearer " + token, 200},
		}},
		{"MASTER_KEY only", opsMaster, "", []ask{
			{"", 401},
			{"Bearer " + token, 401},
			{"Bearer " + opsMaster, 200},
		}},
		{"neither", "", "", []ask{
			{"", 403},
			{"Bearer " + token, 403},
			{"Bearer sk-proxy-123", 403},
		}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			c.env["MASTER_KEY"], c.env["METRICS_TOKEN"] = cfg.master, cfg.token
			base, logs := serveWith(t, c, "--addr", "127.0.0.1:0")
			for _, a := range cfg.asks {
				req, _ := http.NewRequest("GET", base+"/metrics", nil)
				if a.auth != "" {
					req.Header.Set("Authorization", a.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := string(b)
				if resp.StatusCode != a.status {
					t.Errorf("Authorization %q: %d, want %d: %s", a.auth, resp.StatusCode, a.status, body)
					continue
				}
				if a.status == 200 {
					if !strings.Contains(body, "llmproxy_inflight_streams") {
						t.Errorf("Authorization %q: not the metrics:\n%s", a.auth, body)
					}
					continue
				}
				// OpenAI's error shape, nothing of the metrics.
				var e struct {
					Error struct {
						Message, Type string
						Param, Code   *string
					}
				}
				if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" || e.Error.Code == nil ||
					!strings.Contains(body, `"param":null`) || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Authorization %q: not OpenAI's error shape: %s", a.auth, body)
				}
				if strings.Contains(body, "llmproxy_") || strings.Contains(body, "Mobile-App") {
					t.Errorf("Authorization %q: the refusal shows metrics: %s", a.auth, body)
				}
				if a.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("Authorization %q: 401 without WWW-Authenticate: Bearer", a.auth)
				}
				if a.status == 403 && (!strings.Contains(e.Error.Message, "METRICS_TOKEN") || !strings.Contains(e.Error.Message, "--metrics-addr")) {
					t.Errorf("with no token configured, the answer does not say how to enable metrics: %s", e.Error.Message)
				}
			}
			for _, s := range []string{token, opsMaster} {
				if strings.Contains(logs.String(), s) {
					t.Errorf("the log shows the secret %q", s)
				}
			}
		})
	}
}

// TestServeConfigFile: serve --config takes its settings from the file,
// with ${NAME} references, and the environment wins over it.
func TestServeConfigFile(t *testing.T) {
	c := newCLI(t)
	c.ok("migrate")
	c.env["OPS_MASTER"] = opsMaster
	path := filepath.Join(c.dir, "llm-proxy.yaml")
	os.WriteFile(path, []byte(`
server:
  addr: 127.0.0.1:0
  db_dsn: /nonexistent/dir/ignored.db   # DB_DSN in the environment wins
  master_key: ${OPS_MASTER}
  log_format: json
  log_level: debug
  metrics: false
`), 0o600)
	base, logs := serveWith(t, c, "--config", path)
	if !strings.HasPrefix(logs.String(), "{") {
		t.Errorf("log_format json from the file not used:\n%s", logs.String())
	}
	if status, _ := httpGet(t, base+"/metrics", ""); status != 404 {
		t.Errorf("metrics: false in the file: /metrics %d", status)
	}
	if status, _ := httpGet(t, base+"/admin/v1/keys", opsMaster); status != 200 {
		t.Errorf("master_key from the file: admin API %d", status)
	}
	if strings.Contains(logs.String(), opsMaster) {
		t.Error("the log shows the master key")
	}

	os.WriteFile(path, []byte("server:\n  master_key: ${NOT_SET_ANYWHERE}\n"), 0o600)
	if got := c.fail("serve", "--config", path); !strings.Contains(got, "NOT_SET_ANYWHERE is not set") {
		t.Errorf("unset reference: %q", got)
	}
	os.WriteFile(path, []byte("server:\n  master: x\n"), 0o600)
	if got := c.fail("serve", "--config", path); !strings.Contains(got, "master") {
		t.Errorf("unknown field: %q", got)
	}
}

// TestApplyCommand: apply -f with --dry-run, then for real, then again.
func TestApplyCommand(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	c := newCLI(t)
	c.env["UPSTREAM_KEY"] = upstreamKey
	c.env["MOBILE_APP_KEY"] = "sk-proxy-123"
	path := filepath.Join(c.dir, "config.yaml")
	os.WriteFile(path, []byte(`
connections:
  - name: google-ai
    provider: google
    endpoint: `+fake.BaseURL()+`
    api_key: ${UPSTREAM_KEY}
models:
  - name: gemini-flash
    remote: gemini-1.5-flash
    connection: google-ai
keys:
  - name: Mobile-App
    key: ${MOBILE_APP_KEY}
    assignments:
      - connection: google-ai
        tps: 5
`), 0o600)
	c.ok("migrate")
	out := c.ok("apply", "-f", path, "--dry-run")
	if !strings.Contains(out, "+ connection google-ai") || !strings.Contains(out, "+ key Mobile-App: + connection google-ai tps=5") || !strings.Contains(out, "Dry run: 3 changes, nothing written.") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := c.counts(); n != [3]int{0, 0, 0} {
		t.Errorf("the dry run wrote: %v", n)
	}
	if out := c.ok("apply", "-f", path); !strings.Contains(out, "Applied 3 changes.") {
		t.Errorf("apply:\n%s", out)
	}
	if out := c.ok("apply", "-f", path); !strings.Contains(out, "No changes") {
		t.Errorf("second apply:\n%s", out)
	}
	// The applied configuration serves.
	base, _ := serveWith(t, c, "--addr", "127.0.0.1:0")
	if got := chat(t, base, "sk-proxy-123"); got != 200 {
		t.Errorf("chat after apply: %d", got)
	}
	// A literal secret is accepted with a warning that does not show it.
	os.WriteFile(path, []byte("keys:\n  - name: Literal\n    key: sk-literal-in-file\n    assignments:\n      - connection: google-ai\n"), 0o600)
	stdout, stderr, err := c.run("apply", "-f", path)
	if err != nil || !strings.Contains(stderr, `warning: `+path+`: key "Literal" key is written in the file`) || !strings.Contains(stdout, "+ key Literal") {
		t.Errorf("literal secret: %v\n%s\n%s", err, stdout, stderr)
	}
	c.fail("apply")
	c.checkNoSecrets(upstreamKey, "sk-proxy-123", "sk-literal-in-file")
}
