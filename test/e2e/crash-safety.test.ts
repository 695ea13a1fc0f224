import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { resolveTime } from "../../src/core/local-time.ts";
import { punchId } from "../../src/core/punch.ts";
import { ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e, fastConfig } from "../helpers/e2e-harness.ts";
import { waitFor } from "../helpers/wait-for.ts";

const TOTAL = 20_000;
const PHASES = 10;
const MID_SYNC_KILLS = 10;

/** The ids the cloud must end with, computed from the source rows by the documented recipe. */
function expectedIds(dbPath: string): Set<string> {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  const rows = db.prepare("SELECT sn, pin, punch_time, status FROM att_log").all() as Array<{
    sn: string;
    pin: string;
    punch_time: string;
    status: number;
  }>;
  db.close();
  return new Set(rows.map((r) => punchId(r.sn, r.pin, resolveTime(r.punch_time, "Asia/Kolkata").local, r.status)));
}

// Eleven connector starts and a 20,000-row sync: about a minute on two busy cores, over four at load 18.
test(`SIGKILL at random moments, at least ${MID_SYNC_KILLS} times mid-sync, during a ${TOTAL}-row sync: the cloud ends with exactly the ${TOTAL} ids`, {
  timeout: 900_000,
}, async (t) => {
  await using h = await e2e({
    config: (path) =>
      fastConfig(
        path,
        { shipper: { batchSize: 100, lingerMs: 5, requestTimeoutMs: 2000, maxBackoffMs: 500 } },
        { batchSize: 300 },
      ),
  });
  const perPhase = TOTAL / PHASES;
  let inserted = 0;
  let killedMidSync = 0;
  let kills = 0;
  while (inserted < TOTAL) {
    await using p = await ConnectorProcess.started(h.connectorDir);
    // The attendance software keeps writing while the connector runs.
    if (inserted < TOTAL) {
      h.db.insertMany(
        perPhase,
        ["S1", "S2", "S3", "S4"],
        Date.UTC(2026, 10, 1) + inserted * 1000,
        1 + (inserted % 997),
      );
      inserted += perPhase;
    }
    // Kill at a random point of this phase's progress, so every kill lands while work is in flight.
    const target = inserted - perPhase + Math.floor(Math.random() * 0.9 * perPhase);
    await waitFor("sync progress", () => h.cloud.stats(h.nodeId).total >= target, 60_000, 1);
    const before = h.cloud.stats(h.nodeId).total;
    await p.kill("SIGKILL");
    kills++;
    if (before < inserted) killedMidSync++;
    // A killed process leaves its endpoint file behind; the next start must not be fooled by it.
    await rm(join(h.connectorDir, "status.json"), { force: true });
  }
  assert.equal(inserted, TOTAL);
  assert.ok(
    killedMidSync >= MID_SYNC_KILLS,
    `at least ${MID_SYNC_KILLS} kills landed mid-sync (${killedMidSync} of ${kills})`,
  );

  await using last = await ConnectorProcess.started(h.connectorDir);
  await waitFor(`${TOTAL} in the cloud`, () => h.cloud.stats(h.nodeId).total === TOTAL, 120_000, 100);
  const exit = await last.kill("SIGTERM");
  assert.equal(exit.code, 0, `graceful stop on SIGTERM:\n${last.output.join("").slice(-2000)}`);

  const expected = expectedIds(h.db.path);
  assert.equal(expected.size, TOTAL);
  const inCloud = h.cloudIds();
  const missing = [...expected].filter((id) => !inCloud.has(id));
  const extra = [...inCloud.keys()].filter((id) => !expected.has(id));
  assert.deepEqual(missing, [], "none missing");
  assert.deepEqual(extra, [], "none extra");
  const stats = h.cloud.stats(h.nodeId);
  t.diagnostic(
    `kills ${kills} (mid-sync ${killedMidSync}); cloud holds ${stats.total} ids; duplicate deliveries absorbed by id: ${stats.duplicateDeliveries}`,
  );
});
