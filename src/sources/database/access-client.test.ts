import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { test } from "node:test";
import MDBReader from "mdb-reader";
import { sourceHarness } from "../../../test/helpers/run-source.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { databaseSourceSchema } from "../../config/config-schema.ts";

/** ../shared/testdata/att2000 beside the repository (a worktree or CI's clean clone), or BIOAPI_TESTDATA_ATT2000. */
const SAMPLES =
  process.env.BIOAPI_TESTDATA_ATT2000 ??
  resolve(new URL("../../../", import.meta.url).pathname, "..", "shared", "testdata", "att2000");

function samplesPresent(t: { skip(message: string): void }): boolean {
  if (existsSync(SAMPLES)) return true;
  if (process.env.CI === "true")
    throw new Error(`The Access samples are missing at ${SAMPLES}; CI=true requires them.`);
  process.stderr.write(`\n!!! SKIPPED: no Access samples at ${SAMPLES} (set BIOAPI_TESTDATA_ATT2000).\n`);
  t.skip("no samples");
  return false;
}

function att2000(path: string, extra: Record<string, unknown> = {}) {
  return databaseSourceSchema.parse({
    id: "zktime",
    kind: "database",
    pollIntervalMs: 100,
    timezone: "Asia/Kolkata",
    connection: { engine: "access", path },
    preset: "att2000",
    batchSize: 25,
    ...extra,
  });
}

/** An independent reading of a sample: the distinct punches it holds, keyed the way the cloud would see them. */
/** What the connector must send, and how many rows it must quarantine as more than 1 day in the future. */
function oracle(path: string): { punches: Set<string>; future: number } {
  const reader = new MDBReader(readFileSync(path));
  const badge = new Map(
    reader
      .getTable("USERINFO")
      .getData()
      .map((u) => [u.USERID, String(u.Badgenumber)]),
  );
  const serialOf = new Map<string, string>();
  for (const m of reader.getTable("Machines").getData()) {
    if (m.sn && !serialOf.has(String(m.MachineNumber))) serialOf.set(String(m.MachineNumber), String(m.sn));
  }
  const out = new Set<string>();
  let future = 0;
  for (const r of reader.getTable("CHECKINOUT").getData()) {
    const serial = (r.sn as string | null) ?? serialOf.get(String(r.SENSORID)) ?? `machine-${r.SENSORID}`;
    const local = (r.CHECKTIME as Date).toISOString().slice(0, 19);
    if (Date.parse(`${local}+05:30`) > Date.now() + 86_400_000) future++;
    else out.add(`${serial}|${badge.get(r.USERID)}|${local}+05:30`);
  }
  return { punches: out, future };
}

test("att2000 preset on the real Access samples: every punch once, badge numbers, serials via Machines", async (t) => {
  if (!samplesPresent(t)) return;
  const files = [
    "att2000-socianovation-74punches.mdb",
    "att2000-iceash-6punches.mdb",
    "att2000-iceash-18punches-nopk.mdb",
    "att2000-mrvaibh-460punches-baddates.mdb",
    "att2000-empty-template.mdb",
  ];
  for (const file of files) {
    const path = join(SAMPLES, file);
    const expected = oracle(path);
    await using dir = await tempDir();
    await using h = sourceHarness(dir.path);
    await h.run([att2000(path)]);
    await waitFor(`${file}: a poll`, () => h.supervisor.status()[0]?.lastPollAt);
    const { punches, future } = expected;
    await waitFor(`${file}: ${punches.size} punches`, () => h.store.outboxStats().depth === punches.size);
    const got = new Set(h.userIds().map((p) => `${p.deviceSerial}|${p.userId}|${p.time}`));
    assert.deepEqual(got, punches, file);
    await waitFor(`${file}: ${future} quarantined`, () => h.store.quarantineCount() === future);
    for (const [key, value] of h.store.cursors("zktime")) {
      if (key.startsWith("#")) continue;
      // The 2133 rows of a broken device clock are quarantined, and never move the time cursor.
      assert.ok(String(value) < "2100", `${file}: cursor ${key}=${value}`);
    }
  }
});

test("the Access file is read from a snapshot, and read again only when it changes", async (t) => {
  if (!samplesPresent(t)) return;
  await using dir = await tempDir();
  const live = join(dir.path, "att2000.mdb");
  await copyFile(join(SAMPLES, "att2000-iceash-6punches.mdb"), live);
  await using h = sourceHarness(dir.path);
  await h.run([att2000(live)]);
  await waitFor("6 punches", () => h.store.outboxStats().depth === 6);
  // The attendance software saves new punches: size and mtime change.
  await copyFile(join(SAMPLES, "att2000-socianovation-74punches.mdb"), live);
  await waitFor("80 punches", () => h.store.outboxStats().depth === 80);
  assert.equal(h.supervisor.status()[0]?.lastError ?? null, null);
});
