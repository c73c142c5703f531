// charts.js: time series drawn by uPlot (the global `uPlot`, from npm,
// embedded with the page), and the bucketing that turns ledger rows into
// them.
//
// uPlot draws lines and fills but does not stack; a stacked chart is the
// running sum of the series, each filled down to the one below (uPlot
// "bands"), with the legend showing each route's own value.

import { el } from "./format.js";

export const palette = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#ec4899", "#84cc16"];
const fillOf = (hex) => `${hex}59`;   // the stroke colour at 35% opacity

const charts = new Map();   // container id -> {plot, observer}

// Bucket width for a range: the smallest step giving at most 48 points
// (a day by the hour, a week by 6 hours, a month by the day).
const steps = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400];
export function bucketSeconds(sinceMs, untilMs) {
  const span = Math.max(1, (untilMs - sinceMs) / 1000);
  return steps.find((s) => span / s <= 48) || steps[steps.length - 1];
}

// rows -> {x: [bucket start, s], keys: [...], values: {key: [per bucket]}}:
// `keyOf(row)` picks the series, `valueOf(row)` what adds up.
export function bucketize(rows, sinceMs, untilMs, keyOf, valueOf) {
  const step = bucketSeconds(sinceMs, untilMs);
  const first = Math.floor(sinceMs / 1000 / step) * step;
  const n = Math.max(1, Math.ceil((untilMs / 1000 - first) / step));
  const x = Array.from({ length: n }, (_, i) => first + i * step);
  const values = {};
  for (const r of rows) {
    const i = Math.floor((Number(r.ts_ms) / 1000 - first) / step);
    if (i < 0 || i >= n) continue;
    const k = keyOf(r);
    (values[k] ||= new Array(n).fill(0))[i] += valueOf(r);
  }
  return { x, keys: Object.keys(values).sort(), values };
}

function mount(container, opts, data) {
  const old = charts.get(container.id);
  if (old) {
    old.observer.disconnect();
    old.plot.destroy();
  }
  container.replaceChildren();
  const width = Math.max(240, container.clientWidth || 600);
  const plot = new uPlot({ ...opts, width, height: opts.height || 220 }, data, container);
  const observer = new ResizeObserver(() => {
    const w = Math.max(240, container.clientWidth);
    if (w !== plot.width) plot.setSize({ width: w, height: plot.height });
  });
  observer.observe(container);
  charts.set(container.id, { plot, observer });
  container.dataset.colors = opts.series.slice(1).map((s) => s.stroke).join(",");
  container.dataset.points = String(data[0].length);
}

function axes(format) {
  return [
    { stroke: "#64748b", grid: { stroke: "#e2e8f0" } },
    { stroke: "#64748b", grid: { stroke: "#e2e8f0" }, size: 64, values: (u, vals) => vals.map(format) },
  ];
}

// A stacked area chart: one series per key, legend values per key.
export function stacked(container, b, format) {
  const keys = b.keys.length ? b.keys : ["(no requests)"];
  const raw = keys.map((k) => b.values[k] || new Array(b.x.length).fill(0));
  const sums = [];
  raw.forEach((row, i) => sums.push(row.map((v, j) => v + (i ? sums[i - 1][j] : 0))));
  const series = [{}, ...keys.map((k, i) => ({
    label: k,
    stroke: palette[i % palette.length],
    fill: fillOf(palette[i % palette.length]),
    width: 1.5,
    value: (u, v, si, idx) => (idx === null || idx === undefined ? "–" : format(raw[si - 1][idx])),
  }))];
  const bands = keys.slice(1).map((_, i) => ({ series: [i + 2, i + 1] }));
  mount(container, { series, bands, axes: axes(format), scales: { x: { time: true } } }, [b.x, ...sums]);
}

// Lines side by side (no stacking); `fills` fills a series down to zero.
export function lines(container, x, named, format, fills = {}) {
  const series = [{}, ...named.map(([label], i) => ({
    label,
    stroke: palette[i % palette.length],
    fill: fills[label] ? fillOf(palette[i % palette.length]) : undefined,
    width: 2,
    value: (u, v) => (v === null || v === undefined ? "–" : format(v)),
  }))];
  mount(container, { series, axes: axes(format), scales: { x: { time: true } } }, [x, ...named.map(([, v]) => v)]);
}

// A chart's frame: title, a note, and the container uPlot draws into.
export function chartBox(id, title, note) {
  return el("figure", { class: "card chart-card" },
    el("figcaption", {}, el("h3", {}, title), note ? el("p", { class: "muted" }, note) : null),
    el("div", { class: "chart", id }));
}
