import { formatDuration } from "../core/duration.ts";

/**
 * The status page: one HTML document with its CSS, script and chart inline, so it works on a machine without
 * internet and the Content-Security-Policy can forbid every other origin. It polls /v1/status (same origin, with the
 * session cookie the server set when the page was opened with the token) every two seconds and renders with textContent only: nothing from the status is ever
 * parsed as HTML.
 */
export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function statusPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cams Bio API connector</title>
<style>
:root{--ok:#1a7f37;--warn:#9a6700;--err:#cf222e;--mute:#57606a;--line:#d0d7de;font:14px/1.4 system-ui,sans-serif;color:#1f2328}
body{margin:0 auto;max-width:1200px;padding:16px}
h1{font-size:18px;margin:0 0 4px} h2{font-size:15px;margin:20px 0 6px}
.mute{color:var(--mute)} .badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.online,.running{background:var(--ok)} .offline,.backoff,.stopped{background:var(--err)} .unknown,.starting,.paused,.throttled{background:var(--warn)}
.tiles{display:flex;gap:12px;flex-wrap:wrap} .tile{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:140px}
.tile b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--mute)} td.num{text-align:right;font-variant-numeric:tabular-nums}
.att{border-left:4px solid var(--warn);padding:4px 8px;margin:4px 0;background:#fff8c5}
.att.error{border-color:var(--err);background:#ffebe9} .fix{color:var(--mute)}
.bar{height:6px;background:var(--line);border-radius:3px;width:120px} .bar i{display:block;height:6px;background:var(--ok);border-radius:3px}
.err{color:var(--err)} #stale,#expired{display:none;color:#fff;background:var(--err);padding:4px 8px;border-radius:4px}
svg text{font-size:10px;fill:var(--mute)}
</style></head>
<body>
<div id="stale">The connector is not answering: the figures below are from <span id="stale-at"></span>.</div>
<div id="expired">This page's session expired: the figures below are from <span id="expired-at"></span>. Open the address printed by <code>bioapi status --url</code> again.</div>
<h1>Cams Bio API connector <span id="conn" class="badge" data-k="connectivity"></span></h1>
<div class="mute">node <span data-k="node"></span> · version <span data-k="version"></span> · pid <span data-k="pid"></span> · since <span data-k="started"></span> · config version <span data-k="config-version"></span> applied <span data-k="config-applied"></span></div>
<div id="attention"></div>
<div class="tiles">
 <div class="tile">Outbox<b data-k="outbox-depth"></b><span class="mute">punches waiting</span></div>
 <div class="tile">Oldest unsent<b data-k="outbox-age"></b><span class="mute">age</span></div>
 <div class="tile">Delivered<b data-k="delivered"></b><span class="mute">this run</span></div>
 <div class="tile">Quarantined<b data-k="quarantined"></b><span class="mute">rows</span></div>
 <div class="tile">Memory<b data-k="rss"></b><span class="mute">MiB resident</span></div>
</div>
<h2>Punches per minute <span class="mute">(last hour; bars: read, line: delivered)</span></h2>
<svg id="chart" width="100%" height="90" viewBox="0 0 600 90" preserveAspectRatio="none" role="img" aria-label="punches per minute"></svg>
<div class="mute" id="chart-max"></div>
<h2>Sinks <span class="mute">(each delivers every punch once; a punch leaves the outbox when every sink has it)</span></h2>
<table><thead><tr><th>sink</th><th>backlog</th><th>delivered</th><th>quarantined</th><th>last delivery</th><th>retry at</th><th>details</th><th>last error</th></tr></thead>
<tbody id="sinks"></tbody></table>
<h2>Sources</h2>
<table><thead><tr><th>source</th><th>state</th><th>last punch</th><th>cursor</th><th>lag</th><th>clock drift</th><th>catch-up</th><th>new punches</th><th>delivered</th><th>last error</th></tr></thead>
<tbody id="sources"></tbody></table>
<h2>Connectivity</h2>
<table><tbody id="history"></tbody></table>
<p class="mute">Refreshes every 2 s · updated <span id="updated"></span></p>
<script>
"use strict";
const $ = (s, r = document) => r.querySelector(s);
const set = (k, v) => { for (const e of document.querySelectorAll('[data-k="' + k + '"]')) e.textContent = v; };
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const age = (ms) => ms === null || ms === undefined ? "-" : ms < 1000 ? ms + " ms" : ms < 120000 ? Math.round(ms / 1000) + " s" : ms < 7200000 ? Math.round(ms / 60000) + " min" : Math.round(ms / 3600000) + " h";
const formatDuration = ${formatDuration.toString()};
const drift = (ms) => ms === undefined || ms === null ? "-" : (ms >= 0 ? "+" : "-") + formatDuration(Math.abs(ms));
const cursorText = (c) => { const e = Object.entries(c).filter(([k]) => !k.startsWith("#")); return e.length === 0 ? "-" : e.slice(0, 3).map(([k, v]) => k + "=" + (typeof v === "object" && v !== null ? (v.count !== undefined ? "#" + v.count : JSON.stringify(v)) : v)).join(" ") + (e.length > 3 ? " +" + (e.length - 3) : ""); };
function chart(points) {
  const svg = $("#chart"); svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1, ...points.map((p) => Math.max(p.read, p.delivered)));
  const w = 600 / points.length;
  points.forEach((p, i) => {
    const h = (p.read / max) * 76;
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * w + 1)); r.setAttribute("y", String(80 - h)); r.setAttribute("width", String(Math.max(1, w - 2))); r.setAttribute("height", String(h)); r.setAttribute("fill", "#54aeff");
    const t = document.createElementNS(ns, "title"); t.textContent = p.at.slice(11, 16) + " read " + p.read + ", delivered " + p.delivered; r.append(t);
    svg.append(r);
  });
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((p, i) => (i * w + w / 2) + "," + (80 - (p.delivered / max) * 76)).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#1a7f37"); line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  $("#chart-max").textContent = "top of the chart: " + max + " per minute";
}
function render(s) {
  const conn = $("#conn"); conn.textContent = s.connectivity.state; conn.className = "badge " + s.connectivity.state;
  set("node", s.nodeId); set("version", s.version); set("pid", String(s.pid)); set("started", s.startedAt);
  set("config-version", s.config.version === null ? "none" : String(s.config.version)); set("config-applied", s.config.appliedAt ?? "-");
  set("outbox-depth", String(s.outbox.depth)); set("outbox-age", age(s.outbox.oldestUnsentAgeMs));
  set("delivered", String(s.shipper.delivered)); set("quarantined", String(s.outbox.quarantined)); set("rss", String(s.memory.rssMb));
  const att = $("#attention"); att.replaceChildren();
  for (const a of s.attention) {
    const d = el("div", undefined, "att " + a.severity); d.dataset.subject = a.subject;
    d.append(el("b", a.subject + ": "), el("span", a.message), el("div", a.fix, "fix")); att.append(d);
  }
  const sinks = $("#sinks"); sinks.replaceChildren();
  for (const k of s.sinks || []) {
    const tr = el("tr"); tr.dataset.sink = k.id;
    const td = (key, text, cls) => { const c = el("td", text, cls); c.dataset.k = key; tr.append(c); return c; };
    td("id", k.id + " (" + k.kind + ")");
    td("backlog", String(k.backlog), "num");
    td("delivered", String(k.delivered), "num");
    td("quarantined", String(k.quarantined), "num");
    td("last-delivery", k.lastDeliveryAt ?? "-");
    td("retry", k.retryAt ?? "-");
    td("details", Object.entries(k.details || {}).map(([n, v]) => n + "=" + v).join(" "));
    td("error", k.lastError ? k.lastError.code + ": " + k.lastError.message : "", "err");
    sinks.append(tr);
  }
  const body = $("#sources"); body.replaceChildren();
  for (const w of s.sources) {
    const tr = el("tr"); tr.dataset.source = w.sourceId;
    const td = (k, text, cls) => { const c = el("td", text, cls); c.dataset.k = k; tr.append(c); return c; };
    td("id", w.sourceId + " (" + w.kind + ")");
    td("state").append(el("span", w.state, "badge " + w.state));
    td("last-punch", w.lastPunchTime ?? "-");
    td("cursor", cursorText(w.cursor));
    td("lag", age(w.lagMs), "num");
    td("drift", drift(w.device ? w.device.clockDriftMs : undefined), "num");
    const up = td("backlog");
    if (w.backlog) {
      const pct = w.backlog.total > 0 ? Math.floor((w.backlog.done * 100) / w.backlog.total) : 0;
      const bar = el("div", undefined, "bar"); const fill = el("i"); fill.style.width = pct + "%"; bar.append(fill);
      up.append(bar, el("div", w.backlog.done + " / " + w.backlog.total + " (" + pct + "%)" + (w.backlog.ratePerSec !== null ? ", " + Math.round(w.backlog.ratePerSec) + "/s" : "") + (w.backlog.etaSeconds !== null ? ", " + age(w.backlog.etaSeconds * 1000) + " left" : "")));
    } else up.textContent = "caught up";
    td("emitted", String(w.emitted), "num");
    td("source-delivered", String(w.delivered), "num");
    td("error", w.lastError ? w.lastError.code + ": " + w.lastError.message : "", "err");
    body.append(tr);
  }
  const hist = $("#history"); hist.replaceChildren();
  for (const h of [...s.connectivity.history].reverse().slice(0, 10)) {
    const tr = el("tr"); tr.append(el("td", h.at), el("td", h.state), el("td", h.reason)); hist.append(tr);
  }
  chart(s.throughput);
  $("#updated").textContent = new Date().toLocaleTimeString();
  document.body.dataset.loaded = "true";
}
let last = null;
async function tick() {
  try {
    const r = await fetch("/v1/status", { credentials: "same-origin", cache: "no-store", signal: AbortSignal.timeout(5000) });
    if (r.status === 401) {
      // Polling on cannot help: only a new address from bioapi status --url opens a new session.
      $("#expired-at").textContent = last ? last.toLocaleTimeString() : "never"; $("#expired").style.display = "block";
      $("#stale").style.display = "none"; document.body.dataset.expired = "true";
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json()); last = new Date(); $("#stale").style.display = "none";
  } catch {
    $("#stale-at").textContent = last ? last.toLocaleTimeString() : "never"; $("#stale").style.display = "block";
  }
  setTimeout(tick, 2000);
}
tick();
</script></body></html>`;
}
