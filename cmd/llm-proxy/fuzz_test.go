package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzRun runs one command line in-process and checks the contract of
// every command: on error, nothing on stdout and one line on stderr
// starting "llm-proxy: "; on success, nothing on stderr.
func fuzzRun(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, getenv, &out, &errOut)
	if err != nil {
		if out.Len() != 0 {
			t.Fatalf("%q failed (%v) with stdout %q", args, err, out.String())
		}
		if e := errOut.String(); !strings.HasPrefix(e, "llm-proxy: ") || strings.Count(e, "\n") != 1 || !strings.HasSuffix(e, "\n") {
			t.Fatalf("%q: stderr %q, want one line starting llm-proxy:", args, e)
		}
		return errOut.String(), err
	}
	if errOut.Len() != 0 {
		t.Fatalf("%q succeeded with stderr %q", args, errOut.String())
	}
	return out.String(), nil
}

// FuzzCLIFlags feeds arbitrary flag values to "connection add" and
// "vkey add" on a real SQLite database: the command never panics, reports
// a bad value as one line on stderr, never prints the API key it was
// given, and stores only limits that make sense.
func FuzzCLIFlags(f *testing.F) {
	f.Add("http://127.0.0.1:1/v1", "sk-upstream-1", "5", "10", "1000", "24h", "720h")
	f.Add("", "", "0", "0", "0", "", "")
	f.Add("ftp://x", "a b", "NaN", "-1", "-1", "-5m", "-5s")
	f.Add("http://[::1", "é", "+Inf", "99999999999999999999", "9223372036854775807", "9999999999d", "9999999999d")
	f.Add("http://h/v1?x=1#f", "\x00", "1e-300", "0x10", "1e3", "30d", "2026-12-31")
	f.Add(" http://h ", "--json", "1e309", " 3", "07", "1.5h", "2006-01-02T15:04:05Z")
	f.Add("http://h", "sk", "0.0000001", "2147483648", "-0", "0d", "never")
	f.Add("http://h", "k", "1", "1", "1", "-0d", "0001-01-01")

	dir := f.TempDir()
	env := map[string]string{"DB_DSN": filepath.Join(dir, "fuzz.db"), "ENCRYPTION_KEY": "fuzz passphrase"}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"connection", "add", "--name", "base", "--provider", "compatible", "--endpoint", "http://127.0.0.1:1/v1", "-q"}, getenv, &out, &errOut); err != nil {
		f.Fatalf("setup: %v %s", err, errOut.String())
	}
	connID := strings.TrimSpace(out.String())
	n := 0

	f.Fuzz(func(t *testing.T, endpoint, apiKey, tps, burst, tokenLimit, tokenWindow, expires string) {
		n++
		name := "f" + strconv.Itoa(n)
		secret := "sk-fuzz-" + apiKey
		got, err := fuzzRun(t, getenv, "connection", "add", "--name", name, "--provider", "compatible",
			"--endpoint="+endpoint, "--api-key="+secret, "--json")
		if !strings.Contains(endpoint, secret) && strings.Contains(got, secret) {
			t.Fatalf("connection add printed its API key: %q", got)
		}
		if err == nil {
			var c map[string]any
			if json.Unmarshal([]byte(got), &c) != nil || c["id"] == nil {
				t.Fatalf("connection add --json printed %q", got)
			}
		}

		got, err = fuzzRun(t, getenv, "vkey", "add", "--name", name, "--conn-id", connID, "--json",
			"--tps="+tps, "--burst="+burst, "--token-limit="+tokenLimit, "--token-window="+tokenWindow, "--expires="+expires)
		if err != nil {
			return
		}
		var k struct {
			Key         string `json:"key"`
			Assignments []struct {
				TPS         float64 `json:"tps"`
				Burst       int     `json:"burst"`
				TokenLimit  int64   `json:"token_limit"`
				TokenWindow any     `json:"token_window"`
			} `json:"assignments"`
		}
		if err := json.Unmarshal([]byte(got), &k); err != nil || len(k.Assignments) != 1 || k.Key == "" {
			t.Fatalf("vkey add --json printed %q (%v)", got, err)
		}
		a := k.Assignments[0]
		if a.TPS < 0 || math.IsNaN(a.TPS) || math.IsInf(a.TPS, 0) || a.Burst < 0 || a.TokenLimit < 0 {
			t.Fatalf("stored nonsense limits %+v from tps=%q burst=%q token-limit=%q", a, tps, burst, tokenLimit)
		}
	})
}
