package bedrock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testModel = "anthropic.claude-3-5-sonnet-20240620-v1:0"

// newFake starts a fake Bedrock that verifies signatures, and a provider
// talking to it through the real bedrockruntime client.
func newFake(t testing.TB) (*bedrocktest.Server, llmproxy.Provider) {
	t.Helper()
	srv := bedrocktest.NewServer()
	srv.SecretAccessKey = "fake-secret"
	t.Cleanup(srv.Close)
	p, err := bedrock.New(llmproxy.Connection{
		Name:        "bedrock-test",
		Provider:    llmproxy.KindBedrock,
		Endpoint:    srv.URL,
		Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "fake-secret"},
		Settings:    map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"},
	}, llmproxy.ProviderOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return srv, p
}

func chat(body string, stream bool) *llmproxy.Request {
	return &llmproxy.Request{Body: []byte(body), Model: "claude", RemoteModel: testModel, Stream: stream}
}

var (
	idRE      = regexp.MustCompile(`"chatcmpl-[A-Za-z0-9]{24}"`)
	createdRE = regexp.MustCompile(`"created":\d+`)
)

// normalize replaces what changes from run to run.
func normalize(b []byte) []byte {
	b = idRE.ReplaceAll(b, []byte(`"chatcmpl-ID"`))
	return createdRE.ReplaceAll(b, []byte(`"created":0`))
}

// golden compares got with testdata/<dir>/<name>.golden, or writes it.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func cases(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in testdata/%s: %v", dir, err)
	}
	return files
}

// errorText is how an error shows in a golden file; its internal cause
// is logged, shown when the test fails.
func errorText(t *testing.T, err error) string {
	var e *llmproxy.Error
	if !errors.As(err, &e) {
		return fmt.Sprintf("error without *llmproxy.Error: %v\n", err)
	}
	if e.Err != nil {
		t.Logf("internal cause: %v", e.Err)
	}
	s := fmt.Sprintf("%d %s\n", e.Status, e.AppendJSON(nil))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("Retry-After: %v\n", e.RetryAfter)
	}
	return s
}

func indent(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return b
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestRequestGolden: OpenAI request → the Converse request Bedrock
// receives from the SDK (path and JSON body), or the 400 answered.
func TestRequestGolden(t *testing.T) {
	srv, p := newFake(t)
	for _, file := range cases(t, "request") {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			before := len(srv.Calls())
			_, err = p.ChatCompletion(context.Background(), chat(string(body), false))
			var got []byte
			if err != nil {
				if len(srv.Calls()) != before {
					t.Errorf("a rejected request reached Bedrock")
				}
				got = []byte(errorText(t, err))
			} else {
				c := srv.LastCall()
				got = append([]byte("POST "+c.Path+"\n"), indent(c.Body)...)
			}
			golden(t, strings.TrimSuffix(file, ".json")+".golden", got)
		})
	}
}

// TestResponseGolden: a Converse answer → OpenAI chat.completion.
func TestResponseGolden(t *testing.T) {
	srv, p := newFake(t)
	for _, file := range cases(t, "response") {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			answer, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			srv.Handler = func(*bedrocktest.Call) *bedrocktest.Reply { return &bedrocktest.Reply{Body: answer} }
			res, err := p.ChatCompletion(context.Background(), chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, false))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(res.Body) {
				t.Fatalf("invalid JSON: %s", res.Body)
			}
			if !idRE.Match(res.Body) {
				t.Errorf("no chatcmpl id in %s", res.Body)
			}
			golden(t, strings.TrimSuffix(file, ".json")+".golden", indent(normalize(res.Body)))
		})
	}
}

// TestStreamGolden: ConverseStream events (in AWS event-stream framing)
// → chat.completion.chunk events, one per line, and how the stream ends.
func TestStreamGolden(t *testing.T) {
	srv, p := newFake(t)
	for _, file := range cases(t, "stream") {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var events []bedrocktest.Event
			if err := json.Unmarshal(raw, &events); err != nil {
				t.Fatal(err)
			}
			srv.Handler = func(*bedrocktest.Call) *bedrocktest.Reply { return &bedrocktest.Reply{Events: events} }
			res, err := p.ChatCompletion(context.Background(), chat(`{"model":"claude","messages":[{"role":"user","content":"hi"}],"stream":true}`, true))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			var got bytes.Buffer
			ids := map[string]bool{}
			for {
				b, err := res.Stream.Next()
				if err == io.EOF {
					got.WriteString("EOF\n")
					break
				}
				if err != nil {
					got.WriteString("error: " + errorText(t, err))
					break
				}
				if !json.Valid(b) {
					t.Fatalf("invalid JSON chunk: %s", b)
				}
				ids[string(idRE.Find(b))] = true
				got.Write(normalize(b))
				got.WriteByte('\n')
			}
			if len(ids) > 1 || ids[""] {
				t.Errorf("chunk ids are not one stable chatcmpl id: %v", ids)
			}
			golden(t, strings.TrimSuffix(file, ".json")+".golden", got.Bytes())
		})
	}
}
