import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e, fastConfig } from "../helpers/e2e-harness.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { expectedIds, terminal } from "../helpers/zk-harness.ts";

type Sim = Awaited<ReturnType<typeof terminal>>;

/**
 * Long timeouts unless a test is about one: on a busy machine a chunk answered after a short one restarts the
 * session, which sets a read stretched over seconds by a throttled link back.
 */
function zkSources(sims: readonly Sim[], extra: Record<string, unknown> = {}) {
  return sims.map((sim, i) => ({
    id: `t${i}`,
    kind: "zk",
    host: sim.host,
    port: sim.port,
    serial: sim.serial,
    timezone: "Asia/Kolkata",
    requestTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
    ...extra,
  }));
}

function configWith(sources: unknown[]) {
  return (dbPath: string) => ({ ...fastConfig(dbPath), sources });
}

function missingIn(cloudIds: Map<string, number>, expected: readonly string[]): number {
  return expected.filter((id) => !cloudIds.has(id)).length;
}

describe("terminals end to end", () => {
  it("a real-time punch reaches the reference cloud without waiting for a poll", async () => {
    await using sim = await terminal({ records: 300, serial: "CAMS-RT-1" });
    // Polls a minute apart: within the test only the real-time event can carry the new punch.
    await using h = await e2e({ config: configWith(zkSources([sim], { pollIntervalMs: 60_000 })) });
    await h.startConnector();
    await waitFor("the log in the cloud", () => missingIn(h.cloudIds(), expectedIds(sim)) === 0, 30_000);
    const punch = sim.addPunch({ userId: "4242", state: 1 });
    const ids = expectedIds(sim);
    // Well inside the minute before the next poll.
    await waitFor("the real-time punch in the cloud", () => missingIn(h.cloudIds(), ids) === 0, 30_000, 10);
    const stored = h.cloud.punches(h.nodeId, 10_000).find((p) => p.userId === "4242");
    assert.equal(stored?.deviceSerial, "CAMS-RT-1");
    assert.equal(stored?.time, `${punch.time.replace(" ", "T")}+05:30`);
    assert.equal(h.cloudIds().size, 301, "no duplicate ids");
  });

  it("50 terminals, 5 of them stalled: the other 45 deliver with their normal latency, the 5 catch up", async () => {
    const sims: Sim[] = [];
    for (let i = 0; i < 50; i++)
      sims.push(await terminal({ records: 20, serial: `GRID${String(i).padStart(3, "0")}` }));
    try {
      // The same short timeouts on all fifty: the five stalled ones back off while the others are measured.
      const short = { pollIntervalMs: 1000, requestTimeoutMs: 1000, connectTimeoutMs: 1000 };
      await using h = await e2e({ config: configWith(zkSources(sims, short)) });
      await h.startConnector();
      const all = () => sims.flatMap((s) => expectedIds(s));
      await waitFor("every log in the cloud", () => missingIn(h.cloudIds(), all()) === 0, 60_000, 50);

      // Latency of a real-time punch on every terminal, with nothing stalled: the baseline of this run.
      let round = 0;
      const latencies = async (group: readonly Sim[]) => {
        const started = Date.now();
        const arrived = new Map<Sim, number>();
        // A user per round: two punches of one user in the same second would be one punch (one id).
        round++;
        for (const sim of group) sim.addPunch({ userId: String(7000 + round) });
        await waitFor(
          `${group.length} new punches`,
          () => {
            const ids = h.cloudIds();
            for (const sim of group)
              if (!arrived.has(sim) && missingIn(ids, expectedIds(sim)) === 0) arrived.set(sim, Date.now() - started);
            return arrived.size === group.length;
          },
          30_000,
          10,
        );
        return Math.max(...arrived.values());
      };
      // The median of three rounds, so one scheduling hiccup on a loaded machine does not decide the outcome.
      const median = async (group: readonly Sim[]) => {
        const rounds = [await latencies(group), await latencies(group), await latencies(group)];
        return rounds.sort((a, b) => a - b)[1] ?? Number.NaN;
      };
      const before = await median(sims);

      const stalled = sims.slice(0, 5);
      const healthy = sims.slice(5);
      for (const sim of stalled) sim.injectFault({ kind: "stall" });
      // Measure once the stalled sessions have timed out and are backing off.
      const stalledIds = new Set(["t0", "t1", "t2", "t3", "t4"]);
      await waitFor(
        "the stalled terminals to time out",
        () =>
          h
            .connector()
            .status()
            .sources.filter((s) => stalledIds.has(s.sourceId))
            .every((s) => s.lastError?.code === "DEVICE_TIMEOUT"),
        20_000,
      );
      for (const sim of stalled) sim.addPunch({ userId: "7002" });
      const withStalls = await median(healthy);

      for (const sim of stalled) sim.clearFaults();
      await waitFor("the stalled terminals caught up", () => missingIn(h.cloudIds(), all()) === 0, 90_000, 100);
      // A baseline on each side of the stalls: the machine's load (other suites, here) may change meanwhile, and the
      // comparison is with the slower of the two.
      const after = await median(healthy);
      const baseline = Math.max(before, after);
      assert.ok(
        withStalls <= Math.max(3 * baseline, baseline + 1000),
        `healthy terminals: ${withStalls} ms with 5 stalled vs ${baseline} ms baseline (${before} before, ${after} after)`,
      );
      assert.equal(h.cloudIds().size, new Set(all()).size, "no stray ids");
      assert.equal(new Set(all()).size, all().length, "every punch of the test is distinct");
    } finally {
      await Promise.all(sims.map((s) => s.close()));
    }
  });

  it("connector killed mid-read, three times, and restarted: every record once", { timeout: 900_000 }, async () => {
    // A throttled link stretches the 50,000-record read over seconds, so the kills land inside it.
    await using sim = await terminal({
      records: 50_000,
      serial: "CAMS-BIG-1",
      link: { bandwidthBitsPerSec: 8_000_000, latencyMs: 1 },
    });
    await using h = await e2e({ config: configWith(zkSources([sim], { realtime: false, pollIntervalMs: 300 })) });
    const expected = expectedIds(sim);
    let midRead = 0;
    for (let kill = 0; kill < 3; kill++) {
      await using p = await ConnectorProcess.started(h.connectorDir);
      const chunksBefore = sim.stats().bulkChunks;
      // 50,000 records are 31 chunks, and a restart reads on from its cursor, not from the start: each run's read is
      // shorter than the last. Stopping between its 2nd and 5th chunk leaves at least 16 chunks for the third run.
      const at = chunksBefore + 2 + Math.floor(Math.random() * 4);
      await waitFor("the read under way", () => sim.stats().bulkChunks >= at, 60_000, 2);
      const inCloud = h.cloud.stats(h.nodeId).total;
      await p.kill("SIGKILL");
      if (inCloud < expected.length) midRead++;
      await rm(join(h.connectorDir, "status.json"), { force: true });
    }
    assert.equal(midRead, 3, "every kill landed before the log was fully delivered");
    await using last = await ConnectorProcess.started(h.connectorDir);
    // stats() counts; listing every id on each check would starve the cloud that shares this process.
    await waitFor("all records in the cloud", () => h.cloud.stats(h.nodeId).total >= expected.length, 600_000, 100);
    await last.kill("SIGTERM");
    const ids = h.cloudIds();
    assert.equal(missingIn(ids, expected), 0, "none lost");
    assert.equal(ids.size, expected.length, "none doubled (no stray ids)");
  });
});
