// app.js: the dashboard's frame: sign-in, time range, views, live refresh.
//
// One snapshot of the admin endpoints per refresh (spend by route, tenant
// and key; the decisions in the range; upstream health; budgets) feeds every view,
// so the numbers on all views agree with each other. Without a key the
// page shows only the sign-in form and requests nothing.

import * as api from "./api.js";
import { ago } from "./format.js";
import { requests } from "./requests.js";
import { trybox } from "./trybox.js";
import { overview, tenants, traffic, upstreams } from "./views.js";

const MAX_ROWS = 5000;       // decisions read per refresh (pages of 1000)
const REFRESH_MS = 15000;    // live refresh while the page is open and visible

const $ = (id) => document.getElementById(id);
const views = { overview, traffic, tenants, upstreams, requests };
const presets = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
let loadedAt = 0, loading = false;

// "2026-12-01T10:00:00Z", the form the admin endpoints take.
const iso = (msValue) => new Date(msValue).toISOString().replace(/\.\d{3}Z$/, "Z");

// The window [sinceMs, untilMs), whole seconds, as the endpoints read it.
function currentRange() {
  const preset = $("range").value;
  let sinceMs, untilMs;
  if (preset === "custom") {
    sinceMs = new Date($("range-from").value).getTime();
    untilMs = new Date($("range-to").value).getTime();
    if (!Number.isFinite(sinceMs) || !Number.isFinite(untilMs) || sinceMs >= untilMs)
      throw new Error("Choose a custom range whose start is before its end.");
  } else {
    untilMs = Math.ceil((Date.now() + 1) / 1000) * 1000;
    sinceMs = Math.floor((untilMs - presets[preset]) / 1000) * 1000;
  }
  return { sinceMs, untilMs, since: iso(sinceMs), until: iso(untilMs) };
}

async function snapshot() {
  const range = currentRange();
  const [byRoute, byTenant, byKey, decisions, ups, budgets] = await Promise.all([
    api.spend(range, "route"), api.spend(range, "tenant"), api.spend(range, "key"),
    api.requests(range, MAX_ROWS), api.upstreams(), api.budgets(),
  ]);
  return { range, spend: byRoute, byRoute, byTenant, byKey, rows: decisions.rows, capped: decisions.capped, upstreams: ups, budgets };
}

function showError(message) {
  const box = $("load-error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function refresh() {
  if (loading || !api.key.get()) return;
  loading = true;
  try {
    const snap = await snapshot();
    loadedAt = Date.now();
    document.body.dataset.since = snap.range.since;
    document.body.dataset.until = snap.range.until;
    for (const [name, draw] of Object.entries(views)) draw($(`view-${name}`), snap);
    trybox($("view-try"));
    showError("");
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  } catch (err) {
    if (err instanceof api.AuthError) signOut("That admin key was refused; enter a valid one.");
    else showError(err.message);
  } finally {
    loading = false;
  }
}

function showView() {
  const name = (location.hash || "#overview").slice(1);
  const known = name in views || name === "try" ? name : "overview";
  for (const a of document.querySelectorAll(".tabs a")) a.setAttribute("aria-current", a.dataset.view === known ? "page" : "false");
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${known}`;
}

function signedIn(on) {
  $("login").hidden = on;
  $("app").hidden = !on;
  $("controls").hidden = !on;
}

function signOut(message) {
  api.key.clear();
  for (const s of document.querySelectorAll(".view")) s.replaceChildren();
  delete $("view-try").dataset.ready;
  signedIn(false);
  const box = $("login-error");
  box.hidden = !message;
  box.textContent = message || "";
  $("login-key").focus();
}

function tick() {
  $("updated").textContent = loadedAt ? `Updated ${ago(loadedAt)}` : "";
  const live = $("live").checked && $("range").value !== "custom" && document.visibilityState === "visible";
  if (live && api.key.get() && Date.now() - loadedAt >= REFRESH_MS) refresh();
}

function customInputs() {
  const custom = $("range").value === "custom";
  $("custom-range").hidden = !custom;
  if (custom && !$("range-from").value) {
    const local = (msValue) => new Date(msValue - new Date(msValue).getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
    $("range-from").value = local(Date.now() - 86400e3);
    $("range-to").value = local(Date.now());
  }
  return custom;
}

function start() {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const k = $("login-key").value.trim();
    if (!k) return;
    api.key.set(k);
    $("login-key").value = "";
    signedIn(true);
    await refresh();
  });
  $("logout").addEventListener("click", () => signOut(""));
  document.addEventListener("junction:logout", () => signOut("That admin key was refused; enter a valid one."));
  $("range").addEventListener("change", () => { if (!customInputs()) refresh(); });
  $("range-apply").addEventListener("click", () => {
    try {
      currentRange();
      refresh();
    } catch (err) {
      showError(err.message);
    }
  });
  $("live").addEventListener("change", tick);
  document.addEventListener("visibilitychange", tick);
  window.addEventListener("hashchange", showView);
  showView();
  setInterval(tick, 1000);
  if (api.key.get()) {
    signedIn(true);
    refresh();
  } else {
    signedIn(false);
  }
}

start();
