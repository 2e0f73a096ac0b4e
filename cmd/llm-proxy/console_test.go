package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestServeConsole: serve mounts the web console at /ui/ when MASTER_KEY
// is set, and not with --no-ui or without a master key.
func TestServeConsole(t *testing.T) {
	c := newCLI(t)
	c.env["MASTER_KEY"] = opsMaster
	base, logs := serveWith(t, c, "--addr", "127.0.0.1:0")
	status, body := httpGet(t, base+"/ui/login", "")
	if status != http.StatusOK || !strings.Contains(body, `<form method="post" action="/ui/login">`) {
		t.Fatalf("GET /ui/login: %d\n%.300s", status, body)
	}
	if strings.Contains(body, opsMaster) {
		t.Error("the sign-in page holds the master key")
	}
	if !strings.Contains(logs.String(), `msg="console at /ui/"`) {
		t.Errorf("no console line in the logs:\n%s", logs.String())
	}
	resp, err := http.Get(base + "/ui/static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /ui/static/app.css: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	off := newCLI(t)
	off.env["MASTER_KEY"] = opsMaster
	base, logs = serveWith(t, off, "--addr", "127.0.0.1:0", "--no-ui")
	if status, _ := httpGet(t, base+"/ui/login", ""); status != http.StatusNotFound {
		t.Errorf("GET /ui/login with --no-ui: %d, want 404", status)
	}
	if strings.Contains(logs.String(), "console at") {
		t.Error("--no-ui still logs the console")
	}

	none := newCLI(t)
	base, _ = serveWith(t, none, "--addr", "127.0.0.1:0")
	if status, _ := httpGet(t, base+"/ui/login", ""); status != http.StatusNotFound {
		t.Errorf("GET /ui/login without MASTER_KEY: %d, want 404", status)
	}
}
