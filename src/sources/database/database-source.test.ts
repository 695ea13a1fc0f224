import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { test } from "node:test";
import { ATT_LOG_COLUMNS, AttendanceDb } from "../../../test/helpers/attendance-db.ts";
import { sourceHarness, warningsLogger } from "../../../test/helpers/run-source.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import {
  type DatabaseSourceConfig,
  databaseConnectionSchema,
  databaseSourceSchema,
} from "../../config/config-schema.ts";
import { createLogger, Redactor, silentLogger } from "../../core/logger.ts";
import { DatabaseSource, targetFingerprint } from "./database-source.ts";
import { checkIdentifier } from "./identifier.ts";
import { openSqlClient } from "./open-client.ts";

function sourceConfig(path: string, extra: Partial<DatabaseSourceConfig> = {}): DatabaseSourceConfig {
  return databaseSourceSchema.parse({
    id: "att",
    kind: "database",
    pollIntervalMs: 100,
    timezone: "Asia/Kolkata",
    connection: { engine: "sqlite", path },
    table: "att_log",
    columns: ATT_LOG_COLUMNS,
    lookbackRows: 50,
    batchSize: 40,
    ...extra,
  });
}

test("reads every row per serial in keyset pages, with the zone's offset, cursor = last id per serial", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insertMany(300, ["S1", "S2", "S3"]);
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path)]);
  await waitFor("300 punches in the outbox", () => h.store.outboxStats().depth === 300);
  const cursors = new Map([...h.store.cursors("att")].filter(([k]) => !k.startsWith("#")));
  assert.deepEqual([...cursors.keys()].sort(), ["S1", "S2", "S3"]);
  assert.deepEqual([...cursors.values()].sort(), [298, 299, 300]);
  assert.match(String(h.store.cursors("att").get("#target")), /^[0-9a-f]{16}$/);
  const punches = h.userIds();
  assert.equal(new Set(punches.map((p) => p.time)).size, 300);
  assert.ok(punches.every((p) => p.time.endsWith("+05:30")));
  db.close();
});

test("a row with a lower id that becomes visible after a higher one is still collected", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([1, 2, 3, 5].map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:0${id}` })));
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path)]);
  await waitFor("cursor at 5", () => h.store.cursors("att").get("S1") === 5);
  // The writer that held id 4 commits late (a long transaction in the attendance software).
  db.insert([{ id: 4, sn: "S1", pin: "u4", time: "2026-11-26 08:00:04" }]);
  await waitFor("the late row", () => h.userIds().some((p) => p.userId === "u4"));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(
    h
      .userIds()
      .map((p) => p.userId)
      .sort(),
    ["u1", "u2", "u3", "u4", "u5"],
  );
  db.close();
});

test("bad rows (null user, unparseable time) are quarantined with a reason; the rest flows", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([
    { sn: "S1", pin: "7", time: "2026-11-26 08:00:00" },
    { sn: "S1", pin: null, time: "2026-11-26 08:00:01" },
    { sn: "S1", pin: "8", time: "not a time" },
    { sn: "S1", pin: "9", time: "2026-11-26 08:00:03" },
  ]);
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path)]);
  await waitFor("two punches", () => h.store.outboxStats().depth === 2);
  await waitFor("two quarantined", () => h.store.quarantineCount() === 2);
  const reasons = h.store.quarantine().map((q) => q.reason);
  assert.ok(
    reasons.some((r) => /pin is empty \(row id 2\)/.test(r)),
    reasons.join(" | "),
  );
  assert.ok(
    reasons.some((r) => /punch_time is not a time: "not a time" \(row id 3\)/.test(r)),
    reasons.join(" | "),
  );
  // Re-polls of the lookback window do not quarantine the same rows again.
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(h.store.quarantineCount(), 2);
  db.close();
});

test("a bad id, impossible dates, a huge user id and out-of-range times are quarantined; the good rows flow", async () => {
  await using dir = await tempDir();
  const { DatabaseSync } = await import("node:sqlite");
  const path = join(dir.path, "bad-rows.db");
  const db = new DatabaseSync(path);
  // Not a PRIMARY KEY: SQLite then stores whatever it is given in an INTEGER column.
  db.exec("CREATE TABLE att_log (id INTEGER, sn TEXT, pin TEXT, punch_time TEXT, status INTEGER, verify INTEGER)");
  const insert = db.prepare("INSERT INTO att_log VALUES (?, 'S1', ?, ?, ?, 1)");
  const rows: [number | string, string, string, number | string][] = [
    [1, "7", "2026-11-26 08:00:01", 0],
    [2.5, "7", "2026-11-26 08:00:02", 0],
    ["abc", "7", "2026-11-26 08:00:03", 0],
    [3, "7", "2026-02-30 08:00:00", 0],
    [4, "7", "0000-00-00 00:00:00", 0],
    [5, "7", "2026-13-01 08:00:00", 0],
    [6, "u".repeat(100), "2026-11-26 08:00:06", 0],
    [7, "7", "1969-12-31 08:00:00", 0],
    [8, "7", "2099-01-01 08:00:00", 0],
    [9, "7", "2026-11-26 08:00:09", 1],
    [10, "7", "2026-11-26 08:00:10", "zz"],
  ];
  for (const r of rows) insert.run(...r);
  const logs: string[] = [];
  const logger = createLogger({ level: "warn", format: "json", redact: new Redactor(), write: (l) => logs.push(l) });
  await using h = sourceHarness(dir.path, { logger });
  await h.run([sourceConfig(path)]);
  await waitFor("three punches", () => h.store.outboxStats().depth === 3);
  await waitFor("eight quarantined", () => h.store.quarantineCount() === 8);
  const reasons = h.store
    .quarantine()
    .map((q) => q.reason)
    .sort();
  const expected = [
    /^id is not an integer: 2\.5$/,
    /^id is not an integer: "abc"$/,
    /^pin is longer than 64 characters: 100 \(row id 6\)$/,
    /^punch_time is before 1970: "1969-12-31 08:00:00" \(row id 7\)$/,
    /^punch_time is more than 1 day in the future: "2099-01-01 08:00:00" \(row id 8\)$/,
    /^punch_time is not a calendar date: "0000-00-00 00:00:00" \(row id 4\)$/,
    /^punch_time is not a calendar date: "2026-02-30 08:00:00" \(row id 3\)$/,
    /^punch_time is not a calendar date: "2026-13-01 08:00:00" \(row id 5\)$/,
  ];
  for (const pattern of expected)
    assert.ok(
      reasons.some((r) => pattern.test(r)),
      `${pattern} in ${reasons.join(" | ")}`,
    );
  const punches = h.store.peek(10).map((e) => JSON.parse(e.body));
  assert.deepEqual(
    punches.map((p) => [p.time, p.state, p.stateCode, p.stateRaw]),
    [
      ["2026-11-26T08:00:01+05:30", "checkIn", 0, undefined],
      ["2026-11-26T08:00:09+05:30", "checkOut", 1, undefined],
      ["2026-11-26T08:00:10+05:30", "other", -1, "zz"],
    ],
  );
  assert.equal(h.supervisor.status()[0]?.lastError, null, "no source-wide backoff");
  // One log line per emit, its reasons grouped with a count each.
  const line = logs.map((l) => JSON.parse(l)).find((l) => l.msg === "Rows quarantined.");
  assert.deepEqual(line?.reasons, {
    "id is not an integer": 2,
    "pin is longer than 64 characters": 1,
    "punch_time is before 1970": 1,
    "punch_time is more than 1 day in the future": 1,
    "punch_time is not a calendar date": 3,
  });
  assert.equal(line?.count, 8);

  // The bad rows are read again on every poll (text sorts after every id); they stay quarantined once, and the
  // source goes on with new rows.
  insert.run(11, "7", "2026-11-26 08:00:11", 0);
  await waitFor("the new row", () => h.store.outboxStats().depth === 4);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(h.store.quarantineCount(), 8);
  db.close();
});

test("a missing table or column is reported by name with what exists, and the worker backs off", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  await using h = sourceHarness(dir.path);
  await h.run([
    sourceConfig(db.path, { id: "no-table", table: "checkinout" }),
    sourceConfig(db.path, { id: "no-column", columns: { ...ATT_LOG_COLUMNS, userId: "badge" } }),
  ]);
  const noTable = await waitFor(
    "error on no-table",
    () => h.supervisor.status().find((w) => w.sourceId === "no-table")?.lastError,
  );
  assert.equal(noTable.code, "DB_SCHEMA");
  assert.match(noTable.message, /Table "checkinout" not found.*Tables that exist: att_log/);
  const noColumn = await waitFor(
    "error on no-column",
    () => h.supervisor.status().find((w) => w.sourceId === "no-column")?.lastError,
  );
  assert.match(noColumn.message, /Column "badge" \(the userId column\) not found.*Columns that exist: id, sn, pin/);
  assert.equal(h.supervisor.status().find((w) => w.sourceId === "no-table")?.state, "backoff");
  db.close();
});

test("one broken source does not stop another", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insertMany(20, ["S1"]);
  await using h = sourceHarness(dir.path);
  await h.run([
    sourceConfig(join(dir.path, "missing-dir", "nope.db"), { id: "broken" }),
    sourceConfig(db.path, { id: "good" }),
  ]);
  await waitFor("good source delivers", () => h.store.outboxStats().depth === 20);
  const broken = await waitFor(
    "the broken source's error",
    () => h.supervisor.status().find((w) => w.sourceId === "broken")?.lastError,
  );
  assert.equal(broken.code, "DB_CONNECT");
  assert.match(broken.message, /Cannot open the SQLite database .*nope\.db/);
  db.close();
});

test("identifiers are checked again right before they reach SQL", () => {
  assert.equal(checkIdentifier("att_log"), "att_log");
  assert.throws(() => checkIdentifier('x"; DROP TABLE y; --'), {
    code: "IDENTIFIER_INVALID",
    message: /Refusing the SQL identifier/,
  });
});

test("a text id column is refused by name instead of paging wrongly", async () => {
  await using dir = await tempDir();
  const { DatabaseSync } = await import("node:sqlite");
  const path = join(dir.path, "text-id.db");
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE att_log (id TEXT, sn TEXT, pin TEXT, punch_time TEXT, status INTEGER, verify INTEGER)");
  db.exec("INSERT INTO att_log VALUES ('a-1', 'S1', '7', '2026-11-26 08:00:00', 0, 1)");
  db.close();
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(path)]);
  const error = await waitFor("schema error", () => h.supervisor.status()[0]?.lastError);
  assert.equal(error.code, "DB_SCHEMA");
  assert.match(error.message, /Column "id" of "att_log" holds "a-1", not an integer/);
});

test("ids that go backwards (table restored or renumbered) re-base the cursor instead of stalling", async () => {
  await using dir = await tempDir();
  const { DatabaseSync } = await import("node:sqlite");
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([100, 101, 102].map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:${id - 90}` })));
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path, { lookbackRows: 1 })]);
  await waitFor("cursor 102", () => h.store.cursors("att").get("S1") === 102);
  const raw = new DatabaseSync(db.path);
  raw.exec("DELETE FROM att_log");
  raw.close();
  db.insert([{ id: 1, sn: "S1", pin: "new", time: "2026-11-27 08:00:00" }]);
  await waitFor("the renumbered row", () => h.userIds().some((p) => p.userId === "new"));
  assert.equal(h.store.cursors("att").get("S1"), 1);
  db.close();
});

test("pointing a source id at another table starts its cursors afresh", async () => {
  await using dir = await tempDir();
  const a = new AttendanceDb(join(dir.path, "a.db"));
  const b = new AttendanceDb(join(dir.path, "b.db"));
  a.insertMany(30, ["S1"]);
  b.insertMany(5, ["S1"], Date.UTC(2026, 11, 1), 700);
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(a.path)]);
  await waitFor("30 from a", () => h.store.outboxStats().depth === 30);
  await h.run([sourceConfig(b.path)]);
  await waitFor("5 more from b, whose ids are below a's cursor", () => h.store.outboxStats().depth === 35);
  assert.equal(h.store.cursors("att").get("S1"), 5);
  a.close();
  b.close();
});

test("re-targeting clears the old target's cursors, so a restart does not load them for the new table", async () => {
  await using dir = await tempDir();
  const a = new AttendanceDb(join(dir.path, "a.db"));
  const b = new AttendanceDb(join(dir.path, "b.db"));
  // Time cursors (no id column): a stale cursor from A hides every older row of B for good.
  const columns = { deviceSerial: "sn", userId: "pin", time: "punch_time" };
  a.insert([
    { sn: "S1", pin: "a1", time: "2026-06-01 08:00:00" },
    { sn: "S2", pin: "a2", time: "2026-06-01 09:00:00" },
  ]);
  b.insert([{ sn: "S1", pin: "b1", time: "2026-05-01 08:00:00" }]);
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(a.path, { columns })]);
  await waitFor("A's two serials", () => h.store.cursors("att").get("S2") !== undefined && h.userIds().length === 2);
  await h.run([sourceConfig(b.path, { columns })]);
  await waitFor("B's S1", () => h.userIds().some((p) => p.userId === "b1"));
  assert.equal(h.store.cursors("att").get("S2"), null, "A's S2 cursor cleared with the new #target");
  // B's S2 rows arrive (older than A's S2 cursor), then the source restarts (a config change that keeps the target).
  b.insert([
    { sn: "S2", pin: "b2", time: "2026-05-02 08:00:00" },
    { sn: "S2", pin: "b3", time: "2026-05-02 09:00:00" },
  ]);
  await h.run([sourceConfig(b.path, { columns, pollIntervalMs: 120 })]);
  await waitFor("B's S2 rows after the restart", () => h.userIds().filter((p) => p.deviceSerial === "S2").length === 3);
  assert.deepEqual(
    h
      .userIds()
      .map((p) => p.userId)
      .sort(),
    ["a1", "a2", "b1", "b2", "b3"],
  );
  a.close();
  b.close();
});

test("widening the filter is a new target: rows it excluded below the cursor are read", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert(
    [1, 2, 3, 4].map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:0${id}`, status: id % 2 })),
  );
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path, { lookbackRows: 0, filter: [{ column: "status", op: "eq", value: 0 }] })]);
  await waitFor("cursor at 4", () => h.store.cursors("att").get("S1") === 4);
  assert.equal(h.store.outboxStats().depth, 2);
  await h.run([sourceConfig(db.path, { lookbackRows: 0 })]);
  await waitFor("the rows the old filter excluded", () => h.store.outboxStats().depth === 4, 5000);
});

test("the target fingerprint covers the filter, the time cursor column and a SQL Server instance", () => {
  const base = sourceConfig("/x/att.db");
  const timeMode = sourceConfig("/x/att.db", { columns: { deviceSerial: "sn", userId: "pin", time: "punch_time" } });
  const mssql = (instanceName?: string) =>
    sourceConfig("/x/att.db", {
      connection: databaseConnectionSchema.parse({
        engine: "mssql",
        host: "db",
        database: "att",
        user: "u",
        ...(instanceName ? { instanceName } : {}),
      }),
    });
  const fp = targetFingerprint;
  assert.notEqual(fp(base), fp(sourceConfig("/x/att.db", { filter: [{ column: "status", op: "eq", value: 0 }] })));
  assert.notEqual(
    fp(timeMode),
    fp(sourceConfig("/x/att.db", { columns: { deviceSerial: "sn", userId: "pin", time: "verify" } })),
  );
  assert.notEqual(fp(mssql()), fp(mssql("SQLEXPRESS")));
  assert.notEqual(fp(mssql("A")), fp(mssql("B")));
  // An id-cursor source without filter or instance keeps the fingerprint it had, so an upgrade re-reads nothing.
  const old = createHash("sha256")
    .update(JSON.stringify([`sqlite:/x/att.db`, "generic", "att_log", "id", "sn"]))
    .digest("hex")
    .slice(0, 16);
  assert.equal(fp(base), old);
});

test("one device's newest rows purged is not a renumbered table: its cursor stays (no re-read from 0)", async () => {
  await using dir = await tempDir();
  const { DatabaseSync } = await import("node:sqlite");
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert(
    [1, 2, 3, 4, 5, 6].map((id) => ({ id, sn: id <= 3 ? "S1" : "S2", pin: `u${id}`, time: `2026-11-26 08:00:0${id}` })),
  );
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path, { lookbackRows: 0 })]);
  await waitFor(
    "cursors 3 and 6",
    () => h.store.cursors("att").get("S1") === 3 && h.store.cursors("att").get("S2") === 6,
  );
  const raw = new DatabaseSync(db.path);
  raw.exec("DELETE FROM att_log WHERE id = 3");
  raw.close();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(h.store.cursors("att").get("S1"), 3);
  db.close();
});

test("rows without a serial are counted and named in one warning", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([
    { sn: "S1", pin: "1", time: "2026-11-26 08:00:00" },
    { sn: null as unknown as string, pin: "2", time: "2026-11-26 08:00:01" },
    { sn: "", pin: "3", time: "2026-11-26 08:00:02" },
  ]);
  const logger = warningsLogger();
  const { warnings } = logger;
  const controller = new AbortController();
  const source = new DatabaseSource({ config: sourceConfig(db.path), connect: openSqlClient });
  let emitted = 0;
  const run = source.run({
    sourceId: "att",
    cursors: new Map(),
    signal: controller.signal,
    logger,
    clock: { now: () => Date.now() },
    emit: async (punches: readonly unknown[]) => {
      emitted += punches.length;
      return { enqueued: punches.length, duplicates: 0, quarantined: 0 };
    },
    waitUntilActive: async () => undefined,
    progress: () => undefined,
  } as unknown as Parameters<DatabaseSource["run"]>[0]);
  await waitFor("the serial's punch", () => emitted === 1);
  controller.abort();
  await run;
  const about = warnings.filter((w) => /no sn/.test(w));
  assert.equal(about.length, 1, warnings.join(" | "));
  assert.match(about[0] ?? "", /^2 row\(s\) have no sn \(NULL or blank\) and are skipped/);
  db.close();
});

test("a row that commits late is found by time, however many rows other serials wrote after it", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  // S1's transaction took id 20 and has not committed; 1,000 rows of other serials and one of S1 commit after it.
  const ids = Array.from({ length: 30 }, (_, i) => i + 1).filter((id) => id !== 20);
  db.insert(
    ids.map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:${String(id).padStart(2, "0")}` })),
  );
  await using h = sourceHarness(dir.path);
  await h.run([sourceConfig(db.path, { lookbackRows: 10 })]);
  await waitFor("cursor at 30", () => h.store.cursors("att").get("S1") === 30);
  db.insertMany(1000, ["S2", "S3", "S4"], Date.UTC(2026, 10, 26, 9));
  db.insert([{ id: 1031, sn: "S1", pin: "after", time: "2026-11-26 09:30:00" }]);
  await waitFor("the rows after it", () => h.store.cursors("att").get("S1") === 1031);
  db.insert([{ id: 20, sn: "S1", pin: "late", time: "2026-11-26 08:00:20" }]);
  await waitFor("the late row", () => h.userIds().some((p) => p.userId === "late"));
  assert.equal(h.store.outboxStats().depth, 29 + 1000 + 1 + 1);
  // The cursor stays the device's newest id; the gap is closed.
  assert.equal(h.store.cursors("att").get("S1"), 1031);
  await waitFor("no open gap", () => h.supervisor.status()[0]?.lateRows?.openIds === 0);
  db.close();
});

test("a gap that outlives lateRowWindowMs is given up: counted, logged once, and shown in status", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([1, 2, 5, 6].map((id) => ({ id, sn: "S1", pin: `u${id}`, time: `2026-11-26 08:00:0${id}` })));
  const logger = warningsLogger();
  const { warnings } = logger;
  await using h = sourceHarness(dir.path, { logger });
  await h.run([sourceConfig(db.path, { lateRowWindowMs: 1000 })]);
  await waitFor("ids 3-4 open", () => h.supervisor.status()[0]?.lateRows?.openIds === 2);
  await waitFor("ids 3-4 given up", () => h.supervisor.status()[0]?.lateRows?.expiredIds === 2);
  const status = h.supervisor.status()[0]?.lateRows;
  assert.equal(status?.openIds, 0);
  assert.ok(status?.lastExpiredAt && Date.parse(status.lastExpiredAt) > 0);
  // Give it more polls: the warning is not repeated.
  const polled = h.supervisor.status()[0]?.lastPollAt;
  await waitFor("more polls", () => h.supervisor.status()[0]?.lastPollAt !== polled);
  const about = warnings.filter((w) => /never appeared/.test(w));
  assert.equal(about.length, 1, warnings.join(" | "));
  assert.match(
    about[0] ?? "",
    /^2 row id\(s\) of att_log below ids already read never appeared \(not there after 1 s\): 3–4\./,
  );
  // The count survives a restart (it is kept with the cursors).
  await h.supervisor.stop();
  await using again = sourceHarness(dir.path);
  h.store.close();
  await again.run([sourceConfig(db.path, { lateRowWindowMs: 1000 })]);
  await waitFor("counted after restart", () => again.supervisor.status()[0]?.lateRows?.expiredIds === 2);
  db.close();
});

test("upgrade from per-device cursors: each device resumes at its own cursor; nothing below is sent again", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  // STALE's last rows are the table's first; S1 (even ids from 4) and S2 (odd ids from 5) were read up to 899 and
  // 1000 by the old per-device reader.
  db.insert([1, 2, 3].map((id) => ({ id, sn: "STALE", pin: `s${id}`, time: `2020-01-01 08:00:0${id}` })));
  db.insertMany(1200, ["S1", "S2"], Date.UTC(2026, 10, 26, 6));
  await using h = sourceHarness(dir.path);
  const config = sourceConfig(db.path, { lookbackRows: 50, batchSize: 100 });
  h.store.emit("att", [], { "#target": targetFingerprint(config), STALE: 3, S1: 899, S2: 1000 });
  await h.run([config]);
  await waitFor("S1 at the end", () => h.store.cursors("att").get("S1") === 1202);
  await waitFor("S2 at the end", () => h.store.cursors("att").get("S2") === 1203);
  const rows = h.userIds();
  // S1: ids 900, 902, …, 1202; S2: 1001, 1003, …, 1203.
  assert.equal(rows.filter((p) => p.deviceSerial === "S1").length, 152);
  assert.equal(rows.filter((p) => p.deviceSerial === "S2").length, 102);
  assert.equal(rows.filter((p) => p.deviceSerial === "STALE").length, 0);
  assert.equal(h.store.cursors("att").get("STALE"), 3);
  db.close();
});

test("an idle poll costs a fixed number of queries, whatever the number of devices; new rows are all it reads", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insert([{ sn: "DECOMMISSIONED", pin: "1", time: "2019-05-01 08:00:00" }]);
  const serials = Array.from({ length: 500 }, (_, i) => `S${i}`);
  db.insertMany(5000, serials);
  let queries = 0;
  let rowsRead = 0;
  const connect = async (...args: Parameters<typeof openSqlClient>) => {
    const client = await openSqlClient(...args);
    return {
      ...client,
      engine: client.engine,
      dialect: client.dialect,
      close: () => client.close(),
      describe: client.describe.bind(client),
      tables: client.tables.bind(client),
      indexes: client.indexes.bind(client),
      select: async (...a: Parameters<typeof client.select>) => {
        queries++;
        const rows = await client.select(...a);
        rowsRead += rows.length;
        return rows;
      },
    };
  };
  const controller = new AbortController();
  let polls = 0;
  let emitted = 0;
  const source = new DatabaseSource({
    config: sourceConfig(db.path, { pollIntervalMs: 100, batchSize: 1000 }),
    connect,
  });
  const run = source.run({
    sourceId: "att",
    cursors: new Map(),
    signal: controller.signal,
    logger: silentLogger,
    clock: { now: () => Date.now() },
    emit: async (punches: readonly unknown[]) => {
      emitted += punches.length;
      return { enqueued: punches.length, duplicates: 0, quarantined: 0 };
    },
    waitUntilActive: async () => undefined,
    progress: (p: { lastPollAt?: number }) => {
      if (p.lastPollAt !== undefined) polls++;
    },
  } as unknown as Parameters<DatabaseSource["run"]>[0]);
  await waitFor("caught up", () => emitted === 5001 && polls >= 2);
  const at = { polls, queries, rowsRead };
  await waitFor("ten idle polls", () => polls >= at.polls + 10);
  const idle = { polls: polls - at.polls, queries: queries - at.queries, rows: rowsRead - at.rowsRead };
  // Per idle poll: the sweep above the mark and the newest-id check; lookups are none for this preset.
  assert.ok(idle.queries <= idle.polls * 2 + 2, JSON.stringify(idle));
  assert.equal(idle.rows, idle.queries - idle.polls, "idle polls read no rows (the max-id answer is one row)");
  db.insertMany(25, serials.slice(0, 25), Date.UTC(2026, 10, 27, 6));
  const before = { queries, rowsRead, polls };
  await waitFor("the new rows", () => emitted === 5026);
  await waitFor("a poll after them", () => polls >= before.polls + 2);
  const read = rowsRead - before.rowsRead;
  assert.ok(read >= 25 && read <= 25 + (polls - before.polls) * 1, `rows read ${read}`);
  controller.abort();
  await run;
  db.close();
});
