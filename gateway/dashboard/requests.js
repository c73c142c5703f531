// requests.js: the recent decisions, filtered, with a detail pane per
// request.
//
// The rows are the ones app.js read for the range (newest first); the
// filters (route, rule, tenant, status) narrow them here, so changing one
// costs no request. The detail pane shows what the ledger knows about a
// decision (scores and rule in its reason, detector kinds, tokens, cost)
// and never the prompt or answer text, even when the ledger keeps a
// redacted copy.

import { ago, count, dateTime, el, fill, ms, ruleOf, usd } from "./format.js";

const SHOWN = 200;
const filters = { route: "", rule: "", tenant: "", status: "" };
let selected = null;   // request_id shown in the detail pane

const statusFilters = {
  "": () => true,
  ok: (r) => Number(r.status) < 400,
  error: (r) => Number(r.status) >= 400,
};

const keep = (r) =>
  (!filters.route || r.route === filters.route) &&
  (!filters.rule || ruleOf(r.reason) === filters.rule) &&
  (!filters.tenant || (r.tenant ?? "-") === filters.tenant) &&
  statusFilters[filters.status](r);

// A filter's <select>: `options` are [value, text] pairs; a chosen value
// that no longer exists in the range falls back to "all".
function select(name, label, options, onChange) {
  const s = el("select", { id: `filter-${name}`, name },
    el("option", { value: "" }, `All ${label}`),
    options.map(([value, text]) => el("option", { value }, text)));
  if (!options.some(([value]) => value === filters[name])) filters[name] = "";
  s.value = filters[name];
  s.addEventListener("change", () => {
    filters[name] = s.value;
    onChange();
  });
  return el("label", { class: "filter" }, el("span", { class: "sr-only" }, label), s);
}

const field = (name, value) => [el("dt", {}, name), el("dd", {}, value === null || value === undefined || value === "" ? "–" : value)];

function detail(pane, r) {
  if (!r) {
    fill(pane, el("p", { class: "muted" }, "Choose a request to see its decision."));
    return;
  }
  fill(pane,
    el("h3", {}, "Request ", el("code", {}, r.request_id)),
    el("dl", { class: "detail" },
      field("Time", `${dateTime(r.ts_ms)} (${ago(r.ts_ms)})`),
      field("Tenant", r.tenant), field("Key", r.key_id), field("Model asked", r.model),
      field("Route", `${r.route} (${r.zone})`), field("Upstream model", r.upstream_model),
      field("Rule", ruleOf(r.reason)), field("Decision and scores", r.reason),
      field("Detector kinds", r.detectors && r.detectors.length
        ? el("span", {}, r.detectors.map((k) => el("span", { class: "badge kind" }, k))) : "none"),
      field("Tokens", `${count(r.prompt_tokens)} prompt + ${count(r.completion_tokens)} completion` +
        (Number(r.cached_tokens) ? `, ${count(r.cached_tokens)} cached` : "") + (r.tokens_estimated ? " (estimated)" : "")),
      field("Cost", usd(r.cost_usd)), field("Counterfactual", usd(r.counterfactual_usd)),
      field("Latency", ms(r.latency_ms)), field("Time to first token", ms(r.ttft_ms)),
      field("Status", `${r.status}${r.error_code ? ` ${r.error_code}` : ""}${r.client_hung_up ? " (client hung up)" : ""}`),
      field("Streamed", r.streamed ? "yes" : "no")));
}

export function requests(root, snap) {
  const rows = snap.rows;
  const distinct = (f) => [...new Set(rows.map(f))].sort().map((v) => [v, v]);
  const body = el("tbody", {});
  const shown = el("p", { class: "muted", id: "requests-count" });
  const pane = el("aside", { class: "card detail-pane", id: "request-detail", "aria-live": "polite" });

  const render = () => {
    const kept = rows.filter(keep);
    shown.textContent = `${count(Math.min(kept.length, SHOWN))} of ${count(kept.length)} matching requests` +
      (snap.capped ? ` (the newest ${count(rows.length)} in the range were read)` : "");
    body.replaceChildren(...kept.slice(0, SHOWN).map((r) => {
      const tr = el("tr", { tabindex: 0, "data-id": r.request_id, class: r.request_id === selected ? "selected" : null },
        el("td", { title: dateTime(r.ts_ms), "data-label": "Time" }, ago(r.ts_ms)),
        el("td", { "data-label": "Tenant" }, r.tenant ?? "–"),
        el("td", { "data-label": "Route" }, r.route),
        el("td", { "data-label": "Rule" }, ruleOf(r.reason)),
        el("td", { class: "num", "data-label": "Tokens" }, count(Number(r.prompt_tokens) + Number(r.completion_tokens))),
        el("td", { class: "num", "data-label": "Cost" }, usd(r.cost_usd)),
        el("td", { class: "num", "data-label": "Latency" }, ms(r.latency_ms)),
        el("td", { "data-label": "Status" }, el("span", { class: `badge ${Number(r.status) >= 400 ? "bad" : "ok"}` }, String(r.status))));
      const open = () => {
        selected = r.request_id;
        for (const other of body.querySelectorAll("tr.selected")) other.classList.remove("selected");
        tr.classList.add("selected");
        detail(pane, r);
        pane.scrollIntoView({ block: "nearest" });
      };
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      return tr;
    }));
    if (!kept.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No request matches.")));
  };

  fill(root,
    el("div", { class: "filters card" },
      select("route", "routes", distinct((r) => r.route), render),
      select("rule", "rules", distinct((r) => ruleOf(r.reason)), render),
      select("tenant", "tenants", distinct((r) => r.tenant ?? "-"), render),
      select("status", "statuses", [["ok", "Succeeded"], ["error", "Failed"]], render)),
    el("div", { class: "requests-layout" },
      el("section", { class: "card" }, shown,
        el("div", { class: "table-wrap" }, el("table", { id: "requests-table", class: "data" },
          el("thead", {}, el("tr", {}, ["Time", "Tenant", "Route", "Rule", "Tokens", "Cost", "Latency", "Status"]
            .map((h) => el("th", { scope: "col", class: ["Tokens", "Cost", "Latency"].includes(h) ? "num" : null }, h)))),
          body))),
      pane));
  render();
  detail(pane, rows.find((r) => r.request_id === selected));
}
