/**
 * The idle poll on a large multi-device table (part of `npm run bench:db`): a BioTime table on PostgreSQL with
 * BENCH_IDLE_ROWS rows (default 5,000,000) over BENCH_IDLE_SERIALS terminals (default 500), one of them
 * decommissioned long ago (its rows are the table's first). A real `bioapi run` drains it, then sits idle for
 * BENCH_IDLE_SECONDS (default 30) at a 1 s poll interval. Reported, from pg_stat_user_tables and /proc:
 * - scans (index and sequential: about one per query) and rows touched per idle poll;
 * - the connector's CPU while idle.
 * The baseline, measured on the same table in the same run: the per-device poll this connector used before (a
 * `SELECT DISTINCT` of serials above the oldest cursor less `lookbackRows`, then one keyset page per serial from
 * its cursor less `lookbackRows`), issued as raw SQL with the same driver.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import type { startCloud } from "../cloud/cloud-server.ts";
import { ensureDataDir } from "../src/app/data-dir.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { openSecretStore } from "../src/secrets/open-secret-store.ts";
import { ConnectorProcess } from "../test/helpers/connector-process.ts";
import { scratch } from "../test/helpers/sql-servers.ts";
import { waitFor } from "../test/helpers/wait-for.ts";
import { log } from "./bench-kit.ts";

const ROWS = Number(process.env.BENCH_IDLE_ROWS ?? 5_000_000);
const SERIALS = Number(process.env.BENCH_IDLE_SERIALS ?? 500);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
const STALE_ROWS = 1000;
const POLL_MS = 1000;
/** The former defaults: `lookbackRows` and `batchSize`. */
const OLD_LOOKBACK = 500;
const OLD_BATCH = 1000;

interface TableStats {
  readonly scans: number;
  readonly rows: number;
  /** When the counters were read (performance.now()). */
  readonly at: number;
}

export interface IdlePollResult {
  readonly rows: number;
  readonly serials: number;
  readonly idleSeconds: number;
  readonly perIdlePoll: { readonly scans: number; readonly rowsTouched: number };
  readonly connectorIdleCpuPercent: number;
  readonly baselinePerDevicePoll: { readonly scans: number; readonly rowsTouched: number; readonly ms: number };
  readonly scansRatio: number;
  readonly rowsRatio: number;
}

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which may itself hold spaces: utime and stime are the 12th and 13th of those.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function idlePollBench(cloud: Awaited<ReturnType<typeof startCloud>>, dir: string) {
  await using s = await scratch("postgres");
  if (!s) throw new Error("postgres is not reachable");
  const c = s.connection as { host: string; port: number; database: string; user: string; password: string };
  const schema = String((s.connection as { schema: string }).schema);
  log(`[idle] creating a ${ROWS.toLocaleString()}-row BioTime table over ${SERIALS} serials, one stale…`);
  await s.createBiotime();
  await s.exec(`INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn)
    SELECT (1 + g % 900)::text, timestamptz '2019-01-01 00:00:00+05:30' + g * interval '60 seconds', '0', 1, 'STALE0001'
      FROM generate_series(0, ${STALE_ROWS - 1}) AS g`);
  await s.exec(`INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn)
    SELECT (1 + g % 2500)::text, timestamptz '2025-01-01 00:00:00+05:30' + g * interval '7 seconds', (g % 2)::text, 1,
           'SN' || lpad((g % ${SERIALS - 1})::text, 6, '0')
      FROM generate_series(0, ${ROWS - STALE_ROWS - 1}) AS g`);
  await s.exec("ANALYZE iclock_transaction");

  const raw = new pg.Client({ ...c, options: `-c search_path=${schema}` });
  await raw.connect();
  const stats = async (): Promise<TableStats> => {
    // A backend's counters reach the shared statistics at the end of its transactions, at most once a second.
    await raw.query("SELECT pg_stat_force_next_flush()");
    await new Promise((r) => setTimeout(r, 1200));
    const { rows } = await raw.query(
      `SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans,
              coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS rows
         FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'iclock_transaction'`,
      [schema],
    );
    return { scans: Number(rows[0]?.scans), rows: Number(rows[0]?.rows), at: performance.now() };
  };
  try {
    await raw.query("SET stats_fetch_consistency = none");
    const cursors = (
      await raw.query("SELECT terminal_sn, max(id) AS id FROM iclock_transaction GROUP BY terminal_sn")
    ).rows.map((r) => ({ sn: String(r.terminal_sn), id: Number(r.id) }));
    const before = await stats();
    const t0 = performance.now();
    const floor = Math.max(0, Math.min(...cursors.map((x) => x.id)) - OLD_LOOKBACK);
    await raw.query("SELECT DISTINCT terminal_sn FROM iclock_transaction WHERE id > $1", [floor]);
    for (const { sn, id } of cursors)
      await raw.query(
        `SELECT id, terminal_sn, emp_code, punch_time, punch_state, verify_type, work_code FROM iclock_transaction
          WHERE terminal_sn = $1 AND id > $2 ORDER BY id LIMIT ${OLD_BATCH}`,
        [sn, Math.max(0, id - OLD_LOOKBACK)],
      );
    const ms = performance.now() - t0;
    const after = await stats();
    // The two statistics reads are queries on pg_stat_user_tables, not on the table: they count in neither.
    const baseline = { scans: after.scans - before.scans, rowsTouched: after.rows - before.rows, ms: Math.round(ms) };
    log(`[idle] baseline per-device poll: ${baseline.scans} scans, ${baseline.rowsTouched} rows, ${baseline.ms} ms`);

    const node = cloud.addNode();
    cloud.setConfig(node.nodeId, {
      schemaVersion: 1,
      sources: [
        {
          id: "biotime-idle",
          kind: "database",
          preset: "biotime",
          pollIntervalMs: POLL_MS,
          timezone: "Asia/Kolkata",
          connection: s.connection,
        },
      ],
    });
    const layout = ensureDataDir(join(dir, "connector-idle"));
    await saveEnrollment(openSecretStore(layout), {
      cloudUrl: cloud.url,
      nodeId: node.nodeId,
      nodeSecret: node.secret,
    });
    const connector = await ConnectorProcess.started(layout.root, [
      "--log-level",
      process.env.BENCH_LOG_LEVEL ?? "warn",
    ]);
    try {
      let lastLog = 0;
      await waitFor(
        "the table in the cloud",
        () => {
          const total = cloud.count(node.nodeId);
          if (performance.now() - lastLog > 10_000) {
            lastLog = performance.now();
            log(`[idle]   drain: ${total.toLocaleString()} / ${ROWS.toLocaleString()}`);
          }
          return total === ROWS;
        },
        60 * 60_000,
        200,
      );
      // Caught up: let the last commits and the statistics settle before the window opens.
      await new Promise((r) => setTimeout(r, 5000));
      const pid = connector.child.pid as number;
      const idleBefore = await stats();
      const cpuBefore = await cpuSeconds(pid);
      const w0 = performance.now();
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      const cpuAfter = await cpuSeconds(pid);
      const windowSeconds = (performance.now() - w0) / 1000;
      const idleAfter = await stats();
      // The counters' own window: what flushed between the two reads, a second or so wider than the CPU window.
      const polls = (idleAfter.at - idleBefore.at) / POLL_MS;
      const perIdlePoll = {
        scans: Number(((idleAfter.scans - idleBefore.scans) / polls).toFixed(2)),
        rowsTouched: Number(((idleAfter.rows - idleBefore.rows) / polls).toFixed(2)),
      };
      const cpu = Number((((cpuAfter - cpuBefore) / windowSeconds) * 100).toFixed(2));
      log(`[idle] connector idle: ${perIdlePoll.scans} scans, ${perIdlePoll.rowsTouched} rows per poll, ${cpu}% CPU`);
      return {
        rows: ROWS,
        serials: SERIALS,
        idleSeconds: IDLE_SECONDS,
        perIdlePoll,
        connectorIdleCpuPercent: cpu,
        baselinePerDevicePoll: baseline,
        scansRatio: Number((perIdlePoll.scans / baseline.scans).toFixed(4)),
        rowsRatio: Number((perIdlePoll.rowsTouched / Math.max(1, baseline.rowsTouched)).toFixed(6)),
      } satisfies IdlePollResult;
    } finally {
      await connector.kill("SIGTERM");
      await rm(layout.root, { recursive: true, force: true });
    }
  } finally {
    await raw.end();
  }
}
