// api.js: every request the dashboard makes, each with the admin key.
//
// The key lives in sessionStorage only: it is gone when the browser session
// ends, it is never put in a URL (where logs, history and referrers would
// keep it), and it travels only as "Authorization: Bearer KEY" to this
// same origin. A 401 anywhere forgets it and sends the operator back to the
// login form.

const KEY_NAME = "junction.admin_key";

export class AuthError extends Error {}

export const key = {
  get: () => sessionStorage.getItem(KEY_NAME),
  set: (k) => sessionStorage.setItem(KEY_NAME, k),
  clear: () => sessionStorage.removeItem(KEY_NAME),
};

// `refused`, when given, is the message for a 401 that must not sign the
// operator out (the key works for /admin/* but is not a client key).
async function call(method, path, body, refused) {
  const k = key.get();
  if (!k) throw new AuthError("no admin key");
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${k}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (res.status === 401 && refused) throw new Error(refused);
  if (res.status === 401) {
    key.clear();
    throw new AuthError("the admin key was refused");
  }
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const msg = data && data.error ? data.error.message : `HTTP ${res.status}`;
    throw new Error(`${method} ${path.split("?")[0]}: ${msg}`);
  }
  return data;
}

const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== "")).toString();

// GET /admin/spend: {total, groups:[{key, requests, cost_usd, ...}]}.
export const spend = (range, by) => call("GET", `/admin/spend?${query({ since: range.since, until: range.until, by })}`);

// The decisions in the range, newest first, reading at most `max` rows
// (pages of 1000 through next_cursor). /admin/requests has no `until`: rows
// after it are dropped here. Returns {rows, capped}: capped when the range
// holds more rows than were read.
export async function requests(range, max) {
  const rows = [];
  let cursor = "", read = 0;
  for (;;) {
    const page = await call("GET", `/admin/requests?${query({ since: range.since, limit: 1000, cursor })}`);
    for (const r of page.data) if (Number(r.ts_ms) < range.untilMs) rows.push(r);
    read += page.data.length;
    cursor = page.next_cursor;
    if (!cursor) return { rows, capped: false };
    if (read >= max) return { rows, capped: true };
  }
}

// GET /admin/budgets: {global, tenants:[...], keys:[...]}, each with its
// daily and monthly limits and what it spent and holds reserved today and
// this month (UTC), whatever the range.
export const budgets = () => call("GET", "/admin/budgets");

// POST /v1/route: how the policy would route a prompt, without generating.
// Once client keys exist, /v1/* takes only those: an admin key from
// JUNCTION_ADMIN_KEYS reads every view but cannot try a prompt, which is
// said here instead of signing out.
export const route = (text) => call("POST", "/v1/route", { model: "auto", messages: [{ role: "user", content: text }] },
  "POST /v1/route refused this key: client keys are on, and trying a prompt needs a client key made with " +
  "`junction keys add --admin` (an admin key from JUNCTION_ADMIN_KEYS reads the other views only).");

// GET /metrics, the upstreams' lines: [{name, breaker, in_flight, errors}].
export async function upstreams() {
  const text = await call("GET", "/metrics");
  const byName = new Map();
  const line = /^junction_upstream_(breaker_open|in_flight|errors_total)\{upstream="((?:[^"\\]|\\.)*)"\} (\S+)$/;
  for (const l of text.split("\n")) {
    const m = line.exec(l);
    if (!m) continue;
    const u = byName.get(m[2]) || { name: m[2], breaker: "closed", in_flight: 0, errors: 0 };
    const v = Number(m[3]);
    if (m[1] === "breaker_open") u.breaker = v >= 1 ? "open" : v > 0 ? "half-open" : "closed";
    else if (m[1] === "in_flight") u.in_flight = v;
    else u.errors = v;
    byName.set(m[2], u);
  }
  return [...byName.values()];
}
