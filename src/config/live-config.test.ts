import assert from "node:assert/strict";
import { test } from "node:test";
import { connectorConfigSchema } from "./config-schema.ts";
import { DEFAULT_CONFIG, LiveConfig } from "./live-config.ts";

const next = connectorConfigSchema.parse({ schemaVersion: 1, sources: [], heartbeatIntervalMs: 5000 });

test("the live config runs the defaults until a config is set, then tells its listeners in order", () => {
  const live = new LiveConfig();
  assert.equal(live.current, DEFAULT_CONFIG);
  assert.equal(live.received, false);
  const told: string[] = [];
  live.subscribe((c) => told.push(`redact ${c.heartbeatIntervalMs}`));
  const off = live.subscribe(() => told.push("workers"));
  live.set(next);
  off();
  live.set(next);
  assert.equal(live.received, true);
  assert.equal(live.current, next);
  assert.deepEqual(told, ["redact 5000", "workers", "redact 5000"]);
});
