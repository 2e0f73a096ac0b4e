package admin_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

// adminStores are the backends the Admin tests run on: the reference
// in-memory store and a real SQLite file.
var adminStores = []struct {
	name string
	open func(t *testing.T) llmproxy.Storage
}{
	{"memory", func(t *testing.T) llmproxy.Storage { return memory.New() }},
	{"sqlite", func(t *testing.T) llmproxy.Storage {
		sealer, err := secret.NewAESGCM(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "admin.db"), sqlite.Options{Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

var standardKinds = []string{llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindAzure, llmproxy.KindBedrock, llmproxy.KindCompatible, llmproxy.KindAnthropic}

// forEachStore runs f on an Admin over each backend.
func forEachStore(t *testing.T, f func(t *testing.T, a *admin.Service)) {
	for _, st := range adminStores {
		t.Run(st.name, func(t *testing.T) {
			f(t, &admin.Service{Storage: st.open(t), Kinds: standardKinds})
		})
	}
}

// wantErr checks err against a sentinel (nil: no error) and, when msg is
// set, that its text contains msg.
func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	switch {
	case kind == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case kind != nil && !errors.Is(err, kind):
		t.Fatalf("error = %v, want %v", err, kind)
	case msg != "" && (err == nil || !strings.Contains(err.Error(), msg)):
		t.Fatalf("error = %v, want it to contain %q", err, msg)
	}
}

func mustConn(t *testing.T, a *admin.Service, name string) *llmproxy.Connection {
	t.Helper()
	c := &llmproxy.Connection{Name: name, Provider: "compatible", Endpoint: "http://127.0.0.1:1/v1", Credentials: llmproxy.Credentials{APIKey: "sk-upstream-" + name}}
	if err := a.AddConnection(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustModel(t *testing.T, a *admin.Service, name, connID string) *llmproxy.Model {
	t.Helper()
	m := &llmproxy.Model{Name: name, Remote: name + "-remote", ConnectionID: connID}
	if err := a.AddModel(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAdminAddConnection(t *testing.T) {
	creds := func(key string) llmproxy.Credentials { return llmproxy.Credentials{APIKey: key} }
	aws := llmproxy.Credentials{AccessKeyID: "AKIA", SecretAccessKey: "secret"}
	tests := []struct {
		name         string
		in           llmproxy.Connection
		kind         error
		msg          string
		wantProvider string
		wantEndpoint string
	}{
		{name: "guide google", in: llmproxy.Connection{Name: "google-ai", Provider: "google", Endpoint: "https://generativelanguage.googleapis.com/v1beta/openai", Credentials: creds("AIza...")},
			wantProvider: "google", wantEndpoint: admin.DefaultGoogleEndpoint},
		{name: "google default endpoint", in: llmproxy.Connection{Name: "g", Provider: "google", Credentials: creds("sk-upstream-secret")},
			wantProvider: "google", wantEndpoint: admin.DefaultGoogleEndpoint},
		{name: "anthropic default endpoint", in: llmproxy.Connection{Name: "claude", Provider: "anthropic", Credentials: creds("sk-ant-secret")},
			wantProvider: "anthropic", wantEndpoint: admin.DefaultAnthropicEndpoint},
		{name: "anthropic without key", in: llmproxy.Connection{Name: "x", Provider: "anthropic"}, kind: llmproxy.ErrInvalid, msg: "needs an API key"},
		{name: "openai default endpoint", in: llmproxy.Connection{Name: "o", Provider: "OpenAI ", Credentials: creds("sk-upstream-secret")},
			wantProvider: "openai", wantEndpoint: admin.DefaultOpenAIEndpoint},
		{name: "trailing slash trimmed", in: llmproxy.Connection{Name: "c", Provider: "compatible", Endpoint: "http://localhost:11434/v1/"},
			wantProvider: "compatible", wantEndpoint: "http://localhost:11434/v1"},
		{name: "openai-compatible alias", in: llmproxy.Connection{Name: "c", Provider: "openai-compatible", Endpoint: "http://localhost:8000/v1"},
			wantProvider: "compatible", wantEndpoint: "http://localhost:8000/v1"},
		{name: "azure", in: llmproxy.Connection{Name: "az", Provider: "azure", Endpoint: "https://r.openai.azure.com", Credentials: creds("sk-upstream-secret"), Settings: map[string]string{"api_version": "2024-10-21"}},
			wantProvider: "azure", wantEndpoint: "https://r.openai.azure.com"},
		{name: "bedrock region and static creds", in: llmproxy.Connection{Name: "b", Provider: "bedrock", Settings: map[string]string{"region": "us-east-1"}, Credentials: aws},
			wantProvider: "bedrock"},
		{name: "bedrock endpoint, default chain", in: llmproxy.Connection{Name: "b", Provider: "bedrock", Endpoint: "http://127.0.0.1:9/"},
			wantProvider: "bedrock", wantEndpoint: "http://127.0.0.1:9"},

		{name: "no name", in: llmproxy.Connection{Provider: "openai", Credentials: creds("sk-upstream-secret")}, kind: llmproxy.ErrInvalid, msg: "needs a name"},
		{name: "no provider", in: llmproxy.Connection{Name: "x"}, kind: llmproxy.ErrInvalid, msg: "needs a provider"},
		{name: "unknown provider", in: llmproxy.Connection{Name: "x", Provider: "cohere"}, kind: llmproxy.ErrInvalid, msg: `unknown provider "cohere"`},
		{name: "openai without key", in: llmproxy.Connection{Name: "x", Provider: "openai"}, kind: llmproxy.ErrInvalid, msg: "needs an API key"},
		{name: "compatible without endpoint", in: llmproxy.Connection{Name: "x", Provider: "compatible"}, kind: llmproxy.ErrInvalid, msg: "needs an endpoint"},
		{name: "bad endpoint", in: llmproxy.Connection{Name: "x", Provider: "compatible", Endpoint: "localhost:8000"}, kind: llmproxy.ErrInvalid, msg: "not an http(s) URL"},
		{name: "endpoint with userinfo", in: llmproxy.Connection{Name: "x", Provider: "compatible", Endpoint: "https://u:p@h/v1"}, kind: llmproxy.ErrInvalid, msg: "must not contain credentials"},
		{name: "azure without endpoint", in: llmproxy.Connection{Name: "x", Provider: "azure", Credentials: creds("sk-upstream-secret")}, kind: llmproxy.ErrInvalid, msg: "needs an endpoint"},
		{name: "azure without key", in: llmproxy.Connection{Name: "x", Provider: "azure", Endpoint: "https://r.openai.azure.com"}, kind: llmproxy.ErrInvalid, msg: "needs an API key"},
		{name: "bedrock without region", in: llmproxy.Connection{Name: "x", Provider: "bedrock"}, kind: llmproxy.ErrInvalid, msg: "needs a region"},
		{name: "bedrock half creds", in: llmproxy.Connection{Name: "x", Provider: "bedrock", Settings: map[string]string{"region": "eu-west-1"}, Credentials: llmproxy.Credentials{AccessKeyID: "AKIA"}}, kind: llmproxy.ErrInvalid, msg: "both an access key ID and a secret"},
		{name: "bedrock token alone", in: llmproxy.Connection{Name: "x", Provider: "bedrock", Settings: map[string]string{"region": "eu-west-1"}, Credentials: llmproxy.Credentials{SessionToken: "t"}}, kind: llmproxy.ErrInvalid, msg: "session token without"},
		{name: "bedrock api key", in: llmproxy.Connection{Name: "x", Provider: "bedrock", Settings: map[string]string{"region": "eu-west-1"}, Credentials: creds("sk-upstream-secret")}, kind: llmproxy.ErrInvalid, msg: "API key is not used by bedrock"},
		{name: "region on openai", in: llmproxy.Connection{Name: "x", Provider: "openai", Credentials: creds("sk-upstream-secret"), Settings: map[string]string{"region": "us"}}, kind: llmproxy.ErrInvalid, msg: "region is not used by openai"},
		{name: "api version on google", in: llmproxy.Connection{Name: "x", Provider: "google", Credentials: creds("sk-upstream-secret"), Settings: map[string]string{"api_version": "v"}}, kind: llmproxy.ErrInvalid, msg: "api_version is not used by google"},
		{name: "timeouts", in: llmproxy.Connection{Name: "t", Provider: "compatible", Endpoint: "http://h", Settings: map[string]string{"first_byte_timeout": "30s", "idle_timeout": "1h30m"}},
			wantProvider: "compatible", wantEndpoint: "http://h"},
		{name: "bad timeout", in: llmproxy.Connection{Name: "x", Provider: "compatible", Endpoint: "http://h", Settings: map[string]string{"idle_timeout": "2 minutes"}}, kind: llmproxy.ErrInvalid, msg: `idle_timeout "2 minutes" is not a positive duration`},
		{name: "zero timeout", in: llmproxy.Connection{Name: "x", Provider: "compatible", Endpoint: "http://h", Settings: map[string]string{"first_byte_timeout": "0"}}, kind: llmproxy.ErrInvalid, msg: `first_byte_timeout "0" is not a positive duration`},
		{name: "aws creds on compatible", in: llmproxy.Connection{Name: "x", Provider: "compatible", Endpoint: "http://h", Credentials: aws}, kind: llmproxy.ErrInvalid, msg: "AWS access key is not used"},
	}
	forEachStore(t, func(t *testing.T, a *admin.Service) {
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := tt.in
				c.Settings = cloneMap(tt.in.Settings)
				c.Name = strings.TrimSpace(c.Name)
				if c.Name != "" {
					c.Name += "-" + strings.ReplaceAll(tt.name, " ", "-") // unique per case
				}
				err := a.AddConnection(ctx, &c)
				wantErr(t, err, tt.kind, tt.msg)
				if err != nil {
					if k := c.Credentials.APIKey + c.Credentials.SecretAccessKey; k != "" && strings.Contains(err.Error(), k) {
						t.Errorf("error %q shows a secret", err)
					}
					return
				}
				got, err := a.ConnectionByIDOrName(ctx, c.Name)
				if err != nil {
					t.Fatal(err)
				}
				if got.ID != c.ID || got.Provider != tt.wantProvider || got.Endpoint != tt.wantEndpoint {
					t.Errorf("stored %s %q %q, want %s %q %q", got.ID, got.Provider, got.Endpoint, c.ID, tt.wantProvider, tt.wantEndpoint)
				}
				if got.Credentials != tt.in.Credentials {
					t.Errorf("credentials did not round-trip: %v", got.Credentials.Set())
				}
			})
		}
		t.Run("invalid writes nothing", func(t *testing.T) {
			cs, err := a.ListConnections(ctx, llmproxy.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if strings.HasPrefix(c.Name, "x-") {
					t.Errorf("refused connection %q was stored", c.Name)
				}
			}
		})
		t.Run("duplicate name", func(t *testing.T) {
			mustConn(t, a, "dup")
			c := &llmproxy.Connection{Name: "dup", Provider: "compatible", Endpoint: "http://h"}
			err := a.AddConnection(ctx, c)
			wantErr(t, err, llmproxy.ErrAlreadyExists, `connection "dup" already exists`)
		})
	})
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestAdminKinds(t *testing.T) {
	a := &admin.Service{Storage: memory.New(), Kinds: []string{"openai", "compatible"}}
	err := a.AddConnection(context.Background(), &llmproxy.Connection{Name: "b", Provider: "bedrock", Settings: map[string]string{"region": "us-east-1"}})
	wantErr(t, err, llmproxy.ErrInvalid, `unknown provider "bedrock" (known: compatible, openai)`)
	// Kinds nil: a kind of one's own is accepted (e.g. a custom provider).
	a.Kinds = nil
	err = a.AddConnection(context.Background(), &llmproxy.Connection{Name: "mine", Provider: "mykind"})
	wantErr(t, err, nil, "")
}

func TestAdminModels(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *admin.Service) {
		ctx := context.Background()
		c := mustConn(t, a, "google-ai")
		other := mustConn(t, a, "other")

		// By connection name, stored by ID.
		m := &llmproxy.Model{Name: " gemini-flash ", Remote: "gemini-1.5-flash", ConnectionID: "google-ai"}
		wantErr(t, a.AddModel(ctx, m), nil, "")
		if m.ConnectionID != c.ID || m.Name != "gemini-flash" || m.ID == "" {
			t.Fatalf("stored %+v", m)
		}
		// The same alias on another connection is fine (weighted spread).
		wantErr(t, a.AddModel(ctx, &llmproxy.Model{Name: "gemini-flash", Remote: "x", ConnectionID: other.ID, Weight: 3}), nil, "")

		for _, tt := range []struct {
			name string
			m    llmproxy.Model
			kind error
			msg  string
		}{
			{"duplicate", llmproxy.Model{Name: "gemini-flash", Remote: "y", ConnectionID: c.ID}, llmproxy.ErrAlreadyExists, `model "gemini-flash" already exists on connection "google-ai"`},
			{"unknown connection", llmproxy.Model{Name: "a", Remote: "b", ConnectionID: "conn_nope"}, llmproxy.ErrNotFound, `connection "conn_nope" not found`},
			{"no remote", llmproxy.Model{Name: "a", ConnectionID: c.ID}, llmproxy.ErrInvalid, "needs a remote model name"},
			{"no name", llmproxy.Model{Remote: "a", ConnectionID: c.ID}, llmproxy.ErrInvalid, "needs a name"},
			{"no connection", llmproxy.Model{Name: "a", Remote: "b"}, llmproxy.ErrInvalid, "needs a connection"},
			{"negative weight", llmproxy.Model{Name: "a", Remote: "b", ConnectionID: c.ID, Weight: -1}, llmproxy.ErrInvalid, "weight"},
			{"weight too large", llmproxy.Model{Name: "a", Remote: "b", ConnectionID: c.ID, Weight: admin.MaxModelWeight + 1}, llmproxy.ErrInvalid, "weight must be at most"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				m := tt.m
				wantErr(t, a.AddModel(ctx, &m), tt.kind, tt.msg)
			})
		}
		ms, err := a.ListModels(ctx, llmproxy.ListOptions{})
		if err != nil || len(ms) != 2 {
			t.Fatalf("ListModels = %d models, %v; want 2", len(ms), err)
		}

		// A connection with models cannot go; the error names them.
		_, err = a.DeleteConnection(ctx, "google-ai")
		wantErr(t, err, llmproxy.ErrInUse, "gemini-flash")
		// A model assigned to a key cannot go.
		if _, err := a.AddKey(ctx, &llmproxy.VirtualKey{Name: "k", Assignments: []llmproxy.Assignment{{ModelID: m.ID}}}, ""); err != nil {
			t.Fatal(err)
		}
		_, err = a.DeleteModel(ctx, m.ID)
		wantErr(t, err, llmproxy.ErrInUse, `assigned to keys: k (`)
		_, err = a.DeleteModel(ctx, "model_nope")
		wantErr(t, err, llmproxy.ErrNotFound, `model "model_nope" not found`)
		if _, err := a.DeleteKey(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DeleteModel(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DeleteConnection(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err = a.ConnectionByIDOrName(ctx, c.ID)
		wantErr(t, err, llmproxy.ErrNotFound, "not found")
	})
}

func TestAdminAddKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *admin.Service) {
		ctx := context.Background()
		c := mustConn(t, a, "c")
		m := mustModel(t, a, "gemini-flash", c.ID)

		// A chosen secret, as in the guide.
		k := &llmproxy.VirtualKey{Name: "Mobile-App", Assignments: []llmproxy.Assignment{{ConnectionID: c.ID}}}
		secret, err := a.AddKey(ctx, k, "sk-proxy-123")
		wantErr(t, err, nil, "")
		if secret != "sk-proxy-123" || k.Hash != llmproxy.HashKey("sk-proxy-123") || k.Prefix != "sk-p" || k.ID == "" {
			t.Fatalf("AddKey = %q, key %+v", secret, k)
		}
		// A generated secret, returned once.
		g := &llmproxy.VirtualKey{Name: "gen", Assignments: []llmproxy.Assignment{{ModelID: m.ID, TPS: 5, TokenLimit: 1000, TokenWindow: 24 * time.Hour}}}
		secret, err = a.AddKey(ctx, g, "")
		wantErr(t, err, nil, "")
		if !strings.HasPrefix(secret, "sk-") || len(secret) < 35 || g.Hash != llmproxy.HashKey(secret) {
			t.Fatalf("generated secret %q, hash %s", secret, g.Hash)
		}
		stored, err := a.KeyByIDOrName(ctx, "gen")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Hash == secret || stored.Prefix == secret || len(stored.Assignments) != 1 || stored.Assignments[0].TPS != 5 || stored.Assignments[0].TokenWindow != 24*time.Hour {
			t.Fatalf("stored %+v", stored)
		}

		past := time.Now().Add(-time.Hour)
		for _, tt := range []struct {
			name   string
			k      llmproxy.VirtualKey
			secret string
			kind   error
			msg    string
		}{
			{"duplicate name", llmproxy.VirtualKey{Name: "Mobile-App"}, "sk-other-1", llmproxy.ErrAlreadyExists, `key "Mobile-App" already exists`},
			{"duplicate secret", llmproxy.VirtualKey{Name: "n1"}, "sk-proxy-123", llmproxy.ErrAlreadyExists, "another key already has this secret"},
			{"short secret", llmproxy.VirtualKey{Name: "n2"}, "sk-1", llmproxy.ErrInvalid, "at least 8 characters"},
			{"secret with space", llmproxy.VirtualKey{Name: "n3"}, "sk proxy 123", llmproxy.ErrInvalid, "printable ASCII"},
			{"no name", llmproxy.VirtualKey{}, "", llmproxy.ErrInvalid, "needs a name"},
			{"unknown model", llmproxy.VirtualKey{Name: "n4", Assignments: []llmproxy.Assignment{{ConnectionID: c.ID}, {ModelID: "model_nope"}}}, "", llmproxy.ErrNotFound, `model "model_nope" not found`},
			{"unknown connection", llmproxy.VirtualKey{Name: "n5", Assignments: []llmproxy.Assignment{{ConnectionID: "nope"}}}, "", llmproxy.ErrNotFound, `connection "nope" not found`},
			{"both targets", llmproxy.VirtualKey{Name: "n6", Assignments: []llmproxy.Assignment{{ConnectionID: c.ID, ModelID: m.ID}}}, "", llmproxy.ErrInvalid, "not both"},
			{"twice", llmproxy.VirtualKey{Name: "n7", Assignments: []llmproxy.Assignment{{ModelID: m.ID}, {ModelID: m.ID}}}, "", llmproxy.ErrInvalid, "twice"},
			{"negative tps", llmproxy.VirtualKey{Name: "n8", Assignments: []llmproxy.Assignment{{ModelID: m.ID, TPS: -1}}}, "", llmproxy.ErrInvalid, "tps"},
			{"burst without tps", llmproxy.VirtualKey{Name: "n9", Assignments: []llmproxy.Assignment{{ModelID: m.ID, Burst: 3}}}, "", llmproxy.ErrInvalid, "burst needs a tps"},
			{"window without limit", llmproxy.VirtualKey{Name: "n10", Assignments: []llmproxy.Assignment{{ModelID: m.ID, TokenWindow: time.Hour}}}, "", llmproxy.ErrInvalid, "token window needs a token limit"},
			{"expired", llmproxy.VirtualKey{Name: "n11", ExpiresAt: past}, "", llmproxy.ErrInvalid, "expire in the past"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				k := tt.k
				got, err := a.AddKey(ctx, &k, tt.secret)
				wantErr(t, err, tt.kind, tt.msg)
				if got != "" {
					t.Errorf("a refused key returned a secret")
				}
				if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
					t.Errorf("error %q shows the secret", err)
				}
			})
		}
		keys, err := a.ListKeys(ctx, llmproxy.ListOptions{})
		if err != nil || len(keys) != 2 {
			t.Fatalf("ListKeys = %d keys, %v; want the 2 accepted ones only", len(keys), err)
		}
	})
}

func TestAdminAssignments(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *admin.Service) {
		ctx := context.Background()
		c := mustConn(t, a, "c")
		m1 := mustModel(t, a, "m1", c.ID)
		m2 := mustModel(t, a, "m2", c.ID)
		k := &llmproxy.VirtualKey{Name: "k", Assignments: []llmproxy.Assignment{{ModelID: m1.ID}}}
		if _, err := a.AddKey(ctx, k, ""); err != nil {
			t.Fatal(err)
		}

		// assign by connection name, with limits
		got, err := a.AssignKey(ctx, k.ID, llmproxy.Assignment{ConnectionID: "c", TPS: 5, TokenLimit: 100000, TokenWindow: 24 * time.Hour})
		wantErr(t, err, nil, "")
		if len(got.Assignments) != 2 || got.Assignments[1].ConnectionID != c.ID || got.Assignments[1].TPS != 5 {
			t.Fatalf("after assign: %+v", got.Assignments)
		}
		_, err = a.AssignKey(ctx, "k", llmproxy.Assignment{ModelID: m1.ID})
		wantErr(t, err, llmproxy.ErrAlreadyExists, "already assigned model")
		_, err = a.AssignKey(ctx, "k", llmproxy.Assignment{ModelID: "model_nope"})
		wantErr(t, err, llmproxy.ErrNotFound, "not found")
		_, err = a.AssignKey(ctx, "key_nope", llmproxy.Assignment{ModelID: m2.ID})
		wantErr(t, err, llmproxy.ErrNotFound, `key "key_nope" not found`)

		// update one assignment, then all
		tps, burst := 2.5, 4
		got, err = a.UpdateKey(ctx, "k", admin.KeyUpdate{ModelID: m1.ID, Limits: admin.LimitChange{TPS: &tps, Burst: &burst}})
		wantErr(t, err, nil, "")
		if a0, a1 := got.Assignments[0], got.Assignments[1]; a0.TPS != 2.5 || a0.Burst != 4 || a1.TPS != 5 || a1.TokenLimit != 100000 {
			t.Fatalf("after update one: %+v", got.Assignments)
		}
		var limit int64 = 500
		got, err = a.UpdateKey(ctx, k.ID, admin.KeyUpdate{Limits: admin.LimitChange{TokenLimit: &limit}})
		wantErr(t, err, nil, "")
		for _, as := range got.Assignments {
			if as.TokenLimit != 500 {
				t.Fatalf("after update all: %+v", got.Assignments)
			}
		}
		if as := got.Assignments[1]; as.TokenWindow != 24*time.Hour || as.TPS != 5 {
			t.Fatalf("update changed a limit it was not given: %+v", as)
		}
		// expiry: set, then remove
		exp := time.Now().Add(time.Hour).Truncate(time.Second)
		got, err = a.UpdateKey(ctx, k.ID, admin.KeyUpdate{ExpiresAt: &exp})
		wantErr(t, err, nil, "")
		if !got.ExpiresAt.Equal(exp) {
			t.Fatalf("UpdateKey returned expiry %v, want %v", got.ExpiresAt, exp)
		}
		if stored, _ := a.KeyByIDOrName(ctx, k.ID); !stored.ExpiresAt.Equal(exp) {
			t.Fatalf("expiry stored %v, want %v", stored.ExpiresAt, exp)
		}
		never := time.Time{}
		if _, err := a.UpdateKey(ctx, k.ID, admin.KeyUpdate{ExpiresAt: &never}); err != nil {
			t.Fatal(err)
		}
		if stored, _ := a.KeyByIDOrName(ctx, k.ID); !stored.ExpiresAt.IsZero() {
			t.Fatalf("expiry not removed: %v", stored.ExpiresAt)
		}

		zero := 0.0
		for _, tt := range []struct {
			name string
			u    admin.KeyUpdate
			kind error
			msg  string
		}{
			{"nothing", admin.KeyUpdate{}, llmproxy.ErrInvalid, "nothing to change"},
			{"not assigned", admin.KeyUpdate{ModelID: m2.ID, Limits: admin.LimitChange{TPS: &tps}}, llmproxy.ErrNotFound, "is not assigned model"},
			{"burst left without tps", admin.KeyUpdate{ModelID: m1.ID, Limits: admin.LimitChange{TPS: &zero}}, llmproxy.ErrInvalid, "burst needs a tps"},
			{"past expiry", admin.KeyUpdate{ExpiresAt: func() *time.Time { t := time.Now().Add(-time.Minute); return &t }()}, llmproxy.ErrInvalid, "in the past"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before, _ := a.KeyByIDOrName(ctx, k.ID)
				_, err := a.UpdateKey(ctx, k.ID, tt.u)
				wantErr(t, err, tt.kind, tt.msg)
				after, _ := a.KeyByIDOrName(ctx, k.ID)
				if !after.UpdatedAt.Equal(before.UpdatedAt) {
					t.Errorf("a refused update wrote the key")
				}
			})
		}

		// unassign by connection name
		got, err = a.UnassignKey(ctx, "k", "c", "")
		wantErr(t, err, nil, "")
		if len(got.Assignments) != 1 || got.Assignments[0].ModelID != m1.ID {
			t.Fatalf("after unassign: %+v", got.Assignments)
		}
		_, err = a.UnassignKey(ctx, "k", "c", "")
		wantErr(t, err, llmproxy.ErrNotFound, "is not assigned connection c")
		_, err = a.UnassignKey(ctx, "k", "", "")
		wantErr(t, err, llmproxy.ErrInvalid, "name a connection ID or a model ID")

		if _, err := a.DeleteKey(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		_, err = a.DeleteKey(ctx, "k")
		wantErr(t, err, llmproxy.ErrNotFound, `key "k" not found`)
	})
}

func TestAdminUsage(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *admin.Service) {
		ctx := context.Background()
		c := mustConn(t, a, "c")
		m := mustModel(t, a, "m", c.ID)
		k := &llmproxy.VirtualKey{Name: "k", Assignments: []llmproxy.Assignment{{ModelID: m.ID}}}
		if _, err := a.AddKey(ctx, k, ""); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		recs := []llmproxy.UsageRecord{
			{ID: "u1", Time: now.Add(-48 * time.Hour), KeyID: k.ID, Model: "m", PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Status: 200},
			{ID: "u2", Time: now.Add(-time.Hour), KeyID: k.ID, Model: "m", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Status: 200},
			{ID: "u3", Time: now.Add(-time.Minute), KeyID: "", Model: "m", PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, Status: 200},
		}
		if err := a.Storage.AppendUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		sums, err := a.Usage(ctx, llmproxy.UsageFilter{KeyID: "k", Since: now.Add(-24 * time.Hour)})
		wantErr(t, err, nil, "")
		if len(sums) != 1 || sums[0].KeyID != k.ID || sums[0].Requests != 1 || sums[0].TotalTokens != 15 {
			t.Fatalf("usage of key k in 24h = %+v", sums)
		}
		sums, err = a.Usage(ctx, llmproxy.UsageFilter{})
		wantErr(t, err, nil, "")
		var total int64
		for _, s := range sums {
			total += s.TotalTokens
		}
		if total != 24 {
			t.Fatalf("all usage = %+v, want 24 tokens", sums)
		}
		_, err = a.Usage(ctx, llmproxy.UsageFilter{Since: now, Until: now.Add(-time.Hour)})
		wantErr(t, err, llmproxy.ErrInvalid, "since must be before until")
	})
}

func TestAdminProvidersCheck(t *testing.T) {
	ctx := context.Background()
	var built []string
	a := &admin.Service{Storage: memory.New(), Providers: map[string]llmproxy.NewProviderFunc{
		"compatible": func(c llmproxy.Connection, _ llmproxy.ProviderOptions) (llmproxy.Provider, error) {
			built = append(built, c.Name)
			if c.Settings["mode"] == "bad" {
				return nil, fmt.Errorf("%w: compatible connection %q: mode %q is not supported", llmproxy.ErrInvalid, c.Name, "bad")
			}
			return nil, nil
		},
	}}
	err := a.AddConnection(ctx, &llmproxy.Connection{Name: "bad", Provider: "compatible", Endpoint: "http://h", Settings: map[string]string{"mode": "bad"}})
	wantErr(t, err, llmproxy.ErrInvalid, "")
	if err.Error() != `compatible connection "bad": mode "bad" is not supported` {
		t.Errorf("message %q", err)
	}
	wantErr(t, a.AddConnection(ctx, &llmproxy.Connection{Name: "good", Provider: "compatible", Endpoint: "http://h"}), nil, "")
	if strings.Join(built, ",") != "bad,good" {
		t.Errorf("providers built for %v", built)
	}
	// An update is checked the same way, and a refused one writes nothing.
	_, err = a.UpdateConnection(ctx, "good", admin.ConnectionUpdate{Name: ptr("renamed"), Settings: map[string]string{"mode": "bad"}})
	wantErr(t, err, llmproxy.ErrInvalid, `compatible connection "renamed": mode "bad" is not supported`)
	if _, err := a.ConnectionByIDOrName(ctx, "good"); err != nil {
		t.Errorf("a refused update changed the connection: %v", err)
	}
	_, err = a.UpdateConnection(ctx, "good", admin.ConnectionUpdate{Settings: map[string]string{"mode": "fine"}})
	wantErr(t, err, nil, "")
	if strings.Join(built, ",") != "bad,good,renamed,good" {
		t.Errorf("providers built for %v", built)
	}
	if cs, _ := a.ListConnections(ctx, llmproxy.ListOptions{}); len(cs) != 1 {
		t.Errorf("%d connections stored, want only the good one", len(cs))
	}
}

// eachFresh runs f once per case and backend, each on a new, empty store,
// so that a case's success does not become the next one's fixture.
func eachFresh(t *testing.T, names []string, f func(t *testing.T, i int, a *admin.Service)) {
	for _, st := range adminStores {
		t.Run(st.name, func(t *testing.T) {
			for i, name := range names {
				t.Run(name, func(t *testing.T) {
					f(t, i, &admin.Service{Storage: st.open(t), Kinds: standardKinds})
				})
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAdminUpdateConnection(t *testing.T) {
	// The fixture's secrets: no error may show one.
	const (
		googleKey  = "AIza-old-secret-1"
		azureKey   = "azure-old-secret-1"
		localKey   = "local-old-secret-1"
		awsSecret  = "aws-old-secret-1"
		awsToken   = "aws-old-token-1"
		newSecret  = "new-secret-value-1"
		newSecret2 = "new-secret-value-2"
	)
	fixture := []llmproxy.Connection{
		{Name: "google-ai", Provider: "google", Credentials: llmproxy.Credentials{APIKey: googleKey}},
		{Name: "az", Provider: "azure", Endpoint: "https://r.openai.azure.com", Credentials: llmproxy.Credentials{APIKey: azureKey},
			Settings: map[string]string{"api_version": "2024-10-21", "idle_timeout": "5m"}},
		{Name: "claude", Provider: "bedrock", Settings: map[string]string{"region": "us-east-1"},
			Credentials: llmproxy.Credentials{AccessKeyID: "AKIAOLD", SecretAccessKey: awsSecret, SessionToken: awsToken}},
		{Name: "claude-chain", Provider: "bedrock", Settings: map[string]string{"region": "eu-west-1"}},
		{Name: "local", Provider: "compatible", Endpoint: "http://127.0.0.1:1/v1", Credentials: llmproxy.Credentials{APIKey: localKey}},
	}
	tests := []struct {
		name   string
		target string
		u      admin.ConnectionUpdate
		kind   error
		msg    string
		check  func(t *testing.T, c *llmproxy.Connection)
	}{
		{name: "rotate api key", target: "google-ai", u: admin.ConnectionUpdate{APIKey: ptr(newSecret)},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Credentials.APIKey != newSecret || c.Endpoint != admin.DefaultGoogleEndpoint || c.Name != "google-ai" {
					t.Errorf("got %s %q %v", c.Name, c.Endpoint, c.Credentials.Set())
				}
			}},
		{name: "rename", target: "google-ai", u: admin.ConnectionUpdate{Name: ptr(" google-main ")},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Name != "google-main" || c.Credentials.APIKey != googleKey {
					t.Errorf("got %q, key kept %v", c.Name, c.Credentials.APIKey == googleKey)
				}
			}},
		{name: "rename to itself", target: "google-ai", u: admin.ConnectionUpdate{Name: ptr("google-ai")}},
		{name: "endpoint", target: "local", u: admin.ConnectionUpdate{Endpoint: ptr(" http://127.0.0.1:2/v1/ ")},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Endpoint != "http://127.0.0.1:2/v1" || c.Credentials.APIKey != localKey {
					t.Errorf("got %q", c.Endpoint)
				}
			}},
		{name: "endpoint back to the default", target: "google-ai", u: admin.ConnectionUpdate{Endpoint: ptr("")},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Endpoint != admin.DefaultGoogleEndpoint {
					t.Errorf("got %q", c.Endpoint)
				}
			}},
		{name: "timeouts", target: "local", u: admin.ConnectionUpdate{Settings: map[string]string{llmproxy.SettingFirstByteTimeout: "30s", llmproxy.SettingIdleTimeout: " 2m "}},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if fmt.Sprint(c.Settings) != "map[first_byte_timeout:30s idle_timeout:2m]" {
					t.Errorf("settings %v", c.Settings)
				}
			}},
		{name: "a setting removed, the others kept", target: "az", u: admin.ConnectionUpdate{Settings: map[string]string{"idle_timeout": ""}},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if fmt.Sprint(c.Settings) != "map[api_version:2024-10-21]" {
					t.Errorf("settings %v", c.Settings)
				}
			}},
		{name: "the last setting removed", target: "claude-chain", u: admin.ConnectionUpdate{Endpoint: ptr("https://vpce-1.example.com"), Settings: map[string]string{"region": ""}},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Settings != nil || c.Endpoint != "https://vpce-1.example.com" {
					t.Errorf("settings %v, endpoint %q", c.Settings, c.Endpoint)
				}
			}},
		{name: "its own provider given", target: "local", u: admin.ConnectionUpdate{Provider: ptr(" OpenAI-Compatible"), APIKey: ptr(newSecret)}},
		{name: "new AWS pair drops the old session token", target: "claude", u: admin.ConnectionUpdate{AccessKeyID: ptr("AKIANEW"), SecretAccessKey: ptr(newSecret)},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Credentials != (llmproxy.Credentials{AccessKeyID: "AKIANEW", SecretAccessKey: newSecret}) {
					t.Errorf("credentials %v", c.Credentials.Set())
				}
			}},
		{name: "new AWS pair and token", target: "claude", u: admin.ConnectionUpdate{AccessKeyID: ptr("AKIANEW"), SecretAccessKey: ptr(newSecret), SessionToken: ptr(newSecret2)},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if c.Credentials != (llmproxy.Credentials{AccessKeyID: "AKIANEW", SecretAccessKey: newSecret, SessionToken: newSecret2}) {
					t.Errorf("credentials %v", c.Credentials.Set())
				}
			}},
		{name: "back to the AWS default chain", target: "claude", u: admin.ConnectionUpdate{AccessKeyID: ptr(""), SecretAccessKey: ptr("")},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if !c.Credentials.IsZero() || c.Settings["region"] != "us-east-1" {
					t.Errorf("credentials %v, settings %v", c.Credentials.Set(), c.Settings)
				}
			}},
		{name: "optional api key removed", target: "local", u: admin.ConnectionUpdate{APIKey: ptr("")},
			check: func(t *testing.T, c *llmproxy.Connection) {
				if !c.Credentials.IsZero() {
					t.Errorf("credentials %v", c.Credentials.Set())
				}
			}},

		{name: "unknown connection", target: "nope", u: admin.ConnectionUpdate{APIKey: ptr(newSecret)}, kind: llmproxy.ErrNotFound, msg: `connection "nope" not found`},
		{name: "nothing to change", target: "local", kind: llmproxy.ErrInvalid, msg: "nothing to change"},
		{name: "another provider", target: "google-ai", u: admin.ConnectionUpdate{Provider: ptr("openai")}, kind: llmproxy.ErrInvalid,
			msg: `connection "google-ai" is a google connection and cannot become "openai": a provider kind does not change; delete the connection and add it again`},
		{name: "rename to a taken name", target: "local", u: admin.ConnectionUpdate{Name: ptr("az")}, kind: llmproxy.ErrAlreadyExists, msg: `connection "az" already exists`},
		{name: "empty name", target: "local", u: admin.ConnectionUpdate{Name: ptr(" ")}, kind: llmproxy.ErrInvalid, msg: "needs a name"},
		{name: "region on azure", target: "az", u: admin.ConnectionUpdate{Settings: map[string]string{"region": "us-east-1"}}, kind: llmproxy.ErrInvalid, msg: "region is not used by azure connections"},
		{name: "api key on bedrock", target: "claude", u: admin.ConnectionUpdate{APIKey: ptr(newSecret)}, kind: llmproxy.ErrInvalid, msg: "an API key is not used by bedrock connections"},
		{name: "required api key removed", target: "google-ai", u: admin.ConnectionUpdate{APIKey: ptr("")}, kind: llmproxy.ErrInvalid, msg: `google connection "google-ai" needs an API key`},
		{name: "required endpoint removed", target: "local", u: admin.ConnectionUpdate{Endpoint: ptr("")}, kind: llmproxy.ErrInvalid, msg: "needs an endpoint"},
		{name: "required region removed", target: "claude-chain", u: admin.ConnectionUpdate{Settings: map[string]string{"region": ""}}, kind: llmproxy.ErrInvalid, msg: "needs a region"},
		{name: "bad endpoint", target: "local", u: admin.ConnectionUpdate{Endpoint: ptr("localhost:1")}, kind: llmproxy.ErrInvalid, msg: "not an http(s) URL"},
		{name: "endpoint with credentials", target: "local", u: admin.ConnectionUpdate{Endpoint: ptr("http://u:" + newSecret + "@h/v1")}, kind: llmproxy.ErrInvalid, msg: "must not contain credentials"},
		{name: "not a duration", target: "local", u: admin.ConnectionUpdate{Settings: map[string]string{"idle_timeout": "soon"}}, kind: llmproxy.ErrInvalid,
			msg: `idle_timeout "soon" is not a positive duration such as 30s, 2m or 1h30m`},
		{name: "zero duration", target: "local", u: admin.ConnectionUpdate{Settings: map[string]string{"first_byte_timeout": "0s"}}, kind: llmproxy.ErrInvalid, msg: "not a positive duration"},
		{name: "negative duration", target: "local", u: admin.ConnectionUpdate{Settings: map[string]string{"first_byte_timeout": "-1m"}}, kind: llmproxy.ErrInvalid, msg: "not a positive duration"},
		{name: "days are not a gateway duration", target: "local", u: admin.ConnectionUpdate{Settings: map[string]string{"idle_timeout": "1d"}}, kind: llmproxy.ErrInvalid, msg: "not a positive duration"},
		{name: "bad setting name", target: "local", u: admin.ConnectionUpdate{Settings: map[string]string{"idle timeout": "2m"}}, kind: llmproxy.ErrInvalid, msg: "is not a setting name"},
		{name: "half an AWS pair", target: "claude", u: admin.ConnectionUpdate{AccessKeyID: ptr("AKIANEW")}, kind: llmproxy.ErrInvalid, msg: "change the AWS access key ID and secret access key together"},
		{name: "session token without a pair", target: "claude-chain", u: admin.ConnectionUpdate{SessionToken: ptr(newSecret)}, kind: llmproxy.ErrInvalid, msg: "session token without"},
		{name: "AWS keys on compatible", target: "local", u: admin.ConnectionUpdate{AccessKeyID: ptr("AKIANEW"), SecretAccessKey: ptr(newSecret)}, kind: llmproxy.ErrInvalid, msg: "AWS access key is not used"},
	}
	names := make([]string, len(tests))
	for i := range tests {
		names[i] = tests[i].name
	}
	eachFresh(t, names, func(t *testing.T, i int, a *admin.Service) {
		tt := tests[i]
		ctx := context.Background()
		for _, c := range fixture {
			c.Settings = cloneMap(c.Settings)
			if err := a.AddConnection(ctx, &c); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := a.ListConnections(ctx, llmproxy.ListOptions{})
		version, err := a.Storage.ConfigVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.UpdateConnection(ctx, tt.target, tt.u)
		wantErr(t, err, tt.kind, tt.msg)
		after, _ := a.ListConnections(ctx, llmproxy.ListOptions{})
		if err != nil {
			for _, s := range []string{googleKey, azureKey, localKey, awsSecret, awsToken, newSecret, newSecret2} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows a secret", err)
				}
			}
			if dumpConnections(before) != dumpConnections(after) {
				t.Errorf("a refused update changed the connections:\n%s\n%s", dumpConnections(before), dumpConnections(after))
			}
			return
		}
		stored, err := a.ConnectionByIDOrName(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Name != got.Name || stored.Endpoint != got.Endpoint || stored.Credentials != got.Credentials || fmt.Sprint(stored.Settings) != fmt.Sprint(got.Settings) {
			t.Errorf("returned %+v, stored %+v", got, stored)
		}
		if tt.check != nil {
			tt.check(t, stored)
		}
		if v, _ := a.Storage.ConfigVersion(ctx); v == version {
			t.Errorf("the configuration version did not change: running Gateways would not see the update")
		}
		if len(after) != len(before) {
			t.Errorf("%d connections, want %d", len(after), len(before))
		}
	})
}

// dumpConnections writes cs in full, secrets included (Credentials'
// own formatting redacts them), for before-and-after comparisons.
func dumpConnections(cs []llmproxy.Connection) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s %s %s %v %q %q %q %q %s\n", c.ID, c.Name, c.Provider, c.Endpoint, c.Settings,
			c.Credentials.APIKey, c.Credentials.AccessKeyID, c.Credentials.SecretAccessKey, c.Credentials.SessionToken, c.UpdatedAt)
	}
	return b.String()
}

func TestAdminUpdateModel(t *testing.T) {
	tests := []struct {
		name   string
		target string // "m", "m2" or "m3", or an ID
		u      admin.ModelUpdate
		kind   error
		msg    string
		want   string // the stored model as "name remote weight", on success
	}{
		{name: "remote", target: "m", u: admin.ModelUpdate{Remote: ptr(" gemini-2.0-flash ")}, want: "gemini-flash gemini-2.0-flash 0"},
		{name: "weight", target: "m", u: admin.ModelUpdate{Weight: ptr(5)}, want: "gemini-flash gemini-1.5-flash 5"},
		{name: "weight back to the default", target: "m3", u: admin.ModelUpdate{Weight: ptr(0)}, want: "gemini-flash gemini-1.5-flash 0"},
		{name: "largest weight", target: "m", u: admin.ModelUpdate{Weight: ptr(admin.MaxModelWeight)}, want: fmt.Sprintf("gemini-flash gemini-1.5-flash %d", admin.MaxModelWeight)},
		{name: "alias", target: "m", u: admin.ModelUpdate{Name: ptr(" gemini-fast ")}, want: "gemini-fast gemini-1.5-flash 0"},
		{name: "alias that exists on another connection", target: "m3", u: admin.ModelUpdate{Name: ptr("gemini-pro")}, want: "gemini-pro gemini-1.5-flash 3"},
		{name: "its own connection named", target: "m", u: admin.ModelUpdate{ConnectionID: ptr("c"), Weight: ptr(2)}, want: "gemini-flash gemini-1.5-flash 2"},
		{name: "everything", target: "m2", u: admin.ModelUpdate{Name: ptr("pro"), Remote: ptr("gemini-2.5-pro"), Weight: ptr(7)}, want: "pro gemini-2.5-pro 7"},

		{name: "unknown model", target: "model_nope", u: admin.ModelUpdate{Weight: ptr(2)}, kind: llmproxy.ErrNotFound, msg: `model "model_nope" not found`},
		{name: "no ID", target: " ", u: admin.ModelUpdate{Weight: ptr(2)}, kind: llmproxy.ErrInvalid, msg: "no model ID given"},
		{name: "nothing to change", target: "m", kind: llmproxy.ErrInvalid, msg: "nothing to change"},
		{name: "move to another connection", target: "m", u: admin.ModelUpdate{ConnectionID: ptr("other")}, kind: llmproxy.ErrInvalid, msg: `cannot move from connection "c" to "other"`},
		{name: "alias taken on its connection", target: "m2", u: admin.ModelUpdate{Name: ptr("gemini-flash")}, kind: llmproxy.ErrAlreadyExists, msg: `model "gemini-flash" already exists on connection "c"`},
		{name: "empty alias", target: "m", u: admin.ModelUpdate{Name: ptr("  ")}, kind: llmproxy.ErrInvalid, msg: "needs a name"},
		{name: "empty remote", target: "m", u: admin.ModelUpdate{Remote: ptr("")}, kind: llmproxy.ErrInvalid, msg: "needs a remote model name"},
		{name: "negative weight", target: "m", u: admin.ModelUpdate{Weight: ptr(-1)}, kind: llmproxy.ErrInvalid, msg: "weight must not be negative"},
		{name: "weight too large", target: "m", u: admin.ModelUpdate{Weight: ptr(admin.MaxModelWeight + 1)}, kind: llmproxy.ErrInvalid, msg: "weight must be at most 1000000"},
	}
	names := make([]string, len(tests))
	for i := range tests {
		names[i] = tests[i].name
	}
	eachFresh(t, names, func(t *testing.T, i int, a *admin.Service) {
		tt := tests[i]
		ctx := context.Background()
		c := mustConn(t, a, "c")
		other := mustConn(t, a, "other")
		ids := map[string]string{}
		for _, m := range []struct {
			key, name, conn string
			weight          int
		}{{"m", "gemini-flash", c.ID, 0}, {"m2", "gemini-pro", c.ID, 0}, {"m3", "gemini-flash", other.ID, 3}} {
			mm := &llmproxy.Model{Name: m.name, Remote: "gemini-1.5-flash", ConnectionID: m.conn, Weight: m.weight}
			if err := a.AddModel(ctx, mm); err != nil {
				t.Fatal(err)
			}
			ids[m.key] = mm.ID
		}
		id := tt.target
		if v, ok := ids[id]; ok {
			id = v
		}
		before, _ := a.ListModels(ctx, llmproxy.ListOptions{})
		version, _ := a.Storage.ConfigVersion(ctx)
		got, err := a.UpdateModel(ctx, id, tt.u)
		wantErr(t, err, tt.kind, tt.msg)
		after, _ := a.ListModels(ctx, llmproxy.ListOptions{})
		if err != nil {
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("a refused update changed the models:\n%v\n%v", before, after)
			}
			return
		}
		stored, err := a.Model(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprintf("%s %s %d", stored.Name, stored.Remote, stored.Weight); s != tt.want {
			t.Errorf("stored %q, want %q", s, tt.want)
		}
		if got.Name != stored.Name || got.Remote != stored.Remote || got.Weight != stored.Weight || got.ConnectionID != stored.ConnectionID {
			t.Errorf("returned %+v, stored %+v", got, stored)
		}
		if v, _ := a.Storage.ConfigVersion(ctx); v == version {
			t.Errorf("the configuration version did not change")
		}
	})
}

// TestAdminModelPrice: a model's price override is checked (finite, not
// negative, named in the error), replaced and cleared by UpdateModel.
func TestAdminModelPrice(t *testing.T) {
	ctx := context.Background()
	a := &admin.Service{Storage: memory.New(), Kinds: standardKinds}
	c := &llmproxy.Connection{Name: "o", Provider: "openai", Credentials: llmproxy.Credentials{APIKey: "sk-upstream-secret"}}
	if err := a.AddConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	bad := &llmproxy.Model{Name: "m", Remote: "r", ConnectionID: c.ID, Price: &pricing.Price{Input: -1, Output: 2}}
	wantErr(t, a.AddModel(ctx, bad), llmproxy.ErrInvalid, "input price")
	bad.Price = &pricing.Price{Input: 1, Output: math.Inf(1)}
	wantErr(t, a.AddModel(ctx, bad), llmproxy.ErrInvalid, "output price")
	m := &llmproxy.Model{Name: "m", Remote: "r", ConnectionID: c.ID, Price: &pricing.Price{Input: 1, Output: 2, CachedInput: 0.5}}
	if err := a.AddModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := a.UpdateModel(ctx, m.ID, admin.ModelUpdate{Price: &pricing.Price{Input: 3, Output: 15}})
	if err != nil || got.Price == nil || got.Price.Input != 3 {
		t.Fatalf("update price: %v %+v", err, got)
	}
	_, err = a.UpdateModel(ctx, m.ID, admin.ModelUpdate{Price: &pricing.Price{Input: 3}, ClearPrice: true})
	wantErr(t, err, llmproxy.ErrInvalid, "not both")
	if got, err = a.UpdateModel(ctx, m.ID, admin.ModelUpdate{ClearPrice: true}); err != nil || got.Price != nil {
		t.Fatalf("clear price: %v %+v", err, got)
	}
}
