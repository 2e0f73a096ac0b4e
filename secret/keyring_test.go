package secret_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

func aesKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestKeyRing(t *testing.T) {
	a, err := secret.NewAESGCM(aesKey(1))
	must(t, err)
	b, err := secret.NewAESGCM(aesKey(2))
	must(t, err)
	c, err := secret.NewAESGCM(aesKey(3))
	must(t, err)
	ring, err := secret.NewKeyRing(b, a)
	must(t, err)
	underA, _ := a.Seal([]byte("old secret"))
	underRing, _ := ring.Seal([]byte("new secret"))
	underC, _ := c.Seal([]byte("foreign"))
	tests := []struct {
		name   string
		s      secret.Sealer
		sealed []byte
		want   string // "" means ErrDecrypt
	}{
		{"ring opens the old key's", ring, underA, "old secret"},
		{"ring opens its own", ring, underRing, "new secret"},
		{"the ring seals with the primary", b, underRing, "new secret"},
		{"not with a previous key", a, underRing, ""},
		{"ring refuses a foreign key's", ring, underC, ""},
		{"ring refuses garbage", ring, []byte{1, 2, 3}, ""},
		{"ring refuses nothing", ring, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Open(tt.sealed)
			if tt.want == "" {
				if !errors.Is(err, secret.ErrDecrypt) {
					t.Errorf("Open = %q, %v; want ErrDecrypt", got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("Open = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := secret.NewKeyRing(nil); !errors.Is(err, llmproxy.ErrInvalid) {
		t.Errorf("NewKeyRing(nil) = %v", err)
	}
	if _, err := secret.NewAESGCMKeyRing(aesKey(1), []byte("short")); !errors.Is(err, llmproxy.ErrInvalid) {
		t.Errorf("short previous key: %v", err)
	}
}

// TestReseal: connections sealed under key A are moved to key
// B by a store opened with KeyRing{B, A}; then B alone opens them and A
// alone cannot.
func TestReseal(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "rotate.db")
	open := func(primary []byte, previous ...[]byte) *sqlite.Store {
		t.Helper()
		ring, err := secret.NewAESGCMKeyRing(primary, previous...)
		must(t, err)
		s, err := sqlite.Open(ctx, dsn, sqlite.Options{Sealer: ring})
		must(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	keyA, keyB, keyC := aesKey(0xa), aesKey(0xb), aesKey(0xc)
	underA := open(keyA)
	creds := []llmproxy.Credentials{{APIKey: "sk-one"}, {AccessKeyID: "AKIA1", SecretAccessKey: "secret-two", SessionToken: "tok"}, {}}
	for i, c := range creds {
		must(t, underA.CreateConnection(ctx, &llmproxy.Connection{Name: string(rune('a' + i)), Provider: "compatible", Credentials: c}))
	}
	// A ring that cannot open them changes nothing.
	if n, err := secret.Reseal(ctx, open(keyB, keyC)); !errors.Is(err, secret.ErrDecrypt) || n != 0 {
		t.Fatalf("reseal without the old key: %d, %v", n, err)
	}
	n, err := secret.Reseal(ctx, open(keyB, keyA))
	if err != nil || n != len(creds) {
		t.Fatalf("reseal: %d, %v", n, err)
	}
	conns, err := open(keyB).Connections(ctx, llmproxy.ListOptions{})
	must(t, err)
	for _, c := range conns { // listed in ID order: find each by name
		if c.Credentials != creds[c.Name[0]-'a'] {
			t.Errorf("connection %s after rotation: %v", c.Name, c.Credentials.Set())
		}
	}
	if _, err := open(keyA).Connections(ctx, llmproxy.ListOptions{}); !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("the old key alone still opens them: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
