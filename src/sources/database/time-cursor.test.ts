import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { AttendanceDb } from "../../../test/helpers/attendance-db.ts";
import { sourceHarness } from "../../../test/helpers/run-source.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { type DatabaseSourceConfig, databaseSourceSchema } from "../../config/config-schema.ts";
import { shiftTime } from "./time-cursor.ts";

/** A generic source over att_log with the time column as the cursor (no id). */
function timeSource(path: string, extra: Partial<DatabaseSourceConfig> = {}): DatabaseSourceConfig {
  return databaseSourceSchema.parse({
    id: "t",
    kind: "database",
    pollIntervalMs: 100,
    timezone: "America/New_York",
    connection: { engine: "sqlite", path },
    table: "att_log",
    columns: { deviceSerial: "sn", userId: "pin", time: "punch_time" },
    batchSize: 40,
    ...extra,
  });
}

const settle = () => new Promise((r) => setTimeout(r, 400));

test("the lookback bound keeps the value's own offset and separator", () => {
  assert.equal(shiftTime("2026-11-26T03:00:00-05:00", 3600_000), "2026-11-26T02:00:00-05:00");
  assert.equal(shiftTime("2026-11-26 00:30:00.250+05:30", 3600_000), "2026-11-25 23:30:00+05:30");
  assert.equal(shiftTime("2026-11-26T03:00:00Z", 60_000), "2026-11-26T02:59:00Z");
  assert.equal(shiftTime("2026-11-26 03:00:00", 60_000), "2026-11-26 02:59:00");
});

test("text times with an offset: new and late rows are read after the cursor (compared as text)", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([
    { sn: "S1", pin: "u1", time: "2026-11-26T02:00:00-05:00" },
    { sn: "S1", pin: "u2", time: "2026-11-26T03:00:00-05:00" },
  ]);
  await using h = sourceHarness(dir.path);
  await h.run([timeSource(db.path)]);
  await waitFor("cursor at 03:00", () => h.store.cursors("t").get("S1") === "2026-11-26T03:00:00-05:00");
  // A late row inside the lookback window and a new row after the cursor.
  db.insert([
    { sn: "S1", pin: "late", time: "2026-11-26T02:30:00-05:00" },
    { sn: "S1", pin: "new", time: "2026-11-26T03:30:00-05:00" },
  ]);
  await waitFor("both rows", () => h.userIds().length === 4, 5000);
  assert.equal(h.store.cursors("t").get("S1"), "2026-11-26T03:30:00-05:00");
  db.close();
});

test("DST fall-back on a naive time cursor with a 15 min lookback: the repeated hour's rows are read", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  // 2026-11-01 in New York: 01:00-02:00 happens twice (EDT, then EST). First pass, plus a device clock 1.5 h fast.
  db.insert([
    { sn: "S1", pin: "edt-0130", time: "2026-11-01 01:30:00" },
    { sn: "S1", pin: "edt-0150", time: "2026-11-01 01:50:00" },
    { sn: "S2", pin: "fast-clock", time: "2026-11-01 03:00:00" },
    { sn: "S2", pin: "s2-0100", time: "2026-11-01 01:00:00" },
  ]);
  const now = Date.parse("2026-11-01T06:30:00Z"); // 01:30 EST, the second pass
  await using h = sourceHarness(dir.path, { clock: { now: () => now } });
  await h.run([timeSource(db.path, { lookbackMs: 15 * 60_000 })]);
  await waitFor("first pass", () => h.userIds().length === 4);
  assert.equal(h.store.cursors("t").get("S1"), "2026-11-01 01:50:00");
  // A row 1.5 h ahead of now is sent but does not move the cursor.
  assert.equal(h.store.cursors("t").get("S2"), "2026-11-01 01:00:00");
  // Second pass (EST): wall-clock times below the cursor of 01:50.
  db.insert([
    { sn: "S1", pin: "est-0105", time: "2026-11-01 01:05:00" },
    { sn: "S1", pin: "est-0120", time: "2026-11-01 01:20:00" },
  ]);
  await waitFor("the second pass's rows", () => h.userIds().length === 6, 5000);
  await settle();
  assert.deepEqual(
    h
      .userIds()
      .map((p) => p.userId)
      .sort(),
    ["edt-0130", "edt-0150", "est-0105", "est-0120", "fast-clock", "s2-0100"],
  );
  db.close();
});
