import assert from "node:assert/strict";
import { test } from "node:test";
import mysql from "mysql2/promise";
import { loopLag } from "../../../test/helpers/loop-lag.ts";
import { sourceHarness } from "../../../test/helpers/run-source.ts";
import { type EngineName, type Scratch, scratch } from "../../../test/helpers/sql-servers.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { databaseSourceSchema } from "../../config/config-schema.ts";
import { punchId } from "../../core/punch.ts";
import { openSqlClient } from "./open-client.ts";

/** The same acceptance tests on the machine's real PostgreSQL and MariaDB. */
const ENGINES: EngineName[] = ["postgres", "mysql"];

function source(s: Scratch, extra: Record<string, unknown> = {}) {
  return databaseSourceSchema.parse({
    id: "db",
    kind: "database",
    pollIntervalMs: 100,
    timezone: "Asia/Kolkata",
    connection: s.connection,
    preset: "biotime",
    batchSize: 40,
    queryTimeoutMs: 5000,
    ...extra,
  });
}

function time(i: number): string {
  const t = new Date(Date.UTC(2026, 10, 26, 8) + i * 1000).toISOString().slice(0, 19).replace("T", " ");
  return `${t}+05:30`;
}

for (const engine of ENGINES) {
  test(`${engine}: BioTime preset reads every serial in keyset pages, wall time in the source's zone`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    await s.createBiotime();
    const rows = Array.from({ length: 250 }, (_, i) => ({
      sn: ["S1", "S2", "S3"][i % 3] as string,
      pin: String(100 + (i % 7)),
      time: time(i),
      state: String(i % 2),
    }));
    await s.insertBiotime([...rows, { sn: null, pin: "1", time: time(999) }]);
    await using dir = await tempDir();
    await using h = sourceHarness(dir.path);
    await h.run([source(s)]);
    await waitFor("250 punches", () => h.store.outboxStats().depth === 250);
    const cursors = h.store.cursors("db");
    assert.deepEqual([cursors.get("S1"), cursors.get("S2"), cursors.get("S3")], [250, 248, 249]);
    const punches = h.userIds() as Array<{ id: string; deviceSerial: string; userId: string; time: string }>;
    const first = punches.find((p) => p.deviceSerial === "S1" && p.time.startsWith("2026-11-26T08:00:00"));
    assert.equal(first?.time, "2026-11-26T08:00:00+05:30");
    assert.equal(first?.id, punchId("S1", "100", "2026-11-26T08:00:00", 0));
  });

  test(`${engine}: generic mapping of a view with a structured filter and a time cursor (no id column)`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    await s.exec(
      "CREATE TABLE gate_events (reader varchar(20), badge varchar(20), seen_at timestamp NULL, kind varchar(10))",
    );
    await s.exec("CREATE VIEW gate_punches AS SELECT reader, badge, seen_at, kind FROM gate_events");
    const insert = `INSERT INTO gate_events VALUES (${s.p(1)}, ${s.p(2)}, ${s.p(3)}, ${s.p(4)})`;
    for (let i = 0; i < 30; i++)
      await s.exec(insert, [
        "G1",
        `b${i}`,
        `2026-11-26 09:00:${String(i).padStart(2, "0")}`,
        i % 3 === 0 ? "alarm" : "access",
      ]);
    await using dir = await tempDir();
    await using h = sourceHarness(dir.path);
    await h.run([
      source(s, {
        preset: "generic",
        table: "gate_punches",
        columns: { deviceSerial: "reader", userId: "badge", time: "seen_at" },
        filter: [{ column: "kind", op: "in", value: ["access", "entry"] }],
        batchSize: 7,
      }),
    ]);
    await waitFor("20 access punches", () => h.store.outboxStats().depth === 20);
    // A late row below the newest time, inside the lookback window, is still collected.
    await s.exec(insert, ["G1", "late", "2026-11-26 08:59:00", "access"]);
    await waitFor("the late row", () => h.userIds().some((p) => p.userId === "late"));
    assert.equal(h.store.outboxStats().depth, 21);
    const cursor = String(h.store.cursors("db").get("G1"));
    assert.match(cursor, /2026-11-26.09:00:2[89]/);
  });

  test(`${engine}: wrong table, wrong column, bad password and missing grants are named with their fix`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    await s.createBiotime();
    const controller = new AbortController();
    const open = (extra: Record<string, unknown>) => openSqlClient(source(s, extra), controller.signal);
    await using dir = await tempDir();
    await using h = sourceHarness(dir.path);
    await h.run([
      source(s, { id: "no-table", preset: "biotime", table: "iclock_transactions" }),
      source(s, {
        id: "no-column",
        preset: "generic",
        table: "iclock_transaction",
        columns: { deviceSerial: "terminal_sn", userId: "badge", time: "punch_time" },
      }),
    ]);
    const err = (id: string) => waitFor(id, () => h.supervisor.status().find((w) => w.sourceId === id)?.lastError);
    assert.match(
      (await err("no-table")).message,
      /Table "iclock_transactions" not found.*Tables that exist: iclock_transaction/,
    );
    assert.match(
      (await err("no-column")).message,
      /Column "badge" \(the userId column\) not found in table "iclock_transaction"\. Columns that exist: id, emp_code/,
    );

    const password = "s3cret-Pa55word";
    const user = engine === "postgres" ? "bioapi_no_such_role" : "root";
    const auth = await open({ connection: { ...s.connection, user, password } }).then(
      () => assert.fail("connected"),
      (e: unknown) => e as Error & { code: string },
    );
    assert.equal(auth.code, "DB_AUTH", auth.message);
    assert.match(auth.message, /Authentication failed.*Check the user and password/);
    assert.ok(!auth.message.includes(password), auth.message);

    const role = `bioapi_np_${Math.random().toString(36).slice(2, 8)}`;
    if (engine === "postgres") await s.exec(`CREATE ROLE ${role} LOGIN`);
    else await s.exec(`CREATE USER '${role}'@'%' IDENTIFIED BY 'pw-${role}'`);
    try {
      const denied = await (async () => {
        const client = await open({ connection: { ...s.connection, user: role, password: `pw-${role}` } });
        try {
          await client.describe("iclock_transaction", { signal: controller.signal, timeoutMs: 3000 });
          await client.select(
            { table: "iclock_transaction", columns: ["id"], limit: 1 },
            { signal: controller.signal, timeoutMs: 3000 },
          );
        } finally {
          await client.close();
        }
      })().then(
        () => assert.fail("read without a grant"),
        (e: unknown) => e as Error & { code: string },
      );
      assert.equal(denied.code, "DB_PERMISSION", denied.message);
      assert.match(denied.message, /Not allowed to read.*(Grant the connector's user SELECT|GRANT SELECT ON)/);
    } finally {
      await s.exec(engine === "postgres" ? `DROP ROLE ${role}` : `DROP USER '${role}'@'%'`);
    }
  });

  test(`${engine}: writers committing out of id order while the source polls: every committed row exactly once`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    await s.createBiotime();
    await using dir = await tempDir();
    await using h = sourceHarness(dir.path);
    await h.run([source(s, { pollIntervalMs: 100, batchSize: 25, lookbackRows: 200 })]);
    const writers = await Promise.all(Array.from({ length: 4 }, () => s.writer()));
    let committed = 0;
    const expected = new Set<string>();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await Promise.all(
      writers.map(async (w, wi) => {
        for (let tx = 0; tx < 25; tx++) {
          await w.exec("BEGIN");
          const rows = Array.from({ length: 1 + (tx % 3) }, (_, k) => ({
            sn: `W${wi % 2}`,
            pin: `${wi}-${tx}-${k}`,
            time: time(wi * 1000 + tx * 3 + k),
          }));
          await s.insertBiotime(rows, w);
          // Held open a while: ids taken now become visible after later ones.
          await sleep(Math.random() * 40);
          if (tx % 7 === 6) {
            await w.exec("ROLLBACK");
            continue;
          }
          await w.exec("COMMIT");
          committed += rows.length;
          for (const r of rows) expected.add(r.pin);
        }
      }),
    );
    await Promise.all(writers.map((w) => w.close()));
    await waitFor(`${committed} committed rows`, () => h.store.outboxStats().depth >= committed, 20_000);
    await new Promise((r) => setTimeout(r, 200));
    const got = h.userIds().map((p) => p.userId);
    assert.equal(got.length, committed, "no duplicates");
    assert.deepEqual(new Set(got), expected, "every committed row, no rolled-back row");
  });
}

for (const engine of ENGINES) {
  test(`${engine}: a row committed 20 s late, after 1,000 other rows and a later row of its own device, is delivered once`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    await s.createBiotime();
    await using dir = await tempDir();
    await using h = sourceHarness(dir.path);
    await h.run([source(s, { pollIntervalMs: 100, batchSize: 200 })]);
    const slow = await s.writer();
    try {
      await slow.exec("BEGIN");
      // The id is taken now and becomes visible only at COMMIT, like a long import's first row.
      await s.insertBiotime([{ sn: "A", pin: "late", time: time(0) }], slow);
      const others = Array.from({ length: 1000 }, (_, i) => ({ sn: `B${i % 50}`, pin: `o${i}`, time: time(1 + i) }));
      await s.insertBiotime([...others, { sn: "A", pin: "after", time: time(2000) }]);
      await waitFor("the 1,001 committed rows", () => h.store.outboxStats().depth === 1001, 30_000);
      const [held] = await s.exec("SELECT min(id) AS id FROM iclock_transaction WHERE emp_code = 'after'");
      assert.ok(Number(h.store.cursors("db").get("A")) >= Number(held?.id), "device A's cursor passed the open row");
      await new Promise((r) => setTimeout(r, 20_000));
      await slow.exec("COMMIT");
    } finally {
      await slow.close();
    }
    await waitFor("the late row", () => h.userIds().some((p) => p.userId === "late"), 30_000);
    const got = h.userIds().map((p) => p.userId);
    assert.equal(got.length, 1002, "each row once");
    assert.equal(got.filter((u) => u === "late").length, 1);
    assert.equal(h.supervisor.status()[0]?.lateRows?.expiredIds, 0, "nothing given up");
  });
}

for (const engine of ENGINES) {
  test(`${engine}: a query past its timeout is cancelled on the server; an unreachable server is DB_CONNECT`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    const signal = new AbortController().signal;
    const client = await openSqlClient(source(s, { queryTimeoutMs: 10_000 }), signal);
    const q = client as unknown as {
      query(sql: string, params: unknown[], o: { signal: AbortSignal; timeoutMs: number }): Promise<unknown>;
    };
    const marker = `bioapi_sleep_${Math.random().toString(36).slice(2, 8)}`;
    const sleepSql = engine === "postgres" ? `SELECT pg_sleep(5) AS ${marker}` : `SELECT SLEEP(5) AS ${marker}`;
    using lag = loopLag();
    const t0 = Date.now();
    await assert.rejects(q.query(sleepSql, [], { signal, timeoutMs: 300 }), {
      code: "DB_QUERY",
      message: /took longer than 300 ms and was cancelled/,
    });
    assert.ok(Date.now() - t0 < 2000 + lag.totalMs, `cancelled after ${Date.now() - t0} ms`);
    const activity =
      engine === "postgres"
        ? "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()"
        : "SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()";
    await waitFor(
      "the statement gone from the server",
      async () => {
        const [row] = await s.exec(activity, [`%${marker}%`]);
        return Number(row?.n) === 0;
      },
      3000,
    );
    await client.close();

    await assert.rejects(openSqlClient(source(s, { connection: { ...s.connection, port: 1 } }), signal), {
      code: "DB_CONNECT",
      message: /Cannot reach the database server.*Check that the server is running/,
    });
  });
}

test("mysql: a server running with NO_BACKSLASH_ESCAPES cannot turn a filter value into SQL", async (t) => {
  await using s = await scratch("mysql");
  if (!s) return t.skip("mysql absent");
  await s.createBiotime();
  await s.insertBiotime([
    { sn: "S1", pin: "1", time: time(0) },
    { sn: "S1", pin: "2", time: time(1) },
  ]);
  const { MysqlClient } = await import("./mysql-client.ts");
  const config = source(s);
  if (config.connection.engine !== "mysql") throw new Error("not mysql");
  const signal = new AbortController().signal;
  // As if the server's global sql_mode had it: every new session starts with NO_BACKSLASH_ESCAPES.
  const client = await MysqlClient.open(config.connection, 5000, signal, {
    createPool: (options) => {
      const pool = mysql.createPool(options);
      pool.on("connection", (conn) => {
        (conn as unknown as { query(sql: string): void }).query(
          "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')",
        );
      });
      return pool;
    },
  });
  try {
    const hostile = "x\\' OR 1=1 -- ";
    const rows = await client.select(
      {
        table: "iclock_transaction",
        columns: ["emp_code"],
        where: [{ column: "emp_code", op: "eq", value: hostile }],
        orderBy: ["id"],
        limit: 10,
      },
      { signal, timeoutMs: 5000 },
    );
    assert.equal(rows.length, 0, "the filter value stayed a value");
    const [mode] = await client.query("SELECT @@SESSION.sql_mode AS m", [], { signal, timeoutMs: 5000 });
    assert.doesNotMatch(String(mode?.m), /NO_BACKSLASH_ESCAPES/);
  } finally {
    await client.close();
  }
});

for (const engine of ENGINES) {
  test(`${engine}: a query that times out waiting for the only pooled connection does not keep it; close() resolves`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    const signal = new AbortController().signal;
    const client = await openSqlClient(source(s, { connection: { ...s.connection, poolSize: 1 } }), signal);
    const q = client as unknown as {
      query(sql: string, params: unknown[], o: { signal: AbortSignal; timeoutMs: number }): Promise<unknown[]>;
    };
    // Held well past the waiter's 30 ms even when a busy machine runs this test's timers late.
    const sleepSql = engine === "postgres" ? "SELECT pg_sleep(2) AS x" : "SELECT SLEEP(2) AS x";
    const holder = q.query(sleepSql, [], { signal, timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    // Gives up while still waiting for the pool; the connection reaches it after the holder is done.
    await assert.rejects(q.query("SELECT 1 AS one", [], { signal, timeoutMs: 30 }), { code: "DB_QUERY" });
    await holder;
    const rows = (await q.query("SELECT 1 AS one", [], { signal, timeoutMs: 3000 })) as Array<{ one: unknown }>;
    assert.equal(Number(rows[0]?.one), 1);
    // Another waiter that gives up, then close() while it is pending: close must not wait for ever.
    const holder2 = q.query(sleepSql, [], { signal, timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(q.query("SELECT 1 AS one", [], { signal, timeoutMs: 30 }), { code: "DB_QUERY" });
    await holder2;
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      client.close().then(() => "closed"),
      new Promise((r) => {
        timer = setTimeout(() => r("close() still pending after 8 s"), 8000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(closed, "closed");
  });
}

test("postgres: a role whose DateStyle is 'SQL, DMY' still gets ISO times", async (t) => {
  await using s = await scratch("postgres");
  if (!s) return t.skip("postgres absent");
  await s.createBiotime();
  await s.insertBiotime([{ sn: "S1", pin: "1", time: time(0) }]);
  const schema = String((s.connection as { schema: string }).schema);
  const role = `bioapi_ds_${Math.random().toString(36).slice(2, 8)}`;
  await s.exec(`CREATE ROLE ${role} LOGIN`);
  try {
    await s.exec(`ALTER ROLE ${role} SET DateStyle = 'SQL, DMY'`);
    await s.exec(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await s.exec(`GRANT SELECT ON ${schema}.iclock_transaction TO ${role}`);
    const signal = new AbortController().signal;
    const client = await openSqlClient(source(s, { connection: { ...s.connection, user: role } }), signal);
    try {
      const [row] = await client.select(
        { table: "iclock_transaction", columns: ["punch_time"], limit: 1 },
        { signal, timeoutMs: 3000 },
      );
      assert.match(String(row?.punch_time), /^2026-11-26 \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/);
    } finally {
      await client.close();
    }
  } finally {
    await s.exec(`REVOKE ALL ON ${schema}.iclock_transaction FROM ${role}`);
    await s.exec(`REVOKE ALL ON SCHEMA ${schema} FROM ${role}`);
    await s.exec(`DROP ROLE ${role}`);
  }
});
