package admin_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
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

var standardKinds = []string{llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindAzure, llmproxy.KindBedrock, llmproxy.KindCompatible}

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
		{name: "unknown provider", in: llmproxy.Connection{Name: "x", Provider: "anthropic"}, kind: llmproxy.ErrInvalid, msg: `unknown provider "anthropic"`},
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
	if cs, _ := a.ListConnections(ctx, llmproxy.ListOptions{}); len(cs) != 1 {
		t.Errorf("%d connections stored, want only the good one", len(cs))
	}
}
