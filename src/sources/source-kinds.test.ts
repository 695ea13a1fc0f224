import assert from "node:assert/strict";
import { test } from "node:test";
import { sourceSchema } from "../config/config-schema.ts";
import { backlogUnit, SOURCE_KINDS, sourceSecrets } from "./source-kinds.ts";

test("every source kind the config accepts has its entry, and no entry lacks a kind", () => {
  const kinds = sourceSchema.options.map((o) => o.shape.kind.value).sort();
  assert.deepEqual(Object.keys(SOURCE_KINDS).sort(), kinds);
});

test("a database source's password is among the secrets to redact; a terminal brings none", () => {
  const sources = [
    sourceSchema.parse({
      kind: "database",
      id: "att",
      timezone: "UTC",
      table: "att_log",
      columns: { id: "id", deviceSerial: "sn", userId: "pin", time: "punch_time", state: "state" },
      connection: { engine: "postgres", host: "db.local", database: "att", user: "reader", password: "s3cret-pw" },
    }),
    sourceSchema.parse({ kind: "zk", id: "gate", timezone: "UTC", host: "10.0.0.5" }),
  ];
  assert.deepEqual(sourceSecrets(sources), ["s3cret-pw"]);
});

test("a backlog counts records on a terminal and rows in a database, rows for a kind this build does not know", () => {
  assert.equal(backlogUnit("zk"), "records");
  assert.equal(backlogUnit("database"), "rows");
  assert.equal(backlogUnit("toString"), "rows");
});
