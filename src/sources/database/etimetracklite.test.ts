import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { sourceHarness } from "../../../test/helpers/run-source.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { databaseSourceSchema } from "../../config/config-schema.ts";
import { eTimeTrackTables } from "./presets.ts";

function monthTable(db: DatabaseSync, name: string): void {
  db.exec(`CREATE TABLE ${name} (DeviceLogId INTEGER PRIMARY KEY, DownloadDate TEXT, DeviceId INTEGER, UserId TEXT,
    LogDate TEXT, Direction TEXT, AttDirection TEXT, C1 TEXT, WorkCode TEXT)`);
  db.exec(`CREATE INDEX ${name}_dev ON ${name} (DeviceId, DeviceLogId)`);
}

function punch(db: DatabaseSync, table: string, device: number, user: string, logDate: string, direction = "in"): void {
  db.prepare(`INSERT INTO ${table} (DownloadDate, DeviceId, UserId, LogDate, Direction) VALUES (?, ?, ?, ?, ?)`).run(
    logDate,
    device,
    user,
    logDate,
    direction,
  );
}

test("month tables follow the clock in the source's zone", () => {
  const ist = (s: string) => Date.parse(s);
  assert.deepEqual(eTimeTrackTables(ist("2026-11-30T18:29:00Z"), "Asia/Kolkata"), [
    "DeviceLogs_10_2026",
    "DeviceLogs_11_2026",
  ]);
  assert.deepEqual(eTimeTrackTables(ist("2026-11-30T18:31:00Z"), "Asia/Kolkata"), [
    "DeviceLogs_11_2026",
    "DeviceLogs_12_2026",
  ]);
  assert.deepEqual(eTimeTrackTables(ist("2027-01-01T00:00:00Z"), "UTC"), ["DeviceLogs_12_2026", "DeviceLogs_1_2027"]);
});

test("eTimeTrackLite month rollover: the new table's ids restart at 1, late rows land in last month's; none lost", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "etimetracklite.db");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("CREATE TABLE Devices (DeviceId INTEGER PRIMARY KEY, DeviceFName TEXT, SerialNumber TEXT)");
  db.exec("INSERT INTO Devices VALUES (1, 'Gate', 'ESSL0001'), (2, 'Canteen', 'ESSL0002')");
  monthTable(db, "DeviceLogs_10_2026");
  monthTable(db, "DeviceLogs_11_2026");
  for (let i = 0; i < 30; i++)
    punch(db, "DeviceLogs_11_2026", 1 + (i % 2), `E${i}`, `2026-11-30 09:${String(i).padStart(2, "0")}:00`);
  punch(db, "DeviceLogs_10_2026", 1, "OCT", "2026-10-31 18:00:00", "out");

  let now = Date.parse("2026-11-30T23:59:00+05:30");
  await using h = sourceHarness(dir.path, { clock: { now: () => now } });
  await h.run([
    databaseSourceSchema.parse({
      id: "essl",
      kind: "database",
      pollIntervalMs: 100,
      timezone: "Asia/Kolkata",
      connection: { engine: "sqlite", path },
      preset: "etimetracklite",
      batchSize: 8,
    }),
  ]);
  await waitFor("November and October", () => h.store.outboxStats().depth === 31);
  // Midnight: December's table appears with its first rows (ids from 1 again); a device that was offline hands
  // over its last November punches only now, into November's table.
  now = Date.parse("2026-12-01T00:00:30+05:30");
  monthTable(db, "DeviceLogs_12_2026");
  for (let i = 0; i < 5; i++) punch(db, "DeviceLogs_12_2026", 1 + (i % 2), `D${i}`, `2026-12-01 00:00:0${i}`);
  punch(db, "DeviceLogs_11_2026", 2, "LATE", "2026-11-30 23:59:50", "out");
  await waitFor("37 punches", () => h.store.outboxStats().depth === 37);
  const punches = h.userIds();
  assert.ok(punches.some((p) => p.userId === "LATE" && p.deviceSerial === "ESSL0002"));
  assert.equal(punches.filter((p) => p.userId.startsWith("D")).length, 5);
  const cursors = h.store.cursors("essl");
  assert.equal(cursors.get("DeviceLogs_12_2026:1"), 5);
  assert.equal(cursors.get("DeviceLogs_11_2026:2"), 31);
  assert.equal(h.supervisor.status()[0]?.lastError ?? null, null);
  db.close();
});

function esslSource(path: string, extra: Record<string, unknown> = {}) {
  return databaseSourceSchema.parse({
    id: "essl",
    kind: "database",
    pollIntervalMs: 100,
    timezone: "Asia/Kolkata",
    connection: { engine: "sqlite", path },
    preset: "etimetracklite",
    batchSize: 8,
    ...extra,
  });
}

test("a missing Devices table is an error naming it and the fix, not device-N serials", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "etimetracklite.db");
  const db = new DatabaseSync(path);
  monthTable(db, "DeviceLogs_11_2026");
  punch(db, "DeviceLogs_11_2026", 1, "E1", "2026-11-20 09:00:00");
  const now = Date.parse("2026-11-20T12:00:00+05:30");
  await using h = sourceHarness(dir.path, { clock: { now: () => now } });
  await h.run([esslSource(path)]);
  const error = await waitFor("the source's error", () => h.supervisor.status()[0]?.lastError, 5000);
  assert.equal(error.code, "DB_SCHEMA");
  assert.match(error.message, /Lookup table "Devices".*not found/);
  assert.match(error.message, /Grant the connector's user SELECT on Devices/);
  assert.equal(h.store.outboxStats().depth, 0);
  db.close();
});

test("a device added to Devices together with its first punches gets its serial, not device-N", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "etimetracklite.db");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("CREATE TABLE Devices (DeviceId INTEGER PRIMARY KEY, DeviceFName TEXT, SerialNumber TEXT)");
  db.exec("INSERT INTO Devices VALUES (1, 'Gate', 'ESSL0001')");
  monthTable(db, "DeviceLogs_11_2026");
  punch(db, "DeviceLogs_11_2026", 1, "E1", "2026-11-20 09:00:00");
  const now = Date.parse("2026-11-20T12:00:00+05:30");
  await using h = sourceHarness(dir.path, { clock: { now: () => now } });
  await h.run([esslSource(path)]);
  await waitFor("device 1", () => h.store.outboxStats().depth === 1);
  // Within the minute between lookup refreshes: a new device is registered and downloads.
  db.exec("INSERT INTO Devices VALUES (3, 'Canteen', 'ESSL0003')");
  punch(db, "DeviceLogs_11_2026", 3, "E3", "2026-11-20 09:05:00");
  // Device 4 is really missing from Devices: the fallback serial is right for it.
  punch(db, "DeviceLogs_11_2026", 4, "E4", "2026-11-20 09:06:00");
  await waitFor("devices 3 and 4", () => h.store.outboxStats().depth === 3);
  const serials = Object.fromEntries(h.userIds().map((p) => [p.userId, p.deviceSerial]));
  assert.deepEqual(serials, { E1: "ESSL0001", E3: "ESSL0003", E4: "device-4" });
  db.close();
});

test("downtime across several month boundaries: every month table since the last cursor is read", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "etimetracklite.db");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("CREATE TABLE Devices (DeviceId INTEGER PRIMARY KEY, DeviceFName TEXT, SerialNumber TEXT)");
  db.exec("INSERT INTO Devices VALUES (1, 'Gate', 'ESSL0001')");
  for (const m of ["DeviceLogs_9_2026", "DeviceLogs_10_2026", "DeviceLogs_11_2026", "DeviceLogs_12_2026"])
    monthTable(db, m);
  punch(db, "DeviceLogs_9_2026", 1, "SEP", "2026-09-20 09:00:00");
  let now = Date.parse("2026-09-20T12:00:00+05:30");
  await using h = sourceHarness(dir.path, { clock: { now: () => now } });
  await h.run([esslSource(path)]);
  await waitFor("September", () => h.store.outboxStats().depth === 1);
  // The connector is down from late September to December; the software keeps writing month tables meanwhile.
  punch(db, "DeviceLogs_9_2026", 1, "SEP-LATE", "2026-09-29 18:00:00");
  punch(db, "DeviceLogs_10_2026", 1, "OCT", "2026-10-15 09:00:00");
  punch(db, "DeviceLogs_11_2026", 1, "NOV", "2026-11-15 09:00:00");
  punch(db, "DeviceLogs_12_2026", 1, "DEC", "2026-12-02 09:00:00");
  now = Date.parse("2026-12-02T12:00:00+05:30");
  await waitFor("every month", () => h.store.outboxStats().depth === 5, 5000);
  assert.deepEqual(
    h
      .userIds()
      .map((p) => p.userId)
      .sort(),
    ["DEC", "NOV", "OCT", "SEP", "SEP-LATE"],
  );
  db.close();
});

test("month tables from the oldest committed cursor, at most 12 months back", () => {
  const now = Date.parse("2026-12-02T12:00:00+05:30");
  assert.deepEqual(eTimeTrackTables(now, "Asia/Kolkata", { year: 2026, month: 9 }), [
    "DeviceLogs_9_2026",
    "DeviceLogs_10_2026",
    "DeviceLogs_11_2026",
    "DeviceLogs_12_2026",
  ]);
  const far = eTimeTrackTables(now, "Asia/Kolkata", { year: 2020, month: 1 });
  assert.equal(far.length, 13);
  assert.equal(far[0], "DeviceLogs_12_2025");
  // A cursor in the current month still keeps the previous month scanned.
  assert.deepEqual(eTimeTrackTables(now, "Asia/Kolkata", { year: 2026, month: 12 }), [
    "DeviceLogs_11_2026",
    "DeviceLogs_12_2026",
  ]);
});
