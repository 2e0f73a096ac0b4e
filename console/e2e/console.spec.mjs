// The web console in a real browser: playwright-core driving Debian's
// Chromium against a running `llm-proxy serve`. e2e_test.go starts the
// server and runs this script; the script only observes and reports — it
// prints one JSON object on stdout and the Go test makes every assertion,
// so that a failure names the figure that differed.
//
// Environment (all set by e2e_test.go):
//   BASE_URL         http://127.0.0.1:PORT of the server
//   MASTER_KEY       the server's master key
//   MODEL            the priced model alias the new key is scoped to
//   CONNECTION       the name of that model's connection
//   KEY_NAME         the name of the key it creates
//   OTHER_KEY_ID     another key's ID, which a key session must not see
//   WRONG_KEY        a key that is not the master key, for the login throttle
//   SCREENSHOT_DIR   where the PNGs go (docs/console of the repository)
//   BODIES_FILE      where every response body the browser saw is written
//   CHROMIUM         the browser executable (/usr/bin/chromium)
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env("BASE_URL");
const masterKey = env("MASTER_KEY");
const model = env("MODEL");
const connection = env("CONNECTION");
const otherKeyID = env("OTHER_KEY_ID");
const wrongKey = env("WRONG_KEY");
const shots = env("SCREENSHOT_DIR");
const bodiesFile = env("BODIES_FILE");
const executablePath = env("CHROMIUM");

const keyName = env("KEY_NAME");
const result = { keyName, steps: ["start"] };
const bodies = [];
const pending = [];

// collect records the body of every response a context sees (pages,
// redirects excepted, fetches, assets), for the Go test's secret scan.
function collect(context, label) {
  context.on("response", (resp) => {
    const req = resp.request();
    pending.push(
      resp
        .body()
        .then((b) => {
          bodies.push({
            context: label,
            method: req.method(),
            url: resp.url(),
            status: resp.status(),
            type: resp.headers()["content-type"] || "",
            csp: resp.headers()["content-security-policy"] || "",
            body: b.toString("utf8"),
          });
        })
        .catch(() => {}), // redirects and aborted loads have no body
    );
  });
}

// answerBody is what collect records, for an answer to the admin
// context's API requests (page.request), which raise no response event.
function answerBody(resp, body, method = "POST") {
  const h = resp.headers();
  return { context: "admin", method, url: resp.url(), status: resp.status(), type: h["content-type"] || "", csp: h["content-security-policy"] || "", body };
}

// figuresRead hands the figures to the Go test, which compares them with
// `llm-proxy usage --json` while nothing else reaches the gateway, and
// waits for its go-ahead on stdin.
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function figuresRead(figures) {
  process.stdout.write(JSON.stringify({ phase: "figures", ...figures }) + "\n");
  await stdin.next();
}

// newContext opens a browser context (its own cookies) whose every
// response is collected; a missing element fails in 10 s, not 30.
async function newContext(label, options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(10000);
  collect(context, label);
  return context;
}

function step(name) {
  result.steps.push(name);
}

// url makes a path absolute against the server.
const url = (path) => new URL(path, base).toString();

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

// value reads data-value of the element with this data-testid, as a number.
async function value(scope, testid) {
  const el = scope.locator(`[data-testid="${testid}"]`).first();
  const v = await el.getAttribute("data-value", { timeout: 2000 });
  return v === null ? null : Number(v);
}

async function overviewFigures(page) {
  const resp = await page.goto(url("/ui/?range=24h"));
  return {
    status: resp.status(),
    requests: await value(page, "total-requests"),
    tokens: await value(page, "total-tokens"),
    cost: await value(page, "total-cost"),
  };
}

async function rowFigures(row) {
  const cell = async (id) => {
    const c = row.locator(`[data-testid="${id}"]`);
    const v = (await c.count()) ? await c.first().getAttribute("data-value") : null;
    return v === null ? null : Number(v);
  };
  return {
    text: (await row.innerText()).replace(/\s+/g, " ").trim(),
    requests: await cell("requests"),
    promptTokens: await cell("prompt-tokens"),
    completionTokens: await cell("completion-tokens"),
    totalTokens: await cell("total-tokens"),
    cost: await cell("cost"),
  };
}

async function usageFigures(page) {
  const resp = await page.goto(url("/ui/usage?by=key&range=30d"));
  const rows = [];
  for (const row of await page.locator('[data-testid="usage"] [data-testid="usage-row"]').all()) {
    rows.push(await rowFigures(row));
  }
  const total = page.locator('[data-testid="usage-total"]');
  return {
    status: resp.status(),
    rows,
    total: (await total.count()) ? await rowFigures(total.first()) : null,
  };
}

// chat sends one tiny chat request with key, from the page (a browser
// fetch, so that its answer is among the collected bodies).
async function chat(page, key, content) {
  return page.evaluate(
    async ({ key, model, content }) => {
      const t0 = performance.now();
      const r = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body: JSON.stringify({ model, max_tokens: 5, messages: [{ role: "user", content }] }),
      });
      const body = await r.text();
      return { status: r.status, ms: performance.now() - t0, body: body.slice(0, 300) };
    },
    { key, model, content },
  );
}

// signIn submits the login form and returns the answer to the POST and
// how long it took, as the browser measured it.
async function signIn(page, key) {
  await page.goto(url("/ui/login"));
  await page.getByLabel("Key", { exact: true }).fill(key);
  const t0 = Date.now();
  const [resp] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === "/ui/login" && r.request().method() === "POST", { timeout: 30000 }),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  const ms = Date.now() - t0;
  await page.waitForLoadState();
  return { status: resp.status(), ms, url: page.url() };
}

async function navLinks(page) {
  return page.locator("nav a").evaluateAll((as) => as.map((a) => ({ text: a.textContent.trim(), href: a.getAttribute("href") })));
}

async function status(page, path) {
  const resp = await page.goto(url(path));
  return { status: resp.status(), html: await page.content() };
}

const browser = await chromium.launch({ executablePath, headless: true });
let current = null; // the page of the step in progress, for the error report
try {
  // --- the admin, signed in with the master key ---------------------------
  const admin = await newContext("admin", { viewport: { width: 1280, height: 800 } });
  const page = await admin.newPage();
  page.on("dialog", (d) => d.accept()); // a confirm() before revoking, if any
  current = page;

  step("login page");
  const first = await page.goto(url("/ui/"));
  result.unsignedLanding = new URL(page.url()).pathname;
  result.unsignedStatus = first.status();
  await shot(page, "login");
  result.adminLogin = await signIn(page, masterKey);

  step("create a key scoped to the model, with a budget");
  await page.goto(url("/ui/keys/new"));
  await page.getByLabel("Name", { exact: true }).fill(keyName);
  await page.getByLabel("Connection", { exact: true }).selectOption({ label: connection });
  await page.getByLabel("Models", { exact: true }).fill(model);
  await page.getByLabel("Budget (USD)", { exact: true }).fill("5");
  await page.getByLabel("Budget period", { exact: true }).selectOption("monthly");
  const [created] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === "/ui/keys" && r.request().method() === "POST"),
    page.getByRole("button", { name: "Create key" }).click(),
  ]);
  await page.waitForLoadState();
  const createdAt = Date.now();
  result.createStatus = created.status();
  result.createURL = created.url();
  const secret = (await page.locator('[data-testid="new-secret"]').innerText()).trim();
  result.secret = secret;
  result.copyButton = await page.getByRole("button", { name: "Copy" }).count();
  // The secret works at once: the first request after the page showed it.
  result.firstChat = await chat(page, secret, "hello from the console test");
  result.firstChat.sinceCreatedMs = Date.now() - createdAt;
  // Should the first attempt fail (the Go test says so), the key is still
  // used, as soon as the gateway takes it, for the checks that follow.
  let used = result.firstChat;
  while (used.status !== 200 && Date.now() - createdAt < 3000) {
    await page.waitForTimeout(50);
    used = await chat(page, secret, "hello from the console test");
    used.sinceCreatedMs = Date.now() - createdAt;
  }
  result.usedChat = used;
  const chatDone = Date.now();
  await shot(page, "new-key-created");
  const keyHref = await page
    .locator("main a")
    .evaluateAll((as) => as.map((a) => a.getAttribute("href")).find((h) => /^\/ui\/keys\/(?!new$)[^/?#]+$/.test(h || "")));
  if (!keyHref) throw new Error("the created page has no link to the key's page");
  result.keyId = keyHref.split("/").pop();

  step("the secret is gone once the page is left");
  let r = await status(page, keyHref);
  await page.reload();
  result.keyPage = { status: r.status, secretShown: r.html.includes(secret) || (await page.content()).includes(secret) };
  r = await status(page, "/ui/keys");
  result.keysPage = { status: r.status, secretShown: r.html.includes(secret), listed: await page.locator(`tr[data-key-id="${result.keyId}"]`).count() };

  step("the ledger reaches the usage page and the overview");
  // The server writes usage asynchronously; the pages must show the
  // request within 2 s of its answer.
  let usage, overview;
  for (;;) {
    usage = await usageFigures(page);
    overview = await overviewFigures(page);
    const row = usage.rows.find((x) => x.text.includes(keyName));
    const seen = row && row.requests >= 1 && usage.total && overview.requests === usage.total.requests;
    if (seen || Date.now() - chatDone > 2000) {
      result.ledgerMs = seen ? Date.now() - chatDone : null;
      break;
    }
    await page.waitForTimeout(100);
  }
  result.usage = usage;
  result.overview = overview;
  // The key's spend this period on the keys list.
  await page.goto(url("/ui/keys"));
  const spend = await page.locator(`tr[data-key-id="${result.keyId}"] [data-testid="key-spend"]`).first().getAttribute("data-value");
  const keySpend = spend === null ? null : Number(spend);
  // The CSV download of the same report.
  const csv = await page.request.get(url("/ui/usage.csv?by=key&range=30d"));
  const csvAnswer = { status: csv.status(), disposition: csv.headers()["content-disposition"] || "", body: await csv.text() };
  bodies.push(answerBody(csv, csvAnswer.body, "GET"));

  step("screenshots of every page at 1280 px");
  await page.goto(url("/ui/?range=24h"));
  await shot(page, "overview");
  await page.goto(url("/ui/keys"));
  await shot(page, "keys");
  await page.goto(url(keyHref));
  await shot(page, "key");
  for (const name of ["connections", "models", "usage", "requests"]) {
    const resp = await page.goto(url(`/ui/${name}`));
    result[`${name}Status`] = resp.status();
    if (name === "requests") {
      result.requestRows = await page.locator('[data-testid="requests"] [data-testid="request-row"]').count();
    }
    await shot(page, name);
  }
  step("screenshots at 390 px");
  const narrow = await admin.newPage();
  current = narrow;
  await narrow.setViewportSize({ width: 390, height: 844 });
  await narrow.goto(url("/ui/?range=24h"));
  await shot(narrow, "overview-390");
  await narrow.goto(url("/ui/keys"));
  await shot(narrow, "keys-390");
  await narrow.close();
  current = page;

  step("a forged POST without the CSRF token");
  await page.goto(url("/ui/keys/new"));
  const form = { name: "forged-key", connection, models: model };
  result.forgedFetch = await page.evaluate(async (form) => {
    const r = await fetch("/ui/keys", { method: "POST", body: new URLSearchParams(form), redirect: "manual" });
    return { status: r.status, body: await r.text() };
  }, form);
  result.forgedWrongToken = await page.evaluate(async (form) => {
    const r = await fetch("/ui/keys", { method: "POST", body: new URLSearchParams({ ...form, csrf: "not-the-token" }), redirect: "manual" });
    return { status: r.status, body: await r.text() };
  }, form);
  const forged = await page.request.post(url("/ui/keys"), { form, maxRedirects: 0 });
  result.forgedRequest = { status: forged.status(), body: await forged.text() };
  bodies.push(answerBody(forged, result.forgedRequest.body));
  r = await status(page, "/ui/keys");
  result.forgedListed = r.html.includes("forged-key");

  step("a session of the virtual key sees only its key");
  const team = await newContext("key", { viewport: { width: 1280, height: 800 } });
  const tp = await team.newPage();
  current = tp;
  result.keyLogin = await signIn(tp, secret);
  const keyView = { nav: await navLinks(tp) };
  keyView.overview = await overviewFigures(tp);
  await shot(tp, "key-session-overview");
  keyView.usage = await usageFigures(tp);
  for (const [name, path] of [
    ["connections", "/ui/connections"],
    ["models", "/ui/models"],
    ["keys", "/ui/keys"],
    ["newKey", "/ui/keys/new"],
    ["otherKey", `/ui/keys/${otherKeyID}`],
    ["ownKey", keyHref],
  ]) {
    const got = await status(tp, path);
    keyView[name] = { status: got.status, secretShown: got.html.includes(secret) };
  }
  keyView.ownKeyEditable = await tp.getByRole("button", { name: /Save limits|Revoke key/ }).count();
  result.keyView = keyView;
  // Every figure is read; the revoke below sends more requests.
  await figuresRead({ usage, overview, keySpend, csv: csvAnswer, keyOverview: keyView.overview, keyUsage: keyView.usage });

  step("a wrong master key is refused and slowed");
  const stranger = await newContext("stranger", { viewport: { width: 1280, height: 800 } });
  const sp = await stranger.newPage();
  current = sp;
  result.wrongLogins = [];
  for (let i = 0; i < 2; i++) {
    const got = await signIn(sp, wrongKey);
    const alert = sp.getByRole("alert");
    got.alert = (await alert.count()) ? (await alert.first().innerText()).trim() : null;
    result.wrongLogins.push(got);
  }

  step("revoke the key; the gateway refuses it within 2 s");
  current = page;
  await page.goto(url(keyHref));
  const [revoked] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === `${keyHref}/revoke` && r.request().method() === "POST"),
    page.getByRole("button", { name: "Revoke key" }).click(),
  ]);
  await page.waitForLoadState();
  result.revokeStatus = revoked.status();
  const t0 = Date.now();
  const statuses = [];
  for (;;) {
    const got = await chat(page, secret, "after revoke");
    statuses.push(got.status);
    if (got.status === 401 || Date.now() - t0 > 5000) break;
    await page.waitForTimeout(50);
  }
  result.revoke = { refusedMs: statuses.at(-1) === 401 ? Date.now() - t0 : null, statuses };
  // The key's console session ends with the key.
  const after = await tp.goto(url("/ui/"));
  result.keySessionAfterRevoke = { status: after.status(), path: new URL(tp.url()).pathname };
  await tp.close();
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
  if (current) {
    result.errorURL = current.url();
    result.errorHTML = (await current.content().catch(() => "")).slice(0, 4000);
  }
} finally {
  await Promise.allSettled(pending);
  await browser.close();
  writeFileSync(bodiesFile, JSON.stringify(bodies));
  result.bodies = bodies.length;
  // Exit once written: the open stdin would keep node waiting.
  process.stdout.write(JSON.stringify({ phase: "result", ...result }) + "\n", () => process.exit(0));
}
