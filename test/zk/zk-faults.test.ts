import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ZkFault } from "../../sim/zk/zk-simulator.ts";
import { sourceHarness } from "../helpers/run-source.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { collected, expectedIds, terminal, zkSourceFor } from "../helpers/zk-harness.ts";

/**
 * Each fault is injected while the log read is in progress (a few chunks in, over a throttled link), then the
 * terminal keeps taking punches. The outbox must end with exactly the terminal's records: none lost, none doubled.
 */
const FAULTS: ReadonlyArray<{ fault: ZkFault; restarts: boolean }> = [
  { fault: { kind: "drop-mid-transfer" }, restarts: true },
  { fault: { kind: "stall", ms: 2500 }, restarts: true },
  { fault: { kind: "garbage", count: 3 }, restarts: false },
  { fault: { kind: "split", count: 20 }, restarts: false },
  { fault: { kind: "merge", count: 20 }, restarts: false },
  { fault: { kind: "bad-checksum", count: 2 }, restarts: false },
  { fault: { kind: "reply-error" }, restarts: true },
  { fault: { kind: "clock-jump", ms: -7 * 86_400_000 }, restarts: false },
];

describe("zk source under injected faults", { concurrency: 2 }, () => {
  for (const transport of ["tcp", "udp"] as const) {
    for (const { fault, restarts } of FAULTS) {
      if (transport === "udp" && (fault.kind === "split" || fault.kind === "merge")) continue; // stream faults
      it(`${transport}: ${fault.kind} mid-read`, async () => {
        await using sim = await terminal({
          records: 20_000,
          recordSize: 40,
          link: { bandwidthBitsPerSec: 20_000_000, latencyMs: 1 },
        });
        await using tmp = await tempDir();
        await using h = sourceHarness(tmp.path);
        await h.run([zkSourceFor(sim, { transport, requestTimeoutMs: 600, realtime: false })]);
        await waitFor("the log read under way", () => sim.stats().bulkChunks >= 2, 20_000, 2);
        if (fault.kind === "stall") sim.injectFault(fault);
        else sim.injectFault(fault);
        for (let i = 0; i < 3; i++) sim.addPunch({ userId: String(1001 + i), state: 1 });
        await collected(h, expectedIds(sim), 40_000);
        const [status] = h.supervisor.status();
        if (restarts) assert.ok((status?.restarts ?? 0) >= 1, "the fault ended the session and the worker recovered");
        // Still working after the fault: a later punch arrives too.
        sim.addPunch({ userId: "1009", state: 0 });
        await collected(h, expectedIds(sim), 20_000);
        assert.equal(sim.stats().clearAttlog + sim.stats().setTime, 0);
      });
    }
  }
});
