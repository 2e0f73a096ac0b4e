package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/testdb"

	_ "github.com/lib/pq"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"go.mongodb.org/mongo-driver/v2/mongo"
	mongooptions "go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/azure/azuretest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/llm-proxy once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llm-proxy-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "llm-proxy")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// process runs the real binary with a fixed environment.
type process struct {
	t   *testing.T
	bin string
	env []string
	dir string
}

// cli runs one command and returns stdout; it fails the test on an error.
func (p *process) cli(args ...string) string {
	p.t.Helper()
	out, errOut, err := p.try(args...)
	if err != nil {
		p.t.Fatalf("./llm-proxy %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func (p *process) try(args ...string) (string, string, error) {
	cmd := exec.Command(p.bin, args...)
	cmd.Env, cmd.Dir = p.env, p.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// server is a running "llm-proxy serve" process.
type server struct {
	base string
	cmd  *exec.Cmd
	logs *syncBuffer
	// exited receives Wait's result once.
	exited chan error
}

// serve starts "llm-proxy serve" on a free port; it is killed at the end
// of the test if still running.
func (p *process) serve() *server {
	p.t.Helper()
	cmd := exec.Command(p.bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env, cmd.Dir = p.env, p.dir
	s := &server{cmd: cmd, logs: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	addr := waitListening(p.t, s.logs, done)
	go func() { s.exited <- <-done }()
	p.t.Cleanup(func() { cmd.Process.Kill() })
	s.base = "http://" + addr
	return s
}

// backends are the databases the walk-through runs on: SQLite always,
// PostgreSQL and MongoDB when the test script provides them.
var backends = []struct {
	name  string
	setup func(t *testing.T) (dbType, dsn string)
}{
	{"sqlite", func(t *testing.T) (string, string) { return "sqlite", "llm-proxy.db" }},
	{"postgres", func(t *testing.T) (string, string) { return "postgres", testdb.Postgres(t) }},
	{"mongodb", func(t *testing.T) (string, string) {
		base := os.Getenv("LLMPROXY_TEST_MONGODB")
		if base == "" {
			skipOrFail(t, "LLMPROXY_TEST_MONGODB is not set (./scripts/test.sh starts FerretDB and sets it)")
		}
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		name := "llmproxy_e2e_" + randomHex()
		u.Path = "/" + name
		uri := u.String()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if c, err := mongo.Connect(mongooptions.Client().ApplyURI(uri)); err == nil {
				c.Database(name).Drop(ctx)
				c.Disconnect(ctx)
			}
		})
		return "mongodb", uri
	}},
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func randomHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestGuideWalkthrough follows the product guide with the real binary:
// the four commands as written, a real server process, real clients.
func TestGuideWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dbType, dsn := be.setup(t)
			walkthrough(t, dbType, dsn)
		})
	}
}

const masterKey = "sk-master-e2e-secret"

func walkthrough(t *testing.T, dbType, dsn string) {
	up := fakeopenai.New(t, upstreamKey)
	dir := t.TempDir()
	env := append(os.Environ(), "DB_TYPE="+dbType, "DB_DSN="+dsn, "MASTER_KEY="+masterKey, "PORT=")
	if dbType != "sqlite" {
		env = append(env, "ENCRYPTION_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	} else {
		env = append(env, "ENCRYPTION_KEY=")
	}
	p := &process{t: t, bin: binary(t), env: env, dir: dir}

	// The guide's four commands, word for word but for the endpoint, which
	// is the fake upstream. IDs are read from the printed records.
	out := p.cli("connection", "add", "--name", "google-ai", "--provider", "google", "--endpoint", up.BaseURL(), "--api-key", upstreamKey)
	connID := idLine.FindStringSubmatch(out)[1]
	out = p.cli("model", "add", "--name", "gemini-flash", "--remote", "gemini-1.5-flash", "--conn-id", connID)
	modelID := idLine.FindStringSubmatch(out)[1]
	p.cli("vkey", "add", "--name", "Mobile-App", "--key", "sk-proxy-123", "--conn-id", connID)
	p.cli("vkey", "add", "--name", "Tester", "--key", "sk-tester-456", "--model-id", modelID)
	// A second connection and model, that neither key may use.
	other := fakeopenai.New(t, "other-upstream-key")
	otherConn := strings.TrimSpace(p.cli("connection", "add", "--name", "other", "--provider", "compatible", "--endpoint", other.BaseURL(), "--api-key", "other-upstream-key", "-q"))
	p.cli("model", "add", "--name", "other-model", "--remote", "other-remote", "--conn-id", otherConn, "-q")

	srv := p.serve()
	base, logs := srv.base, srv.logs
	ctx := context.Background()

	t.Run("plain HTTP, unknown fields pass through", func(t *testing.T) {
		body := `{"model":"gemini-flash","messages":[{"role":"user","content":"hello"}],"x_vendor":{"keep":[1,2.50,"three"]},"temperature":0.25}`
		resp, got := post(t, base+"/v1/chat/completions", "sk-proxy-123", body)
		if resp.StatusCode != 200 || !strings.Contains(got, fakeopenai.Reply("gemini-1.5-flash", "hello")) {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		last := up.Last()
		if last.Header.Get("Authorization") != "Bearer "+upstreamKey || last.JSON["model"] != "gemini-1.5-flash" {
			t.Errorf("upstream saw model %v, auth %q", last.JSON["model"], last.Header.Get("Authorization"))
		}
		if !bytes.Contains(last.Body, []byte(`"x_vendor":{"keep":[1,2.50,"three"]}`)) || !bytes.Contains(last.Body, []byte(`"temperature":0.25`)) {
			t.Errorf("unknown fields changed on the way: %s", last.Body)
		}
	})
	t.Run("plain HTTP stream", func(t *testing.T) {
		resp, got := post(t, base+"/v1/chat/completions", "sk-proxy-123", `{"model":"gemini-flash","stream":true,"messages":[{"role":"user","content":"stream please"}]}`)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.HasSuffix(got, "data: [DONE]\n\n") {
			t.Fatalf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
		}
		if strings.Contains(got, `"usage"`) {
			t.Errorf("the client got a usage chunk it did not ask for:\n%s", got)
		}
	})
	t.Run("go-openai", func(t *testing.T) {
		cfg := goopenai.DefaultConfig("sk-proxy-123")
		cfg.BaseURL = base + "/v1"
		c := goopenai.NewClientWithConfig(cfg)
		req := goopenai.ChatCompletionRequest{Model: "gemini-flash", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "from go-openai"}}}
		res, err := c.CreateChatCompletion(ctx, req)
		if err != nil || res.Choices[0].Message.Content != fakeopenai.Reply("gemini-1.5-flash", "from go-openai") || res.Usage.TotalTokens == 0 {
			t.Fatalf("%v %+v", err, res)
		}
		req.Stream = true
		s, err := c.CreateChatCompletionStream(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var text strings.Builder
		for {
			chunk, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chunk.Choices) > 0 {
				text.WriteString(chunk.Choices[0].Delta.Content)
			}
		}
		if text.String() != fakeopenai.Reply("gemini-1.5-flash", "from go-openai") {
			t.Errorf("streamed %q", text.String())
		}
	})
	t.Run("openai-go", func(t *testing.T) {
		c := oai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("sk-tester-456"), option.WithMaxRetries(0))
		params := oai.ChatCompletionNewParams{Model: "gemini-flash", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("from openai-go")}}
		res, err := c.Chat.Completions.New(ctx, params)
		if err != nil || res.Choices[0].Message.Content != fakeopenai.Reply("gemini-1.5-flash", "from openai-go") {
			t.Fatalf("%v %+v", err, res)
		}
		params.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
		s := c.Chat.Completions.NewStreaming(ctx, params)
		var acc oai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].Message.Content != fakeopenai.Reply("gemini-1.5-flash", "from openai-go") || acc.Usage.TotalTokens == 0 {
			t.Errorf("streamed %q, usage %+v", acc.Choices[0].Message.Content, acc.Usage)
		}
		// A key scoped to a model cannot use another one, and cannot tell
		// it exists.
		_, err = c.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "other-model", Messages: params.Messages})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Errorf("other-model with the Tester key: %v", err)
		}
		if len(other.Requests()) != 0 {
			t.Errorf("the other upstream was called")
		}
	})
	t.Run("responses conversation", func(t *testing.T) {
		// A two-turn Responses API conversation on a translated connection
		// (google has no Responses API): the second turn reaches the
		// upstream with the first; the conversation is the key's alone.
		resp, got := post(t, base+"/v1/responses", "sk-proxy-123", `{"model":"gemini-flash","instructions":"be brief","input":"My name is Ada."}`)
		var r1 struct{ ID string }
		if json.Unmarshal([]byte(got), &r1); resp.StatusCode != 200 || !strings.HasPrefix(r1.ID, "resp_") {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		resp, got = post(t, base+"/v1/responses", "sk-proxy-123", `{"model":"gemini-flash","input":"And my name?","previous_response_id":"`+r1.ID+`"}`)
		if resp.StatusCode != 200 || !bytes.Contains(up.Last().Body, []byte("My name is Ada.")) || !bytes.Contains(up.Last().Body, []byte("And my name?")) {
			t.Fatalf("second turn: %d %s; upstream saw %s", resp.StatusCode, got, up.Last().Body)
		}
		if resp, got := get(t, base+"/v1/responses/"+r1.ID, "sk-proxy-123"); resp.StatusCode != 200 || !strings.Contains(got, r1.ID) {
			t.Errorf("GET: %d %s", resp.StatusCode, got)
		}
		if resp, got := get(t, base+"/v1/responses/"+r1.ID, "sk-tester-456"); resp.StatusCode != 404 {
			t.Errorf("another key read it: %d %s", resp.StatusCode, got)
		}
		if resp, got := post(t, base+"/v1/responses", "sk-tester-456", `{"model":"gemini-flash","input":"hi","previous_response_id":"`+r1.ID+`"}`); resp.StatusCode != 400 || !strings.Contains(got, "previous_response_not_found") {
			t.Errorf("another key continued it: %d %s", resp.StatusCode, got)
		}
		req, _ := http.NewRequest(http.MethodDelete, base+"/v1/responses/"+r1.ID, nil)
		req.Header.Set("Authorization", "Bearer sk-proxy-123")
		if resp, got := do(t, req); resp.StatusCode != 200 || !strings.Contains(got, `"deleted":true`) {
			t.Errorf("DELETE: %d %s", resp.StatusCode, got)
		}
		if resp, got := get(t, base+"/v1/responses/"+r1.ID, "sk-proxy-123"); resp.StatusCode != 404 {
			t.Errorf("GET after DELETE: %d %s", resp.StatusCode, got)
		}
	})
	t.Run("models", func(t *testing.T) {
		for _, tt := range []struct {
			key  string
			want []string
		}{
			{"sk-proxy-123", []string{"gemini-flash"}},
			{"sk-tester-456", []string{"gemini-flash"}},
			{masterKey, []string{"gemini-flash", "other-model"}},
		} {
			if got := listModels(t, base, tt.key); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("/v1/models with %s…: %v, want %v", tt.key[:5], got, tt.want)
			}
		}
		resp, body := get(t, base+"/v1/models", "sk-wrong-key")
		if resp.StatusCode != 401 || !strings.Contains(body, `"error"`) {
			t.Errorf("wrong key: %d %s", resp.StatusCode, body)
		}
		// A connection-scoped key may use a model added later, soon.
		p.cli("model", "add", "--name", "gemini-pro", "--remote", "gemini-1.5-pro", "--conn-id", connID, "-q")
		waitFor(t, 2*time.Second, "the new model to be usable", func() bool {
			return strings.Join(listModels(t, base, "sk-proxy-123"), ",") == "gemini-flash,gemini-pro"
		})
		if got := listModels(t, base, "sk-tester-456"); len(got) != 1 {
			t.Errorf("the model-scoped key sees %v", got)
		}
	})
	t.Run("deleted key", func(t *testing.T) {
		var keys []struct{ ID, Name string }
		json.Unmarshal([]byte(p.cli("vkey", "list", "--json")), &keys)
		id := ""
		for _, k := range keys {
			if k.Name == "Mobile-App" {
				id = k.ID
			}
		}
		p.cli("vkey", "delete", id)
		start := time.Now()
		waitFor(t, 2*time.Second, "the deleted key to answer 401", func() bool {
			resp, _ := post(t, base+"/v1/chat/completions", "sk-proxy-123", `{"model":"gemini-flash","messages":[{"role":"user","content":"x"}]}`)
			return resp.StatusCode == 401
		})
		t.Logf("deleted key refused after %v", time.Since(start).Round(time.Millisecond))
	})

	// SIGTERM: a clean exit that writes the usage.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.exited:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM\n%s", logs.String())
	}
	var sums []struct {
		Requests int64 `json:"requests"`
	}
	json.Unmarshal([]byte(p.cli("usage", "--json")), &sums)
	var n int64
	for _, s := range sums {
		n += s.Requests
	}
	if n < 6 {
		t.Errorf("usage after SIGTERM counts %d requests, want at least 6", n)
	}
	for _, secret := range []string{upstreamKey, "sk-proxy-123", "sk-tester-456", masterKey} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the server logged %q", secret)
		}
	}
}

func post(t *testing.T, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func get(t *testing.T, url, key string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp, b.String()
}

func listModels(t *testing.T, base, key string) []string {
	t.Helper()
	resp, body := get(t, base+"/v1/models", key)
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/models: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Object string
		Data   []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || list.Object != "list" {
		t.Fatalf("/v1/models: %v %s", err, body)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	return ids
}

func waitFor(t *testing.T, limit time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if f() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAllProvidersWalkthrough sets up Azure OpenAI and Bedrock connections
// with the real binary's flags and talks to both through a real server,
// as the guide's curl example does (no Content-Type, as curl -d sends).
func TestAllProvidersWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	az := azuretest.NewServer()
	defer az.Close()
	br := bedrocktest.NewServer()
	defer br.Close()
	br.Region, br.AccessKeyID, br.SecretAccessKey = "us-east-1", "AKIAE2ETEST000001", "bedrock-e2e-secret"
	br.Latency = 5 * time.Millisecond

	p := &process{t: t, bin: binary(t), dir: t.TempDir(),
		env: append(os.Environ(), "DB_TYPE=sqlite", "DB_DSN=llm-proxy.db", "ENCRYPTION_KEY=", "MASTER_KEY=", "PORT=", "REDIS_URL=")}
	azConn := strings.TrimSpace(p.cli("connection", "add", "--name", "azure-east", "--provider", "azure", "--endpoint", az.URL, "--api-key", az.APIKey, "--api-version", "2024-10-21", "-q"))
	brConn := strings.TrimSpace(p.cli("connection", "add", "--name", "bedrock-east", "--provider", "bedrock", "--endpoint", br.URL, "--region", "us-east-1",
		"--access-key-id", br.AccessKeyID, "--secret-access-key", br.SecretAccessKey, "-q"))
	p.cli("model", "add", "--name", "gpt-4o", "--remote", "gpt4o-deploy", "--conn-id", azConn, "-q")
	p.cli("model", "add", "--name", "claude-haiku", "--remote", "anthropic.claude-3-haiku-20240307-v1:0", "--conn-id", brConn, "-q")
	p.cli("vkey", "add", "--name", "team", "--key", "sk-team-789", "--conn-id", azConn, "--conn-id", brConn)
	srv := p.serve()
	ctx := context.Background()

	for _, tt := range []struct {
		model string
		check func(t *testing.T)
	}{
		{"gpt-4o", func(t *testing.T) {
			c := az.LastCall()
			if c == nil || c.Deployment != "gpt4o-deploy" || c.APIVersion != "2024-10-21" || c.Header.Get("api-key") != az.APIKey {
				t.Errorf("azure saw %+v", c)
			}
		}},
		{"claude-haiku", func(t *testing.T) {
			c := br.LastCall()
			if c == nil || c.ModelID != "anthropic.claude-3-haiku-20240307-v1:0" {
				t.Errorf("bedrock saw %+v", c)
			}
		}},
	} {
		t.Run(tt.model, func(t *testing.T) {
			// curl -d '{…}' without a Content-Type header.
			req, _ := http.NewRequest("POST", srv.base+"/v1/chat/completions", strings.NewReader(`{"model":"`+tt.model+`","messages":[{"role":"user","content":"Hello there"}]}`))
			req.Header.Set("Authorization", "Bearer sk-team-789")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := do(t, req)
			if resp.StatusCode != 200 || !strings.Contains(body, "Hello there") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			tt.check(t)

			cfg := goopenai.DefaultConfig("sk-team-789")
			cfg.BaseURL = srv.base + "/v1"
			s, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
				Model: tt.model, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "stream this"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var text strings.Builder
			for {
				chunk, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(chunk.Choices) > 0 {
					text.WriteString(chunk.Choices[0].Delta.Content)
				}
			}
			if !strings.Contains(text.String(), "stream this") {
				t.Errorf("streamed %q", text.String())
			}
		})
	}
	for _, secret := range []string{az.APIKey, br.SecretAccessKey, "sk-team-789"} {
		if strings.Contains(srv.logs.String(), secret) {
			t.Errorf("the server logged %q", secret)
		}
	}
}
