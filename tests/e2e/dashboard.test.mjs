// dashboard.test.mjs: the dashboard in headless Chromium (Debian's
// /usr/bin/chromium, driven by puppeteer-core: no browser download) against
// a daemon whose ledger holds the known workload of
// tests/integration/test_dashboard.c, which starts it and runs this file
// with `node --test`.
//
// env: JUNCTION_URL, JUNCTION_ADMIN_KEY (an admin client key: client keys
// are on), JUNCTION_ENV_ADMIN_KEY (one from JUNCTION_ADMIN_KEYS, not a client
// key), JUNCTION_SEEDED_REQUESTS (rows in the last day), DASHBOARD_SHOTS
// (folder for the screenshots), CHROMIUM.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import puppeteer from "puppeteer-core";

const base = process.env.JUNCTION_URL;
const adminKey = process.env.JUNCTION_ADMIN_KEY;
const envAdminKey = process.env.JUNCTION_ENV_ADMIN_KEY;
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
  if (k === adminKey || k === envAdminKey)
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

// What the Tenants view must show for one budget holder and period, from
// /admin/budgets: spent + reserved (to the micro-dollar) against the limit.
const pct = (v) => new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 }).format(v);
function wantMeter(o, period) {
  const spent = Number(o[`${period}_spent_usd`]), reserved = Number(o[`${period}_reserved_usd`]);
  const limit = Number(o[period === "day" ? "budget_daily_usd" : "budget_monthly_usd"]);
  const used = Math.round((spent + reserved) * 1e6) / 1e6;
  return {
    period, used: usd(used), limit: limit > 0 ? usd(limit) : "no budget",
    share: !(limit > 0) ? null : used > 0 && used / limit < 0.001 ? "<0.1%" : pct(used / limit),
    detail: `${usd(spent)} spent + ${usd(reserved)} reserved`,
    width: limit > 0 ? Math.min(1, used / limit) * 100 : null,   // the bar's width, %
  };
}
const readMeters = (root) => [...root.querySelectorAll(".meter")].map((m) => ({
  period: m.dataset.period,
  used: m.querySelector(".meter-used").textContent,
  limit: m.querySelector(".meter-limit").textContent,
  share: m.querySelector(".meter-share")?.textContent ?? null,
  detail: m.querySelector(".meter-detail").textContent,
  width: m.querySelector(".bar-fill") ? parseFloat(m.querySelector(".bar-fill").style.width) : null,
}));
// The bars' widths equal to a hundredth of a percent (the CSSOM rounds
// them), then the widths wanted stand in for those shown.
function sameWidths(shown, want) {
  for (let i = 0; i < Math.min(shown.length, want.length); i++) {
    const [a, b] = [shown[i].width, want[i].width];
    assert.ok(a === b || (a !== null && b !== null && Math.abs(a - b) < 0.01), `bar width ${a}% for ${b}%`);
    shown[i].width = b;
  }
  return shown;
}

test("tenants: the budgets shown equal /admin/budgets", async () => {
  const { page, problems, close } = await open();
  await signIn(page);
  await show(page, "tenants");
  const want = await admin("/admin/budgets");
  const shown = await page.evaluate(`(() => {
    const readMeters = ${readMeters.toString()};
    const g = document.querySelector("#budget-global");
    return {
      global: g ? readMeters(g) : null,
      tenants: [...document.querySelectorAll("#tenant-budgets tbody tr[data-tenant]")].map((tr) => [tr.dataset.tenant, tr.cells[0].textContent, readMeters(tr)]),
      keys: [...document.querySelectorAll("#key-budgets tbody tr[data-key]")].map((tr) => [tr.dataset.key, tr.cells[1].textContent, readMeters(tr)]),
    };
  })()`);
  // the seeded budgets (tests/integration/test_dashboard.c), as the server reports them
  const tenant = (n) => want.tenants.find((t) => t.name === n);
  assert.equal(Number(want.global.budget_daily_usd), 25);
  assert.equal(Number(tenant("acme").budget_daily_usd), 0.05);
  assert.equal(Number(tenant("globex").budget_daily_usd), 0);
  assert.equal(Number(tenant("globex").budget_monthly_usd), 0.04);
  const ci = want.keys.find((k) => k.name === "ci");
  assert.equal(Number(ci.budget_daily_usd), 0.02);

  const meters = (o) => [wantMeter(o, "day"), wantMeter(o, "month")];
  assert.deepEqual(sameWidths(shown.global, meters(want.global)), meters(want.global));
  const byName = (list) => Object.fromEntries(list.map(([name, ...rest]) => [name, rest]));
  const wantTenants = byName(want.tenants.map((t) => [t.name, t.name, meters(t)]));
  const wantKeys = byName(want.keys.filter((k) => k.revoked_ms === null).map((k) => [k.id, k.tenant, meters(k)]));
  const shownTenants = byName(shown.tenants), shownKeys = byName(shown.keys);
  for (const [name, [, m]] of Object.entries(shownTenants)) if (wantTenants[name]) sameWidths(m, wantTenants[name][1]);
  for (const [id, [, m]] of Object.entries(shownKeys)) if (wantKeys[id]) sameWidths(m, wantKeys[id][1]);
  assert.deepEqual(shownTenants, wantTenants);
  assert.deepEqual(shownKeys, wantKeys);
  // spelled out once, for a person reading a failure
  assert.equal(shownTenants.acme[1][0].limit, "$0.05");
  assert.equal(shownTenants.ops[1][1].limit, "no budget");
  assert.equal(shownKeys[ci.id][1][0].limit, "$0.02");
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

test("an admin key that is not a client key reads the views, and trying a prompt says why it cannot", async () => {
  assert.ok(envAdminKey, "JUNCTION_ENV_ADMIN_KEY must be set");
  const { page, close } = await open();
  await signIn(page, envAdminKey);
  await show(page, "tenants");
  assert.ok((await page.$$eval("#tenant-budgets tbody tr[data-tenant]", (n) => n.length)) > 0);
  await show(page, "try");
  await page.type("#try-input", prompt);
  await page.click("#try-form button[type=submit]");
  await page.waitForSelector("#try-result .error");
  assert.match(await text(page, "#try-result .error"), /client key/);
  assert.equal(await page.$eval("#app", (e) => e.hidden), false, "signed out");
  assert.equal(await page.evaluate(() => sessionStorage.length), 1);
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
      if (view === "tenants" && size === "laptop") await (await page.$("#key-budgets")).screenshot({ path: `${shots}/budgets-${size}.png` });
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
