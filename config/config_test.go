package config_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/config"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var env = map[string]string{
	"GOOGLE_API_KEY": "AIza-google-secret",
	"OPENAI_API_KEY": "sk-openai-secret",
	"MOBILE_APP_KEY": "sk-proxy-123-secret",
	"TESTER_KEY":     "sk-tester-456-secret",
	"DATABASE_URL":   "postgres://u:pw@db/llm",
	"MASTER_KEY":     "master-secret-key",
}

func getenv(k string) string { return env[k] }

func TestParse(t *testing.T) {
	f, err := config.Parse([]byte(`
server:
  port: 9090
  db_type: postgres
  db_dsn: ${DATABASE_URL}
  master_key: ${MASTER_KEY}
  log_format: json
  metrics: false
  metrics_addr: 127.0.0.1:9100
connections:
  - name: google-ai
    provider: google
    api_key: ${GOOGLE_API_KEY}
  - name: local
    provider: compatible
    endpoint: http://localhost:11434/v1
    api_key: literal-secret-in-file
keys:
  - name: Mobile-App
    key: "prefix-${MOBILE_APP_KEY}"
`), getenv)
	must(t, err)
	if f.Connections[0].APIKey != env["GOOGLE_API_KEY"] || f.Keys[0].Key != "prefix-"+env["MOBILE_APP_KEY"] {
		t.Errorf("references not replaced: %+v %+v", f.Connections[0], f.Keys[0])
	}
	want := map[string]string{"PORT": "9090", "DB_TYPE": "postgres", "DB_DSN": env["DATABASE_URL"], "MASTER_KEY": env["MASTER_KEY"],
		"LOG_FORMAT": "json", "METRICS": "off", "METRICS_ADDR": "127.0.0.1:9100"}
	if got := f.Server.Env(); !reflect.DeepEqual(got, want) {
		t.Errorf("Env() = %v, want %v", got, want)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], `connection "local" api_key`) || strings.Contains(f.Warnings[0], "literal-secret") {
		t.Errorf("warnings = %q", f.Warnings)
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"unset variable", "connections:\n  - name: a\n    api_key: ${NOT_SET}\n", "NOT_SET is not set"},
		{"unknown field", "connections:\n  - name: a\n    apikey: x\n", "apikey"},
		{"wrong type", "server:\n  port: eighty\n", "eighty"},
		{"not YAML", "connections: [", "yaml"},
	} {
		_, err := config.Parse([]byte(c.yaml), getenv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	if f, err := config.Parse(nil, getenv); err != nil || len(f.Connections) != 0 {
		t.Errorf("empty file: %v, %+v", err, f)
	}
}

const v1 = `
connections:
  - name: google-ai
    provider: google
    api_key: ${GOOGLE_API_KEY}
  - name: openai
    provider: openai
    endpoint: https://api.openai.com/v1/
    api_key: ${OPENAI_API_KEY}
models:
  - name: gemini-flash
    remote: gemini-1.5-flash
    connection: google-ai
  - name: gpt
    remote: gpt-4o-mini
    connection: openai
keys:
  - name: Mobile-App
    key: ${MOBILE_APP_KEY}
    assignments:
      - connection: google-ai
        tps: 5
        token_limit: 100000
        token_window: 24h
  - name: Tester
    key: ${TESTER_KEY}
    assignments:
      - model: gpt
`

// v2 changes: the openai endpoint and key, gemini-flash's remote, the
// Mobile-App limits and a new assignment, Tester's secret, and a new key.
const v2 = `
connections:
  - name: google-ai
    provider: google
    api_key: ${GOOGLE_API_KEY}
  - name: openai
    provider: openai
    endpoint: https://proxy.example.com/v1
    api_key: ${OPENAI_API_KEY}
models:
  - name: gemini-flash
    remote: gemini-2.0-flash
    connection: google-ai
  - name: gpt
    remote: gpt-4o-mini
    connection: openai
keys:
  - name: Mobile-App
    key: ${MOBILE_APP_KEY}
    assignments:
      - connection: google-ai
        tps: 10
        token_limit: 100000
        token_window: 24h
      - model: gpt
        model_connection: openai
  - name: Tester
    key: ${ROTATED_KEY}
    assignments:
      - model: gpt
  - name: Batch
    assignments:
      - connection: openai
        token_limit: 5000
`

// snapshot is everything stored, for "nothing changed" checks.
func snapshot(t *testing.T, s llmproxy.Storage) string {
	t.Helper()
	ctx := context.Background()
	cs, err := s.Connections(ctx, llmproxy.ListOptions{})
	must(t, err)
	ms, err := s.Models(ctx, llmproxy.ListOptions{})
	must(t, err)
	ks, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, err)
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s %s %s %q %v %s\n", c.ID, c.Name, c.Provider, c.Endpoint, c.Credentials.APIKey, c.Settings, c.UpdatedAt)
	}
	for _, m := range ms {
		fmt.Fprintf(&b, "%s %s %s %s %d %s\n", m.ID, m.Name, m.Remote, m.ConnectionID, m.Weight, m.UpdatedAt)
	}
	for _, k := range ks {
		fmt.Fprintf(&b, "%s %s %s %s %+v %s\n", k.ID, k.Name, k.Hash, k.ExpiresAt, k.Assignments, k.UpdatedAt)
	}
	return b.String()
}

func stores(t *testing.T) map[string]llmproxy.Storage {
	sealer, err := secret.NewAESGCM(make([]byte, 32))
	must(t, err)
	lite, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "llm.db"), sqlite.Options{Sealer: sealer})
	must(t, err)
	t.Cleanup(func() { lite.Close() })
	return map[string]llmproxy.Storage{"memory": memory.New(), "sqlite": lite}
}

func lines(cs []config.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func TestApply(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a := &admin.Service{Storage: store}
			load := func(yaml string, extra map[string]string) *config.File {
				f, err := config.Parse([]byte(yaml), func(k string) string {
					if v, ok := extra[k]; ok {
						return v
					}
					return getenv(k)
				})
				must(t, err)
				return f
			}
			apply := func(f *config.File, opts config.Options) []string {
				t.Helper()
				cs, err := config.Apply(ctx, a, f, opts)
				must(t, err)
				out := strings.Join(lines(cs), "\n")
				for _, secret := range []string{env["GOOGLE_API_KEY"], env["OPENAI_API_KEY"], env["MOBILE_APP_KEY"], env["TESTER_KEY"], "sk-rotated-secret-1"} {
					if strings.Contains(out, secret) {
						t.Errorf("the changes show a secret:\n%s", out)
					}
				}
				return lines(cs)
			}

			// First apply creates everything.
			got := apply(load(v1, nil), config.Options{})
			want := []string{
				"+ connection google-ai: provider google",
				"+ connection openai: provider openai",
				"+ model gemini-flash on google-ai: remote gemini-1.5-flash",
				"+ model gpt on openai: remote gpt-4o-mini",
				"+ key Mobile-App: + connection google-ai tps=5 tokens=100000/24h",
				"+ key Tester: + model gpt on openai",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("first apply:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			k, err := a.KeyByIDOrName(ctx, "Mobile-App")
			must(t, err)
			if k.Hash != llmproxy.HashKey(env["MOBILE_APP_KEY"]) {
				t.Error("the key's secret is not the one from the environment")
			}
			c, err := a.ConnectionByIDOrName(ctx, "openai")
			must(t, err)
			if c.Credentials.APIKey != env["OPENAI_API_KEY"] || c.Endpoint != "https://api.openai.com/v1" {
				t.Errorf("connection stored as %+v", c)
			}

			// The same file again changes nothing.
			before := snapshot(t, store)
			if got := apply(load(v1, nil), config.Options{}); len(got) != 0 {
				t.Errorf("second apply changed: %q", got)
			}
			if after := snapshot(t, store); after != before {
				t.Errorf("second apply wrote:\n%s\n---\n%s", before, after)
			}

			// A dry run of a changed file shows its changes and writes
			// nothing.
			extra := map[string]string{"ROTATED_KEY": "sk-rotated-secret-1"}
			dry := apply(load(v2, extra), config.Options{DryRun: true})
			if after := snapshot(t, store); after != before {
				t.Errorf("a dry run wrote:\n%s\n---\n%s", before, after)
			}
			want = []string{
				`~ connection openai: endpoint "https://api.openai.com/v1" -> "https://proxy.example.com/v1"`,
				`~ model gemini-flash on google-ai: remote "gemini-1.5-flash" -> "gemini-2.0-flash"`,
				`~ key Mobile-App: ~ connection google-ai limits "tps=5 tokens=100000/24h" -> "tps=10 tokens=100000/24h"; + model gpt on openai`,
				`~ key Tester: secret changed`,
				`+ key Batch: + connection openai tokens=5000/lifetime; secret generated`,
			}
			if !reflect.DeepEqual(dry, want) {
				t.Errorf("dry run:\n%s\nwant\n%s", strings.Join(dry, "\n"), strings.Join(want, "\n"))
			}

			// Applying it changes exactly that.
			cs, err := config.Apply(ctx, a, load(v2, extra), config.Options{})
			must(t, err)
			if got := lines(cs); !reflect.DeepEqual(got, dry) {
				t.Errorf("apply:\n%s\nwant what the dry run said\n%s", strings.Join(got, "\n"), strings.Join(dry, "\n"))
			}
			if secret := cs[len(cs)-1].Secret; !strings.HasPrefix(secret, "sk-") {
				t.Errorf("the generated secret of Batch is not reported: %q", secret)
			} else if b, err := a.KeyByIDOrName(ctx, "Batch"); err != nil || b.Hash != llmproxy.HashKey(secret) {
				t.Errorf("Batch: %v, hash of the reported secret differs", err)
			}
			// Untouched records keep their UpdatedAt.
			beforeLines := strings.Split(before, "\n")
			after := snapshot(t, store)
			for _, l := range beforeLines {
				if strings.Contains(l, " google-ai google ") || strings.Contains(l, " gpt gpt-4o-mini ") {
					if !strings.Contains(after, l) {
						t.Errorf("an unchanged record was written: %s", l)
					}
				}
			}
			tester, err := a.KeyByIDOrName(ctx, "Tester")
			must(t, err)
			if tester.Hash != llmproxy.HashKey("sk-rotated-secret-1") {
				t.Error("Tester's secret was not rotated")
			}
			// And again: nothing. Batch has no secret in the file, so it
			// keeps the generated one.
			if got := apply(load(v2, extra), config.Options{}); len(got) != 0 {
				t.Errorf("re-apply of v2 changed: %q", got)
			}

			// Leaving a key out deletes it only with Prune.
			v3 := strings.Replace(v2, "  - name: Batch\n    assignments:\n      - connection: openai\n        token_limit: 5000\n", "", 1)
			if got := apply(load(v3, extra), config.Options{}); len(got) != 0 {
				t.Errorf("without prune: %q", got)
			}
			if got := apply(load(v3, extra), config.Options{Prune: true}); !reflect.DeepEqual(got, []string{"- key Batch"}) {
				t.Errorf("prune: %q", got)
			}
		})
	}
}

// TestApplyRefusesInvalidFiles: a file that fails anywhere writes
// nothing, even when its first records are valid.
func TestApplyRefusesInvalidFiles(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	a := &admin.Service{Storage: store}
	base := `
connections:
  - name: good
    provider: compatible
    endpoint: http://localhost:8000/v1
`
	for _, c := range []struct {
		name, yaml string
		kind       error
	}{
		{"unknown connection", base + "models:\n  - name: m\n    remote: r\n    connection: nope\n", llmproxy.ErrNotFound},
		{"no api key", "connections:\n  - name: o\n    provider: openai\n", llmproxy.ErrInvalid},
		{"burst without tps", base + "keys:\n  - name: k\n    key: sk-12345678\n    assignments:\n      - connection: good\n        burst: 3\n", llmproxy.ErrInvalid},
		{"short secret", base + "keys:\n  - name: k\n    key: short\n    assignments:\n      - connection: good\n", llmproxy.ErrInvalid},
		{"both targets", base + "keys:\n  - name: k\n    assignments:\n      - connection: good\n        model: m\n", llmproxy.ErrInvalid},
		{"unknown model", base + "keys:\n  - name: k\n    assignments:\n      - model: nope\n", llmproxy.ErrNotFound},
		{"bad window", base + "keys:\n  - name: k\n    assignments:\n      - connection: good\n        token_limit: 5\n        token_window: soon\n", llmproxy.ErrInvalid},
		{"duplicate", base + "  - name: good\n    provider: compatible\n    endpoint: http://x/v1\n", llmproxy.ErrInvalid},
		{"bad timeout", base + "    settings:\n      idle_timeout: 2 minutes\n", llmproxy.ErrInvalid},
		{"weight too large", base + "models:\n  - name: m\n    remote: r\n    connection: good\n    weight: 2000000\n", llmproxy.ErrInvalid},
	} {
		f, err := config.Parse([]byte(c.yaml), getenv)
		must(t, err)
		before := snapshot(t, store)
		_, err = config.Apply(ctx, a, f, config.Options{})
		if !errors.Is(err, c.kind) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.kind)
		}
		if after := snapshot(t, store); after != before {
			t.Errorf("%s: a refused file wrote:\n%s", c.name, after)
		}
	}
}

// TestApplyModelUpdateChecks: a model changed by a file is checked as
// "llm-proxy model update" checks it.
func TestApplyModelUpdateChecks(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	a := &admin.Service{Storage: store}
	file := func(weight int) *config.File {
		f, err := config.Parse([]byte(fmt.Sprintf(`
connections:
  - name: good
    provider: compatible
    endpoint: http://localhost:8000/v1
    settings:
      idle_timeout: 2m
models:
  - name: m
    remote: r
    connection: good
    weight: %d
`, weight)), getenv)
		must(t, err)
		return f
	}
	_, err := config.Apply(ctx, a, file(2), config.Options{})
	must(t, err)
	before := snapshot(t, store)
	if _, err := config.Apply(ctx, a, file(admin.MaxModelWeight+1), config.Options{}); !errors.Is(err, llmproxy.ErrInvalid) || !strings.Contains(err.Error(), "weight must be at most") {
		t.Errorf("err = %v, want the weight refused", err)
	}
	if after := snapshot(t, store); after != before {
		t.Errorf("a refused file wrote:\n%s", after)
	}
	cs, err := config.Apply(ctx, a, file(3), config.Options{})
	must(t, err)
	if got := strings.Join(lines(cs), "\n"); got != "~ model m on good: weight 2 -> 3" {
		t.Errorf("changes: %s", got)
	}
	c, err := a.ConnectionByIDOrName(ctx, "good")
	must(t, err)
	if c.Settings["idle_timeout"] != "2m" {
		t.Errorf("idle_timeout stored as %q, want it as written", c.Settings["idle_timeout"])
	}
}
