import { readFile, stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { dataDirLayout, defaultDataDir } from "../app/data-dir.ts";
import { BioError } from "../core/errors.ts";
import { formatMonitorRecord, readMonitorRecord } from "../monitor/monitor-state.ts";
import { backlogUnit } from "../sources/source-kinds.ts";
import type { ConnectorStatus, StatusEndpointFile } from "../status/status-api.ts";
import { formatProgress } from "../supervisor/supervisor.ts";
import type { CliIo } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { STATUS } from "./commands.ts";

export const STATUS_USAGE = renderHelp(STATUS);

/** Exit code of `bioapi status` when no connector answers, with or without --url and --json. */
export const NOT_RUNNING = 1;

export async function readEndpoint(dataDir: string): Promise<StatusEndpointFile> {
  const layout = dataDirLayout(dataDir);
  let endpoint: StatusEndpointFile;
  try {
    endpoint = JSON.parse(await readFile(layout.statusFile, "utf8")) as StatusEndpointFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EACCES") {
      throw new BioError("USAGE", `${layout.statusFile} is readable by the connector's account only.`, {
        hint: "Run bioapi status as that account (or as an administrator).",
      });
    }
    throw new BioError("USAGE", `No connector is running with data directory ${dataDir} (no status.json).`, {
      hint: "Start it with: bioapi run --data-dir DIR (or as a service), or pass the right --data-dir.",
    });
  }
  if (process.platform !== "win32" && ((await stat(layout.statusFile)).mode & 0o077) !== 0) {
    throw new BioError("USAGE", `${layout.statusFile} is readable by other users, and it holds the status token.`, {
      hint: `Restart the connector (it rewrites the file as 0600), or chmod 600 ${layout.statusFile}.`,
    });
  }
  return endpoint;
}

/** The status page's address with its token, for a browser on this machine. */
export function statusPageUrl(endpoint: StatusEndpointFile): string {
  return `${endpoint.url}/?token=${endpoint.token}`;
}

export async function fetchStatus(dataDir: string, timeoutMs = 3000): Promise<ConnectorStatus> {
  const endpoint = await readEndpoint(dataDir);
  let response: Response;
  try {
    response = await fetch(new URL("/v1/status", endpoint.url), {
      headers: { authorization: `Bearer ${endpoint.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status === 401) {
      throw new BioError("USAGE", `The connector at ${endpoint.url} refused the token in status.json.`, {
        hint: "The file belongs to another run: restart the connector.",
      });
    }
    if (!response.ok) {
      throw new BioError(
        "USAGE",
        `The connector at ${endpoint.url} answered HTTP ${response.status} to a status request.`,
        {
          hint: "Its log names the failure; restarting the connector (or the service) clears a stuck status server.",
        },
      );
    }
    return (await response.json()) as ConnectorStatus;
  } catch (error) {
    if (error instanceof BioError) throw error;
    throw new BioError("USAGE", `The connector (pid ${endpoint.pid}) does not answer at ${endpoint.url}.`, {
      cause: error,
      hint: "It may have crashed or be hung: check its log, or restart the service.",
    });
  }
}

function age(ms: number | null): string {
  if (ms === null) return "-";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** `S1=199` for a row id; a terminal's cursor as words: `CKJ1: 12,000 records read, newest 2026-11-26 09:00:00`. */
export function cursorWords(key: string, value: unknown): string {
  if (typeof value !== "object" || value === null) return `${key}=${String(value)}`;
  const v = value as { count?: unknown; time?: unknown };
  if (typeof v.count === "number") {
    const newest = typeof v.time === "string" ? `, newest ${v.time.replace("T", " ")}` : "";
    return `${key}: ${v.count.toLocaleString("en-US")} records read${newest}`;
  }
  return `${key}=${JSON.stringify(value)}`;
}

function sinkLine(k: ConnectorStatus["sinks"][number]): string {
  const error = k.lastError ? `  ! ${k.lastError.message}` : "";
  const retry = k.retryAt ? `; retry at ${k.retryAt}` : "";
  return `  ${k.id} (${k.kind}): ${k.backlog} pending; delivered ${k.delivered} this run; quarantined ${k.quarantined}${retry}${error}`;
}

export function formatStatus(s: ConnectorStatus): string {
  const lines = [
    `node ${s.nodeId}  version ${s.version}  pid ${s.pid}  since ${s.startedAt}`,
    `connectivity: ${s.connectivity.state} (policy ${s.connectivity.policy})`,
    `config: version ${s.config.version ?? "none"}${s.config.appliedAt ? ` applied ${s.config.appliedAt}` : ""}${s.config.lastError ? `  ! ${s.config.lastError.message}` : ""}`,
    `outbox: ${s.outbox.depth} pending, oldest ${age(s.outbox.oldestUnsentAgeMs)}; delivered ${s.shipper.delivered} this run; quarantined ${s.outbox.quarantined}${s.shipper.lastError ? `  ! ${s.shipper.lastError.message}` : ""}`,
    // Older connectors answer without sinks; one sink is what the outbox line already says.
    ...((s.sinks?.length ?? 0) > 1 ? [`sinks (${s.sinks.length}):`, ...s.sinks.map(sinkLine)] : []),
    `sources (${s.sources.length}):`,
  ];
  // Older connectors answer without it.
  if (s.disk?.state === "full")
    lines.splice(
      4,
      0,
      `disk: FULL since ${s.disk.since ?? "-"} on ${s.disk.volume}; ${s.disk.freeBytes ?? "?"} bytes free${s.shipper.unsaved ? `; ${s.shipper.unsaved} acknowledgements held in memory` : ""}`,
    );
  for (const w of s.sources) {
    const entries = Object.entries(w.cursor).filter(([k]) => !k.startsWith("#"));
    const cursor = entries
      .slice(0, 6)
      .map(([k, v]) => cursorWords(k, v))
      .join(entries.some(([, v]) => typeof v === "object" && v !== null) ? "; " : " ");
    lines.push(
      `  ${w.sourceId} [${w.kind}] ${w.state}  last punch ${w.lastPunchTime ?? "-"}  emitted ${w.emitted}  delivered ${w.delivered}  lag ${age(w.lagMs)}  cursor ${cursor || "-"}${w.lastError ? `\n    ! ${w.lastError.code}: ${w.lastError.message}` : ""}`,
    );
    if (w.backlog) lines.push(`    catching up: ${formatProgress(w.backlog, backlogUnit(w.kind))}`);
    const late = w.lateRows;
    if (late && (late.openIds > 0 || late.expiredIds > 0))
      lines.push(
        `    late rows: ${late.openIds} missing id(s) looked for; ${late.expiredIds} given up${late.lastExpiredAt ? `, last at ${late.lastExpiredAt}` : ""}`,
      );
    const d = w.device;
    if (d) {
      const drift =
        d.clockDriftMs === undefined ? "-" : `${d.clockDriftMs >= 0 ? "+" : ""}${Math.round(d.clockDriftMs / 1000)} s`;
      lines.push(
        `    terminal ${d.serial} at ${d.address}${d.model ? ` (${d.model}${d.firmware ? `, ${d.firmware}` : ""})` : ""}: ${d.records ?? "?"} records, ${d.users ?? "?"} users, clock drift ${drift}${d.recordLayout ? `, ${d.recordLayout} records` : ""}${d.realtime ? ", real-time on" : ""}`,
      );
    }
  }
  if (s.attention.length > 0) {
    lines.push("needs attention:");
    for (const a of s.attention)
      lines.push(`  ${a.severity === "error" ? "!!" : "! "} ${a.subject}: ${a.message}\n     fix: ${a.fix}`);
  }
  return lines.join("\n");
}

export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: optionsOf(STATUS),
    strict: true,
  });
  if (values.help) {
    io.out(STATUS_USAGE);
    return 0;
  }
  const dataDir = values["data-dir"] ?? defaultDataDir();
  // The monitor's record is shown even (especially) when the connector is down: it says why and what was tried.
  const monitor = values.url ? undefined : await readMonitorRecord(dataDir);
  let status: ConnectorStatus;
  try {
    // --url too asks the connector first: the address of a dead one would only open an error page.
    status = await fetchStatus(dataDir);
  } catch (error) {
    if (!(error instanceof BioError)) throw error;
    if (monitor && values.json) io.out(JSON.stringify({ connector: null, monitor }, null, 2));
    else if (monitor) io.out(`connector: not running\n${formatMonitorRecord(monitor)}`);
    io.err(`bioapi status: ${error.message}`);
    return NOT_RUNNING;
  }
  if (values.url) {
    io.out(statusPageUrl(await readEndpoint(dataDir)));
    return 0;
  }
  if (values.json) io.out(JSON.stringify(monitor ? { ...status, monitor } : status, null, 2));
  else io.out(monitor ? `${formatStatus(status)}\n${formatMonitorRecord(monitor)}` : formatStatus(status));
  return 0;
}
