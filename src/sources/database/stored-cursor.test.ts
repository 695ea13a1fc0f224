import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ATT_LOG_COLUMNS, AttendanceDb } from "../../../test/helpers/attendance-db.ts";
import { sourceHarness } from "../../../test/helpers/run-source.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { type DatabaseSourceConfig, databaseSourceSchema } from "../../config/config-schema.ts";
import type { CursorValue } from "../../store/store.ts";
import { targetFingerprint } from "./database-source.ts";

/**
 * Data directories written before cursors became types (IdCursor, TimeCursor) keep working: their cursors, as the
 * store holds them (JSON text), load and advance as they did, and are written back in the same format.
 */

function config(path: string, columns: DatabaseSourceConfig["columns"]): DatabaseSourceConfig {
  return databaseSourceSchema.parse({
    id: "att",
    kind: "database",
    pollIntervalMs: 100,
    timezone: "America/New_York",
    connection: { engine: "sqlite", path },
    table: "att_log",
    columns,
    batchSize: 40,
  });
}

/** The cursors as stored: each value is the JSON text of the store's `cursors.value` column. */
function storedAs(text: Record<string, string>): Record<string, CursorValue> {
  return Object.fromEntries(Object.entries(text).map(([k, v]) => [k, JSON.parse(v) as CursorValue]));
}

test("an id cursor and its sweep state stored by the earlier code load and advance the same", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([1, 2, 3, 5].map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:0${id}` })));
  await using h = sourceHarness(dir.path);
  const c = config(db.path, ATT_LOG_COLUMNS);
  // Ids 1-5 read, 4 still open (seen at poll 2), 2 ids given up before.
  h.store.emit(
    "att",
    [],
    storedAs({
      "#target": JSON.stringify(targetFingerprint(c)),
      S1: "5",
      "#ids:att_log":
        '{"v":1,"high":5,"polls":3,"expired":2,"lastExpiredAt":1764140000000,"gaps":[[4,4,1764144000000,2]]}',
    }),
  );
  await h.run([c]);
  await waitFor("the stored state in status", () => h.supervisor.status()[0]?.lateRows?.openIds === 1);
  assert.deepEqual(h.supervisor.status()[0]?.lateRows, {
    openIds: 1,
    expiredIds: 2,
    lastExpiredAt: new Date(1764140000000).toISOString(),
  });
  assert.equal(h.store.outboxStats().depth, 0, "nothing at or below the stored cursor is read again");
  // The late id 4 turns up in its gap; 6 is new above the mark.
  db.insert([6, 4].map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:0${id}` })));
  await waitFor("ids 4 and 6", () => h.userIds().length === 2);
  await waitFor("cursor at 6", () => h.store.cursors("att").get("S1") === 6);
  await waitFor("gap closed", () => h.supervisor.status()[0]?.lateRows?.openIds === 0);
  assert.deepEqual(
    h
      .userIds()
      .map((p) => p.userId)
      .sort(),
    ["u4", "u6"],
  );
  const cursors = h.store.cursors("att");
  assert.equal(JSON.stringify(cursors.get("S1")), "6");
  assert.match(
    JSON.stringify(cursors.get("#ids:att_log")),
    /^\{"v":1,"high":6,"polls":\d+,"expired":2,"lastExpiredAt":1764140000000,"gaps":\[\]\}$/,
  );
  db.close();
});

test("a time cursor stored by the earlier code loads and advances the same", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([
    { sn: "S1", pin: "before-lookback", time: "2026-11-26T00:30:00-05:00" },
    { sn: "S1", pin: "at-cursor", time: "2026-11-26T03:00:00-05:00" },
    { sn: "S1", pin: "new", time: "2026-11-26T03:30:00-05:00" },
  ]);
  await using h = sourceHarness(dir.path);
  const c = config(db.path, { deviceSerial: "sn", userId: "pin", time: "punch_time" });
  h.store.emit(
    "att",
    [],
    storedAs({ "#target": JSON.stringify(targetFingerprint(c)), S1: '"2026-11-26T03:00:00-05:00"' }),
  );
  await h.run([c]);
  await waitFor("cursor at 03:30", () => h.store.cursors("att").get("S1") === "2026-11-26T03:30:00-05:00");
  await waitFor("a poll after it", () => h.supervisor.status()[0]?.lastPollAt !== undefined);
  // From the cursor lowered by the lookback (2 h on a wall-clock text column): the row at the cursor is re-read
  // (the store drops it when it knows it), the one before the window is not.
  assert.deepEqual(
    h
      .userIds()
      .map((p) => p.userId)
      .sort(),
    ["at-cursor", "new"],
  );
  assert.equal(JSON.stringify(h.store.cursors("att").get("S1")), '"2026-11-26T03:30:00-05:00"');
  assert.deepEqual(
    [...h.store.cursors("att").keys()].sort(),
    ["#target", "S1"],
    "a time cursor keeps nothing else beside its devices' cursors",
  );
  assert.equal(h.supervisor.status()[0]?.lateRows, null, "a time cursor keeps no late-row book");
  db.close();
});
