import assert from "node:assert/strict";
import { test } from "node:test";
import type { BacklogStatus } from "../../src/supervisor/supervisor.ts";
import { formatProgress } from "../../src/supervisor/supervisor.ts";
import { sourceHarness } from "../helpers/run-source.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { collected, expectedIds, terminal, zkSourceFor } from "../helpers/zk-harness.ts";

test("a first read of a large log reports done/total in records, a rate and an ETA, then clears", async () => {
  // About 4 s of transfer on a 2 Mbit/s link: long enough for a rate over more than a second.
  await using sim = await terminal({
    records: 25_000,
    recordSize: 40,
    link: { bandwidthBitsPerSec: 2_000_000, latencyMs: 1 },
  });
  await using tmp = await tempDir();
  await using h = sourceHarness(tmp.path);
  await h.run([zkSourceFor(sim, { realtime: false })]);
  const seen: BacklogStatus[] = [];
  const withRate = await waitFor(
    "a catch-up with a rate",
    () => {
      const b = h.supervisor.status()[0]?.backlog;
      if (b) seen.push(b);
      return b && b.ratePerSec !== null && b.etaSeconds !== null ? b : undefined;
    },
    30_000,
    50,
  );
  assert.equal(withRate.total, 25_000, "the device's record count");
  assert.ok(withRate.done > 0 && withRate.done < 25_000);
  assert.ok((withRate.ratePerSec ?? 0) > 0);
  // The ETA is what the rate implies for what is left, not a guess.
  const implied = (withRate.total - withRate.done) / (withRate.ratePerSec ?? 1);
  assert.ok(Math.abs((withRate.etaSeconds ?? 0) - implied) <= 1.5, `${withRate.etaSeconds} vs ${implied}`);
  assert.match(formatProgress(withRate, "records"), /^[\d,]+ of 25,000 records \(\d+%\), [\d,]+\/s, about \d+ s left$/);
  for (let i = 1; i < seen.length; i++)
    assert.ok((seen[i]?.done ?? 0) >= (seen[i - 1]?.done ?? 0), "done never goes back");
  await collected(h, expectedIds(sim), 60_000);
  await waitFor("the catch-up cleared", () => h.supervisor.status()[0]?.backlog === null, 10_000);
});
