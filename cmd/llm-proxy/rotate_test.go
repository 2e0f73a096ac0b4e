package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/secret"
)

// rotEnv runs commands against one SQLite database with its own
// environment (each server gets a copy, so changing it later is safe).
type rotEnv struct {
	t   *testing.T
	env map[string]string
}

func (r *rotEnv) with(kv ...string) map[string]string {
	m := maps.Clone(r.env)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// run runs args with env and returns stdout, stderr and the error.
func (r *rotEnv) run(env map[string]string, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// serve starts a server with env until the test ends and returns its URL.
func (r *rotEnv) serve(env map[string]string) string {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "1s"}, func(k string) string { return env[k] }, io.Discard, &logs)
	}()
	addr := waitListening(r.t, &logs, done)
	r.t.Cleanup(func() { cancel(); <-done })
	return "http://" + addr
}

func rotChat(t *testing.T, base string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer sk-rotate-client")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRotateEncryptionKey: connections added under key A are moved to key
// B while servers run; a server on B alone then works, one on A alone
// fails to start with ErrDecrypt, and a server that was running on A alone
// keeps serving what it had loaded.
func TestRotateEncryptionKey(t *testing.T) {
	const (
		keyA = "passphrase A for the old key"
		keyB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	upA, upB := fakeopenai.New(t, "sk-upstream-a-secret"), fakeopenai.New(t, "sk-upstream-b-secret")
	r := &rotEnv{t: t, env: map[string]string{"DB_DSN": filepath.Join(t.TempDir(), "rotate.db")}}
	onA := r.with("ENCRYPTION_KEY", keyA)
	for i, up := range []*fakeopenai.Server{upA, upB} {
		name := []string{"a", "b"}[i]
		id, errOut, err := r.run(onA, "connection", "add", "--name", name, "--provider", "compatible", "--endpoint", up.BaseURL(), "--api-key", up.APIKey, "-q")
		if err != nil {
			t.Fatalf("connection add: %v %s", err, errOut)
		}
		if _, errOut, err := r.run(onA, "model", "add", "--name", "m", "--remote", "r-"+name, "--conn-id", strings.TrimSpace(id)); err != nil {
			t.Fatalf("model add: %v %s", err, errOut)
		}
	}
	if _, errOut, err := r.run(onA, "vkey", "add", "--name", "client", "--key", "sk-rotate-client", "--conn-id", "a", "--conn-id", "b"); err != nil {
		t.Fatalf("vkey add: %v %s", err, errOut)
	}

	oldServer := r.serve(onA)
	ring := r.with("ENCRYPTION_KEY", keyB, envPreviousKeys, "not this one, "+keyA)
	ringServer := r.serve(ring)
	for _, s := range []string{oldServer, ringServer} {
		if got := rotChat(t, s); got != 200 {
			t.Fatalf("before rotation: %d", got)
		}
	}

	// Misuse changes nothing.
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{r.with("ENCRYPTION_KEY", keyB), "needs ENCRYPTION_KEY (the new key) and ENCRYPTION_KEY_PREVIOUS"},
		{r.with(envPreviousKeys, keyA), "needs ENCRYPTION_KEY"},
		{r.with("ENCRYPTION_KEY", keyB, envPreviousKeys, "wrong old key"), "cannot decrypt stored secret"},
	} {
		out, errOut, err := r.run(tc.env, "rotate-encryption-key")
		if err == nil || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("rotate with %v: %v, stdout %q, stderr %q", tc.env, err, out, errOut)
		}
	}
	if out, errOut, err := r.run(onA, "connection", "list"); err != nil || !strings.Contains(out, "a") {
		t.Fatalf("after failed rotations, key A no longer works: %v %s", err, errOut)
	}

	out, errOut, err := r.run(ring, "rotate-encryption-key")
	if err != nil || !strings.Contains(out, "Re-encrypted 2 connections") {
		t.Fatalf("rotate: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	if strings.Contains(out+errOut, "sk-upstream-") {
		t.Errorf("rotation printed a provider key: %q %q", out, errOut)
	}

	// Servers keep serving: the ring server reloads, the old one keeps
	// its last snapshot.
	time.Sleep(2500 * time.Millisecond) // two poll intervals
	for _, s := range []string{oldServer, ringServer} {
		for range 4 {
			if got := rotChat(t, s); got != 200 {
				t.Errorf("after rotation, %s answered %d", s, got)
			}
		}
	}
	// A new server on B alone works; on A alone it fails clearly.
	onB := r.with("ENCRYPTION_KEY", keyB)
	if got := rotChat(t, r.serve(onB)); got != 200 {
		t.Errorf("server on the new key alone: %d", got)
	}
	var errOutA bytes.Buffer
	err = run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, func(k string) string { return onA[k] }, io.Discard, &errOutA)
	if !errors.Is(err, secret.ErrDecrypt) || !strings.Contains(errOutA.String(), "wrong ENCRYPTION_KEY?") {
		t.Errorf("server on the old key alone: %v\n%s", err, errOutA.String())
	}
	if _, errOut, err := r.run(onA, "connection", "list"); !errors.Is(err, secret.ErrDecrypt) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("connection list on the old key: %v %q", err, errOut)
	}
	// The upstreams got their own keys all along (the fakes check them).
	for _, up := range []*fakeopenai.Server{upA, upB} {
		for _, req := range up.Requests() {
			if req.Header.Get("Authorization") != "Bearer "+up.APIKey {
				t.Errorf("upstream got Authorization %q", req.Header.Get("Authorization"))
			}
		}
	}
	// Rotating again (B to B) is harmless.
	if out, errOut, err := r.run(r.with("ENCRYPTION_KEY", keyB, envPreviousKeys, keyB), "rotate-encryption-key"); err != nil || !strings.Contains(out, "Re-encrypted 2") {
		t.Errorf("second rotation: %v %q %q", err, out, errOut)
	}
}
