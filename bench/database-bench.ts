/**
 * `npm run bench:db` (also part of `npm run bench`): drain a BioTime `iclock_transaction` backlog from PostgreSQL and
 * from MariaDB into the reference cloud on loopback, and beside it, in the same run, the baselines the end-to-end
 * rate is judged against: a raw keyset SELECT of the same rows with the same driver, and the cloud's ingest alone.
 * Then the steady state (a new row → the cloud) and the poll query's plan. Prints a table and JSON.
 *
 * BENCH_DB_ROWS: backlog size (default 1,000,000). BENCH_DB_ENGINES: "postgres,mysql" (default both).
 * BENCH_LATENCY_SAMPLES: steady-state samples per engine (default 40). Then the idle poll on a large multi-device
 * table (bench/idle-poll-bench.ts; BENCH_DB_IDLE=0 skips it).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import mysql from "mysql2/promise";
import pg from "pg";
import { startCloud } from "../cloud/cloud-server.ts";
import { ensureDataDir } from "../src/app/data-dir.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { openSecretStore } from "../src/secrets/open-secret-store.ts";
import { mysqlDialect, postgresDialect } from "../src/sources/database/dialects.ts";
import { renderSelect, type SelectSpec } from "../src/sources/database/select-spec.ts";
import { ConnectorProcess } from "../test/helpers/connector-process.ts";
import { type EngineName, type Scratch, scratch } from "../test/helpers/sql-servers.ts";
import { tempDir } from "../test/helpers/temp-dir.ts";
import { waitFor } from "../test/helpers/wait-for.ts";
import { cloudIngestAlone, log, peakRssMb, percentile, SERIALS } from "./bench-kit.ts";
import { idlePollBench } from "./idle-poll-bench.ts";

const ROWS = Number(process.env.BENCH_DB_ROWS ?? 1_000_000);
const ENGINES = (process.env.BENCH_DB_ENGINES ?? "postgres,mysql").split(",").filter(Boolean) as EngineName[];
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 40);
const POLL_MS = 1000;
const PAGE = 1000;
const COLUMNS = ["id", "terminal_sn", "emp_code", "punch_time", "punch_state", "verify_type", "work_code"];

/** Server-side generation: a million rows in seconds, index built afterwards as a restored backup would have it. */
async function createBacklog(s: Scratch, rows: number): Promise<void> {
  await s.createBiotime({ index: false });
  const list = SERIALS.map((x) => `'${x}'`).join(", ");
  if (s.engine === "postgres") {
    await s.exec(`INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn)
      SELECT (1 + g % 2500)::text, timestamptz '2025-01-01 00:00:00+05:30' + g * interval '7 seconds', (g % 2)::text, 1,
             (ARRAY[${list}])[1 + g % ${SERIALS.length}]
        FROM generate_series(0, ${rows - 1}) AS g`);
    await s.exec("CREATE INDEX iclock_transaction_sn_id ON iclock_transaction (terminal_sn, id)");
    await s.exec("ANALYZE iclock_transaction");
  } else {
    const chunk = 200_000;
    for (let from = 0; from < rows; from += chunk) {
      const to = Math.min(rows, from + chunk) - 1;
      await s.exec(`INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn)
        SELECT CAST(1 + seq % 2500 AS CHAR), TIMESTAMP '2025-01-01 00:00:00' + INTERVAL seq * 7 SECOND, CAST(seq % 2 AS CHAR), 1,
               ELT(1 + seq % ${SERIALS.length}, ${list})
          FROM seq_${from}_to_${to}`);
    }
    await s.exec("CREATE INDEX iclock_transaction_sn_id ON iclock_transaction (terminal_sn, id)");
    await s.exec("ANALYZE TABLE iclock_transaction");
  }
}

/** The page an id-cursor source reads: table-wide, above the high-water mark, split by device afterwards. */
function pageSpec(after: number): SelectSpec {
  return {
    table: "iclock_transaction",
    columns: COLUMNS,
    where: [{ column: "id", op: "gt", value: after }],
    orderBy: ["id"],
    limit: PAGE,
  };
}

/** Baseline 1: the same rows, same driver, the same keyset pages the source reads (table-wide, PAGE rows). */
async function rawRead(s: Scratch): Promise<{ rows: number; seconds: number; plan: string }> {
  const c = s.connection as {
    host: string;
    port: number;
    database: string;
    user: string;
    password: string;
    schema?: string;
  };
  let run: (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;
  let close: () => Promise<void>;
  const dialect = s.engine === "postgres" ? postgresDialect(c.schema ?? "public") : mysqlDialect;
  if (s.engine === "postgres") {
    const client = new pg.Client({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
    });
    await client.connect();
    run = async (sql, params) => (await client.query({ text: sql, values: params })).rows;
    close = () => client.end();
  } else {
    const conn = await mysql.createConnection({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
      dateStrings: true,
    });
    run = async (sql, params) => (await conn.query(sql, params))[0] as Array<Record<string, unknown>>;
    close = () => conn.end();
  }
  // The plan of the poll query itself, at the start of the backlog and at its tail (where steady-state polls run).
  const explain = async (after: number) => {
    const probe = renderSelect(dialect, pageSpec(after));
    return (await run(`EXPLAIN ${probe.sql}`, probe.params))
      .map((r) =>
        s.engine === "postgres" ? String(r["QUERY PLAN"]).trim() : `key=${r.key} type=${r.type} rows=${r.rows}`,
      )
      .join(" | ");
  };
  const plan = `backlog: ${await explain(0)} || tail: ${await explain(Math.max(0, ROWS - 500))}`;
  const t0 = performance.now();
  let rows = 0;
  let after = 0;
  for (;;) {
    const q = renderSelect(dialect, pageSpec(after));
    const got = await run(q.sql, q.params);
    rows += got.length;
    if (got.length < PAGE) break;
    after = Number(got.at(-1)?.c0 ?? after);
  }
  const seconds = (performance.now() - t0) / 1000;
  await close();
  return { rows, seconds, plan };
}

async function benchEngine(
  engine: EngineName,
  cloud: Awaited<ReturnType<typeof startCloud>>,
  dir: string,
  ingestRate: number,
) {
  await using s = await scratch(engine);
  if (!s) throw new Error(`${engine} is not reachable`);
  log(`[${engine}] creating a ${ROWS.toLocaleString()}-row BioTime backlog…`);
  await createBacklog(s, ROWS);
  const raw = await rawRead(s);
  const rawRate = raw.rows / raw.seconds;
  log(`[${engine}] raw keyset SELECT: ${Math.round(rawRate).toLocaleString()} rows/s; plan: ${raw.plan}`);

  const node = cloud.addNode();
  cloud.setConfig(node.nodeId, {
    schemaVersion: 1,
    sources: [
      {
        id: `biotime-${engine}`,
        kind: "database",
        preset: "biotime",
        pollIntervalMs: POLL_MS,
        timezone: "Asia/Kolkata",
        connection: s.connection,
      },
    ],
  });
  const layout = ensureDataDir(join(dir, `connector-${engine}`));
  await saveEnrollment(openSecretStore(layout), { cloudUrl: cloud.url, nodeId: node.nodeId, nodeSecret: node.secret });
  const t0 = performance.now();
  const connector = await ConnectorProcess.started(layout.root, ["--log-level", process.env.BENCH_LOG_LEVEL ?? "warn"]);
  try {
    let lastLog = 0;
    await waitFor(
      "the backlog in the cloud",
      () => {
        const total = cloud.count(node.nodeId);
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`[${engine}]   e2e: ${total.toLocaleString()} / ${ROWS.toLocaleString()}`);
        }
        return total === ROWS;
      },
      30 * 60_000,
      50,
    );
    const e2eSeconds = (performance.now() - t0) / 1000;
    const rss = await peakRssMb(connector.child.pid as number);
    const e2eRate = ROWS / e2eSeconds;
    log(`[${engine}] end to end: ${Math.round(e2eRate).toLocaleString()} punches/s, peak RSS ${rss.toFixed(0)} MB`);

    const latencies: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const before = cloud.count(node.nodeId);
      // Recent, not ahead: a time more than a day in the future is quarantined.
      const local = new Date(Date.now() - 3_600_000 + i * 1000).toISOString().slice(0, 19).replace("T", " ");
      const at = performance.now();
      await s.insertBiotime([{ sn: SERIALS[i % SERIALS.length] as string, pin: "9999", time: `${local}+05:30` }]);
      await waitFor("the new row in the cloud", () => cloud.count(node.nodeId) > before, 30_000, 2);
      latencies.push(performance.now() - at);
      await new Promise((r) => setTimeout(r, 37 + Math.random() * 200));
    }
    // A bounded range of the id's index (the primary key), from the start of the backlog and at its tail. Never a
    // full scan.
    const indexUsed = !/Seq Scan|type=ALL/.test(raw.plan) && /Index|key=\w/.test(raw.plan);
    return {
      engine,
      rawSelectRowsPerSec: Math.round(rawRate),
      endToEndPunchesPerSec: Math.round(e2eRate),
      endToEndVsSlowerBaseline: Number((e2eRate / Math.min(rawRate, ingestRate)).toFixed(3)),
      connectorPeakRssMb: Number(rss.toFixed(1)),
      duplicateDeliveries: cloud.stats(node.nodeId).duplicateDeliveries,
      steadyState: {
        samples: latencies.length,
        p50Ms: Math.round(percentile(latencies, 50)),
        p99Ms: Math.round(percentile(latencies, 99)),
        targetP99Ms: POLL_MS + 500,
      },
      pollQueryPlan: raw.plan,
      pollQueryUsesIndex: indexUsed,
    };
  } finally {
    await connector.kill("SIGTERM");
    await rm(layout.root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await using dir = await tempDir("bioapi-dbbench-");
  await using cloud = await startCloud({ dataDir: join(dir.path, "cloud") });
  const baselineNode = cloud.addNode();
  log(`cloud ingest alone, ${ROWS.toLocaleString()} punches…`);
  const ingest = await cloudIngestAlone(cloud.url, baselineNode.nodeId, baselineNode.secret, ROWS, SERIALS);
  const ingestRate = ingest.rows / ingest.seconds;
  log(`cloud ingest alone: ${Math.round(ingestRate).toLocaleString()} punches/s`);
  const results = [];
  for (const engine of ENGINES) results.push(await benchEngine(engine, cloud, dir.path, ingestRate));
  const idle = process.env.BENCH_DB_IDLE === "0" ? null : await idlePollBench(cloud, dir.path);

  const table: Array<[string, string, string]> = [
    ["cloud ingest alone", `${Math.round(ingestRate).toLocaleString()} punches/s`, "baseline"],
  ];
  for (const r of results) {
    table.push(
      [`${r.engine}: raw keyset SELECT`, `${r.rawSelectRowsPerSec.toLocaleString()} rows/s`, "baseline"],
      [
        `${r.engine}: end to end`,
        `${r.endToEndPunchesPerSec.toLocaleString()} punches/s`,
        `${r.endToEndVsSlowerBaseline}× slower baseline (target ≥ 0.5) ${r.endToEndVsSlowerBaseline >= 0.5 ? "PASS" : "FAIL"}`,
      ],
      [`${r.engine}: connector peak RSS`, `${r.connectorPeakRssMb} MB`, ""],
      [
        `${r.engine}: new row → cloud p99`,
        `${r.steadyState.p99Ms} ms (p50 ${r.steadyState.p50Ms})`,
        `target < ${POLL_MS + 500} ms ${r.steadyState.p99Ms < POLL_MS + 500 ? "PASS" : "FAIL"}`,
      ],
      [
        `${r.engine}: poll query uses the index`,
        r.pollQueryUsesIndex ? "yes" : "no",
        r.pollQueryUsesIndex ? "PASS" : "FAIL",
      ],
    );
  }
  if (idle) {
    const b = idle.baselinePerDevicePoll;
    table.push(
      [
        `idle poll, ${idle.rows.toLocaleString()} rows, ${idle.serials} serials: per-device (before)`,
        `${b.scans} scans, ${b.rowsTouched.toLocaleString()} rows`,
        `baseline (${b.ms} ms per poll)`,
      ],
      [
        "idle poll: table-wide (now)",
        `${idle.perIdlePoll.scans} scans, ${idle.perIdlePoll.rowsTouched.toLocaleString()} rows`,
        `${idle.scansRatio}× the scans, ${idle.rowsRatio}× the rows; constant ${idle.perIdlePoll.scans <= 4 ? "PASS" : "FAIL"}`,
      ],
      ["idle poll: connector CPU", `${idle.connectorIdleCpuPercent}% of a core`, `over ${idle.idleSeconds} s`],
    );
  }
  const width = Math.max(...table.map((r) => r[0].length));
  const valueWidth = Math.max(...table.map((r) => r[1].length));
  process.stdout.write(
    `\n${table.map(([a, b, c]) => `${a.padEnd(width)}  ${b.padStart(valueWidth)}  ${c}`).join("\n")}\n\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ rows: ROWS, cloudIngestPunchesPerSec: Math.round(ingestRate), targetRatio: 0.5, engines: results, idlePoll: idle }, null, 2)}\n`,
  );
}

await main();
