/** One node as the page shows it: registry facts, its newest heartbeat (docs/protocol.md) and punches held. */
export interface NodeRow {
  readonly nodeId: string;
  readonly createdAt: string;
  readonly lastSeen: string | null;
  readonly status: unknown;
  readonly punches: number;
}

interface HeartbeatSource {
  id?: string;
  kind?: string;
  state?: string;
  lastPunchTime?: string | null;
  lastPollAt?: string | null;
  lagMs?: number | null;
  delivered?: number;
  backlog?: { done: number; total: number; etaSeconds: number | null } | null;
  lastError?: { code: string; message: string } | null;
  device?: { serial?: string; records?: number | null; clockDriftMs?: number | null } | null;
}

interface Heartbeat {
  version?: string;
  configVersion?: number | null;
  connectivity?: string;
  outbox?: { depth?: number; oldestAgeMs?: number | null; quarantined?: number };
  sources?: HeartbeatSource[];
}

const html = (v: unknown): string =>
  String(v ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );

function age(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

/**
 * The reference cloud's small nodes page: each node, when it last sent a heartbeat, its backlog (outbox depth and
 * oldest unsent age) and its sources. Rendered on the server with every value escaped; it refreshes itself and
 * loads nothing from elsewhere.
 */
export function nodesPage(rows: readonly NodeRow[], now: number): string {
  const body = rows
    .map((n) => {
      // The cloud stores any JSON object a node posts: one odd heartbeat must not take the page down for every node.
      const hb = (n.status && typeof n.status === "object" ? n.status : {}) as Heartbeat;
      const seenMs = n.lastSeen ? now - Date.parse(n.lastSeen) : null;
      const stale = seenMs === null || seenMs > 5 * 60_000;
      const sources = (Array.isArray(hb.sources) ? hb.sources : [])
        .filter((s) => s !== null && typeof s === "object")
        .map(
          (s) => `<tr class="src" data-node="${html(n.nodeId)}" data-source="${html(s.id)}">
  <td></td><td data-k="source">${html(s.id)} <span class="mute">${html(s.kind)}</span></td>
  <td data-k="state">${html(s.state)}</td>
  <td data-k="last-punch">${html(s.lastPunchTime ?? "-")}</td>
  <td data-k="lag">${html(age(s.lagMs))}</td>
  <td data-k="backlog">${s.backlog ? `${html(s.backlog.done)} / ${html(s.backlog.total)}` : "caught up"}</td>
  <td data-k="delivered">${html(s.delivered ?? "-")}</td>
  <td data-k="error" class="err">${s.lastError ? `${html(s.lastError.code)}: ${html(s.lastError.message)}` : ""}</td>
</tr>`,
        )
        .join("\n");
      return `<tr class="node" data-node="${html(n.nodeId)}">
  <td data-k="node"><code>${html(n.nodeId)}</code></td>
  <td data-k="last-seen" class="${stale ? "err" : ""}">${n.lastSeen ? `${html(n.lastSeen)} (${html(age(seenMs))} ago)` : "never"}</td>
  <td data-k="version">${html(hb.version ?? "-")}</td>
  <td data-k="config-version">${html(hb.configVersion ?? "-")}</td>
  <td data-k="outbox-depth">${html(hb.outbox?.depth ?? "-")}</td>
  <td data-k="outbox-age">${html(age(hb.outbox?.oldestAgeMs))}</td>
  <td data-k="punches">${html(n.punches)}</td>
  <td data-k="connectivity">${html(hb.connectivity ?? "-")}</td>
</tr>
${sources}`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Reference cloud: nodes</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#1f2328} table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #d0d7de} th{font-size:12px;color:#57606a}
tr.node td{background:#f6f8fa;font-weight:600} .mute{color:#57606a;font-weight:normal} .err{color:#cf222e}
</style></head><body>
<h1>Nodes <span class="mute">(${rows.length}; refreshes every 5 s)</span></h1>
<table><thead>
<tr><th>node</th><th>last seen</th><th>version</th><th>config</th><th>backlog (outbox)</th><th>oldest unsent</th><th>punches in cloud</th><th>connectivity</th></tr>
<tr><th></th><th>source</th><th>state</th><th>last punch</th><th>lag</th><th>catch-up</th><th>delivered</th><th>last error</th></tr>
</thead><tbody>
${body}
</tbody></table></body></html>`;
}
