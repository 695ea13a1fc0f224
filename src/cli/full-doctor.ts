import { existsSync } from "node:fs";
import { type DataDirLayout, dataDirLayout } from "../app/data-dir.ts";
import { type ConfigCheck, checkCachedConfig, checkCloudConfig } from "../config/config-check.ts";
import { type ConnectorConfig, configuredSinks } from "../config/config-schema.ts";
import { withTimeout } from "../core/abort.ts";
import type { Finding } from "../core/check.ts";
import { systemClock } from "../core/clock.ts";
import { BioError, describeError } from "../core/errors.ts";
import { checkCloud } from "../link/cloud-check.ts";
import { CloudClient } from "../link/cloud-client.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { type Enrollment, loadEnrollment } from "../secrets/enrollment.ts";
import { openSecretStore } from "../secrets/open-secret-store.ts";
import { checkSink } from "../sinks/sink-kinds.ts";
import type { RunningSource } from "../sources/source-check.ts";
import { checkSource } from "../sources/source-kinds.ts";
import { Store } from "../store/store.ts";
import { fetchStatus } from "./status-command.ts";

export interface FullReport {
  readonly ok: boolean;
  readonly findings: Finding[];
}

/** Terminals and databases are checked this many at a time: a site with 500 terminals finishes in minutes. */
const PARALLEL = 8;
/** One source's check, whatever its own timeouts add up to. */
const SOURCE_CHECK_MS = 60_000;

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Everything end to end, from this machine: the enrollment and cached config decrypt; the cloud answers, agrees on
 * the time and accepts the signature; its config decrypts; every source passes its kind's check (a terminal
 * answers, accepts the comm key, has a clock close to ours; a database connects, has its table and the index a
 * poll needs). Nothing is sent or written anywhere.
 */
export async function fullDoctor(dataDir: string, signal: AbortSignal): Promise<FullReport> {
  const findings: Finding[] = [];
  const report = (): FullReport => ({ ok: findings.every((f) => f.status !== "fail"), findings });
  const layout = dataDirLayout(dataDir);
  const enrollment = await checkEnrollment(layout, dataDir, findings);
  if (!enrollment) return report();
  const keys = deriveNodeKeys(enrollment.nodeSecret);
  const cached = cachedConfigCheck(layout, keys.local, enrollment.nodeId);
  findings.push(...cached.findings);
  const client = new CloudClient({ baseUrl: enrollment.cloudUrl, nodeId: enrollment.nodeId, keys, clock: systemClock });
  const cloud = await checkCloud({ client, cloudUrl: enrollment.cloudUrl }, signal);
  findings.push(...cloud.findings);
  const fetched: ConfigCheck = cloud.configResponse
    ? checkCloudConfig(cloud.configResponse, {
        subject: cloud.subject,
        configKey: keys.config,
        nodeId: enrollment.nodeId,
      })
    : { findings: [] };
  findings.push(...fetched.findings);
  const found = fetched.found ?? cached.found;
  if (found) {
    findings.push(...(await checkSources(dataDir, found, signal)));
    findings.push(...(await checkSinks(found.config, { nodeId: enrollment.nodeId, client }, signal)));
  }
  return report();
}

/** Asks the secret store, not the file system: on Windows the enrollment lives in the registry, not secrets.json. */
async function checkEnrollment(
  layout: DataDirLayout,
  dataDir: string,
  out: Finding[],
): Promise<Enrollment | undefined> {
  try {
    const enrollment = await loadEnrollment(openSecretStore(layout));
    out.push({
      subject: "node",
      check: "enrollment",
      status: "ok",
      detail: `node ${enrollment.nodeId}; secrets decrypt`,
    });
    return enrollment;
  } catch (error) {
    const missing = error instanceof BioError && error.code === "NOT_ENROLLED";
    out.push({
      subject: "node",
      check: "enrollment",
      status: "fail",
      detail: missing ? `No enrollment in ${dataDir}.` : describeError(error).message,
      fix: missing
        ? "Run bioapi enroll, or pass the service's --data-dir (run doctor as the service account)."
        : "Restore the data directory from backup, or enroll again (bioapi enroll --force).",
    });
    return undefined;
  }
}

function cachedConfigCheck(layout: DataDirLayout, localKey: Uint8Array, nodeId: string): ConfigCheck {
  if (!existsSync(layout.store)) return { findings: [] };
  const store = Store.openReadOnly(layout.store);
  try {
    return checkCachedConfig(store, localKey, nodeId);
  } finally {
    store.close();
  }
}

/** Every enabled source through its kind's check, a few at a time, reported in config order. */
async function checkSources(
  dataDir: string,
  found: { readonly config: ConnectorConfig; readonly from: string },
  signal: AbortSignal,
): Promise<Finding[]> {
  const sources = found.config.sources.filter((s) => s.enabled);
  const summary: Finding = {
    subject: "sources",
    check: "config",
    status: "ok",
    detail: `${sources.length} enabled in ${found.from}`,
  };
  // What the running connector sees of a source doctor cannot open itself (a one-connection terminal it holds).
  const running = await fetchStatus(dataDir).then(
    (status) => new Map<string, RunningSource>(status.sources.map((w) => [w.sourceId, w])),
    () => new Map<string, RunningSource>(),
  );
  const perSource = new Map<string, Finding[]>();
  await mapLimit(sources, PARALLEL, async (source) => {
    perSource.set(source.id, await checkSource(source, running.get(source.id), withTimeout(signal, SOURCE_CHECK_MS)));
  });
  // Printed in config order whatever order the checks finished in.
  return [summary, ...sources.flatMap((s) => perSource.get(s.id) ?? [])];
}

/** Every sink through its kind's check (reachable, authenticated, a harmless probe), in config order. */
async function checkSinks(
  config: ConnectorConfig,
  target: { readonly nodeId: string; readonly client: CloudClient },
  signal: AbortSignal,
): Promise<Finding[]> {
  const sinks = configuredSinks(config);
  const perSink = new Map<string, Finding[]>();
  await mapLimit(sinks, PARALLEL, async (sink) => {
    perSink.set(sink.id, await checkSink(sink, target, withTimeout(signal, SOURCE_CHECK_MS)));
  });
  return sinks.flatMap((s) => perSink.get(s.id) ?? []);
}

export function formatFull(r: FullReport): string {
  const lines: string[] = [];
  let subject = "";
  for (const f of r.findings) {
    if (f.subject !== subject) {
      subject = f.subject;
      lines.push(`${subject}:`);
    }
    lines.push(`  ${f.status === "ok" ? "ok  " : f.status === "warn" ? "WARN" : "FAIL"} ${f.check}: ${f.detail}`);
    if (f.fix && f.status !== "ok") lines.push(`       fix: ${f.fix}`);
  }
  const fails = r.findings.filter((f) => f.status === "fail").length;
  const warns = r.findings.filter((f) => f.status === "warn").length;
  lines.push(
    fails > 0
      ? `${fails} problem${fails === 1 ? "" : "s"} found${warns ? `, ${warns} warning${warns === 1 ? "" : "s"}` : ""}: see FAIL above.`
      : `All checks passed${warns ? ` with ${warns} warning${warns === 1 ? "" : "s"}` : ""}.`,
  );
  return lines.join("\n");
}
