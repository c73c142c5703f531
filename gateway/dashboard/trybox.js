// trybox.js: "try a prompt": POST /v1/route classifies a prompt and says
// where the policy would send it, without generating anything, and this
// view shows the scores, the route and rule, and the findings with their
// spans marked in the prompt.
//
// Findings' spans are byte offsets [start, end) in the UTF-8 text of the
// message they came from; the prompt is cut at those bytes, so a span is
// marked exactly even after non-ASCII characters.

import * as api from "./api.js";
import { el, fill, share } from "./format.js";

// The prompt with each finding of message 0 wrapped in <mark>.
function marked(text, findings) {
  const bytes = new TextEncoder().encode(text);
  const dec = new TextDecoder();
  const spans = findings.filter((f) => Number(f.message ?? 0) === 0)
    .map((f) => ({ kind: f.kind, start: Number(f.start), end: Number(f.end) }))
    .filter((f) => f.start >= 0 && f.end <= bytes.length && f.start < f.end)
    .sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const s of spans) {
    if (s.start < at) continue;
    out.push(dec.decode(bytes.subarray(at, s.start)));
    out.push(el("mark", { title: s.kind, "data-kind": s.kind }, dec.decode(bytes.subarray(s.start, s.end))));
    at = s.end;
  }
  out.push(dec.decode(bytes.subarray(at)));
  return out;
}

function spanText(text, f) {
  const bytes = new TextEncoder().encode(text);
  return new TextDecoder().decode(bytes.subarray(Number(f.start), Number(f.end)));
}

function scoreRow(name, value) {
  const v = Number(value);
  const inner = el("span", { class: "bar-fill" });
  inner.style.width = `${Number.isFinite(v) ? Math.max(0, Math.min(1, v)) * 100 : 0}%`;
  return el("div", { class: "score", "data-score": name },
    el("span", { class: "score-name" }, name), el("span", { class: "bar" }, inner),
    el("span", { class: "score-value" }, Number.isFinite(v) ? share(v) : "–"));
}

function show(out, text, res) {
  const findings = Array.isArray(res.findings) ? res.findings : [];
  const scores = res.scores || {};
  fill(out,
    el("div", { class: "route-answer" },
      el("div", { class: "kpi-label" }, "The policy would route it to"),
      el("div", { class: "kpi-value", id: "try-route" }, res.route || "(refused)"),
      el("div", { class: "muted", id: "try-rule" }, res.rule ? `rule ${res.rule}` : "no rule"),
      res.reason ? el("div", { class: "muted" }, res.reason) : null),
    el("div", { class: "scores" }, Object.entries(scores).map(([k, v]) => scoreRow(k, v))),
    el("h3", {}, "Findings"),
    findings.length
      ? el("table", { id: "try-findings", class: "data" },
        el("thead", {}, el("tr", {}, ["Kind", "Text", "Bytes", "Confidence"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, findings.map((f) => el("tr", { "data-kind": f.kind },
          el("td", { "data-label": "Kind" }, el("span", { class: "badge kind" }, f.kind)),
          el("td", { "data-label": "Text" }, el("code", {}, spanText(text, f))),
          el("td", { class: "num", "data-label": "Bytes" }, `${f.start}–${f.end}`),
          el("td", { class: "num", "data-label": "Confidence" }, share(f.confidence))))))
      : el("p", { class: "muted" }, "No detector fired."),
    el("h3", {}, "The prompt, with the findings marked"),
    el("pre", { class: "prompt-marked", id: "try-marked" }, marked(text, findings)));
}

export function trybox(root) {
  if (root.dataset.ready) return;   // built once; kept across refreshes
  root.dataset.ready = "1";
  const input = el("textarea", { id: "try-input", rows: 5, placeholder: "Paste a prompt: it is classified, not answered or stored." });
  const out = el("div", { id: "try-result", "aria-live": "polite" });
  const button = el("button", { type: "submit" }, "Route it");
  const form = el("form", { class: "card", id: "try-form" },
    el("label", { for: "try-input" }, el("h3", {}, "Try a prompt")), input, el("div", {}, button));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    button.disabled = true;
    fill(out, el("p", { class: "muted" }, "Classifying…"));
    try {
      show(out, text, await api.route(text));
    } catch (err) {
      fill(out, el("p", { class: "error", role: "alert" }, err.message));
      if (err instanceof api.AuthError) document.dispatchEvent(new CustomEvent("junction:logout"));
    } finally {
      button.disabled = false;
    }
  });
  fill(root, form, el("section", { class: "card" }, out));
}
