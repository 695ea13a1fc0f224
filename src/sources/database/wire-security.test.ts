import assert from "node:assert/strict";
import { test } from "node:test";
import {
  databaseConnectionSchema,
  mssqlConnectionSchema,
  mysqlConnectionSchema,
  postgresConnectionSchema,
} from "../../config/config-schema.ts";
import { cleartextPasswordWarning, isLoopbackHost, wireSummary } from "./wire-security.ts";

test("loopback is 127.0.0.0/8, ::1 in any spelling and the name localhost; everything else is the network", () => {
  for (const host of ["localhost", "LocalHost.", "127.0.0.1", "127.255.3.4", "::1", "[::1]", "0:0:0:0:0:0:0:1"])
    assert.equal(isLoopbackHost(host), true, host);
  assert.equal(isLoopbackHost("::ffff:127.0.0.1"), true, "IPv4-mapped loopback");
  for (const host of ["10.0.0.5", "128.0.0.1", "0.0.0.0", "::", "::2", "fe80::1", "::ffff:10.0.0.1", "db.lan"])
    assert.equal(isLoopbackHost(host), false, host);
  // What *.localhost or localhost.example resolve to is up to the resolver: counted as remote.
  assert.equal(isLoopbackHost("db.localhost"), false);
  assert.equal(isLoopbackHost("localhost.example"), false);
});

const pg = (tls?: unknown, host = "10.0.0.5", password = "pw") =>
  postgresConnectionSchema.parse({
    engine: "postgres",
    host,
    database: "biotime",
    user: "u",
    password,
    ...(tls === undefined ? {} : { tls }),
  });

test("tls: prefer by default for PostgreSQL and MySQL, verify for SQL Server; a bare mode or an object", () => {
  assert.deepEqual(pg().tls, { mode: "prefer" });
  const my = mysqlConnectionSchema.parse({ engine: "mysql", host: "h", database: "d", user: "u" });
  assert.deepEqual(my.tls, { mode: "prefer" });
  const ms = mssqlConnectionSchema.parse({ engine: "mssql", host: "h", database: "d", user: "u" });
  assert.deepEqual(ms.tls, { mode: "verify" });
  assert.deepEqual(pg("off").tls, { mode: "off" });
  assert.deepEqual(pg({ mode: "verify", ca: "PEM", serverName: "db.example" }).tls, {
    mode: "verify",
    ca: "PEM",
    serverName: "db.example",
  });
  assert.deepEqual(pg({ ca: "PEM" }).tls, { mode: "prefer", ca: "PEM" });
  assert.throws(() => pg("maybe"));
  assert.throws(() => pg({ mode: "verify", verify: true }), "unknown keys are refused");
});

test("tls: the earlier {enabled, rejectUnauthorized} spelling keeps its meaning", () => {
  assert.deepEqual(pg({ enabled: false }).tls, { mode: "off" }, "an explicit opt-out stays one");
  assert.deepEqual(pg({ enabled: true }).tls, { mode: "verify" });
  assert.deepEqual(pg({ enabled: true, rejectUnauthorized: true, ca: "PEM" }).tls, { mode: "verify", ca: "PEM" });
  assert.deepEqual(pg({ enabled: true, rejectUnauthorized: false }).tls, { mode: "require" });
  assert.deepEqual(pg({ mode: "prefer", enabled: false }).tls, { mode: "prefer" }, "mode wins");
});

test("a password crossing the network without TLS is named; TLS, loopback and no password are not", () => {
  const plain = { tls: false, verified: false };
  const warning = cleartextPasswordWarning(pg(), plain);
  assert.match(warning ?? "", /^The password for postgres 10\.0\.0\.5:5432\/biotime crosses the network without TLS/);
  assert.match(warning ?? "", /tls "prefer" connected without it/);
  assert.ok(!warning?.includes("pw"), "the password itself is never in the text");
  assert.match(cleartextPasswordWarning(pg("off"), plain) ?? "", /its tls is "off"/);
  assert.equal(cleartextPasswordWarning(pg(), { tls: true, verified: false }), undefined);
  assert.equal(cleartextPasswordWarning(pg(undefined, "127.0.0.1"), plain), undefined);
  assert.equal(cleartextPasswordWarning(pg(undefined, "localhost"), plain), undefined);
  assert.equal(cleartextPasswordWarning(pg(undefined, "::1"), plain), undefined);
  assert.equal(cleartextPasswordWarning(pg(undefined, "10.0.0.5", ""), plain), undefined, "no password, none sent");
  const sqlite = databaseConnectionSchema.parse({ engine: "sqlite", path: "/x.db" });
  assert.equal(cleartextPasswordWarning(sqlite, undefined), undefined);
  assert.match(wireSummary(pg(), { tls: true, verified: false }) ?? "", /TLS, certificate not verified/);
  assert.match(wireSummary(pg("verify"), { tls: true, verified: true }) ?? "", /server certificate verified/);
});
