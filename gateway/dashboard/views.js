// views.js: the overview, traffic, tenants and upstreams views, drawn from
// one snapshot of the admin endpoints (app.js fetches it).
//
// Totals come from /admin/spend, exact and computed by the ledger; what
// /admin/spend cannot group by (time per route, rule, sensitivity) comes
// from the decisions in the range (/admin/requests), with a note when the
// range held more rows than the dashboard reads.

import { bucketize, chartBox, lines, stacked } from "./charts.js";
import { count, el, fill, ms, ruleOf, share, usd } from "./format.js";

// A table from column definitions: {title, num?, cell(row) -> text|Node};
// rowAttrs(row), when given, gives each row's attributes.
export function table(columns, rows, empty = "Nothing in this range.", rowAttrs = () => ({})) {
  const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null, scope: "col" }, c.title)));
  const body = rows.length
    ? rows.map((r) => el("tr", rowAttrs(r), columns.map((c) => el("td", { class: c.num ? "num" : null, "data-label": c.title }, c.cell(r)))))
    : [el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, empty))];
  return el("div", { class: "table-wrap" }, el("table", { class: "data" }, el("thead", {}, head), el("tbody", {}, body)));
}

// A horizontal bar for a share 0..1 (its width set through the CSSOM, which
// the Content-Security-Policy allows, unlike style attributes).
function bar(fraction, level) {
  const inner = el("span", { class: level ? `bar-fill ${level}` : "bar-fill" });
  inner.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return el("span", { class: "bar" }, inner);
}

const kpi = (name, label, value, shown, sub) =>
  el("div", { class: "card kpi", "data-kpi": name, "data-value": value },
    el("div", { class: "kpi-label" }, label), el("div", { class: "kpi-value" }, shown), sub ? el("div", { class: "muted" }, sub) : null);

// Requests kept local because they were sensitive: a detector fired or the
// rule's reason says so, and the local engine answered.
const sensitive = (r) => (r.detectors && r.detectors.length > 0) || /sensitiv/i.test(r.reason || "");
const keptLocal = (rows) => rows.filter((r) => r.route === "local" && sensitive(r)).length;

function sampleNote(snap) {
  return snap.capped ? `From the newest ${count(snap.rows.length)} requests in the range.` : null;
}

export function overview(root, snap) {
  const t = snap.spend.total;
  const local = keptLocal(snap.rows);
  fill(root,
    el("div", { class: "kpis" },
      kpi("cost_usd", "Spend", t.cost_usd, usd(t.cost_usd)),
      kpi("counterfactual_usd", "Without junction", t.counterfactual_usd, usd(t.counterfactual_usd), "all on the reference upstream"),
      kpi("savings_usd", "Saved", t.savings_usd, usd(t.savings_usd)),
      kpi("requests", "Requests", t.requests, count(t.requests), `${count(t.errors)} errors`),
      kpi("kept_local", "Kept local (sensitive)", snap.rows.length ? local / snap.rows.length : 0,
        share(snap.rows.length ? local / snap.rows.length : 0), `${count(local)} requests`)),
    el("div", { class: "grid2" },
      chartBox("chart-spend", "Spend over time by route", sampleNote(snap)),
      chartBox("chart-savings", "Actual and counterfactual cost (cumulative)", sampleNote(snap))));
  const { untilMs, sinceMs } = snap.range;
  const cost = bucketize(snap.rows, sinceMs, untilMs, (r) => r.route, (r) => Number(r.cost_usd));
  stacked(document.getElementById("chart-spend"), cost, usd);
  const all = bucketize(snap.rows, sinceMs, untilMs, () => "all", (r) => Number(r.cost_usd));
  const cf = bucketize(snap.rows, sinceMs, untilMs, () => "all", (r) => Number(r.counterfactual_usd));
  const cumulative = (b) => {
    let s = 0;
    return (b.values.all || b.x.map(() => 0)).map((v) => (s += v));
  };
  const actual = cumulative(all), counter = cumulative(cf);
  lines(document.getElementById("chart-savings"), all.x,
    [["Actual", actual], ["Counterfactual", counter], ["Saved", counter.map((v, i) => v - actual[i])]], usd, { Saved: true });
}

export function traffic(root, snap) {
  const total = Number(snap.spend.total.requests) || 0;
  const rules = new Map();
  for (const r of snap.rows) rules.set(ruleOf(r.reason), (rules.get(ruleOf(r.reason)) || 0) + 1);
  const ruleRows = [...rules.entries()].sort((a, b) => b[1] - a[1]);
  const n = snap.rows.length || 1;
  const local = keptLocal(snap.rows);
  fill(root,
    el("div", { class: "kpis" },
      kpi("sensitive_share", "Sensitive requests", snap.rows.filter(sensitive).length / n, share(snap.rows.filter(sensitive).length / n)),
      kpi("kept_local_share", "Kept local because sensitive", local / n, share(local / n), `${count(local)} of ${count(snap.rows.length)}`)),
    chartBox("chart-requests", "Requests over time by route", sampleNote(snap)),
    el("div", { class: "grid2" },
      el("section", { class: "card" }, el("h3", {}, "Requests per route"),
        table([
          { title: "Route", cell: (g) => g.key },
          { title: "Requests", num: true, cell: (g) => count(g.requests) },
          { title: "Share", cell: (g) => el("span", { class: "share" }, bar(total ? g.requests / total : 0), share(g.share)) },
          { title: "Local", num: true, cell: (g) => share(g.local_share) },
          { title: "Errors", num: true, cell: (g) => count(g.errors) },
        ], snap.byRoute.groups)),
      el("section", { class: "card", id: "rules" }, el("h3", {}, "Requests per rule"),
        sampleNote(snap) ? el("p", { class: "muted" }, sampleNote(snap)) : null,
        table([
          { title: "Rule", cell: ([rule]) => rule },
          { title: "Requests", num: true, cell: ([, c]) => count(c) },
          { title: "Share", cell: ([, c]) => el("span", { class: "share" }, bar(c / n), share(c / n)) },
        ], ruleRows))),
    el("section", { class: "card" }, el("h3", {}, "Latency and time to first token by route"),
      table([
        { title: "Route", cell: (g) => g.key },
        { title: "Latency p50", num: true, cell: (g) => ms(g.p50_latency_ms) },
        { title: "Latency p95", num: true, cell: (g) => ms(g.p95_latency_ms) },
        { title: "TTFT p50", num: true, cell: (g) => ms(g.p50_ttft_ms) },
        { title: "TTFT p95", num: true, cell: (g) => ms(g.p95_ttft_ms) },
      ], snap.byRoute.groups)));
  const b = bucketize(snap.rows, snap.range.sinceMs, snap.range.untilMs, (r) => r.route, () => 1);
  stacked(document.getElementById("chart-requests"), b, count);
}

function topBySpend(groups, name) {
  const sorted = [...groups].sort((a, b) => Number(b.cost_micro_usd) - Number(a.cost_micro_usd)).slice(0, 10);
  const all = groups.reduce((s, g) => s + Number(g.cost_micro_usd), 0);
  return table([
    { title: name, cell: (g) => g.key },
    { title: "Requests", num: true, cell: (g) => count(g.requests) },
    { title: "Spend", num: true, cell: (g) => usd(g.cost_usd) },
    { title: "Share of spend", cell: (g) => el("span", { class: "share" }, bar(all ? Number(g.cost_micro_usd) / all : 0),
      share(all ? Number(g.cost_micro_usd) / all : 0)) },
    { title: "Saved", num: true, cell: (g) => usd(g.savings_usd) },
  ], sorted);
}

// ---- budgets (/admin/budgets): today and this month in UTC, whatever the range ----

const WARN_AT = 0.8;   // amber from here (the default budgets.soft_fraction), red at the limit
const limitField = { day: "budget_daily_usd", month: "budget_monthly_usd" };

// What one budget holder (global, a tenant, a key) has used of one period's
// limit: spent + reserved (requests in flight hold their worst case), in
// dollars rounded to the micro-dollar the server counts in; `limit` 0 is none.
export function budgetUse(o, period) {
  const spent = Number(o[`${period}_spent_usd`]) || 0;
  const reserved = Number(o[`${period}_reserved_usd`]) || 0;
  const used = Math.round((spent + reserved) * 1e6) / 1e6;
  const limit = Number(o[limitField[period]]) || 0;
  return { spent, reserved, used, limit, fraction: limit > 0 ? used / limit : null };
}

// A share used, never "0%" when something was used: "<0.1%".
const usedShare = (f) => (f > 0 && f < 0.001 ? `<${share(0.001)}` : share(f));

// One period's use as text and a bar: "$0.0312 of $0.05 · 62.4%", or
// "$0.0312 used · no budget"; spent and reserved below.
function meter(o, period) {
  const u = budgetUse(o, period);
  const level = u.fraction === null ? null : u.fraction >= 1 ? "over" : u.fraction >= WARN_AT ? "warn" : null;
  return el("div", {
    class: level ? `meter ${level}` : "meter", "data-period": period,
    "data-used": u.used, "data-limit": u.limit, "data-share": u.fraction ?? "",
  },
  el("div", { class: "meter-head" },
    el("span", { class: "meter-used" }, usd(u.used)),
    u.limit > 0 ? " of " : " used · ",
    el("span", { class: "meter-limit" }, u.limit > 0 ? usd(u.limit) : "no budget"),
    u.limit > 0 ? el("span", { class: "meter-share" }, usedShare(u.fraction)) : null),
  u.limit > 0 ? bar(u.fraction, level) : null,
  el("div", { class: "meter-detail" }, `${usd(u.spent)} spent + ${usd(u.reserved)} reserved`));
}

// The tightest share used of either period (-1 with no budget): the most
// pressed first.
const pressure = (o) => Math.max(budgetUse(o, "day").fraction ?? -1, budgetUse(o, "month").fraction ?? -1);
const byPressure = (name) => (a, b) => pressure(b) - pressure(a) || budgetUse(b, "month").used - budgetUse(a, "month").used ||
  String(name(a)).localeCompare(String(name(b)));

function budgetCards(b) {
  if (!b) return [];
  const g = b.global || {};
  const global = Number(g.budget_daily_usd) > 0 || Number(g.budget_monthly_usd) > 0
    ? el("section", { class: "card", id: "budget-global" }, el("h3", {}, "Global budget"),
      el("div", { class: "meters" },
        el("div", {}, el("div", { class: "kpi-label" }, "Today (UTC)"), meter(g, "day")),
        el("div", {}, el("div", { class: "kpi-label" }, "This month (UTC)"), meter(g, "month"))))
    : null;
  const note = el("p", { class: "muted" },
    "Today and this month in UTC, whatever the range: spent plus reserved (requests in flight hold their worst-case cost) against each limit.");
  const tenantRows = [...(b.tenants || [])].sort(byPressure((t) => t.name));
  const keyRows = (b.keys || []).filter((k) => k.revoked_ms === null || k.revoked_ms === undefined).sort(byPressure((k) => k.name || k.id));
  return [
    global,
    el("section", { class: "card", id: "tenant-budgets" }, el("h3", {}, "Tenant budgets"), note,
      table([
        { title: "Tenant", cell: (t) => t.name },
        { title: "Today", cell: (t) => meter(t, "day") },
        { title: "This month", cell: (t) => meter(t, "month") },
      ], tenantRows, "No tenant has been made (junction keys tenant).", (t) => ({ "data-tenant": t.name }))),
    el("section", { class: "card", id: "key-budgets" }, el("h3", {}, "Key budgets"), note.cloneNode(true),
      table([
        { title: "Key", cell: (k) => el("span", { class: "key-name" }, k.name || "(no name)", " ", el("code", { class: "muted" }, k.id)) },
        { title: "Tenant", cell: (k) => k.tenant },
        { title: "Today", cell: (k) => meter(k, "day") },
        { title: "This month", cell: (k) => meter(k, "month") },
      ], keyRows, "No key has been made (junction keys add).", (k) => ({ "data-key": k.id }))),
  ];
}

export function tenants(root, snap) {
  const [global, ...budgets] = budgetCards(snap.budgets);
  fill(root,
    global,
    el("div", { class: "grid2" },
      el("section", { class: "card", id: "top-tenants" }, el("h3", {}, "Top tenants by spend"), topBySpend(snap.byTenant.groups, "Tenant")),
      el("section", { class: "card", id: "top-keys" }, el("h3", {}, "Top keys by spend"), topBySpend(snap.byKey.groups, "Key"))),
    budgets);
}

export function upstreams(root, snap) {
  const errorsByRoute = new Map(snap.byRoute.groups.map((g) => [g.key, g]));
  fill(root,
    el("section", { class: "card", id: "upstream-health" }, el("h3", {}, "Upstream health"),
      table([
        { title: "Upstream", cell: (u) => u.name },
        { title: "Breaker", cell: (u) => el("span", { class: `badge breaker-${u.breaker}` }, u.breaker) },
        { title: "In flight", num: true, cell: (u) => count(u.in_flight) },
        { title: "Failed attempts (since start)", num: true, cell: (u) => count(u.errors) },
        { title: "Errors in range", num: true, cell: (u) => count(errorsByRoute.get(u.name)?.errors ?? 0) },
        { title: "Error rate", num: true, cell: (u) => {
          const g = errorsByRoute.get(u.name);
          return g && Number(g.requests) ? share(Number(g.errors) / Number(g.requests)) : "–";
        } },
      ], snap.upstreams, "No upstream is configured.")));
}
