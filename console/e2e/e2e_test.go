// Package e2e_test checks the web console in a real browser (issue 17):
// it builds llm-proxy, starts `llm-proxy serve` on SQLite in front of a
// fake OpenAI upstream, and runs console.spec.mjs, which drives Debian's
// Chromium through playwright-core and reports what it saw; this test
// makes the assertions, compares the pages' figures with `llm-proxy usage
// --json`, and scans everything the console produced for secrets. The
// screenshots go to console/e2e/screenshots (not committed), overwritten
// on every run; docs/console holds the copies the README shows.
//
// It needs node, npm and chromium (LLMPROXY_CHROMIUM, else chromium on
// PATH): without them it skips, or fails when CI=true.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// The secrets of the run; none may appear in any page, answer or log but
// the one page that shows a new key's secret.
const (
	masterKey   = "sk-master-console-e2e-6f1d0c"
	providerKey = "sk-provider-console-e2e-93ab47"
	otherSecret = "sk-other-team-console-e2e-2e8c15"
	// wrongKey is what a stranger types: a page must not echo it either.
	wrongKey = "sk-master-console-e2e-wrong-5a7d"
)

const (
	connName   = "e2e-upstream"
	modelAlias = "e2e-model"
	otherName  = "other-team"
	keyName    = "e2e-team" // the key the browser creates
	// screenshotDir, which the README names, is ignored by git: every run
	// rewrites it. docs/console keeps the copies the README shows.
	screenshotDir = "screenshots"
)

// screenshots are the PNGs the script writes, and their width.
var screenshots = map[string]int{
	"login": 1280, "overview": 1280, "keys": 1280, "key": 1280, "new-key-created": 1280,
	"connections": 1280, "models": 1280, "usage": 1280, "requests": 1280,
	"key-session-overview": 1280, "overview-390": 390, "keys-390": 390,
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// tools returns chromium's path after installing playwright-core with
// "npm ci" from the committed lock file.
func tools(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s is not installed (apt-get install nodejs npm)", tool)
		}
	}
	browser := os.Getenv("LLMPROXY_CHROMIUM")
	if browser == "" {
		var err error
		if browser, err = exec.LookPath("chromium"); err != nil {
			skipOrFail(t, "chromium is not installed (apt-get install chromium, or set LLMPROXY_CHROMIUM; scripts/test.sh does it)")
		}
	}
	if out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error").CombinedOutput(); err != nil {
		skipOrFail(t, "npm ci: %v\n%s", err, out)
	}
	return browser
}

// build builds cmd/llm-proxy into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "llm-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/go-llm-proxy/llmproxy/cmd/llm-proxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proxy runs the binary with one environment and keeps every output, for
// the secret scan.
type proxy struct {
	t       *testing.T
	bin     string
	env     []string
	dir     string
	outputs []string
}

func (p *proxy) cli(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env, cmd.Dir = p.env, p.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	p.outputs = append(p.outputs, out.String(), errOut.String())
	if err != nil {
		p.t.Fatalf("llm-proxy %s: %v\n%s", redact(strings.Join(args, " ")), err, redact(errOut.String()))
	}
	return out.String()
}

var listening = regexp.MustCompile(`msg="llm-proxy listening" addr=(\S+)`)

// serve starts `llm-proxy serve` on a free loopback port and returns its
// base URL and a function that reads its logs so far.
func (p *proxy) serve() (string, func() string) {
	p.t.Helper()
	cmd := exec.Command(p.bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env, cmd.Dir = p.env, p.dir
	logFile, err := os.Create(filepath.Join(p.dir, "serve.log"))
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		logFile.Close()
	})
	logs := func() string {
		b, _ := os.ReadFile(logFile.Name())
		return string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if m := listening.FindStringSubmatch(logs()); m != nil {
			return "http://" + m[1], logs
		}
		select {
		case err := <-done:
			p.t.Fatalf("serve ended: %v\n%s", err, redact(logs()))
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("serve did not start:\n%s", redact(logs()))
	return "", nil
}

// newSecret is the secret the console generated; redact hides it too.
var newSecret string

// redact keeps the secrets out of the test's own output.
func redact(s string) string {
	for _, k := range []string{masterKey, providerKey, otherSecret, wrongKey, newSecret} {
		if k != "" {
			s = strings.ReplaceAll(s, k, "[secret]")
		}
	}
	return s
}

func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives a browser")
	}
	browser := tools(t)
	bin := build(t)
	up := fakeopenai.New(t, providerKey)
	dir := t.TempDir()
	p := &proxy{t: t, bin: bin, dir: dir, env: append(os.Environ(),
		"DB_TYPE=sqlite", "DB_DSN="+filepath.Join(dir, "llm-proxy.db"), "MASTER_KEY="+masterKey,
		"ENCRYPTION_KEY=", "PORT=")}

	connID := firstLine(p.cli("connection", "add", "--name", connName, "--provider", "compatible", "--endpoint", up.BaseURL(), "--api-key", providerKey, "-q"))
	modelID := firstLine(p.cli("model", "add", "--name", modelAlias, "--remote", "gpt-e2e", "--conn-id", connID,
		"--input-price", "2.5", "--output-price", "10", "-q"))
	otherID := firstLine(p.cli("vkey", "add", "--name", otherName, "--key", otherSecret, "--model-id", modelID, "-q"))
	base, logs := p.serve()

	// Another team's request, so that a key's session has something not
	// to see and the admin's totals are more than one key's.
	if status := chat(t, base, otherSecret, "a request of another team, somewhat longer"); status != 200 {
		t.Fatalf("the other key's request: %d", status)
	}

	shots, err := filepath.Abs(screenshotDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	bodiesFile := filepath.Join(t.TempDir(), "bodies.json")
	res, stderr := runScript(t, []string{
		"BASE_URL=" + base, "MASTER_KEY=" + masterKey, "MODEL=" + modelAlias, "CONNECTION=" + connName,
		"KEY_NAME=" + keyName, "OTHER_KEY_ID=" + otherID, "WRONG_KEY=" + wrongKey, "SCREENSHOT_DIR=" + shots,
		"BODIES_FILE=" + bodiesFile, "CHROMIUM=" + browser,
	}, func(f figures) { checkFigures(t, p, f) })
	p.outputs = append(p.outputs, stderr)

	t.Run("browser", func(t *testing.T) { checkResult(t, res, otherID) })
	t.Run("no forged key", func(t *testing.T) {
		if out := p.cli("vkey", "list", "--json"); strings.Contains(out, "forged-key") {
			t.Errorf("a POST without the CSRF token created a key:\n%s", redact(out))
		}
	})
	t.Run("screenshots", func(t *testing.T) { checkScreenshots(t, shots) })
	var bodies []body
	if data, err := os.ReadFile(bodiesFile); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(data, &bodies); err != nil {
		t.Fatal(err)
	}
	t.Run("headers", func(t *testing.T) { checkHeaders(t, bodies) })
	t.Run("no secret leaks", func(t *testing.T) { checkSecrets(t, bodies, logs(), p.outputs) })
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

func chat(t *testing.T, base, key, content string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": modelAlias, "max_tokens": 5,
		"messages": []map[string]string{{"role": "user", "content": content}}})
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// runScript runs console.spec.mjs; onFigures runs when the script has
// read every figure and waits, before it sends more requests.
func runScript(t *testing.T, env []string, onFigures func(figures)) (result, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "console.spec.mjs")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer // read after Wait only
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var res result
	got := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var phase struct{ Phase string }
		if err := json.Unmarshal(sc.Bytes(), &phase); err != nil {
			t.Errorf("the script printed %q", redact(sc.Text()))
			continue
		}
		switch phase.Phase {
		case "figures":
			var f figures
			if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
				t.Fatal(err)
			}
			onFigures(f)
			io.WriteString(stdin, "go\n")
		case "result":
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			got = true
		}
	}
	stdin.Close()
	err = cmd.Wait()
	if res.Secret != "" {
		newSecret = res.Secret
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node console.spec.mjs did not finish in 3 minutes; stderr:\n%s", redact(stderr.String()))
	}
	if err != nil || !got {
		t.Fatalf("node console.spec.mjs: %v; stderr:\n%s", err, redact(stderr.String()))
	}
	if res.Error != "" {
		t.Fatalf("the browser script stopped at step %q: %s\npage %s:\n%s", res.Steps[len(res.Steps)-1], redact(res.Error), res.ErrorURL, redact(res.ErrorHTML))
	}
	return res, stderr.String()
}

// checkScreenshots checks that every page was saved, as a PNG as wide as
// its viewport (wider would mean the page scrolls sideways).
func checkScreenshots(t *testing.T, dir string) {
	for name, width := range screenshots {
		f, err := os.Open(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		} else if cfg.Width != width {
			t.Errorf("screenshot %s is %d px wide, want %d (the page overflows its viewport)", name, cfg.Width, width)
		}
	}
}

// checkSecrets scans every body the browser saw, the server's logs and
// every CLI output for every secret of the run.
func checkSecrets(t *testing.T, bodies []body, serverLogs string, outputs []string) {
	if newSecret == "" {
		t.Fatal("the script reported no new secret")
	}
	secrets := map[string]string{"master key": masterKey, "provider API key": providerKey,
		"other key's secret": otherSecret, "new key's secret": newSecret, "wrong master key": wrongKey}
	// The page that created the key shows its secret once: that one
	// response (POST /ui/keys answered 200) is left out of the scan for
	// the new secret alone, and must carry it exactly once.
	shown := 0
	for _, b := range bodies {
		where := fmt.Sprintf("%s %s (%d, %s context)", b.Method, b.URL, b.Status, b.Context)
		created := b.Method == "POST" && strings.HasSuffix(b.URL, "/ui/keys") && b.Status == 200
		for what, s := range secrets {
			n := strings.Count(b.Body, s)
			if created && s == newSecret {
				shown++
				if n != 1 {
					t.Errorf("the page that created the key shows its secret %d times, want once", n)
				}
				continue
			}
			if n > 0 {
				t.Errorf("the %s is in the answer to %s", what, where)
			}
		}
	}
	if shown != 1 {
		t.Errorf("%d answers to POST /ui/keys with status 200, want exactly the one that created the key", shown)
	}
	t.Logf("scanned %d response bodies (all but the key's creation page for its own secret), %d bytes of server logs, %d CLI outputs",
		len(bodies), len(serverLogs), len(outputs))
	for what, s := range secrets {
		if strings.Contains(serverLogs, s) {
			t.Errorf("the server logged the %s", what)
		}
		for _, out := range outputs {
			if strings.Contains(out, s) {
				t.Errorf("a CLI output or the script's stderr carries the %s", what)
			}
		}
	}
}

// What the script reports (see console.spec.mjs).
type (
	row struct {
		Text                                                        string
		Requests, PromptTokens, CompletionTokens, TotalTokens, Cost *int64
	}
	overview struct {
		Status                 int
		Requests, Tokens, Cost *int64
	}
	usagePage struct {
		Status int
		Rows   []row
		Total  *row
	}
	figures struct {
		Usage, KeyUsage       usagePage
		Overview, KeyOverview overview
		KeySpend              *int64
		CSV                   struct {
			Status            int
			Disposition, Body string
		}
	}
	login struct {
		Status int
		Ms     int64
		URL    string
		Alert  *string
	}
	page struct {
		Status      int
		SecretShown bool
		Listed      int
	}
	answer struct {
		Status         int
		Body           string
		SinceCreatedMs int64
	}
	result struct {
		Steps                                        []string
		Secret, KeyID                                string
		UnsignedLanding                              string
		AdminLogin, KeyLogin                         login
		CreateStatus, CopyButton                     int
		FirstChat, UsedChat                          answer
		KeyPage, KeysPage                            page
		LedgerMs                                     *int64
		ConnectionsStatus, ModelsStatus              int
		UsageStatus, RequestsStatus, RequestRows     int
		ForgedFetch, ForgedWrongToken, ForgedRequest answer
		ForgedListed                                 bool
		KeyView                                      struct {
			Nav                                         []struct{ Text, Href string }
			Connections, Models, Keys, NewKey, OtherKey page
			OwnKey                                      page
			OwnKeyEditable                              int
		}
		WrongLogins  []login
		RevokeStatus int
		Revoke       struct {
			RefusedMs *int64
			Statuses  []int
		}
		KeySessionAfterRevoke struct {
			Status int
			Path   string
		}
		Error, ErrorURL, ErrorHTML string
	}
	body struct {
		Context, Method, URL, Type, CSP, Body string
		Status                                int
	}
	// cliRow is a row of `llm-proxy usage --json --by key`.
	cliRow struct {
		KeyID            *string `json:"key_id"`
		KeyName          string  `json:"key_name"`
		Requests         int64   `json:"requests"`
		PromptTokens     int64   `json:"prompt_tokens"`
		CompletionTokens int64   `json:"completion_tokens"`
		TotalTokens      int64   `json:"total_tokens"`
		CostMicros       int64   `json:"cost_micros"`
		UnknownCost      int64   `json:"unknown_cost"`
	}
)

// label is how the usage page names a row's key.
func (c cliRow) label() string {
	if c.KeyID == nil || *c.KeyID == "" {
		return "(master key)"
	}
	return c.KeyName
}

// same reports where a page's row differs from the CLI's.
func (c cliRow) same(r row) []string {
	var diff []string
	for _, f := range []struct {
		name string
		page *int64
		cli  int64
	}{
		{"requests", r.Requests, c.Requests}, {"prompt tokens", r.PromptTokens, c.PromptTokens},
		{"completion tokens", r.CompletionTokens, c.CompletionTokens}, {"total tokens", r.TotalTokens, c.TotalTokens},
		{"cost (micro-dollars)", r.Cost, c.CostMicros},
	} {
		if f.page == nil {
			diff = append(diff, f.name+": no data-value on the page")
		} else if *f.page != f.cli {
			diff = append(diff, fmt.Sprintf("%s: page %d, llm-proxy usage %d", f.name, *f.page, f.cli))
		}
	}
	return diff
}

func val(p *int64) string {
	if p == nil {
		return "missing"
	}
	return fmt.Sprint(*p)
}

// checkFigures compares the pages' figures, read right after the new
// key's request, with `llm-proxy usage --json --by key` at that moment.
func checkFigures(t *testing.T, p *proxy, f figures) {
	var rows []cliRow
	out := p.cli("usage", "--json", "--by", "key")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("usage --json: %v\n%s", err, redact(out))
	}
	t.Logf("llm-proxy usage --json --by key: %s", redact(strings.TrimSpace(out)))
	if csv := p.cli("usage", "--csv", "--by", "key"); f.CSV.Status != 200 || f.CSV.Body != csv || !strings.HasPrefix(f.CSV.Disposition, "attachment") {
		t.Errorf("/ui/usage.csv: %d, %q,\n%s\nwant 200, an attachment, and llm-proxy usage --csv:\n%s", f.CSV.Status, f.CSV.Disposition, f.CSV.Body, csv)
	}
	if f.Usage.Status != 200 || f.Overview.Status != 200 {
		t.Fatalf("usage page %d, overview %d", f.Usage.Status, f.Overview.Status)
	}
	var sum cliRow
	byName := map[string]cliRow{}
	for _, c := range rows {
		byName[c.label()] = c
		sum.Requests += c.Requests
		sum.PromptTokens += c.PromptTokens
		sum.CompletionTokens += c.CompletionTokens
		sum.TotalTokens += c.TotalTokens
		sum.CostMicros += c.CostMicros
	}
	mine, ok := byName[keyName]
	if !ok || mine.Requests != 1 || mine.CostMicros <= 0 || mine.UnknownCost != 0 {
		t.Errorf("llm-proxy usage has no priced request of %s: %+v", keyName, rows)
	}
	// The usage page (by key): one row per key of the report, equal.
	if len(f.Usage.Rows) != len(rows) {
		t.Errorf("the usage page has %d rows, llm-proxy usage %d: %+v", len(f.Usage.Rows), len(rows), f.Usage.Rows)
	}
	matchRows(t, "usage page", f.Usage.Rows, byName)
	if f.Usage.Total == nil {
		t.Errorf("the usage page has no usage-total row")
	} else if d := sum.same(*f.Usage.Total); d != nil {
		t.Errorf("usage page totals: %s", strings.Join(d, "; "))
	}
	// The overview over 24 h: every request of the run.
	o := f.Overview
	if !eq(o.Requests, sum.Requests) || !eq(o.Tokens, sum.TotalTokens) || !eq(o.Cost, sum.CostMicros) {
		t.Errorf("overview: %s requests, %s tokens, %s micro-dollars; llm-proxy usage: %d, %d, %d",
			val(o.Requests), val(o.Tokens), val(o.Cost), sum.Requests, sum.TotalTokens, sum.CostMicros)
	}
	if !eq(f.KeySpend, mine.CostMicros) {
		t.Errorf("the keys page: %s spent %s micro-dollars this period, llm-proxy usage %d", keyName, val(f.KeySpend), mine.CostMicros)
	}
	// The key's own session: its figures alone.
	k := f.KeyOverview
	if !eq(k.Requests, mine.Requests) || !eq(k.Tokens, mine.TotalTokens) || !eq(k.Cost, mine.CostMicros) {
		t.Errorf("the key's overview: %s requests, %s tokens, %s micro-dollars; its usage: %d, %d, %d",
			val(k.Requests), val(k.Tokens), val(k.Cost), mine.Requests, mine.TotalTokens, mine.CostMicros)
	}
	if f.KeyUsage.Status != 200 || len(f.KeyUsage.Rows) != 1 {
		t.Errorf("the key's usage page: status %d, %d rows, want 200 and its own row only: %+v", f.KeyUsage.Status, len(f.KeyUsage.Rows), f.KeyUsage.Rows)
	}
	matchRows(t, "the key's usage page", f.KeyUsage.Rows, map[string]cliRow{keyName: mine})
	t.Logf("pages equal llm-proxy usage: %s %d requests, %d tokens, %d micro-dollars; all keys %d, %d, %d",
		keyName, mine.Requests, mine.TotalTokens, mine.CostMicros, sum.Requests, sum.TotalTokens, sum.CostMicros)
}

func eq(p *int64, v int64) bool { return p != nil && *p == v }

// matchRows finds each page row's key by its name and compares it.
func matchRows(t *testing.T, where string, rows []row, byName map[string]cliRow) {
	t.Helper()
	for _, r := range rows {
		var match []string
		for name := range byName {
			if strings.Contains(r.Text, name) {
				match = append(match, name)
			}
		}
		if len(match) != 1 {
			t.Errorf("%s: row %q names %d of the keys %v", where, r.Text, len(match), match)
			continue
		}
		if d := byName[match[0]].same(r); d != nil {
			t.Errorf("%s, %s: %s", where, match[0], strings.Join(d, "; "))
		}
	}
}

// checkResult checks what the browser saw.
func checkResult(t *testing.T, r result, otherID string) {
	if r.UnsignedLanding != "/ui/login" {
		t.Errorf("an unsigned visitor of /ui/ landed on %s, want /ui/login", r.UnsignedLanding)
	}
	for who, l := range map[string]login{"master key": r.AdminLogin, "new key": r.KeyLogin} {
		if l.Status != 303 || !strings.HasSuffix(l.URL, "/ui/") {
			t.Errorf("sign-in with the %s: %d, landed on %s; want 303 to /ui/", who, l.Status, l.URL)
		}
	}
	if r.CreateStatus != 200 || !strings.HasPrefix(r.Secret, "sk-") || r.CopyButton == 0 {
		t.Errorf("creating the key: status %d, secret starts %q, %d Copy buttons", r.CreateStatus, r.Secret[:min(3, len(r.Secret))], r.CopyButton)
	}
	if r.FirstChat.Status != 200 {
		t.Errorf("the new secret, used at once (%d ms after the page showed it): %d %s; then %d after %d ms",
			r.FirstChat.SinceCreatedMs, r.FirstChat.Status, redact(r.FirstChat.Body), r.UsedChat.Status, r.UsedChat.SinceCreatedMs)
	} else {
		t.Logf("the new secret worked at once: 200 %d ms after the page showed it", r.FirstChat.SinceCreatedMs)
	}
	if r.KeyPage.Status != 200 || r.KeyPage.SecretShown || r.KeysPage.Status != 200 || r.KeysPage.SecretShown || r.KeysPage.Listed != 1 {
		t.Errorf("after creation: key page %+v, keys page %+v; want 200 without the secret, the key listed once", r.KeyPage, r.KeysPage)
	}
	if r.LedgerMs == nil || *r.LedgerMs > 2000 {
		t.Errorf("the request did not reach the usage page and the overview within 2 s")
	} else {
		t.Logf("the request was on the usage page and the overview %d ms after its answer", *r.LedgerMs)
	}
	for name, st := range map[string]int{"connections": r.ConnectionsStatus, "models": r.ModelsStatus, "usage": r.UsageStatus, "requests": r.RequestsStatus} {
		if st != 200 {
			t.Errorf("/ui/%s: %d", name, st)
		}
	}
	if r.RequestRows < 2 {
		t.Errorf("the requests page lists %d requests, want both of the run", r.RequestRows)
	}
	for name, a := range map[string]answer{"fetch without a token": r.ForgedFetch, "fetch with a wrong token": r.ForgedWrongToken, "request context": r.ForgedRequest} {
		if a.Status != 403 || !strings.Contains(a.Body, "Invalid or missing CSRF token") {
			t.Errorf("forged POST /ui/keys (%s): %d, want 403 \"Invalid or missing CSRF token\"", name, a.Status)
		}
	}
	if r.ForgedListed {
		t.Errorf("a forged POST created a key")
	}

	v := r.KeyView
	texts := "|"
	for _, l := range v.Nav {
		texts += l.Text + "|"
		switch strings.TrimSuffix(l.Href, "/") {
		case "/ui/keys", "/ui/connections", "/ui/models":
			t.Errorf("the key's nav links to %s (%q)", l.Href, l.Text)
		}
	}
	for item, want := range map[string]bool{"Overview": true, "Usage": true, "Requests": true, "Keys": false, "Connections": false, "Models": false} {
		if shown := strings.Contains(texts, "|"+item+"|"); shown != want {
			t.Errorf("the key's nav %s: %s shown %v, want %v", texts, item, shown, want)
		}
	}
	for name, pg := range map[string]page{"/ui/connections": v.Connections, "/ui/models": v.Models, "/ui/keys": v.Keys, "/ui/keys/new": v.NewKey} {
		if pg.Status != 403 {
			t.Errorf("the key's session on %s: %d, want 403", name, pg.Status)
		}
	}
	if v.OtherKey.Status != 404 {
		t.Errorf("the key's session on another key's page (%s): %d, want 404", otherID, v.OtherKey.Status)
	}
	if v.OwnKey.Status != 200 || v.OwnKey.SecretShown || v.OwnKeyEditable != 0 {
		t.Errorf("the key's own page: %+v, %d edit buttons; want 200, read-only, no secret", v.OwnKey, v.OwnKeyEditable)
	}

	if len(r.WrongLogins) != 2 {
		t.Fatalf("%d wrong sign-ins reported", len(r.WrongLogins))
	}
	for i, l := range r.WrongLogins {
		alert := ""
		if l.Alert != nil {
			alert = *l.Alert
		}
		// 1 s × 2^(failures − 1): 1 s, then 2 s.
		slowest := time.Duration(1<<i) * time.Second
		if l.Status != 401 || !strings.Contains(alert, "Wrong key") || time.Duration(l.Ms)*time.Millisecond < slowest {
			t.Errorf("wrong master key, attempt %d: %d, alert %q, after %d ms; want 401, \"Wrong key\", at least %v", i+1, l.Status, redact(alert), l.Ms, slowest)
		} else {
			t.Logf("wrong master key, attempt %d: refused after %d ms", i+1, l.Ms)
		}
	}

	if r.RevokeStatus >= 400 || r.RevokeStatus == 0 {
		t.Errorf("POST revoke: %d", r.RevokeStatus)
	}
	if r.Revoke.RefusedMs == nil || *r.Revoke.RefusedMs > 2000 {
		t.Errorf("after revoking, the gateway answered %v, not 401 within 2 s", r.Revoke.Statuses)
	} else {
		t.Logf("revoked key refused after %d ms (%d attempts)", *r.Revoke.RefusedMs, len(r.Revoke.Statuses))
	}
	if r.KeySessionAfterRevoke.Path != "/ui/login" {
		t.Errorf("the revoked key's session still works: /ui/ answered %d at %s", r.KeySessionAfterRevoke.Status, r.KeySessionAfterRevoke.Path)
	}
}

// checkHeaders checks the policy of every console page the browser got.
func checkHeaders(t *testing.T, bodies []body) {
	pages := 0
	for _, b := range bodies {
		if !strings.Contains(b.URL, "/ui/") || !strings.HasPrefix(b.Type, "text/html") {
			continue
		}
		pages++
		if !strings.Contains(b.CSP, "default-src 'none'") || strings.Contains(b.CSP, "unsafe-inline") {
			t.Errorf("%s %s: Content-Security-Policy %q", b.Method, b.URL, b.CSP)
		}
		if inlineScript.MatchString(b.Body) || inlineStyle.MatchString(b.Body) {
			t.Errorf("%s %s: an inline script or style= attribute", b.Method, b.URL)
		}
	}
	if pages == 0 {
		t.Errorf("no console page among the %d answers", len(bodies))
	}
}

var (
	inlineScript = regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`)
	inlineStyle  = regexp.MustCompile(`(?i)<[a-z][^>]*\sstyle\s*=`)
)
