package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// connectionJSON runs args (which must print a connection with --json)
// and decodes the answer.
func (c *cli) connectionJSON(args ...string) map[string]any {
	c.t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(c.ok(args...)), &v); err != nil {
		c.t.Fatalf("%v: %v", args, err)
	}
	return v
}

func TestConnectionUpdate(t *testing.T) {
	const (
		rotated   = "AIza-rotated-secret-0123456789"
		awsSecret = "aws-secret-key-old-1"
		awsToken  = "aws-session-token-old-1"
		awsNew    = "aws-secret-key-new-1"
	)
	c := newCLI(t)
	connID, _ := c.guide("http://127.0.0.1:1/v1")

	// Rotate the key: the record is printed as add prints it, no secret.
	out := c.ok("connection", "update", "google-ai", "--api-key", rotated)
	if m := idLine.FindStringSubmatch(out); m == nil || m[1] != connID || !strings.Contains(out, "api_key") || !strings.Contains(out, "http://127.0.0.1:1/v1") {
		t.Errorf("update printed:\n%s", out)
	}
	// By ID, with the timeouts, as JSON.
	v := c.connectionJSON("connection", "update", connID, "--first-byte-timeout", "30s", "--idle-timeout", "2m", "--json")
	if fmt.Sprint(v["settings"]) != "map[first_byte_timeout:30s idle_timeout:2m]" || v["id"] != connID || fmt.Sprint(v["credentials"]) != "[api_key]" {
		t.Errorf("update --json: %v", v)
	}
	// -q prints the ID alone.
	if out := c.ok("connection", "update", "google-ai", "--setting", "idle_timeout=90s", "-q"); out != connID+"\n" {
		t.Errorf("update -q printed %q", out)
	}
	// "" and key= remove a setting; the others stay.
	v = c.connectionJSON("connection", "update", "google-ai", "--idle-timeout", "", "--json")
	if fmt.Sprint(v["settings"]) != "map[first_byte_timeout:30s]" {
		t.Errorf("after --idle-timeout \"\": %v", v["settings"])
	}
	v = c.connectionJSON("connection", "update", "google-ai", "--setting", "first_byte_timeout=", "--json")
	if v["settings"] != nil {
		t.Errorf("after --setting first_byte_timeout=: %v", v["settings"])
	}
	// Rename, and back.
	c.ok("connection", "update", "google-ai", "--name", "google-main")
	c.fail("connection", "show", "google-ai")
	c.ok("connection", "update", "google-main", "--name", "google-ai")

	// A setting no provider reads is stored, with a note on stderr.
	out, errOut, err := c.run("connection", "update", "google-ai", "--setting", "idle_timout=2m")
	if err != nil || !strings.Contains(out, "idle_timout:") || !strings.Contains(errOut, `note: setting "idle_timout" is not one llm-proxy's providers read`) {
		t.Errorf("unknown setting: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if _, errOut, _ := c.run("connection", "update", "google-ai", "--setting", "idle_timout="); errOut != "" {
		t.Errorf("removing a setting printed %q", errOut)
	}

	// Bedrock: a new AWS pair drops the old session token.
	c.ok("connection", "add", "--name", "claude", "--provider", "bedrock", "--region", "us-east-1",
		"--access-key-id", "AKIAOLD0001", "--secret-access-key", awsSecret, "--session-token", awsToken)
	v = c.connectionJSON("connection", "update", "claude", "--access-key-id", "AKIANEW0001", "--secret-access-key", awsNew, "--region", "eu-west-1", "--json")
	if fmt.Sprint(v["credentials"]) != "[access_key_id secret_access_key]" || fmt.Sprint(v["settings"]) != "map[region:eu-west-1]" {
		t.Errorf("bedrock update: %v", v)
	}
	// Azure: a new api_version, checked by the provider.
	c.ok("connection", "add", "--name", "az", "--provider", "azure", "--endpoint", "https://res.openai.azure.com", "--api-key", "azure-secret-key-1")
	v = c.connectionJSON("connection", "update", "az", "--api-version", "2025-01-01-preview", "--json")
	if fmt.Sprint(v["settings"]) != "map[api_version:2025-01-01-preview]" {
		t.Errorf("azure update: %v", v)
	}

	c.checkNoSecrets(upstreamKey, rotated, awsSecret, awsToken, awsNew, "azure-secret-key-1")
}

// TestConnectionTimeoutsAsYAML: the timeout flags store exactly what the
// config file's settings store.
func TestConnectionTimeoutsAsYAML(t *testing.T) {
	c := newCLI(t)
	file := filepath.Join(c.dir, "llm-proxy.yaml")
	yaml := `
connections:
  - name: from-yaml
    provider: compatible
    endpoint: http://127.0.0.1:1/v1
    settings:
      first_byte_timeout: 30s
      idle_timeout: 2m
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("apply", "-f", file)
	c.ok("connection", "add", "--name", "from-add", "--provider", "compatible", "--endpoint", "http://127.0.0.1:1/v1", "--first-byte-timeout", "30s", "--idle-timeout", "2m")
	c.ok("connection", "add", "--name", "from-update", "--provider", "compatible", "--endpoint", "http://127.0.0.1:1/v1")
	c.ok("connection", "update", "from-update", "--first-byte-timeout", "30s", "--setting", "idle_timeout=2m")
	want := fmt.Sprint(c.connectionJSON("connection", "show", "from-yaml", "--json")["settings"])
	if want != "map[first_byte_timeout:30s idle_timeout:2m]" {
		t.Fatalf("apply stored %s", want)
	}
	for _, name := range []string{"from-add", "from-update"} {
		if got := fmt.Sprint(c.connectionJSON("connection", "show", name, "--json")["settings"]); got != want {
			t.Errorf("%s stored %s, the file %s", name, got, want)
		}
	}
}

func TestConnectionUpdateErrors(t *testing.T) {
	c := newCLI(t)
	c.guide("http://127.0.0.1:1/v1")
	c.ok("connection", "add", "--name", "backup", "--provider", "compatible", "--endpoint", "http://127.0.0.1:2/v1")
	c.ok("connection", "add", "--name", "az", "--provider", "azure", "--endpoint", "https://res.openai.azure.com", "--api-key", "azure-secret-key-1", "-q")
	c.ok("connection", "add", "--name", "claude", "--provider", "bedrock", "--region", "us-east-1", "-q")
	before := c.ok("connection", "list", "--json")
	const help = " (see llm-proxy connection update --help)"
	tests := []struct {
		name string
		args []string
		want string // the stderr line, without "llm-proxy: "
	}{
		{"no flags", []string{"google-ai"}, "nothing to change: give --name, --endpoint, --api-key, --api-version, --region, --access-key-id with --secret-access-key, --session-token, --first-byte-timeout, --idle-timeout or --setting" + help},
		{"no connection", []string{"--api-key", "k"}, "llm-proxy connection update takes one argument: the connection's ID or name"},
		{"unknown connection", []string{"nope", "--api-key", "AIza-new-secret-1"}, `connection "nope" not found`},
		{"bad duration", []string{"google-ai", "--idle-timeout", "soon"}, `invalid argument "soon" for "--idle-timeout" flag: not a positive duration such as 30s, 2m or 1h30m` + help},
		{"zero duration", []string{"google-ai", "--first-byte-timeout", "0s"}, `invalid argument "0s" for "--first-byte-timeout" flag: not a positive duration such as 30s, 2m or 1h30m` + help},
		{"days", []string{"google-ai", "--idle-timeout", "1d"}, `invalid argument "1d" for "--idle-timeout" flag: not a positive duration such as 30s, 2m or 1h30m` + help},
		{"bad duration setting", []string{"google-ai", "--setting", "idle_timeout=1d"}, `idle_timeout "1d" is not a positive duration such as 30s, 2m or 1h30m`},
		{"setting without =", []string{"google-ai", "--setting", "idle_timeout"}, `invalid argument "idle_timeout" for "--setting" flag: write key=value, e.g. max_attempts=5` + help},
		{"setting twice", []string{"google-ai", "--setting", "a=1", "--setting", "a=2"}, `invalid argument "a=2" for "--setting" flag: a is given twice` + help},
		{"setting and its flag", []string{"google-ai", "--setting", "idle_timeout=1m", "--idle-timeout", "2m"}, `--setting idle_timeout=… and --idle-timeout both set idle_timeout; give one of them`},
		{"another provider", []string{"google-ai", "--provider", "openai"}, `connection "google-ai" is a google connection and cannot become "openai": a provider kind does not change; delete the connection and add it again`},
		{"taken name", []string{"google-ai", "--name", "backup"}, `connection "backup" already exists`},
		{"empty name", []string{"google-ai", "--name", " "}, `a connection needs a name`},
		{"region on azure", []string{"az", "--region", "us-east-1"}, `region is not used by azure connections`},
		{"bad api version", []string{"az", "--api-version", "latest"}, `azure connection "az": api_version must look like 2024-10-21 or 2025-01-01-preview, got "latest"`},
		{"api key on bedrock", []string{"claude", "--api-key", "k-123"}, `an API key is not used by bedrock connections (bedrock uses AWS credentials)`},
		{"half an AWS pair", []string{"claude", "--access-key-id", "AKIA1"}, `if any flags in the group [access-key-id secret-access-key] are set they must all be set; missing [secret-access-key]`},
		{"region removed", []string{"claude", "--region", ""}, `bedrock connection "claude" needs a region (or an endpoint)`},
		{"required key removed", []string{"google-ai", "--api-key", ""}, `google connection "google-ai" needs an API key`},
		{"required endpoint removed", []string{"backup", "--endpoint", ""}, `compatible connection "backup" needs an endpoint (the server's base URL, e.g. http://localhost:11434/v1)`},
		{"bad endpoint", []string{"backup", "--endpoint", "localhost:1234"}, `endpoint "localhost:1234" is not an http(s) URL`},
		{"quiet and json", []string{"google-ai", "--api-key", "k", "-q", "--json"}, `if any flags in the group [quiet json] are set none of the others can be; [json quiet] were all set`},
		{"unknown flag", []string{"google-ai", "--api_key", "k"}, `unknown flag: --api_key` + help},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			if got := c.fail(append([]string{"connection", "update"}, tt.args...)...); got != "llm-proxy: "+tt.want {
				t.Errorf("stderr:\n  %s\nwant:\n  llm-proxy: %s", got, tt.want)
			}
		})
	}
	c.t = t
	if after := c.ok("connection", "list", "--json"); after != before {
		t.Errorf("refused updates changed the connections:\n%s\n%s", before, after)
	}
	// add takes the same timeout flags, checked alike.
	if got := c.fail("connection", "add", "--name", "x", "--provider", "compatible", "--endpoint", "http://h/v1", "--first-byte-timeout", "-5s"); got != `llm-proxy: invalid argument "-5s" for "--first-byte-timeout" flag: not a positive duration such as 30s, 2m or 1h30m (see llm-proxy connection add --help)` {
		t.Errorf("add with a bad timeout: %s", got)
	}
	c.checkNoSecrets(upstreamKey, "AIza-new-secret-1", "azure-secret-key-1")
}

// keyedUpstream is a fake OpenAI upstream whose provider key can be
// rotated while it runs: it answers 401, as a provider does, to any
// other key.
type keyedUpstream struct {
	*fakeopenai.Server // records the requests it accepted
	key                atomic.Pointer[string]
	url                string
}

func newKeyedUpstream(t *testing.T, key string) *keyedUpstream {
	u := &keyedUpstream{Server: fakeopenai.New(t, "")}
	u.key.Store(&key)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+*u.key.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		u.Server.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL + "/v1"
	return u
}

// TestConnectionUpdateLive: a running server uses a rotated provider key
// and a changed idle timeout within 2 seconds, without a restart.
func TestConnectionUpdateLive(t *testing.T) {
	const rotated = "AIza-rotated-secret-0123456789"
	up := newKeyedUpstream(t, upstreamKey)
	c := newCLI(t)
	c.guide(up.url)
	base, logs := startServe(t, c)
	if got := chat(t, base, "sk-proxy-123"); got != 200 {
		t.Fatalf("before the rotation: %d", got)
	}

	// The provider rotates the key: the gateway's calls fail until the
	// connection has the new one.
	up.key.Store(ptrTo(rotated))
	if got := chat(t, base, "sk-proxy-123"); got != http.StatusBadGateway {
		t.Fatalf("with the old key: %d, want 502", got)
	}
	c.ok("connection", "update", "google-ai", "--api-key", rotated)
	eventuallyLive(t, time.Now(), "the rotated API key", func() bool { return chat(t, base, "sk-proxy-123") == 200 })
	if got := up.Last().Header.Get("Authorization"); got != "Bearer "+rotated {
		t.Errorf("the upstream got %q", got)
	}

	// A stream that stalls for a second: with the default idle timeout
	// (5m) it goes on; with 300ms it ends with an error event naming it.
	up.SetDelay(0, time.Second)
	stalled := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-proxy-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body) // cut by the context when the stream goes on
		return strings.Contains(string(body), `sent nothing for 300ms; the stream was ended`)
	}
	if stalled() {
		t.Fatal("a stream was cut before the idle timeout was changed")
	}
	c.ok("connection", "update", "google-ai", "--idle-timeout", "300ms")
	eventuallyLive(t, time.Now(), "the new idle timeout", stalled)

	c.checkNoSecrets(upstreamKey, rotated)
	if strings.Contains(logs.String(), rotated) {
		t.Error("serve logged the rotated key")
	}
}
