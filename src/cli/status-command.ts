import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { dataDirLayout, defaultDataDir } from "../app/data-dir.ts";
import { BioError } from "../core/errors.ts";
import { formatMonitorRecord, readMonitorRecord } from "../monitor/monitor-state.ts";
import type { ConnectorStatus, StatusEndpointFile } from "../status/status-api.ts";
import type { CliIo } from "./cli-io.ts";

export const STATUS_USAGE = `Usage: bioapi status [--data-dir DIR] [--json]

Reads the running connector's loopback status endpoint.`;

export async function fetchStatus(dataDir: string, timeoutMs = 3000): Promise<ConnectorStatus> {
  const layout = dataDirLayout(dataDir);
  let endpoint: StatusEndpointFile;
  try {
    endpoint = JSON.parse(await readFile(layout.statusFile, "utf8")) as StatusEndpointFile;
  } catch {
    throw new BioError("USAGE", `No connector is running with data directory ${dataDir} (no status.json).`, {
      hint: "Start it with: bioapi run --data-dir DIR (or as a service), or pass the right --data-dir.",
    });
  }
  try {
    const response = await fetch(new URL("/v1/status", endpoint.url), { signal: AbortSignal.timeout(timeoutMs) });
    return (await response.json()) as ConnectorStatus;
  } catch (error) {
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

export function formatStatus(s: ConnectorStatus): string {
  const lines = [
    `node ${s.nodeId}  version ${s.version}  pid ${s.pid}  since ${s.startedAt}`,
    `connectivity: ${s.connectivity.state} (policy ${s.connectivity.policy})`,
    `config: version ${s.config.version ?? "none"}${s.config.appliedAt ? ` applied ${s.config.appliedAt}` : ""}${s.config.lastError ? `  ! ${s.config.lastError.message}` : ""}`,
    `outbox: ${s.outbox.depth} pending, oldest ${age(s.outbox.oldestUnsentAgeMs)}; delivered ${s.shipper.delivered} this run; quarantined ${s.outbox.quarantined}${s.shipper.lastError ? `  ! ${s.shipper.lastError.message}` : ""}`,
    `sources (${s.sources.length}):`,
  ];
  for (const w of s.sources) {
    const cursor = Object.entries(w.cursor)
      .slice(0, 6)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(" ");
    lines.push(
      `  ${w.sourceId} [${w.kind}] ${w.state}  last punch ${w.lastPunchTime ?? "-"}  emitted ${w.emitted}  cursor ${cursor || "-"}${w.lastError ? `\n    ! ${w.lastError.code}: ${w.lastError.message}` : ""}`,
    );
    const d = w.device;
    if (d) {
      const drift =
        d.clockDriftMs === undefined ? "-" : `${d.clockDriftMs >= 0 ? "+" : ""}${Math.round(d.clockDriftMs / 1000)} s`;
      lines.push(
        `    terminal ${d.serial} at ${d.address}${d.model ? ` (${d.model}${d.firmware ? `, ${d.firmware}` : ""})` : ""}: ${d.records ?? "?"} records, ${d.users ?? "?"} users, clock drift ${drift}${d.realtime ? ", real-time on" : ""}`,
      );
    }
  }
  return lines.join("\n");
}

export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    io.out(STATUS_USAGE);
    return 0;
  }
  const dataDir = values["data-dir"] ?? defaultDataDir();
  // The monitor's record is shown even (especially) when the connector is down: it says why and what was tried.
  const monitor = await readMonitorRecord(dataDir);
  let status: ConnectorStatus;
  try {
    status = await fetchStatus(dataDir);
  } catch (error) {
    if (!monitor) throw error;
    if (values.json) io.out(JSON.stringify({ connector: null, monitor }, null, 2));
    else io.out(`connector: not running\n${formatMonitorRecord(monitor)}`);
    return 1;
  }
  if (values.json) io.out(JSON.stringify(monitor ? { ...status, monitor } : status, null, 2));
  else io.out(monitor ? `${formatStatus(status)}\n${formatMonitorRecord(monitor)}` : formatStatus(status));
  return 0;
}
