/**
 * `npm run bench`: drain a SQLite backlog into the reference cloud on loopback, and beside it, in the same run, the
 * two baselines the end-to-end rate is judged against: reading the rows raw with node:sqlite, and the cloud's
 * ingest alone. Then the steady state: how long a new row takes to reach the cloud. Prints a table and JSON.
 *
 * BENCH_ROWS overrides the backlog size (default 1,000,000).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { startCloud } from "../cloud/cloud-server.ts";
import { ensureDataDir } from "../src/app/data-dir.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { openSecretStore } from "../src/secrets/open-secret-store.ts";
import { ConnectorProcess } from "../test/helpers/connector-process.ts";
import { tempDir } from "../test/helpers/temp-dir.ts";
import { waitFor } from "../test/helpers/wait-for.ts";
import { cloudIngestAlone, createBacklog, log, peakRssMb, percentile, SERIALS } from "./bench-kit.ts";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const POLL_MS = 1000;
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 60);

/** Baseline 1: the same rows through the same driver, the way the source reads them (per serial, keyset pages). */
function rawRead(path: string): { rows: number; seconds: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  const page = db.prepare(
    "SELECT id, sn, pin, punch_time, status, verify FROM att_log WHERE sn = ? AND id > ? ORDER BY id LIMIT 5000",
  );
  const t0 = performance.now();
  let rows = 0;
  for (const sn of SERIALS) {
    let after = 0;
    for (;;) {
      const got = page.all(sn, after) as Array<{ id: number }>;
      rows += got.length;
      if (got.length < 5000) break;
      after = got.at(-1)?.id ?? after;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return { rows, seconds };
}

async function main(): Promise<void> {
  await using dir = await tempDir("bioapi-bench-");
  const dbPath = join(dir.path, "att.db");
  log(`Creating a ${ROWS.toLocaleString()}-row backlog…`);
  createBacklog(dbPath, ROWS);

  const raw = rawRead(dbPath);
  log(`raw node:sqlite read: ${Math.round(raw.rows / raw.seconds).toLocaleString()} rows/s`);

  await using cloud = await startCloud({ dataDir: join(dir.path, "cloud") });
  const baselineNode = cloud.addNode();
  // All the rows, not a sample: the cloud's upsert slows as its table grows, and the end-to-end run pays that too.
  const ingestRows = ROWS;
  const ingest = await cloudIngestAlone(cloud.url, baselineNode.nodeId, baselineNode.secret, ingestRows, SERIALS);
  log(`cloud ingest alone: ${Math.round(ingest.rows / ingest.seconds).toLocaleString()} punches/s`);

  const node = cloud.addNode();
  cloud.setConfig(node.nodeId, {
    schemaVersion: 1,
    ...(process.env.BENCH_SHIP_BATCH ? { shipper: { batchSize: Number(process.env.BENCH_SHIP_BATCH) } } : {}),
    sources: [
      {
        id: "backlog",
        kind: "database",
        pollIntervalMs: POLL_MS,
        timezone: "Asia/Kolkata",
        connection: { engine: "sqlite", path: dbPath },
        table: "att_log",
        columns: { id: "id", deviceSerial: "sn", userId: "pin", time: "punch_time", state: "status", verify: "verify" },
      },
    ],
  });
  const layout = ensureDataDir(join(dir.path, "connector"));
  await saveEnrollment(openSecretStore(layout), { cloudUrl: cloud.url, nodeId: node.nodeId, nodeSecret: node.secret });
  const t0 = performance.now();
  const connector = await ConnectorProcess.started(
    layout.root,
    ["--log-level", process.env.BENCH_LOG_LEVEL ?? "warn"],
    (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean),
  );
  const pid = connector.child.pid as number;
  let lastLog = 0;
  await waitFor(
    "the backlog in the cloud",
    () => {
      const total = cloud.count(node.nodeId);
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`  e2e: ${total.toLocaleString()} / ${ROWS.toLocaleString()}`);
      }
      return total === ROWS;
    },
    30 * 60_000,
    50,
  );
  const e2eSeconds = (performance.now() - t0) / 1000;
  const rss = await peakRssMb(pid);
  log(`end to end: ${Math.round(ROWS / e2eSeconds).toLocaleString()} punches/s, peak RSS ${rss.toFixed(0)} MB`);

  // Steady state: single new rows, each timed from commit to the cloud holding it.
  const writer = new DatabaseSync(dbPath);
  const insert = writer.prepare("INSERT INTO att_log (sn, pin, punch_time, status, verify) VALUES (?, ?, ?, 0, 1)");
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const before = cloud.count(node.nodeId);
    // Recent, not ahead: a time more than a day in the future is quarantined.
    const local = new Date(Date.now() - 3_600_000 + i * 1000).toISOString().slice(0, 19).replace("T", " ");
    const at = performance.now();
    insert.run(SERIALS[i % SERIALS.length] as string, "9999", local);
    await waitFor("the new row in the cloud", () => cloud.count(node.nodeId) > before, 30_000, 2);
    latencies.push(performance.now() - at);
    await new Promise((r) => setTimeout(r, 37 + Math.random() * 200));
  }
  writer.close();
  const duplicates = cloud.stats(node.nodeId).duplicateDeliveries;
  await connector.kill("SIGTERM");

  const rawRate = raw.rows / raw.seconds;
  const ingestRate = ingest.rows / ingest.seconds;
  const e2eRate = ROWS / e2eSeconds;
  const slower = Math.min(rawRate, ingestRate);
  const result = {
    rows: ROWS,
    rawReadRowsPerSec: Math.round(rawRate),
    cloudIngestPunchesPerSec: Math.round(ingestRate),
    endToEndPunchesPerSec: Math.round(e2eRate),
    endToEndVsSlowerBaseline: Number((e2eRate / slower).toFixed(3)),
    targetRatio: 0.5,
    connectorPeakRssMb: Number(rss.toFixed(1)),
    targetRssMb: 150,
    duplicateDeliveries: duplicates,
    steadyState: {
      pollIntervalMs: POLL_MS,
      samples: latencies.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      targetP99Ms: POLL_MS + 500,
    },
  };
  const rows: Array<[string, string, string]> = [
    ["raw node:sqlite read", `${result.rawReadRowsPerSec.toLocaleString()} rows/s`, "baseline"],
    ["cloud ingest alone", `${result.cloudIngestPunchesPerSec.toLocaleString()} punches/s`, "baseline"],
    [
      "end to end",
      `${result.endToEndPunchesPerSec.toLocaleString()} punches/s`,
      `${result.endToEndVsSlowerBaseline}× slower baseline (target ≥ 0.5) ${result.endToEndVsSlowerBaseline >= 0.5 ? "PASS" : "FAIL"}`,
    ],
    ["connector peak RSS", `${result.connectorPeakRssMb} MB`, `target < 150 MB ${rss < 150 ? "PASS" : "FAIL"}`],
    [
      "new row → cloud p99",
      `${result.steadyState.p99Ms} ms (p50 ${result.steadyState.p50Ms})`,
      `target < ${POLL_MS + 500} ms ${result.steadyState.p99Ms < POLL_MS + 500 ? "PASS" : "FAIL"}`,
    ],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write(
    `\n${rows.map(([a, b, c]) => `${a.padEnd(width)}  ${b.padStart(valueWidth)}  ${c}`).join("\n")}\n\n`,
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  await rm(layout.root, { recursive: true, force: true });
}

await main();
