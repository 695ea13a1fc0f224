import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { configJsonSchema, parseConfig } from "./config-schema.ts";

const source = {
  id: "hq",
  kind: "database",
  connection: { engine: "sqlite", path: "/var/lib/att.db" },
  table: "att_log",
  columns: { id: "id", deviceSerial: "sn", userId: "pin", time: "punch_time" },
};

test("defaults fill a minimal config", () => {
  const r = parseConfig({ schemaVersion: 1, sources: [source] });
  assert.ok(r.ok);
  assert.equal(r.config.connectivity.policy, "pause");
  assert.equal(r.config.sources[0]?.pollIntervalMs, 5000);
  assert.equal(r.config.sources[0]?.timezone, "UTC");
});

test("an injection attempt through a table or column name is refused, naming the field", () => {
  const r = parseConfig({ schemaVersion: 1, sources: [{ ...source, table: "att_log; DROP TABLE users--" }] });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.issues.some((i) => i.path === "sources[0].table" && /plain SQL identifier/.test(i.message)));
  const c = parseConfig({
    schemaVersion: 1,
    sources: [{ ...source, columns: { ...source.columns, userId: 'pin" OR 1=1 --' } }],
  });
  assert.ok(!c.ok && c.issues.some((i) => i.path === "sources[0].columns.userId"));
});

test("unknown keys, bad time zones and duplicate source ids are refused", () => {
  const r = parseConfig({ schemaVersion: 1, extra: true, sources: [{ ...source, timezone: "Mars/Base" }, source] });
  assert.ok(!r.ok);
  const paths = r.issues.map((i) => i.path);
  assert.ok(paths.includes("sources[0].timezone"), paths.join());
  assert.ok(r.issues.some((i) => i.path === "extra" && /unknown key/.test(i.message)));
});

test("duplicate source ids are refused", () => {
  const r = parseConfig({ schemaVersion: 1, sources: [source, source] });
  assert.ok(!r.ok && r.issues.some((i) => i.path === "sources[1].id" && /duplicate/.test(i.message)));
});

test("docs/config.schema.json is current (regenerate with npm run schema)", async () => {
  const onDisk = JSON.parse(await readFile(new URL("../../docs/config.schema.json", import.meta.url), "utf8"));
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(configJsonSchema())));
});

test("a mistake inside connection names the field, what was expected and the nearest known word", () => {
  const pg = { engine: "postgres", host: "db", database: "biotime", user: "reader" };
  const issuesOf = (connection: Record<string, unknown>) => {
    const r = parseConfig({
      schemaVersion: 1,
      sources: [{ id: "hq", kind: "database", preset: "biotime", connection }],
    });
    assert.ok(!r.ok);
    return r.issues;
  };
  assert.deepEqual(issuesOf({ ...pg, engine: "postgresql" }), [
    {
      path: "sources[0].connection.engine",
      message:
        'expected one of "sqlite", "postgres", "mysql", "mssql", "access", got the string "postgresql"; did you mean "postgres"?',
    },
  ]);
  assert.deepEqual(issuesOf({ ...pg, pasword: "s3cret" }), [
    { path: "sources[0].connection.pasword", message: "unknown key; did you mean `password`?" },
  ]);
  assert.deepEqual(issuesOf({ ...pg, port: "5432" }), [
    { path: "sources[0].connection.port", message: 'expected a whole number from 1 to 65535, got the string "5432"' },
  ]);
  assert.deepEqual(issuesOf({ ...pg, user: undefined }), [
    { path: "sources[0].connection.user", message: "is required: expected a string from 1 to 128 characters" },
  ]);
});

test("an unknown key far from every known one lists the known keys; a password's value is never echoed", () => {
  const r = parseConfig({ schemaVersion: 1, sources: [], xyzzy: 1 });
  assert.ok(!r.ok);
  assert.match(r.issues[0]?.message ?? "", /^unknown key; known keys: schemaVersion, configPollIntervalMs, /);
  const p = parseConfig({
    schemaVersion: 1,
    sources: [
      { id: "a", kind: "database", preset: "biotime", connection: { engine: "access", path: "x", password: 7 } },
    ],
  });
  assert.ok(!p.ok && p.issues[0]?.message === "expected a string of at most 1024 characters, got 7");
  const long = parseConfig({
    schemaVersion: 1,
    sources: [
      {
        id: "a",
        kind: "database",
        preset: "biotime",
        connection: { engine: "access", path: "x", password: "p".repeat(2000) },
      },
    ],
  });
  assert.ok(!long.ok && !JSON.stringify(long.issues).includes("ppp"), JSON.stringify(!long.ok && long.issues));
});

test("a time zone under the wrong region is answered with the zone that city is in", () => {
  const r = parseConfig({ schemaVersion: 1, sources: [{ ...source, timezone: "India/Kolkata" }] });
  assert.ok(!r.ok);
  assert.deepEqual(r.issues, [
    {
      path: "sources[0].timezone",
      message: 'must be an IANA time zone such as Asia/Kolkata or UTC; did you mean "Asia/Kolkata"?',
    },
  ]);
});
