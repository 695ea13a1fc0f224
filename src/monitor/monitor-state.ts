import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite } from "../core/atomic-write.ts";
import type { RestartHistory } from "./restart-policy.ts";

/**
 * Two small files in the data directory, so that `bioapi status` can tell what the monitor did even while the
 * connector is down: `monitor.json` (written by the monitor) and `service-intent.json` (written by
 * `bioapi service start|stop`, read by the monitor: an administrator's stop is never undone by a restart).
 */

export type MonitorState = "starting" | "supervising" | "restarting" | "stopped-by-admin" | "gave-up" | "stopped";

export interface MonitorAction {
  readonly at: string;
  readonly action: "start" | "restart" | "kill" | "give-up" | "left-stopped";
  readonly reason: string;
}

export interface MonitorRecord {
  readonly state: MonitorState;
  /** One line for people: what the monitor is doing and, when it gave up, what to do. */
  readonly message: string;
  readonly updatedAt: string;
  readonly monitorPid: number;
  readonly manager: string;
  readonly connectorPid: number | null;
  readonly lastHealthyAt: string | null;
  readonly lastProbe: {
    readonly responsive: boolean;
    readonly progressing: boolean;
    readonly reason: string | null;
  } | null;
  readonly restartsTotal: number;
  readonly history: RestartHistory;
  readonly actions: readonly MonitorAction[];
  readonly lastConnectorOutput: readonly string[];
}

export interface ServiceIntent {
  readonly desired: "running" | "stopped";
  readonly at: string;
  readonly by: string;
}

export const monitorFile = (dataDir: string) => join(dataDir, "monitor.json");
export const intentFile = (dataDir: string) => join(dataDir, "service-intent.json");

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** 0600 like the rest of the data directory: the record quotes the connector's last output lines. */
async function writeJson(path: string, value: unknown): Promise<void> {
  await atomicWrite(path, `${JSON.stringify(value, null, 2)}\n`);
}

export const readMonitorRecord = (dataDir: string) => readJson<MonitorRecord>(monitorFile(dataDir));
export const writeMonitorRecord = (dataDir: string, record: MonitorRecord) => writeJson(monitorFile(dataDir), record);
export const readIntent = (dataDir: string) => readJson<ServiceIntent>(intentFile(dataDir));
export const writeIntent = (dataDir: string, desired: ServiceIntent["desired"], by: string) =>
  writeJson(intentFile(dataDir), { desired, at: new Date().toISOString(), by } satisfies ServiceIntent);

export function formatMonitorRecord(r: MonitorRecord, now = Date.now()): string {
  const age = Math.round((now - Date.parse(r.updatedAt)) / 1000);
  const lines = [
    `monitor (${r.manager}, pid ${r.monitorPid}): ${r.state} — ${r.message}${age > 120 ? ` [record is ${age} s old: is the monitor running?]` : ""}`,
  ];
  const last = r.actions.at(-1);
  if (last) lines.push(`  last action ${last.at}: ${last.action} (${last.reason}); ${r.restartsTotal} restarts so far`);
  if (r.state === "gave-up" && r.lastConnectorOutput.length > 0)
    lines.push(`  connector's last output: ${r.lastConnectorOutput.at(-1)}`);
  return lines.join("\n");
}
