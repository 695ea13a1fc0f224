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
  assert.ok(r.issues.some((i) => /Unrecognized key/.test(i.message)));
});

test("duplicate source ids are refused", () => {
  const r = parseConfig({ schemaVersion: 1, sources: [source, source] });
  assert.ok(!r.ok && r.issues.some((i) => i.path === "sources[1].id" && /duplicate/.test(i.message)));
});

test("docs/config.schema.json is current (regenerate with npm run schema)", async () => {
  const onDisk = JSON.parse(await readFile(new URL("../../docs/config.schema.json", import.meta.url), "utf8"));
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(configJsonSchema())));
});
