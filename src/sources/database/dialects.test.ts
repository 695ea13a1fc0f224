import assert from "node:assert/strict";
import { test } from "node:test";
import { TYPES } from "tedious";
import { parseConfig } from "../../config/config-schema.ts";
import { mssqlDialect, mysqlDialect, postgresDialect, sqliteDialect } from "./dialects.ts";
import { tediousConfig, tediousParam } from "./mssql-client.ts";
import { evaluateSelect, renderSelect, type SelectSpec } from "./select-spec.ts";

/** The page query of a time-cursor source: partition, window, keyset, filter, bounded. */
const page: SelectSpec = {
  table: "CHECKINOUT",
  columns: ["CHECKTIME", "USERID", "SENSORID"],
  where: [
    { column: "SENSORID", op: "eq", value: "46" },
    { column: "CHECKTIME", op: "gte", value: { time: "2026-11-26 08:00:00" } },
    { column: "CHECKTYPE", op: "in", value: ["I", "O"] },
    { column: "sn", op: "notNull" },
  ],
  orderBy: ["CHECKTIME", "USERID"],
  after: [{ time: "2026-11-26 08:30:00" }, 12],
  limit: 500,
};

test("SQL Server: bracket quoting, @p parameters, TOP, spelled-out keyset, ISO time bounds", () => {
  const r = renderSelect(mssqlDialect("dbo"), page);
  assert.equal(
    r.sql,
    "SELECT TOP (500) [CHECKTIME] AS c0, [USERID] AS c1, [SENSORID] AS c2 FROM [dbo].[CHECKINOUT] WHERE [SENSORID] = @p1 AND [CHECKTIME] >= @p2 AND [CHECKTYPE] IN (@p3, @p4) AND [sn] IS NOT NULL AND [CHECKTIME] >= @p5 AND ([CHECKTIME] > @p6 OR ([CHECKTIME] = @p7 AND [USERID] > @p8)) ORDER BY [CHECKTIME], [USERID]",
  );
  assert.deepEqual(r.params, [
    "46",
    "2026-11-26T08:00:00",
    "I",
    "O",
    "2026-11-26T08:30:00",
    "2026-11-26T08:30:00",
    "2026-11-26T08:30:00",
    12,
  ]);
  const count = renderSelect(mssqlDialect("att"), { table: "iclock_transaction", aggregate: { count: true } });
  assert.equal(count.sql, "SELECT COUNT(*) AS n FROM [att].[iclock_transaction]");
  const newest = renderSelect(mssqlDialect("dbo"), {
    table: "t",
    columns: ["id"],
    orderBy: ["id"],
    descending: true,
    limit: 5,
  });
  assert.equal(newest.sql, "SELECT TOP (5) [id] AS c0 FROM [dbo].[t] ORDER BY [id] DESC");
});

test("SQL Server: parameter types and connection options", () => {
  assert.equal(tediousParam(7).type, TYPES.Int);
  assert.equal(tediousParam(3_000_000_000).type, TYPES.BigInt);
  assert.equal(tediousParam("S1").type, TYPES.NVarChar);
  assert.equal(tediousParam(null).value, null);
  const base = {
    host: "sql.local",
    port: 1433,
    database: "att2000",
    user: "bioapi",
    password: "pw",
    schema: "dbo",
    poolSize: 2,
    connectTimeoutMs: 5000,
  };
  const config = tediousConfig(
    {
      host: "sql.local",
      port: 1433,
      instanceName: "SQLEXPRESS",
      database: "att2000",
      user: "bioapi",
      password: "pw",
      schema: "dbo",
      tls: { mode: "require" },
      poolSize: 2,
      connectTimeoutMs: 5000,
    },
    30_000,
  );
  assert.equal(config.options?.instanceName, "SQLEXPRESS");
  assert.equal(config.options?.port, undefined, "a named instance gets its port from SQL Browser");
  assert.equal(config.options?.encrypt, true);
  assert.equal(config.options?.trustServerCertificate, true);
  assert.equal(config.options?.requestTimeout, 30_000);
  assert.equal(config.options?.readOnlyIntent, true);
  // Only require and verify encrypt the session; only verify checks the certificate.
  const modes = (["off", "prefer", "require", "verify"] as const).map((mode) => {
    const o = tediousConfig({ ...base, tls: { mode } }, 30_000).options;
    return [mode, o?.encrypt, o?.trustServerCertificate];
  });
  assert.deepEqual(modes, [
    ["off", false, true],
    ["prefer", false, true],
    ["require", true, true],
    ["verify", true, false],
  ]);
});

test("PostgreSQL, MySQL and SQLite render the same read their own way", () => {
  const pg = renderSelect(postgresDialect("public"), page);
  assert.match(
    pg.sql,
    /^SELECT "CHECKTIME" AS c0, .* FROM "public"\."CHECKINOUT" WHERE "SENSORID" = \$1 .* LIMIT 500$/,
  );
  const my = renderSelect(mysqlDialect, { ...page, after: [{ time: "2026-11-26T03:00:00.000Z" }, 12] });
  assert.match(my.sql, /^SELECT `CHECKTIME` AS c0, .* FROM `CHECKINOUT` WHERE `SENSORID` = \? .* LIMIT 500$/);
  // The session runs in UTC and MariaDB cannot parse "Z": instants are bound as UTC wall time.
  assert.equal(my.params[4], "2026-11-26 03:00:00.000");
  const lite = renderSelect(sqliteDialect, page);
  assert.equal(lite.params[1], "2026-11-26 08:00:00");
});

test("an injection attempt through a table or column name is refused by the config and again by every dialect", () => {
  const evil = "CHECKINOUT]; DROP TABLE USERINFO; --";
  const r = parseConfig({
    schemaVersion: 1,
    sources: [
      {
        id: "x",
        kind: "database",
        preset: "generic",
        connection: { engine: "postgres", host: "h", database: "d", user: "u" },
        table: 'att_log"; DROP TABLE x; --',
        columns: { deviceSerial: "sn", userId: "pin", time: "t" },
        filter: [{ column: "kind' OR '1'='1", op: "eq", value: "x" }],
      },
    ],
  });
  assert.ok(!r.ok);
  assert.ok(r.issues.some((i) => i.path === "sources[0].table" && /plain SQL identifier/.test(i.message)));
  assert.ok(r.issues.some((i) => i.path === "sources[0].filter[0].column"));
  for (const d of [mssqlDialect("dbo"), postgresDialect("public"), mysqlDialect, sqliteDialect]) {
    assert.throws(() => renderSelect(d, { table: evil, columns: ["id"] }), {
      code: "IDENTIFIER_INVALID",
      message: /Refusing the SQL identifier/,
    });
    assert.throws(() => renderSelect(d, { table: "t", columns: ["id"], where: [{ column: "a b", op: "isNull" }] }), {
      code: "IDENTIFIER_INVALID",
    });
  }
  assert.throws(() => mssqlDialect("dbo].[x"), { code: "IDENTIFIER_INVALID" });
});

test("the in-memory evaluator (Access) follows the rendered SQL's semantics", () => {
  const rows = [
    { CHECKTIME: "2026-11-26 08:30:00", USERID: 12, SENSORID: "46", CHECKTYPE: "I", sn: "A" },
    { CHECKTIME: "2026-11-26 08:30:00", USERID: 13, SENSORID: "46", CHECKTYPE: "O", sn: "A" },
    { CHECKTIME: "2026-11-26 08:40:00", USERID: 1, SENSORID: "46", CHECKTYPE: "I", sn: "A" },
    { CHECKTIME: "2026-11-26 08:50:00", USERID: 1, SENSORID: "46", CHECKTYPE: "X", sn: "A" },
    { CHECKTIME: "2026-11-26 09:00:00", USERID: 1, SENSORID: "47", CHECKTYPE: "I", sn: "B" },
    { CHECKTIME: "2026-11-26 09:10:00", USERID: 1, SENSORID: "46", CHECKTYPE: "I", sn: null },
  ];
  assert.deepEqual(
    evaluateSelect(rows, page).map((r) => [r.CHECKTIME, r.USERID]),
    [
      ["2026-11-26 08:30:00", 13],
      ["2026-11-26 08:40:00", 1],
    ],
  );
  assert.deepEqual(
    evaluateSelect(rows, {
      table: "t",
      aggregate: { max: "USERID" },
      where: [{ column: "SENSORID", op: "eq", value: 46 }],
    }),
    [{ n: 13 }],
  );
  assert.deepEqual(
    evaluateSelect(rows, { table: "t", columns: ["SENSORID"], distinct: true }).map((r) => r.SENSORID),
    ["46", "47"],
  );
});
