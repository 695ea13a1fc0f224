import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { validateConfig } from "../../cloud/validate-config.ts";
import { cloudRulesCopy } from "../../scripts/config-rules-copy.ts";
import { parseConfig } from "../../src/config/config-schema.ts";

const db = {
  id: "hq",
  kind: "database",
  connection: { engine: "postgres", host: "db.local", database: "biotime", user: "reader" },
  preset: "biotime",
};
const generic = {
  id: "gen",
  kind: "database",
  connection: { engine: "sqlite", path: "/var/lib/att.db" },
  table: "att_log",
  columns: { deviceSerial: "sn", userId: "pin", time: "t" },
};
const zk = { id: "gate", kind: "zk", host: "10.0.0.20" };
const config = (...sources: unknown[]) => ({ schemaVersion: 1, sources });

/** One mistake per entry, each a rule or a kind of structural issue; a new rule belongs here. */
const MISTAKES: Record<string, unknown> = {
  "an invalid time zone": config({ ...db, timezone: "India/Kolkata" }),
  "duplicate source ids": config(db, { ...db }),
  "columns together with a preset": config({ ...db, columns: generic.columns }),
  "generic without table or columns": config({ ...generic, table: undefined, columns: undefined }),
  "a table with etimetracklite": config({ ...db, preset: "etimetracklite", table: "DeviceLogs" }),
  "a filter op without its value": config({ ...generic, filter: [{ column: "kind", op: "eq" }] }),
  "a list for a single-value filter op": config({ ...generic, filter: [{ column: "kind", op: "eq", value: [1] }] }),
  "isNull with a value": config({ ...generic, filter: [{ column: "kind", op: "isNull", value: 1 }] }),
  "in without a list": config({ ...generic, filter: [{ column: "kind", op: "in", value: 1 }] }),
  "a wrong engine name": config(zk, { ...db, connection: { ...db.connection, engine: "postgresql" } }),
  "a misspelt connection key": config(zk, { ...db, connection: { ...db.connection, pasword: "x" } }),
  "a port given as a string": config(zk, { ...db, connection: { ...db.connection, port: "5432" } }),
  "an unknown source kind": config({ ...zk, kind: "zkteco" }),
  "a table name that is not an identifier": config({ ...generic, table: "att_log; DROP TABLE x" }),
  "an unknown top-level key": { ...config(zk), heartbeat: 5 },
  "a terminal port out of range": config({ ...zk, port: 70_000 }),
  "a record format that does not exist": config({ ...zk, recordFormat: 12 }),
  "no schemaVersion": { sources: [] },
};

for (const [name, input] of Object.entries(MISTAKES)) {
  test(`the cloud refuses ${name} with the connector's own words`, () => {
    const connector = parseConfig(input);
    assert.ok(!connector.ok, "the connector refuses it");
    assert.ok(connector.issues.length > 0);
    assert.deepEqual(validateConfig(input), connector.issues);
  });
}

test("a valid config passes both", () => {
  const input = config(db, generic, zk);
  assert.ok(parseConfig(input).ok);
  assert.deepEqual(validateConfig(input), []);
});

test("cloud/config-rules.ts is the current copy of src/config/config-rules.ts (regenerate with npm run schema)", () => {
  const source = readFileSync(new URL("../../src/config/config-rules.ts", import.meta.url), "utf8");
  const copy = readFileSync(new URL("../../cloud/config-rules.ts", import.meta.url), "utf8");
  assert.equal(copy, cloudRulesCopy(source));
});
