import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../src/core/logger.ts";
import { sourceHarness } from "../helpers/run-source.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { collected, expectedIds, terminal, zkSourceFor } from "../helpers/zk-harness.ts";

test("a terminal 5 h 30 min off: the warning names the time zone and is logged once, not every poll", async () => {
  await using sim = await terminal({ records: 5, clockOffsetMs: 5.5 * 3_600_000 });
  await using tmp = await tempDir();
  const lines: string[] = [];
  const logger = createLogger({ level: "warn", format: "json", write: (l) => lines.push(l) });
  await using h = sourceHarness(tmp.path, { logger });
  await h.run([zkSourceFor(sim, { realtime: false, timezone: "Asia/Kolkata" })]);
  await collected(h, expectedIds(sim));
  // Every new punch makes the next poll read the log and measure the clock again.
  for (let i = 0; i < 4; i++) {
    sim.addPunch({ userId: String(2000 + i) });
    await collected(h, expectedIds(sim));
  }
  const warnings = lines.filter((l) => l.includes("terminal's clock"));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0] ?? "", /5 h 30 min ahead of this machine.*most likely a wrong time zone.*now Asia\/Kolkata/);
  const drift = await waitFor("drift reported", () => h.supervisor.status()[0]?.device?.clockDriftMs);
  assert.ok(Math.abs(drift - 5.5 * 3_600_000) < 5000, `${drift}`);
});
