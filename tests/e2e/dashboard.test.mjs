// dashboard.test.mjs: the dashboard in headless Chromium (Debian's
// /usr/bin/chromium, driven by puppeteer-core: no browser download) against
// a daemon whose ledger holds the known workload of
// tests/integration/test_dashboard.c, which starts it and runs this file
// with `node --test`.
//
// env: JUNCTION_URL, JUNCTION_ADMIN_KEY, JUNCTION_SEEDED_REQUESTS (rows in
// the last day), DASHBOARD_SHOTS (folder for the screenshots), CHROMIUM.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import puppeteer from "puppeteer-core";

const base = process.env.JUNCTION_URL;
const adminKey = process.env.JUNCTION_ADMIN_KEY;
const seeded = Number(process.env.JUNCTION_SEEDED_REQUESTS);
const shots = process.env.DASHBOARD_SHOTS;
const sizes = { laptop: { width: 1366, height: 900 }, phone: { width: 390, height: 844, isMobile: true, hasTouch: true } };
const views = ["overview", "traffic", "tenants", "upstreams", "requests", "try"];
assert.ok(base && adminKey && seeded > 0 && shots, "JUNCTION_URL, JUNCTION_ADMIN_KEY, JUNCTION_SEEDED_REQUESTS and DASHBOARD_SHOTS must be set");
mkdirSync(shots, { recursive: true });

let browser;
before(async () => {
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--headless=new", "--lang=en-US", "--disable-gpu", "--font-render-hinting=none"],
  });
});
after(async () => { await browser?.close(); });

// A fresh page (its own sessionStorage) that records console errors, page
// errors, failed loads and every request it makes.
async function open(size = "laptop") {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport(sizes[size]);
  await page.emulateTimezone("UTC");
  const problems = [], requested = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warn") problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("request", (r) => requested.push(new URL(r.url()).pathname));
  await page.goto(`${base}/dashboard`, { waitUntil: "networkidle0" });
  return { page, problems, requested, close: () => context.close() };
}

async function signIn(page, k = adminKey) {
  const loaded = await page.evaluate(() => Number(document.body.dataset.loaded || 0));
  await page.type("#login-key", k);
  await page.click("#login-form button[type=submit]");
  if (k === adminKey)
    await page.waitForFunction((n) => Number(document.body.dataset.loaded || 0) > n, { timeout: 30000 }, loaded);
}

async function admin(path) {
  const res = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${adminKey}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

async function show(page, view) {
  await page.evaluate((v) => { location.hash = v; }, view);
  await page.waitForSelector(`#view-${view}:not([hidden])`);
}

// A prompt with an email and a card number, after a two-byte character
// (findings' spans are UTF-8 byte offsets).
const prompt = "Café receipt: please email jane.doe@acme-corp.com the receipt for card 4111 1111 1111 1111 today.";
const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
const usd = (v) => new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: Math.abs(v) < 1 && v !== 0 ? 4 : 2,
}).format(v);

test("without a key the page shows the sign-in form and asks for no data", async () => {
  const { page, problems, requested, close } = await open();
  assert.equal(await page.$eval("#login", (e) => e.hidden), false);
  assert.equal(await page.$eval("#app", (e) => e.hidden), true);
  assert.equal(await page.$$eval(".kpi, table, canvas", (n) => n.length), 0);
  assert.deepEqual(requested.filter((p) => p.startsWith("/admin") || p === "/metrics" || p.startsWith("/v1")), []);
  await page.screenshot({ path: `${shots}/login-laptop.png` });
  assert.deepEqual(problems, []);
  await close();
});

test("a wrong key is refused and no data is shown", async () => {
  const { page, close } = await open();
  await signIn(page, "not-the-admin-key");
  await page.waitForSelector("#login-error:not([hidden])");
  assert.match(await text(page, "#login-error"), /refused/);
  assert.equal(await page.$eval("#app", (e) => e.hidden), true);
  assert.equal(await page.$$eval(".kpi", (n) => n.length), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await close();
});

test("signed in: no console errors, totals equal /admin/spend, the key is never in a URL", async () => {
  const { page, problems, requested, close } = await open();
  await signIn(page);
  const [since, until] = await page.evaluate(() => [document.body.dataset.since, document.body.dataset.until]);
  const want = (await admin(`/admin/spend?since=${since}&until=${until}`)).total;
  assert.equal(Number(want.requests), seeded);
  for (const name of ["cost_usd", "counterfactual_usd", "savings_usd", "requests"]) {
    const [value, shown] = await page.$eval(`[data-kpi=${name}]`, (e) => [e.dataset.value, e.querySelector(".kpi-value").textContent]);
    assert.equal(value, String(want[name]), name);
    assert.equal(shown, name === "requests" ? Number(want.requests).toLocaleString("en-US") : usd(Number(want[name])), name);
  }
  assert.ok(requested.every((p) => !p.includes(adminKey)));
  assert.ok(!page.url().includes(adminKey));
  assert.deepEqual(problems, []);
  await close();
});

test("the range picker changes what is counted", async () => {
  const { page, close } = await open();
  await signIn(page);
  const loaded = await page.evaluate(() => Number(document.body.dataset.loaded));
  await page.select("#range", "7d");
  await page.waitForFunction((n) => Number(document.body.dataset.loaded) > n, {}, loaded);
  const [since, until] = await page.evaluate(() => [document.body.dataset.since, document.body.dataset.until]);
  const want = (await admin(`/admin/spend?since=${since}&until=${until}`)).total;
  assert.equal(Number(want.requests), seeded + 1);   // the three-day-old row
  assert.equal(await page.$eval("[data-kpi=requests]", (e) => e.dataset.value), String(want.requests));
  await close();
});

test("every chart has drawn its series", async () => {
  const { page, close } = await open();
  await signIn(page);
  for (const view of ["overview", "traffic"]) {
    await show(page, view);
    const charts = await page.$$eval(`#view-${view} .chart`, (nodes) => nodes.map((n) => {
      const canvas = n.querySelector("canvas");
      if (!canvas || !canvas.width) return { id: n.id, coloured: 0 };
      const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      const colours = n.dataset.colors.split(",").map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
      let coloured = 0;
      for (let i = 0; i < px.length; i += 4)
        if (px[i + 3] > 0 && colours.some(([r, g, b]) => Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 24)) coloured++;
      return { id: n.id, coloured };
    }));
    assert.ok(charts.length >= 1, view);
    for (const c of charts) assert.ok(c.coloured > 200, `${c.id} has ${c.coloured} pixels of its series' colours`);
  }
  await close();
});

test("tenant names are shown as text, never run as markup", async () => {
  const { page, problems, close } = await open();
  await signIn(page);
  await show(page, "tenants");
  const cells = await page.$$eval("#top-tenants td", (n) => n.map((e) => e.textContent));
  assert.ok(cells.includes('<img src=x onerror="window.__xss=1">'));
  assert.equal(await page.$$eval("main img", (n) => n.length), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(problems, []);
  await close();
});

test("filters change the table, and a request's detail never shows its prompt", async () => {
  const { page, close } = await open();
  await signIn(page);
  await show(page, "requests");
  const rows = () => page.$$eval("#requests-table tbody tr[data-id]", (n) => n.map((tr) =>
    Object.fromEntries([...tr.cells].map((td) => [td.dataset.label, td.textContent]))));
  const all = await rows();
  assert.equal(all.length, seeded);
  await page.select("#filter-route", "claude");
  const claude = await rows();
  assert.equal(claude.length, seeded / 4);
  assert.ok(claude.every((r) => r.Route === "claude"));
  await page.select("#filter-route", "");
  await page.select("#filter-status", "error");
  const failed = await rows();
  assert.equal(failed.length, Math.floor(seeded / 9));
  assert.ok(failed.every((r) => r.Status === "502"));
  await page.select("#filter-status", "");
  await page.select("#filter-rule", "keep-sensitive-local");
  await page.select("#filter-tenant", "acme");
  const narrowed = await rows();
  assert.equal(narrowed.length, seeded / 12);   // i % 4 == 0 and i % 3 == 0
  assert.ok(narrowed.every((r) => r.Rule === "keep-sensitive-local" && r.Tenant === "acme"));
  await page.click("#requests-table tbody tr[data-id]");
  await page.waitForSelector("#request-detail dl");
  const detail = await text(page, "#request-detail");
  assert.match(detail, /credit_card/);
  assert.match(detail, /sensitive \(credit_card forces\)/);
  assert.match(detail, /prompt \+/);
  const html = await page.content();
  assert.ok(!html.includes("PROMPT-TEXT-MUST-NOT-SHOW"), "the prompt text reached the page");
  await close();
});

test("traffic: per-rule counts and the share kept local for sensitivity", async () => {
  const { page, close } = await open();
  await signIn(page);
  await show(page, "traffic");
  const rules = await page.$$eval("#rules tbody tr", (n) => Object.fromEntries(n.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])));
  assert.deepEqual(rules, {
    "keep-sensitive-local": String(seeded / 4), "easy-local": String(seeded / 4),
    "hard-to-frontier": String(seeded / 4), "explicit model": String(seeded / 4),
  });
  assert.equal(await page.$eval("[data-kpi=kept_local_share] .kpi-value", (e) => e.textContent), "25%");
  await show(page, "upstreams");
  const ups = await page.$$eval("#upstream-health tbody tr", (n) => n.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent]));
  assert.deepEqual(ups.sort(), [["claude", "closed"], ["frontier", "closed"]]);
  await close();
});

test("try a prompt shows the findings and the route, without generating", async () => {
  const { page, problems, close } = await open();
  await signIn(page);
  await show(page, "try");
  await page.type("#try-input", prompt);
  await page.click("#try-form button[type=submit]");
  await page.waitForSelector("#try-result #try-route, #try-result .error", { timeout: 30000 });
  const error = await page.$eval("#try-result", (e) => e.querySelector(".error")?.textContent);
  assert.equal(error, undefined, `POST /v1/route: ${error}`);
  const kinds = await page.$$eval("#try-findings tbody tr", (n) => n.map((tr) => [tr.dataset.kind, tr.cells[1].textContent]));
  assert.deepEqual(kinds.find(([k]) => k === "email"), ["email", "jane.doe@acme-corp.com"]);
  assert.deepEqual(kinds.find(([k]) => k === "credit_card"), ["credit_card", "4111 1111 1111 1111"]);
  const marks = await page.$$eval("#try-marked mark", (n) => n.map((m) => m.textContent));
  assert.ok(marks.includes("jane.doe@acme-corp.com") && marks.includes("4111 1111 1111 1111"));
  assert.ok((await text(page, "#try-route")).length > 0);
  assert.deepEqual(problems, []);
  await close();
});

test("a screenshot of each view, at laptop and phone width", async () => {
  for (const size of Object.keys(sizes)) {
    const { page, problems, close } = await open(size);
    await signIn(page);
    for (const view of views) {
      await show(page, view);
      if (view === "try") {
        await page.type("#try-input", prompt);
        await page.click("#try-form button[type=submit]");
        await page.waitForSelector("#try-findings");
      }
      if (view === "requests") {
        await page.click("#requests-table tbody tr[data-id]");
        await page.waitForSelector("#request-detail dl");
      }
      const path = `${shots}/${view}-${size}.png`;
      await page.screenshot({ path });
      const png = readFileSync(path);
      assert.equal(png.subarray(1, 4).toString(), "PNG");
      assert.ok(png.length > 5000, `${path} is ${png.length} bytes`);
      // Nothing wider than the screen: no sideways scrolling, on a phone too.
      const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= inner, `${view} at ${size} width is ${scroll} px wide on a ${inner} px screen`);
    }
    assert.deepEqual(problems, []);
    await close();
  }
});
