// format.js: numbers and times for people, and the one way to put data on
// the page.
//
// Tenant, key, rule and route names are operator input and the ledger
// holds them verbatim, so nothing from the API ever goes through innerHTML:
// el() builds elements and sets every value as text (textContent), which
// the browser never parses as markup.

const numberFmt = new Intl.NumberFormat(undefined);
const shareFmt = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

// Money arrives as exact decimal text ("12.345678"); shown with cents, or
// with up to four decimals when it is under a dollar (a local request costs
// fractions of a cent).
export function usd(value) {
  const v = Number(value);
  if (!Number.isFinite(v)) return "–";
  const small = Math.abs(v) < 1 && v !== 0;
  return new Intl.NumberFormat(undefined, {
    style: "currency", currency: "USD",
    minimumFractionDigits: 2, maximumFractionDigits: small ? 4 : 2,
  }).format(v);
}

export function count(value) {
  const v = Number(value);
  return Number.isFinite(v) ? numberFmt.format(v) : "–";
}

export function share(value) {
  const v = Number(value);
  return Number.isFinite(v) ? shareFmt.format(v) : "–";
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  const v = Number(value);
  if (!Number.isFinite(v)) return "–";
  if (v >= 1000) return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 }).format(v / 1000)} s`;
  return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(v)} ms`;
}

const relUnits = [
  ["year", 365 * 86400], ["month", 30 * 86400], ["week", 7 * 86400],
  ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1],
];

// "3 minutes ago", from Unix milliseconds.
export function ago(tsMs, nowMs = Date.now()) {
  const secs = (Number(tsMs) - nowMs) / 1000;
  for (const [unit, size] of relUnits)
    if (Math.abs(secs) >= size || unit === "second") return relFmt.format(Math.round(secs / size), unit);
  return "";
}

export function dateTime(tsMs) {
  return new Date(Number(tsMs)).toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

// el("td", {class: "num", title: x}, "text", childNode, ...): attributes are
// set with setAttribute (never on* handlers: the CSP forbids inline code),
// strings become text nodes.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replace what `node` shows with `children`.
export function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) if (child) node.append(child instanceof Node ? child : String(child));
}

// The rule that made a decision, from the ledger's reason text:
// "rule hard-to-frontier: difficult (...); route gpt4" -> "hard-to-frontier";
// a reason without a rule ("explicit model") stands for itself.
export function ruleOf(reason) {
  const m = /^rule ([^:;]+)[:;]?/.exec(reason || "");
  return m ? m[1].trim() : (reason || "none");
}
