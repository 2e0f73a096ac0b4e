package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

func TestModelUpdate(t *testing.T) {
	c := newCLI(t)
	connID, modelID := c.guide("http://127.0.0.1:1/v1")
	c.ok("connection", "add", "--name", "backup", "--provider", "compatible", "--endpoint", "http://127.0.0.1:2/v1")
	otherID := strings.TrimSpace(c.ok("model", "add", "--name", "gemini-pro", "--remote", "gemini-1.5-pro", "--conn-id", connID, "-q"))

	out := c.ok("model", "update", modelID, "--remote", "gemini-2.0-flash")
	for _, want := range []string{"ID:", modelID, "gemini-flash", "gemini-2.0-flash", "google-ai (" + connID + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("update printed no %q:\n%s", want, out)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(c.ok("model", "update", modelID, "--weight", "3", "--name", "gemini-fast", "--json")), &m); err != nil {
		t.Fatal(err)
	}
	if m["weight"] != 3.0 || m["name"] != "gemini-fast" || m["remote"] != "gemini-2.0-flash" || m["connection_id"] != connID {
		t.Errorf("update --json: %v", m)
	}
	if out := c.ok("model", "update", modelID, "--name", "gemini-flash", "-q"); out != modelID+"\n" {
		t.Errorf("update -q printed %q", out)
	}
	// Its own connection may be named; it changes nothing.
	c.ok("model", "update", modelID, "--conn-id", "google-ai", "--weight", "0")

	before := c.ok("model", "list", "--json")
	const help = " (see llm-proxy model update --help)"
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no flags", []string{modelID}, "nothing to change: give --name, --remote, --weight, a price flag or --clear-price" + help},
		{"no model", []string{"--weight", "2"}, "llm-proxy model update takes one argument: the model's ID"},
		{"unknown model", []string{"model_nope", "--weight", "2"}, `model "model_nope" not found`},
		{"move", []string{modelID, "--conn-id", "backup"}, `model "gemini-flash" (` + modelID + `) cannot move from connection "google-ai" to "backup": add the model on that connection and delete this one`},
		{"alias taken", []string{otherID, "--name", "gemini-flash"}, `model "gemini-flash" already exists on connection "google-ai"`},
		{"empty alias", []string{modelID, "--name", ""}, `a model needs a name (the alias clients send)`},
		{"empty remote", []string{modelID, "--remote", " "}, `model "gemini-flash" needs a remote model name`},
		{"negative weight", []string{modelID, "--weight", "-1"}, `model "gemini-flash": weight must not be negative`},
		{"weight too large", []string{modelID, "--weight", "1000001"}, `model "gemini-flash": weight must be at most 1000000`},
		{"weight not a number", []string{modelID, "--weight", "heavy"}, `invalid argument "heavy" for "--weight" flag: strconv.ParseInt: parsing "heavy": invalid syntax` + help},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			if got := c.fail(append([]string{"model", "update"}, tt.args...)...); got != "llm-proxy: "+tt.want {
				t.Errorf("stderr:\n  %s\nwant:\n  llm-proxy: %s", got, tt.want)
			}
		})
	}
	c.t = t
	if after := c.ok("model", "list", "--json"); after != before {
		t.Errorf("refused updates changed the models:\n%s\n%s", before, after)
	}
	if got := c.fail("model", "add", "--name", "x", "--remote", "r", "--conn-id", connID, "--weight", "2000000"); got != `llm-proxy: model "x": weight must be at most 1000000` {
		t.Errorf("add with a weight too large: %s", got)
	}
}

// TestModelUpdateLive: a running server uses a model's new remote name
// and weight within 2 seconds, without a restart.
func TestModelUpdateLive(t *testing.T) {
	const backupKey = "sk-backup-upstream-1"
	up := fakeopenai.New(t, upstreamKey)
	backup := fakeopenai.New(t, backupKey)
	c := newCLI(t)
	c.env["MASTER_KEY"] = "sk-master-test-1"
	_, modelID := c.guide(up.BaseURL())
	c.ok("connection", "add", "--name", "backup", "--provider", "compatible", "--endpoint", backup.BaseURL(), "--api-key", backupKey)
	backupModel := strings.TrimSpace(c.ok("model", "add", "--name", "gemini-flash", "--remote", "gemini-1.5-flash", "--conn-id", "backup", "-q"))
	base, _ := startServe(t, c)

	// Mobile-App may use google-ai's models only: its calls go there.
	c.ok("model", "update", modelID, "--remote", "gemini-2.0-flash")
	eventuallyLive(t, time.Now(), "the new remote name", func() bool {
		return chat(t, base, "sk-proxy-123") == http.StatusOK && up.Last().JSON["model"] == "gemini-2.0-flash"
	})

	// The master key may use both: weighted 1 to 1000000, ten calls in a
	// row go to the backup (all ten by chance before: one in 1024).
	c.ok("model", "update", backupModel, "--weight", "1000000")
	eventuallyLive(t, time.Now(), "the new weight", func() bool {
		n := len(backup.Requests())
		for range 10 {
			if got := chat(t, base, "sk-master-test-1"); got != http.StatusOK {
				t.Fatalf("chat: %d", got)
			}
		}
		return len(backup.Requests())-n == 10
	})
	c.checkNoSecrets(upstreamKey, backupKey)
}
