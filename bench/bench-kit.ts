/** What the benchmarks share: the cloud-ingest baseline, peak RSS, percentiles, progress lines. */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { DatabaseSync } from "node:sqlite";
import { gzipSync } from "node:zlib";
import { signedFetch } from "../cloud/signed-fetch.ts";

/** The device serials every backlog benchmark spreads its rows over, so their baselines are comparable. */
export const SERIALS = [
  "CKJ7201001",
  "CKJ7201002",
  "OIN5320117",
  "BOCK194960",
  "ZKT0000005",
  "ZKT0000006",
  "ZKT0000007",
  "ZKT0000008",
] as const;

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

export async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/**
 * The baseline an end-to-end rate is judged against: the cloud ingesting `count` pre-built, pre-compressed punches
 * in batches of 1000 (what the connector sends), with the same serials, users and time spacing as the backlog.
 */
export async function cloudIngestAlone(
  url: string,
  nodeId: string,
  secret: string,
  count: number,
  serials: readonly string[],
): Promise<{ rows: number; seconds: number }> {
  const batches: Buffer[] = [];
  for (let b = 0; b < count / 1000; b++) {
    const punches = [];
    for (let i = 0; i < 1000; i++) {
      const n = b * 1000 + i;
      const local = new Date(Date.UTC(2025, 0, 1) + n * 7000).toISOString().slice(0, 19);
      const serial = serials[n % serials.length] as string;
      const userId = String(1 + (n % 2500));
      const id = createHash("sha256")
        .update(`${serial}\u001f${userId}\u001f${local}\u001f${n % 2}`)
        .digest("hex")
        .slice(0, 32);
      punches.push({
        id,
        deviceSerial: serial,
        userId,
        time: `${local}+05:30`,
        state: n % 2 ? "checkOut" : "checkIn",
        stateCode: n % 2,
        verify: "fingerprint",
        verifyCode: 1,
        source: "database",
        collectedAt: new Date().toISOString(),
      });
    }
    batches.push(gzipSync(JSON.stringify({ punches }), { level: 1 }));
  }
  const path = `/v1/nodes/${nodeId}/punches`;
  const t0 = performance.now();
  for (const body of batches) {
    const res = await signedFetch(url, {
      nodeId,
      secret,
      method: "POST",
      path,
      body,
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
    });
    if (res.status !== 200) throw new Error(`ingest baseline got ${res.status}`);
    await res.arrayBuffer();
  }
  return { rows: count, seconds: (performance.now() - t0) / 1000 };
}

/** An attendance table of `rows` punches over SERIALS, 7 s apart, 2,500 users: the backlog every drain bench reads. */
export function createBacklog(path: string, rows: number): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(
    "CREATE TABLE att_log (id INTEGER PRIMARY KEY, sn TEXT NOT NULL, pin TEXT, punch_time TEXT NOT NULL, status INTEGER, verify INTEGER)",
  );
  db.exec("CREATE INDEX att_log_sn_id ON att_log (sn, id)");
  const stmt = db.prepare("INSERT INTO att_log (sn, pin, punch_time, status, verify) VALUES (?, ?, ?, ?, ?)");
  const start = Date.UTC(2025, 0, 1);
  db.exec("BEGIN");
  for (let i = 0; i < rows; i++) {
    const time = new Date(start + i * 7000).toISOString().slice(0, 19).replace("T", " ");
    stmt.run(SERIALS[i % SERIALS.length] as string, String(1 + (i % 2500)), time, i % 2, 1);
  }
  db.exec("COMMIT");
  db.close();
}
