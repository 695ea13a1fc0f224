import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ATT_LOG_COLUMNS, AttendanceDb } from "../../../test/helpers/attendance-db.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { type DatabaseSourceConfig, sourceSchema } from "../../config/config-schema.ts";
import { checkDatabase } from "./database-check.ts";

function sqliteSource(path: string, overrides: Record<string, unknown> = {}): DatabaseSourceConfig {
  return sourceSchema.parse({
    id: "att",
    kind: "database",
    timezone: "Asia/Kolkata",
    connection: { engine: "sqlite", path },
    table: "att_log",
    columns: ATT_LOG_COLUMNS,
    ...overrides,
  }) as DatabaseSourceConfig;
}

test("a SQLite table with its index: connect, table, rows and index, all ok", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.insertMany(4, ["S1", "S2"]);
  db.close();
  const findings = await checkDatabase(
    { config: sqliteSource(db.path), running: undefined },
    AbortSignal.timeout(30_000),
  );
  assert.deepEqual(
    findings.map((f) => [f.check, f.status]),
    [
      ["connect", "ok"],
      ["table att_log", "ok"],
      ["rows in att_log", "ok"],
      ["index", "ok"],
    ],
  );
  assert.ok(findings.every((f) => f.subject === "database att (sqlite, preset generic)"));
  assert.equal(findings[2]?.detail, "4 rows, 2 devices");
  assert.match(
    findings[1]?.detail ?? "",
    /punch_time \(text\) is a wall-clock time read in Asia\/Kolkata; cursor: last id per sn/,
  );
});

test("a table that is not there fails with the fix; there is nothing to count, so no index finding", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  db.close();
  const findings = await checkDatabase(
    { config: sqliteSource(db.path, { table: "att_logz" }), running: undefined },
    AbortSignal.timeout(30_000),
  );
  assert.deepEqual(
    findings.map((f) => [f.check, f.status]),
    [
      ["connect", "ok"],
      ["table att_logz", "fail"],
    ],
  );
  assert.match(findings[1]?.detail ?? "", /not found.*att_log/);
  assert.match(findings[1]?.fix ?? "", /^Fix table, columns or preset/);
});

test("a file that cannot be opened fails connect, with the connection's fix", async () => {
  await using dir = await tempDir();
  const findings = await checkDatabase(
    { config: sqliteSource(join(dir.path, "missing", "att.db")), running: undefined },
    AbortSignal.timeout(30_000),
  );
  assert.equal(findings.length, 1);
  assert.equal(findings[0]?.check, "connect");
  assert.equal(findings[0]?.status, "fail");
  assert.match(findings[0]?.fix ?? "", /^Check the server, host, port/);
});
