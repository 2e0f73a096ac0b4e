package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// Secrets used in TestSecretsNeverLeak. None may appear in any output but
// the one-time print of a generated key.
const (
	secUpstream      = "sk-upstream-SECRET-0001-openai"
	secEchoUpstream  = "sk-upstream-SECRET-0002-echoed"
	secAdminUpstream = "sk-upstream-SECRET-0003-via-admin"
	secAccessKeyID   = "AKIASECRET0004ACCESS"
	secSecretAccess  = "bedrock-SECRET-0005-secret-access-key"
	secSessionToken  = "bedrock-SECRET-0006-session-token"
	secClientKey     = "sk-client-SECRET-0007"
	secModelKey      = "sk-model-SECRET-0008"
	secAdminKey      = "sk-admin-made-SECRET-0009"
	secTypo          = "sk-client-SECRET-0007x" // a wrong key close to a real one
	secMaster        = "master-SECRET-0010"
	secEncryption    = "encryption passphrase SECRET-0011"
)

// transcript collects every byte a session shows anyone.
type transcript struct {
	mu   sync.Mutex
	outs []output
	// once are the outputs allowed to show a generated key, by key.
	once map[string]string
}

// output is one thing shown: what produced it (never checked: a command
// line holds the secrets it was given) and the bytes.
type output struct{ label, text string }

func (tr *transcript) add(label, s string) {
	tr.mu.Lock()
	tr.outs = append(tr.outs, output{label, s})
	tr.mu.Unlock()
}

// echoUpstream is an OpenAI-compatible server that puts the key it got
// into every error it answers (as some servers do): the gateway must not
// pass it on.
func echoUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		body, _ := io.ReadAll(r.Body)
		msg := func(status int) string {
			return fmt.Sprintf(`{"error":{"message":"status %d for key %s","type":"invalid_request_error","param":null,"code":%q}}`, status, auth, auth)
		}
		switch {
		case bytes.Contains(body, []byte("want-400")):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, msg(400))
		case bytes.Contains(body, []byte("want-429")):
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			io.WriteString(w, msg(429))
		case bytes.Contains(body, []byte("want-500")):
			w.WriteHeader(500)
			io.WriteString(w, "internal error; your key was "+auth)
		case bytes.Contains(body, []byte("want-stream-error")):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}`+"\n\n")
			io.WriteString(w, "data: "+msg(500)+"\n\n")
		case bytes.Contains(body, []byte("want-garbage")):
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "not json "+auth)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSecretsNeverLeak runs a broad session (the CLI in every output
// form, a server with debug logs driven with good and bad requests and
// failing upstreams, the admin API) and fails if any provider key,
// virtual key, master key or encryption key appears in anything it
// printed, logged or answered, or in plaintext in the database file.
func TestSecretsNeverLeak(t *testing.T) {
	tr := &transcript{once: map[string]string{}}
	up := fakeopenai.New(t, secUpstream)
	echo := echoUpstream(t)
	dsn := filepath.Join(t.TempDir(), "secrets.db")
	env := map[string]string{"DB_DSN": dsn, "ENCRYPTION_KEY": secEncryption, "MASTER_KEY": secMaster, "LOG_LEVEL": "debug"}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, &out, &errOut)
		tr.add("$ llm-proxy "+strings.Join(args, " "), out.String()+errOut.String())
		if err != nil && !strings.HasPrefix(args[len(args)-1], "!") {
			t.Fatalf("llm-proxy %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	fails := func(args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, getenv, &out, &errOut); err == nil {
			t.Errorf("llm-proxy %s succeeded", strings.Join(args, " "))
		}
		tr.add("$ llm-proxy "+strings.Join(args, " "), out.String()+errOut.String())
	}

	// The CLI, every form.
	connID := strings.TrimSpace(cli("connection", "add", "--name", "up", "--provider", "compatible", "--endpoint", up.BaseURL(), "--api-key", secUpstream, "-q"))
	cli("connection", "add", "--name", "echo", "--provider", "compatible", "--endpoint", echo.URL+"/v1", "--api-key", secEchoUpstream, "--json")
	cli("connection", "add", "--name", "aws", "--provider", "bedrock", "--region", "us-east-1", "--endpoint", "http://127.0.0.1:1",
		"--access-key-id", secAccessKeyID, "--secret-access-key", secSecretAccess, "--session-token", secSessionToken)
	fails("connection", "add", "--name", "up", "--provider", "compatible", "--endpoint", up.BaseURL(), "--api-key", secUpstream)
	fails("connection", "add", "--name", "bad", "--provider", "nope", "--api-key", secUpstream)
	fails("connection", "add", "--name", "bad", "--provider", "bedrock", "--access-key-id", secAccessKeyID)
	for _, args := range [][]string{{"connection", "list"}, {"connection", "list", "--json"}, {"connection", "show", "up"}, {"connection", "show", "aws", "--json"}, {"connection", "show", "echo"}} {
		cli(args...)
	}
	modelID := strings.TrimSpace(cli("model", "add", "--name", "chat", "--remote", "remote-chat", "--conn-id", connID, "-q"))
	cli("model", "add", "--name", "echo", "--remote", "remote-echo", "--conn-id", "echo", "--json")
	cli("model", "add", "--name", "claude", "--remote", "anthropic.claude-3-haiku", "--conn-id", "aws")
	cli("model", "list")
	cli("model", "list", "--json")
	cli("vkey", "add", "--name", "client", "--key", secClientKey, "--conn-id", "up", "--conn-id", "echo", "--conn-id", "aws")
	cli("vkey", "add", "--name", "model-only", "--key", secModelKey, "--model-id", modelID, "--json", "--tps", "100")
	fails("vkey", "add", "--name", "client", "--key", secClientKey, "--conn-id", "up")
	fails("vkey", "add", "--name", "other", "--key", secClientKey, "--conn-id", "up")
	// Generated keys: shown once, each in its own output.
	for _, form := range [][]string{{}, {"--json"}, {"-q"}} {
		args := append([]string{"vkey", "add", "--name", "gen" + strings.Join(form, ""), "--conn-id", "up"}, form...)
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, getenv, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		key := generatedKey(t, out.String())
		tr.once[key] = out.String() + errOut.String()
	}
	cli("vkey", "list")
	cli("vkey", "list", "--json")
	cli("rotate-encryption-key", "!") // fails: no ENCRYPTION_KEY_PREVIOUS

	// The server, with debug logs.
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "2s"}, getenv, io.Discard, &logs)
	}()
	base := "http://" + waitListening(t, &logs, done)
	call := func(method, path, key, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var h bytes.Buffer
		resp.Header.Write(&h)
		tr.add(fmt.Sprintf("%s %s (%d)", method, path, resp.StatusCode), h.String()+string(b))
		return resp.StatusCode, string(b)
	}
	chatBody := func(model, text string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":%q}]}`, model, stream, text)
	}
	type req struct {
		key, model, text string
		stream           bool
		status           int
	}
	for _, r := range []req{
		{secClientKey, "chat", "hello", false, 200},
		{secClientKey, "chat", "hello", true, 200},
		{secModelKey, "chat", "hello", false, 200},
		{secMaster, "chat", "hello", true, 200},
		{secTypo, "chat", "hello", false, 401},
		{"Bearer " + secClientKey, "chat", "hello", false, 401},
		{secModelKey, "echo", "hello", false, 404},
		{secClientKey, "echo", "fine", false, 200},
		{secClientKey, "echo", "want-garbage", false, 502},
		// An upstream that echoes its key in errors (400, 429, 500, SSE
		// error events): see TestUpstreamEchoedKeyNeverLeaks.
		{secClientKey, "claude", "hello", false, 502},
		{secClientKey, "claude", "hello", true, 502},
	} {
		status, body := call("POST", "/v1/chat/completions", r.key, chatBody(r.model, r.text, r.stream))
		if r.status != 0 && status != r.status {
			t.Errorf("%s %s: %d, want %d: %s", r.model, r.text, status, r.status, body)
		}
	}
	up.SetFail(401)
	call("POST", "/v1/chat/completions", secClientKey, chatBody("chat", "x", false))
	call("POST", "/v1/chat/completions", secClientKey, chatBody("chat", "x", true))
	up.SetFail(500)
	call("POST", "/v1/chat/completions", secClientKey, chatBody("chat", "x", false))
	up.SetFail(0)
	call("POST", "/v1/embeddings", secClientKey, `{"model":"chat","input":"x"}`)
	call("GET", "/v1/models", secClientKey, "")
	call("GET", "/v1/models/chat", secMaster, "")
	call("GET", "/metrics", "", "")
	call("GET", "/metrics", secMaster, "")
	call("GET", "/healthz", "", "")

	// The admin API, if this build has one.
	if status, _ := call("GET", "/admin/v1/connections", secMaster, ""); status != 404 {
		call("GET", "/admin/v1/connections/"+connID, secMaster, "")
		call("POST", "/admin/v1/connections", secMaster, fmt.Sprintf(`{"name":"via-admin","provider":"compatible","endpoint":%q,"api_key":%q}`, up.BaseURL(), secAdminUpstream))
		call("POST", "/admin/v1/connections", secMaster, fmt.Sprintf(`{"name":"via-admin","provider":"compatible","endpoint":%q,"api_key":%q}`, up.BaseURL(), secAdminUpstream))
		call("POST", "/admin/v1/connections", secMaster, fmt.Sprintf(`{"name":"bad","provider":"nope","api_key":%q}`, secAdminUpstream))
		call("GET", "/admin/v1/connections", secMaster, "")
		call("POST", "/admin/v1/keys", secMaster, fmt.Sprintf(`{"name":"admin-made","key":%q,"assignments":[{"connection_id":%q}]}`, secAdminKey, connID))
		call("POST", "/admin/v1/keys", secMaster, fmt.Sprintf(`{"name":"admin-made","key":%q,"assignments":[{"connection_id":%q}]}`, secAdminKey, connID))
		// A generated key, shown once.
		req, _ := http.NewRequest("POST", base+"/admin/v1/keys", strings.NewReader(fmt.Sprintf(`{"name":"admin-gen","assignments":[{"connection_id":%q}]}`, connID)))
		req.Header.Set("Authorization", "Bearer "+secMaster)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var made struct{ Key string }
		if json.Unmarshal(b, &made); made.Key == "" {
			t.Errorf("admin POST /keys without a key: %d %s", resp.StatusCode, b)
		} else {
			tr.once[made.Key] = string(b)
		}
		call("GET", "/admin/v1/keys", secMaster, "")
		call("GET", "/admin/v1/usage", secMaster, "")
		call("GET", "/admin/v1/keys", secClientKey, "")
		call("GET", "/admin/v1/keys", secTypo, "")
		call("DELETE", "/admin/v1/connections/"+connID, secMaster, "")
		time.Sleep(1500 * time.Millisecond) // the new key goes live
		call("POST", "/v1/chat/completions", secAdminKey, chatBody("chat", "admin key", false))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	tr.add("serve logs", logs.String())
	if !strings.Contains(logs.String(), "route=chat") || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("the server did not log requests at debug level\n%s", logs.String())
	}
	cli("usage")
	cli("usage", "--json")

	secrets := []string{secUpstream, secEchoUpstream, secAdminUpstream, secAccessKeyID, secSecretAccess, secSessionToken,
		secClientKey, secModelKey, secAdminKey, secTypo, secMaster, secEncryption}
	generated := make([]string, 0, len(tr.once))
	for k := range tr.once {
		generated = append(generated, k)
	}
	checked := 0
	for _, out := range tr.outs {
		checked += len(out.text)
		for _, s := range append(secrets, generated...) {
			if strings.Contains(out.text, s) {
				t.Errorf("secret %q shown by %s:\n%s", s, out.label, out.text)
			}
		}
	}
	for key, out := range tr.once {
		checked += len(out)
		for _, s := range append(secrets, generated...) {
			if s != key && strings.Contains(out, s) {
				t.Errorf("secret %q shown with the generated key:\n%s", s, out)
			}
		}
	}
	// At rest: nothing in plaintext in the database files.
	files, _ := filepath.Glob(dsn + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked += len(b)
		for _, s := range append(secrets, generated...) {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %q stored in plaintext in %s", s, filepath.Base(f))
			}
		}
	}
	t.Logf("checked %d outputs, %d generated keys and %d database files: %d bytes", len(tr.outs), len(tr.once), len(files), checked)
}

// generatedKey finds the generated secret in vkey add's output.
func generatedKey(t *testing.T, out string) string {
	t.Helper()
	var v struct{ Key string }
	if json.Unmarshal([]byte(out), &v) == nil && v.Key != "" {
		return v.Key
	}
	if _, rest, ok := strings.Cut(out, "Key: "); ok {
		return strings.Fields(rest)[0]
	}
	if lines := strings.Fields(out); len(lines) == 2 {
		return lines[1]
	}
	t.Fatalf("no generated key in %q", out)
	return ""
}
