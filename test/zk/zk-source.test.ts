import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ZkClient } from "../../src/sources/zk/zk-client.ts";
import { loopLag } from "../helpers/loop-lag.ts";
import { sourceHarness } from "../helpers/run-source.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { collected, expectedIds, outboxIds, terminal, zkSourceFor } from "../helpers/zk-harness.ts";

describe("zk source against the simulated terminal", { concurrency: 3 }, () => {
  const formats = [
    { transport: "tcp", recordSize: 40, userSize: 72, layout: "tft40" },
    { transport: "tcp", recordSize: 16, userSize: 28, layout: "extended16" },
    { transport: "tcp", recordSize: 8, userSize: 72, layout: "compact8" },
    { transport: "udp", recordSize: 40, userSize: 72, layout: "tft40" },
    { transport: "udp", recordSize: 16, userSize: 28, layout: "extended16" },
    { transport: "udp", recordSize: 8, userSize: 28, layout: "compact8" },
  ] as const;
  for (const f of formats) {
    it(`reads every record exactly: ${f.transport}, ${f.recordSize}-byte records, ${f.userSize}-byte users`, async () => {
      await using sim = await terminal({ records: 4000, recordSize: f.recordSize, userSize: f.userSize, seed: 7 });
      await using tmp = await tempDir();
      await using h = sourceHarness(tmp.path);
      await h.run([zkSourceFor(sim, { transport: f.transport })]);
      await collected(h, expectedIds(sim));
      await waitFor("the device in status", () => h.supervisor.status()[0]?.device?.recordSize);
      const [status] = h.supervisor.status();
      assert.equal(status?.device?.serial, sim.serial);
      assert.equal(status?.device?.recordSize, f.recordSize);
      assert.equal(status?.device?.recordLayout, f.layout);
      const cursor = status?.cursor[sim.serial] as { time: string; count: number; tail: string; format: string };
      assert.equal(cursor.time, sim.record(3999).time.replace(" ", "T"), "last attendance time");
      assert.equal(cursor.count, 4000);
      assert.match(cursor.tail, /^[0-9a-f]{16}$/);
      assert.equal(cursor.format, f.layout, "the layout is kept, so it is chosen once");
    });
  }

  for (const transport of ["tcp", "udp"] as const) {
    it(`reads 100,000 records exactly over ${transport}`, async () => {
      await using sim = await terminal({ records: 100_000, recordSize: 40, seed: 3 });
      await using tmp = await tempDir();
      await using h = sourceHarness(tmp.path);
      await h.run([zkSourceFor(sim, { transport, realtime: false })]);
      await collected(h, expectedIds(sim), 90_000);
      // A single pass: the log was read once, in chunks, not once per chunk or per retry.
      assert.equal(sim.stats().commands[1503], 2, "one user-table read and one log read");
    });
  }

  it("authenticates with the right comm key and names the fix for a wrong or missing one", async () => {
    await using sim = await terminal({ records: 10, commKey: 123456 });
    for (const [commKey, message] of [
      [654321, /rejected the comm key.*commKey/s],
      [0, /requires a comm key and none is configured/],
    ] as const) {
      await using tmp = await tempDir();
      await using h = sourceHarness(tmp.path);
      await h.run([zkSourceFor(sim, { commKey })]);
      const error = await waitFor("the auth error", () => h.supervisor.status()[0]?.lastError);
      assert.equal(error.code, "DEVICE_AUTH");
      assert.match(error.message, message);
      assert.equal(h.store.depth, 0);
    }
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { commKey: 123456 })]);
    await collected(h, expectedIds(sim));
  });

  it("costs one small round trip per poll when nothing changed, and reads only the tail when it did", async () => {
    await using sim = await terminal({ records: 20_000, recordSize: 40 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { realtime: false, pollIntervalMs: 200, lookbackRecords: 50 })]);
    await collected(h, expectedIds(sim));
    // The poll that made the read has ended once a later one starts.
    const readDone = Date.now();
    await waitFor("the next poll", () => Date.parse(h.supervisor.status()[0]?.lastPollAt ?? "") > readDone);
    sim.resetStats();
    await waitFor("four polls", () => (sim.stats().commands[50] ?? 0) >= 4);
    const idle = sim.stats();
    assert.deepEqual(Object.keys(idle.commands), ["50"], "nothing but the record count while unchanged");
    assert.ok(
      idle.bytesSent / (idle.commands[50] ?? 1) < 150,
      `${idle.bytesSent} bytes for ${idle.commands[50]} polls`,
    );
    sim.resetStats();
    sim.addPunch({ userId: "1001", state: 1 });
    await collected(h, expectedIds(sim));
    const tail = sim.stats();
    assert.ok(tail.bytesSent < 51 * 40 + 500, `tail read moved ${tail.bytesSent} bytes, not the 800 KB log`);
  });

  it("delivers a real-time punch at once and the reconcile read adds nothing", async () => {
    await using sim = await terminal({ records: 100, recordSize: 40 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    // Polls far apart: only the event can bring the punch quickly.
    await h.run([zkSourceFor(sim, { pollIntervalMs: 60_000 })]);
    await collected(h, expectedIds(sim));
    sim.addPunch({ userId: "1005", state: 0 });
    // Well inside the minute before the next poll: only the event can have brought it.
    await collected(h, expectedIds(sim), 5000);
    await waitFor("the event acknowledged", () => sim.stats().eventAcks === 1);
    // Now let the reads reconcile it: the same punch from the log must collapse into the event's id.
    const reads = sim.stats().commands[1503] ?? 0;
    await h.run([zkSourceFor(sim, { pollIntervalMs: 300, reconcileIntervalMs: 1000 })]);
    await waitFor("two reconcile reads", () => (sim.stats().commands[1503] ?? 0) >= reads + 2, 20_000);
    assert.deepEqual(new Set(outboxIds(h)), new Set(expectedIds(sim)));
    assert.equal(outboxIds(h).length, 101);
  });

  it("falls back to polling when the terminal refuses real-time events", async () => {
    await using sim = await terminal({ records: 50 });
    sim.injectFault({ kind: "refuse-command", command: 500 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim)]);
    await collected(h, expectedIds(sim));
    sim.addPunch({ userId: "1002" });
    await collected(h, expectedIds(sim));
    const [status] = h.supervisor.status();
    assert.equal(status?.device?.realtime, false);
    assert.equal(status?.restarts, 0, "no restart loop over the missing feature");
  });

  it("reads a log whose first record is corrupt, quarantining only that record", async () => {
    await using sim = await terminal({ records: 0 });
    sim.addPunch({ userId: "1001", time: "2026-02-30 08:00:00" });
    for (let i = 0; i < 30; i++) sim.addPunch({ userId: String(1002 + i) });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { realtime: false })]);
    await collected(h, expectedIds(sim).slice(1));
    assert.equal(h.store.quarantine().length, 1);
  });

  it("reads small logs answered inline from the cursor, without re-reading them whole", async () => {
    await using sim = await terminal({ records: 40, inlineThreshold: 100_000 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { realtime: false, lookbackRecords: 5 })]);
    await collected(h, expectedIds(sim));
    const before = sim.stats().commands[1503] ?? 0;
    for (let i = 0; i < 3; i++) {
      sim.addPunch({ userId: String(2000 + i) });
      await collected(h, expectedIds(sim));
    }
    // One log read per new punch; a read that failed its tail check would have needed a second, whole one.
    assert.equal((sim.stats().commands[1503] ?? 0) - before, 3);
  });

  it("collects punches made after the terminal's clock was set back by days", async () => {
    await using sim = await terminal({ records: 500, recordSize: 40 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { realtime: false, lookbackRecords: 10 })]);
    await collected(h, expectedIds(sim));
    sim.jumpClock(-3 * 86_400_000);
    for (let i = 0; i < 5; i++) sim.addPunch({ userId: `100${i}` });
    await collected(h, expectedIds(sim));
    await waitFor("the drift measured after the jump", () => {
      const drift = h.supervisor.status()[0]?.device?.clockDriftMs ?? 0;
      return Math.abs(drift + 3 * 86_400_000) < 5000;
    });
    assert.equal(sim.stats().setTime, 0, "the clock is never written unless syncClock is on");
  });

  it("reads the log again when it was cleared on the terminal, without duplicates", async () => {
    await using sim = await terminal({ records: 300, recordSize: 40 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { realtime: false })]);
    const before = expectedIds(sim);
    await collected(h, before);
    // Clear through the protocol, as attendance software does.
    const client = await ZkClient.connect({
      host: sim.host,
      port: sim.port,
      transport: "tcp",
      commKey: 0,
      timeoutMs: 1000,
      signal: AbortSignal.timeout(5000),
    });
    await client.command(15);
    await client.close();
    for (let i = 0; i < 400; i++) sim.addPunch({ userId: String(1001 + (i % 50)), state: i % 2 });
    await collected(h, [...before, ...expectedIds(sim)]);
  });

  it("quarantines records with impossible times and keeps reading", async () => {
    await using sim = await terminal({ records: 50, recordSize: 40 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    sim.addPunch({ userId: "1001", time: "2026-02-31 10:00:00" });
    sim.addPunch({ userId: "1002", time: "2026-03-01 10:00:00" });
    await h.run([zkSourceFor(sim, { realtime: false })]);
    const good = expectedIds(sim).filter((_, i) => i !== 50);
    await collected(h, good);
    const [entry] = h.store.quarantine();
    assert.match(entry?.reason ?? "", /impossible device time 2026-02-31T10:00:00 \(record 50\)/);
  });

  it("locks the keypad only when asked, and unlocks it after the read", async () => {
    await using sim = await terminal({ records: 3000 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { realtime: false })]);
    await collected(h, expectedIds(sim));
    assert.equal(sim.stats().disableDevice, 0, "never disabled by default");
    await h.run([zkSourceFor(sim, { realtime: false, disableDuringRead: true, reconcileIntervalMs: 1000 })]);
    await waitFor("a read with the keypad locked", () => sim.stats().disableDevice >= 1);
    await waitFor("the keypad unlocked after it", () => !sim.isDisabled);
    sim.addPunch({ userId: "1001" });
    await collected(h, expectedIds(sim));
  });

  it("writes the terminal clock only when syncClock is on", async () => {
    await using sim = await terminal({ records: 10, clockOffsetMs: -3_600_000 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    // The device clock has 1 s steps; a reply or a write held up by a busy machine (measured) adds to the error.
    using lag = loopLag();
    await h.run([zkSourceFor(sim, { realtime: false })]);
    const drift = await waitFor("drift measured", () => h.supervisor.status()[0]?.device?.clockDriftMs);
    assert.ok(Math.abs(drift + 3_600_000) < 3000 + lag.maxMs, `drift ${drift}, lag up to ${lag.maxMs} ms`);
    assert.equal(sim.stats().setTime, 0);
    await h.run([zkSourceFor(sim, { realtime: false, syncClock: true, maxClockDriftMs: 5000 })]);
    await waitFor("the clock corrected", () => sim.stats().setTime === 1);
    assert.ok(
      Math.abs(sim.clockOffsetMs) < 3000 + lag.maxMs,
      `offset after correction ${sim.clockOffsetMs}, lag up to ${lag.maxMs} ms`,
    );
  });

  it("refuses a different terminal at the configured address, naming both serials", async () => {
    await using sim = await terminal({ records: 5, serial: "CAMS123" });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { serial: "CAMS999" })]);
    const error = await waitFor("the mismatch", () => h.supervisor.status()[0]?.lastError);
    assert.equal(error.code, "DEVICE_MISMATCH");
    assert.match(error.message, /reports serial CAMS123, but source gate expects CAMS999/);
    assert.equal(outboxIds(h).length, 0);
  });
});
