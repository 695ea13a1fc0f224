import assert from "node:assert/strict";
import { test } from "node:test";
import { DELIVERED_RETENTION_MS } from "../store/delivered-retention.ts";
import { databaseSourceSchema, MAX_LOOKBACK_MS } from "./config-schema.ts";

const source = (lookbackMs: number) =>
  databaseSourceSchema.safeParse({
    id: "t",
    kind: "database",
    connection: { engine: "sqlite", path: "att.db" },
    table: "att_log",
    columns: { deviceSerial: "sn", userId: "pin", time: "punch_time" },
    lookbackMs,
  });

test("the longest lookback stays inside the delivered-id memory, so a re-read row is dropped, not sent twice", () => {
  assert.ok(MAX_LOOKBACK_MS > 0);
  assert.ok(MAX_LOOKBACK_MS < DELIVERED_RETENTION_MS);
  assert.equal(MAX_LOOKBACK_MS, 6 * 24 * 3600_000, "the limit operators configure against is unchanged");
  assert.equal(source(MAX_LOOKBACK_MS).success, true);
  assert.equal(source(MAX_LOOKBACK_MS + 1).success, false);
  assert.equal(source(DELIVERED_RETENTION_MS).success, false);
});
