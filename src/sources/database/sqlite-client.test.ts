import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { AttendanceDb } from "../../../test/helpers/attendance-db.ts";
import { loopLag } from "../../../test/helpers/loop-lag.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { SqliteClient } from "./sqlite-client.ts";

/**
 * About 1.5 s of pure SQLite work. Finite on purpose: a statement running inside SQLite cannot be interrupted from
 * JavaScript (node:sqlite has no sqlite3_interrupt), so the reader thread ends only when it returns; what the
 * connector guarantees is that nothing else waits for it.
 */
const SLOW =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT count(*) AS n FROM c";

test("a slow query is abandoned at its timeout while the main thread keeps running", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  const client = await SqliteClient.open(db.path, 1000);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  using lag = loopLag();
  const started = performance.now();
  await assert.rejects(client.query(SLOW, [], { signal: new AbortController().signal, timeoutMs: 300 }), {
    code: "DB_QUERY",
    message: /took longer than 300 ms; abandoned.*the index bioapi doctor names/,
  });
  clearInterval(ticker);
  const elapsed = performance.now() - started;
  // On a busy machine this process's own timers run late by the measured lag; the SQLite thread's 1.5 s does not.
  assert.ok(
    elapsed < 1000 + lag.totalMs,
    `abandoned after ${Math.round(elapsed)} ms (lag ${Math.round(lag.totalMs)} ms)`,
  );
  assert.ok(ticks >= 10, `the event loop kept turning (${ticks} ticks)`);
  await assert.rejects(client.query("SELECT 1", [], { signal: new AbortController().signal, timeoutMs: 300 }), {
    code: "DB_QUERY",
  });
  await client.close();
  db.close();
});

test("cancellation through the signal ends the query", async () => {
  await using dir = await tempDir();
  const db = new AttendanceDb(join(dir.path, "att.db"));
  const client = await SqliteClient.open(db.path, 1000);
  const controller = new AbortController();
  const pending = client.query(SLOW, [], { signal: controller.signal, timeoutMs: 60_000 });
  setTimeout(() => controller.abort(new DOMException("stopping", "AbortError")), 100);
  await assert.rejects(pending, { name: "AbortError" });
  await client.close();
  db.close();
});

test("opening a missing database names the path and the fix; the database is never written", async () => {
  await using dir = await tempDir();
  await assert.rejects(SqliteClient.open(join(dir.path, "nope", "att.db"), 1000), {
    code: "DB_CONNECT",
    message: /Cannot open the SQLite database .*nope.*Check the path/,
  });
  const db = new AttendanceDb(join(dir.path, "att.db"));
  const client = await SqliteClient.open(db.path, 1000);
  await assert.rejects(
    client.query("DELETE FROM att_log", [], { signal: new AbortController().signal, timeoutMs: 1000 }),
    /readonly/,
  );
  const opts = { signal: new AbortController().signal, timeoutMs: 1000 };
  const info = await client.describe("ATT_LOG", opts);
  assert.equal(info?.name, "att_log");
  assert.deepEqual(
    info?.columns.map((c) => c.name),
    ["id", "sn", "pin", "punch_time", "status", "verify"],
  );
  assert.deepEqual(await client.indexes("att_log", opts), [
    { name: "rowid", columns: ["id"] },
    { name: "att_log_sn_id", columns: ["sn", "id"] },
  ]);
  await client.close();
  db.close();
});

test("an INTEGER PRIMARY KEY counts as the id's index; a composite key or a text key does not", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "keys.db");
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE a (id INTEGER PRIMARY KEY, sn TEXT);
    CREATE TABLE b (id INTEGER, sn TEXT, PRIMARY KEY (sn, id));
    CREATE TABLE c (id TEXT PRIMARY KEY, sn TEXT);
    CREATE INDEX a_sn ON a (sn, id);`);
  db.close();
  const client = await SqliteClient.open(path, 1000);
  const o = { signal: new AbortController().signal, timeoutMs: 3000 };
  const cols = async (t: string) => (await client.indexes(t, o)).map((ix) => ix.columns.join(","));
  assert.deepEqual(await cols("a"), ["id", "sn,id"]);
  assert.deepEqual(await cols("b"), ["sn,id"], "the composite key's own autoindex, no rowid alias");
  assert.deepEqual(await cols("c"), ["id"], "a text key has its autoindex");
  await client.close();
});
