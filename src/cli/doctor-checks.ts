import { existsSync } from "node:fs";
import { dataDirLayout } from "../app/data-dir.ts";
import { decryptEnvelope, openCache, parseEnvelope } from "../config/config-envelope.ts";
import {
  type ConnectorConfig,
  type DatabaseSourceConfig,
  parseConfig,
  type ZkSourceConfig,
} from "../config/config-schema.ts";
import { withTimeout } from "../core/abort.ts";
import { driftAdvice, driftWords } from "../core/clock-drift.ts";
import { BioError, describeError } from "../core/errors.ts";
import { resolveTime } from "../core/local-time.ts";
import { clause } from "../core/sentence.ts";
import { CloudClient, cloudErrorText } from "../link/cloud-client.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { loadEnrollment } from "../secrets/enrollment.ts";
import { openSecretStore } from "../secrets/open-secret-store.ts";
import { ZkClient } from "../sources/zk/zk-client.ts";
import { Store } from "../store/store.ts";
import { formatDuration, type WorkerStatus } from "../supervisor/supervisor.ts";
import { diagnose } from "./doctor-command.ts";
import { fetchStatus } from "./status-command.ts";

export type FindingStatus = "ok" | "warn" | "fail";

/** One line of the report: what was checked, what was found, and for anything not ok, what to do. */
export interface Finding {
  readonly subject: string;
  readonly check: string;
  readonly status: FindingStatus;
  readonly detail: string;
  readonly fix?: string;
}

export interface FullReport {
  readonly ok: boolean;
  readonly findings: Finding[];
}

/** The cloud refuses requests whose timestamp is further than this from its clock (docs/protocol.md). */
const SIGNATURE_WINDOW_MS = 300_000;
const SKEW_WARN_MS = 30_000;
const CLOUD_TIMEOUT_MS = 10_000;
/** Terminals and databases are checked this many at a time: a site with 500 terminals finishes in minutes. */
const PARALLEL = 8;

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
 * the time and accepts the signature; its config decrypts; every terminal answers, accepts the comm key, and has a
 * clock close to ours; every database connects, has its table and the index a poll needs. Nothing is sent or
 * written anywhere.
 */
export async function fullDoctor(dataDir: string, signal: AbortSignal): Promise<FullReport> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const report = (): FullReport => ({ ok: findings.every((f) => f.status !== "fail"), findings });
  const layout = dataDirLayout(dataDir);
  // Ask the secret store, not the file system: on Windows the enrollment lives in the registry, not secrets.json.
  let enrollment: Awaited<ReturnType<typeof loadEnrollment>>;
  try {
    enrollment = await loadEnrollment(openSecretStore(layout));
    add({ subject: "node", check: "enrollment", status: "ok", detail: `node ${enrollment.nodeId}; secrets decrypt` });
  } catch (error) {
    const missing = error instanceof BioError && error.code === "NOT_ENROLLED";
    add({
      subject: "node",
      check: "enrollment",
      status: "fail",
      detail: missing ? `No enrollment in ${dataDir}.` : describeError(error).message,
      fix: missing
        ? "Run bioapi enroll, or pass the service's --data-dir (run doctor as the service account)."
        : "Restore the data directory from backup, or enroll again (bioapi enroll --force).",
    });
    return report();
  }
  const keys = deriveNodeKeys(enrollment.nodeSecret);
  let config: ConnectorConfig | undefined;
  let configFrom = "";

  if (existsSync(layout.store)) {
    const store = Store.openReadOnly(layout.store);
    try {
      const cached = store.cachedConfig();
      if (cached) {
        const parsed = parseConfig(
          openCache(keys.local, enrollment.nodeId, cached.version, cached.iv, cached.ciphertext),
        );
        if (parsed.ok) {
          config = parsed.config;
          configFrom = `cached version ${cached.version}`;
          add({ subject: "node", check: "cached config", status: "ok", detail: `version ${cached.version} decrypts` });
        }
      }
    } catch (error) {
      add({
        subject: "node",
        check: "cached config",
        status: "warn",
        detail: describeError(error).message,
        fix: "The connector fetches a fresh copy from the cloud when it starts.",
      });
    } finally {
      store.close();
    }
  }

  // The cloud: health (reachable, and its clock), then one signed request (signature, config).
  const subject = `cloud ${new URL(enrollment.cloudUrl).origin}`;
  const client = new CloudClient({
    baseUrl: enrollment.cloudUrl,
    nodeId: enrollment.nodeId,
    keys,
    clock: { now: () => Date.now() },
  });
  let reachable = false;
  try {
    const before = Date.now();
    const res = await client.request({
      method: "GET",
      path: "/v1/health",
      timeoutMs: CLOUD_TIMEOUT_MS,
      signal,
      unsigned: true,
    });
    const after = Date.now();
    if (res.status !== 200)
      throw new BioError("CLOUD_UNAVAILABLE", `The health check answered ${clause(cloudErrorText(res))}.`);
    reachable = true;
    add({ subject, check: "reachable", status: "ok", detail: `/v1/health in ${after - before} ms` });
    const cloudTime = Date.parse((JSON.parse(res.body.toString("utf8")) as { time?: string }).time ?? "");
    if (Number.isFinite(cloudTime)) {
      const skew = Math.round((before + after) / 2 - cloudTime);
      const words = `this machine's clock is ${formatDuration(Math.abs(skew))} ${skew > 0 ? "ahead of" : "behind"} the cloud`;
      add(
        Math.abs(skew) >= SIGNATURE_WINDOW_MS
          ? {
              subject,
              check: "clock",
              status: "fail",
              detail: `${words}: beyond the ±${SIGNATURE_WINDOW_MS / 60_000} min the cloud accepts, so every request is refused.`,
              fix: "Synchronise this machine's clock (Windows: w32tm /resync; Linux: timedatectl set-ntp true).",
            }
          : Math.abs(skew) >= SKEW_WARN_MS
            ? {
                subject,
                check: "clock",
                status: "warn",
                detail: `${words}.`,
                fix: "Turn on time synchronisation (NTP) before the gap reaches 5 minutes.",
              }
            : {
                subject,
                check: "clock",
                status: "ok",
                detail: `within ${formatDuration(Math.abs(skew))} of the cloud`,
              },
      );
    }
  } catch (error) {
    if (signal.aborted) throw error;
    add({
      subject,
      check: "reachable",
      status: "fail",
      detail: describeError(error).message,
      fix: "Check outbound HTTPS to the cloud from this machine: internet access, proxy, firewall, DNS.",
    });
  }
  if (reachable) {
    try {
      const res = await client.request({
        method: "GET",
        path: client.nodePath("config"),
        timeoutMs: CLOUD_TIMEOUT_MS,
        signal,
      });
      if (res.status === 401 || res.status === 403) {
        add({
          subject,
          check: "signature",
          status: "fail",
          detail: `The cloud refused this node's signed request: ${clause(cloudErrorText(res))}.`,
          fix: "If the clock is right, the node secret is not the one the cloud holds: re-enroll (bioapi enroll --force) with the secret from bioapi cloud node add.",
        });
      } else if (res.status === 429 || res.status >= 500) {
        add({
          subject,
          check: "signature",
          status: "warn",
          detail: `The cloud failed to answer a signed request: ${cloudErrorText(res)}; the signature could not be checked.`,
          fix: "The cloud is unreachable or failing right now; the connector retries by itself. Run doctor again later, or check the cloud's own status.",
        });
      } else {
        add({ subject, check: "signature", status: "ok", detail: `accepted (${res.status})` });
        if (res.status === 200) {
          try {
            const envelope = parseEnvelope(res.body);
            const parsed = parseConfig(decryptEnvelope(keys.config, enrollment.nodeId, envelope));
            if (!parsed.ok) {
              add({
                subject,
                check: "config",
                status: "fail",
                detail: `Version ${envelope.version} is invalid: ${parsed.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}.`,
                fix: "Fix the config in the cloud and publish a new version.",
              });
            } else {
              config = parsed.config;
              configFrom = `the cloud's version ${envelope.version}`;
              add({
                subject,
                check: "config",
                status: "ok",
                detail: `version ${envelope.version} decrypts and is valid (${parsed.config.sources.length} sources)`,
              });
            }
          } catch (error) {
            add({
              subject,
              check: "config",
              status: "fail",
              detail: describeError(error).message,
              fix: "The config was sealed for another node or secret: publish it again for this node id.",
            });
          }
        } else if (res.status === 404) {
          add({
            subject,
            check: "config",
            status: "fail",
            detail: "The cloud holds no config for this node.",
            fix: `Publish one: bioapi cloud config set ${enrollment.nodeId} FILE.`,
          });
        }
      }
    } catch (error) {
      if (signal.aborted) throw error;
      add({ subject, check: "signature", status: "fail", detail: describeError(error).message });
    }
  }

  if (!config) return report();
  const sources = config.sources.filter((s) => s.enabled);
  add({ subject: "sources", check: "config", status: "ok", detail: `${sources.length} enabled in ${configFrom}` });
  const perSource = new Map<string, Finding[]>();
  // Many terminals serve one connection at a time, and a running connector holds it: what the connector sees of a
  // terminal doctor cannot open turns a false "unreachable" into the truth.
  const running = await fetchStatus(dataDir).then(
    (status) => new Map(status.sources.map((w) => [w.sourceId, w])),
    () => new Map<string, WorkerStatus>(),
  );
  await mapLimit(sources, PARALLEL, async (source) => {
    const out: Finding[] = [];
    perSource.set(source.id, out);
    const bounded = withTimeout(signal, 60_000);
    if (source.kind === "zk") await checkTerminal(source, bounded, out, running.get(source.id));
    else await checkDatabase(source, bounded, out);
  });
  // Printed in config order whatever order the checks finished in.
  for (const s of sources) findings.push(...(perSource.get(s.id) ?? []));
  return report();
}

/** The running connector reads this terminal well: polled within three intervals, no error since. */
function readByConnector(config: ZkSourceConfig, worker: WorkerStatus | undefined): worker is WorkerStatus {
  if (worker?.state !== "running" || worker.lastError || !worker.lastPollAt) return false;
  return Date.now() - Date.parse(worker.lastPollAt) <= 3 * config.pollIntervalMs + 5000;
}

async function checkTerminal(
  config: ZkSourceConfig,
  signal: AbortSignal,
  out: Finding[],
  worker?: WorkerStatus,
): Promise<void> {
  const address = `${config.host}:${config.port}/${config.transport}`;
  const subject = `terminal ${config.id} (${address})`;
  let client: ZkClient;
  try {
    client = await ZkClient.connect({
      host: config.host,
      port: config.port,
      transport: config.transport,
      commKey: config.commKey,
      timeoutMs: config.requestTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      signal,
      checksum: config.checksum,
    });
  } catch (error) {
    const d = describeError(error);
    if (d.code === "DEVICE_AUTH") {
      out.push({ subject, check: "reachable", status: "ok", detail: "the terminal answers" });
      out.push({
        subject,
        check: "authenticated",
        status: "fail",
        detail: d.message,
        fix: "Set commKey in the source config to the terminal's COMM Key (Menu → Comm → Connection), or 0 if it has none.",
      });
    } else if (d.code !== "DEVICE_MISMATCH" && readByConnector(config, worker)) {
      out.push({
        subject,
        check: "reachable",
        status: "ok",
        detail: `the running connector holds the terminal's session and reads it (last poll ${worker.lastPollAt}${worker.device ? `, ${worker.device.records ?? "?"} records, serial ${worker.device.serial}` : ""}); doctor's own session was refused (${d.code})`,
      });
    } else {
      out.push({
        subject,
        check: "reachable",
        status: "fail",
        detail: `${d.code}: ${d.message}`,
        fix:
          d.code === "DEVICE_BUSY"
            ? "Another program holds the terminal's only connection: stop it (old attendance software, a second connector). If it is this connector, `bioapi status` shows how it reads the terminal."
            : `Check that the terminal is on, has address ${config.host} (DHCP may have moved it), and that port ${config.port}/${config.transport} is open between this machine and it.`,
      });
    }
    return;
  }
  try {
    out.push({ subject, check: "reachable", status: "ok", detail: `connected over ${config.transport}` });
    out.push({
      subject,
      check: "authenticated",
      status: "ok",
      detail: config.commKey ? "comm key accepted" : "no comm key needed",
    });
    const info = await client.info();
    if (config.serial && info.serial !== config.serial) {
      out.push({
        subject,
        check: "identity",
        status: "fail",
        detail: `The terminal reports serial ${info.serial}, the config expects ${config.serial}.`,
        fix: "The address now belongs to another terminal: fix host, or serial if the terminal was replaced.",
      });
    }
    const used = info.sizes.recordCapacity
      ? `, ${Math.round((info.sizes.records * 100) / info.sizes.recordCapacity)}% full`
      : "";
    out.push({
      subject,
      check: "records",
      status: "ok",
      detail: `${info.serial}${info.deviceName ? ` (${info.deviceName})` : ""}: ${info.sizes.records} records, ${info.sizes.users} users${used}`,
    });
    const before = Date.now();
    const local = await client.deviceTime();
    const drift = Math.round(resolveTime(local, config.timezone).epochMs - (before + Date.now()) / 2);
    const advice = driftAdvice(drift, config.timezone);
    out.push(
      Math.abs(drift) >= config.maxClockDriftMs
        ? { subject, check: "clock", status: "warn", detail: advice.message, fix: advice.fix }
        : { subject, check: "clock", status: "ok", detail: driftWords(drift) },
    );
  } catch (error) {
    out.push({
      subject,
      check: "read",
      status: "fail",
      detail: describeError(error).message,
      fix: "The terminal connected but did not answer a read: check its firmware and that no other program holds it.",
    });
  } finally {
    await client.close();
  }
}

async function checkDatabase(config: DatabaseSourceConfig, signal: AbortSignal, out: Finding[]): Promise<void> {
  const subject = `database ${config.id} (${config.connection.engine}, preset ${config.preset})`;
  const r = await diagnose(config, { rows: 1, cursors: undefined, signal });
  for (const c of r.checks) {
    out.push(
      c.ok
        ? { subject, check: c.name, status: "ok", detail: c.detail }
        : {
            subject,
            check: c.name,
            status: "fail",
            detail: c.detail,
            fix:
              c.name === "connect"
                ? "Check the server, host, port, user and password in the source's connection, and the firewall."
                : "Fix table, columns or preset in the source config (the message lists what exists).",
          },
    );
  }
  for (const t of r.tables)
    out.push({ subject, check: `rows in ${t.table}`, status: "ok", detail: `${t.rows} rows, ${t.partitions} devices` });
  for (const w of r.warnings) {
    const index = /^No index on (.*?): every poll scans it\. (.*)$/s.exec(w);
    const cleartext = /^(The password for .* crosses the network without TLS: .*?\.) .*? (Enable TLS .*)$/s.exec(w);
    if (cleartext)
      out.push({ subject, check: "tls", status: "warn", detail: cleartext[1] ?? w, fix: cleartext[2] ?? "" });
    else if (index)
      out.push({
        subject,
        check: "index",
        status: "warn",
        detail: `No index on ${index[1]}: every poll scans the table.`,
        fix: index[2] ?? "",
      });
    else out.push({ subject, check: "note", status: "ok", detail: w });
  }
  if (r.checks.every((c) => c.ok) && r.tables.length > 0 && !r.warnings.some((w) => w.startsWith("No index")))
    out.push({ subject, check: "index", status: "ok", detail: "the poll query has its index" });
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
