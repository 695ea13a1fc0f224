import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { sqliteFull } from "../../test/helpers/disk-full-errors.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { waitFor } from "../../test/helpers/wait-for.ts";
import { shipperSchema } from "../config/config-schema.ts";
import { systemClock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import { silentLogger } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import { makePunch } from "../core/punch.ts";
import type { CloudClient } from "../link/cloud-client.ts";
import { Connectivity } from "../link/connectivity.ts";
import type { Sink, SinkResult } from "../sinks/sink.ts";
import { DiskSpace } from "../store/disk-space.ts";
import type { OutboxEntry } from "../store/store.ts";
import { Store } from "../store/store.ts";
import { type Outbox, Shipper } from "./shipper.ts";

/** Deterministic PRNG (mulberry32) so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A sink that misbehaves at random: transport failures (some after the cloud already stored the batch, so the ack
 * is lost), 5xx, whole-batch refusals, 413 for large batches, Retry-After, partial acks, and a fixed set of punches
 * it rejects permanently. It records what "the cloud" holds.
 */
class ChaosSink implements Sink {
  readonly name = "chaos";
  readonly held = new Set<string>();
  readonly deliveries = new Map<string, number>();
  readonly poison: ReadonlySet<string>;
  readonly #random: () => number;
  inFlight = 0;
  maxInFlight = 0;

  constructor(random: () => number, poison: ReadonlySet<string>) {
    this.#random = random;
    this.poison = poison;
  }

  async send(batch: readonly OutboxEntry[]): Promise<SinkResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 1 + this.#random() * 4));
      const roll = this.#random();
      if (roll < 0.08) throw new BioError("CLOUD_UNAVAILABLE", "connection reset", { retriable: true });
      if (roll < 0.12)
        throw new BioError("CLOUD_UNAVAILABLE", "502", { retriable: true, context: { httpStatus: 502 } });
      if (roll < 0.15)
        throw new BioError("CLOUD_REJECTED", "400 from a proxy", { retriable: true, context: { httpStatus: 400 } });
      if (batch.length > 40 && roll < 0.25)
        throw new BioError("CLOUD_TOO_LARGE", "413", { context: { httpStatus: 413 } });
      if (roll < 0.28) return { acked: [], rejected: [], retryAfterMs: 5 };
      const acked: string[] = [];
      const rejected = [];
      for (const entry of batch) {
        if (this.poison.has(entry.id)) {
          rejected.push({ id: entry.id, reason: "poisoned", permanent: true });
          continue;
        }
        if (this.#random() < 0.05) continue; // not settled this time
        this.held.add(entry.id);
        this.deliveries.set(entry.id, (this.deliveries.get(entry.id) ?? 0) + 1);
        acked.push(entry.id);
      }
      // The cloud stored it, but the reply is lost on the way back.
      if (this.#random() < 0.05) throw new BioError("CLOUD_UNAVAILABLE", "reply lost", { retriable: true });
      return { acked, rejected };
    } finally {
      this.inFlight--;
    }
  }
}

for (const seed of [1, 2, 3]) {
  test(`under random sink failures every punch ends delivered or (if poisoned) quarantined — seed ${seed}`, async () => {
    await using dir = await tempDir();
    const store = Store.open(join(dir.path, "s.db"));
    const random = prng(seed);
    const punches = Array.from({ length: 1500 }, (_, i) =>
      makePunch({
        deviceSerial: `S${i % 3}`,
        userId: String(i),
        local: "2026-11-26T08:00:00",
        iso: "2026-11-26T08:00:00+00:00",
        stateCode: 0,
        verifyCode: 1,
        source: "database",
        collectedAt: "2026-11-26T08:00:01.000Z",
      }),
    );
    const poison = new Set(punches.filter((_, i) => i % 250 === 7).map((p) => p.id));
    const sink = new ChaosSink(random, poison);
    const connectivity = onlineConnectivity();
    const wake = new Notifier();
    const config = shipperSchema.parse({ batchSize: 100, lingerMs: 0, maxInFlight: 3, maxBackoffMs: 100 });
    const shipper = new Shipper({
      store,
      space: new DiskSpace({ dir: dir.path, clock: systemClock, logger: silentLogger }),
      sink,
      connectivity,
      clock: systemClock,
      logger: silentLogger,
      config: () => config,
      wake,
      random,
      backoffInitialMs: 5,
    });
    const controller = new AbortController();
    const running = shipper.run(controller.signal).catch(() => undefined);
    // Punches keep arriving while the shipper works.
    for (let i = 0; i < punches.length; i += 300) {
      store.emit("src", punches.slice(i, i + 300), null);
      wake.notify();
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor("the outbox drained", () => store.outboxStats().depth === 0, 30_000);
    controller.abort(new DOMException("done", "AbortError"));
    await running;

    const quarantined = new Set(store.quarantine(10_000).map((q) => q.punchId));
    assert.deepEqual([...quarantined].sort(), [...poison].sort(), "exactly the poisoned punches are quarantined");
    for (const p of punches) if (!poison.has(p.id)) assert.ok(sink.held.has(p.id), `punch ${p.userId} delivered`);
    assert.equal(sink.held.size, punches.length - poison.size);
    assert.ok(sink.maxInFlight >= 2 && sink.maxInFlight <= 3, `pipelined within the bound (${sink.maxInFlight})`);
    // Re-deliveries happen only after a lost reply or a failure; the store never enqueues a delivered id again.
    assert.equal(store.emit("src", punches, null).enqueued, 0);
    store.close();
  });
}

/** Online, with no probe loop started: the shipper only reports successes and failures to it. */
function onlineConnectivity(): Connectivity {
  const connectivity = new Connectivity({
    client: {} as CloudClient,
    clock: systemClock,
    logger: silentLogger,
    config: () => ({ probeIntervalMs: 1000, probeTimeoutMs: 1000, failuresBeforeOffline: 1000, policy: "pause" }),
  });
  connectivity.reportSuccess();
  return connectivity;
}

test("an acknowledgement the full disk refuses is held in memory and committed when there is room, never earned again by re-sending", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  let full = false;
  const space = new DiskSpace({
    dir: dir.path,
    clock: systemClock,
    logger: silentLogger,
    write: () => {
      if (full) throw sqliteFull();
    },
  });
  // The store on that disk: while it is full, what the shipper commits is refused as the real store refuses it.
  const outbox: Outbox = {
    peek: (limit, after) => store.peek(limit, after),
    recordAttempt: (ids) => store.recordAttempt(ids),
    ack: (ids) => {
      if (full) throw space.fail(sqliteFull());
      store.ack(ids);
    },
    quarantineOutbox: (rejections) => {
      if (full) throw space.fail(sqliteFull());
      store.quarantineOutbox(rejections);
    },
  };
  const punches = Array.from({ length: 100 }, (_, i) =>
    makePunch({
      deviceSerial: "S1",
      userId: String(i),
      local: "2026-11-26T08:00:00",
      iso: "2026-11-26T08:00:00+00:00",
      stateCode: 0,
      verifyCode: 1,
      source: "database",
      collectedAt: "2026-11-26T08:00:01.000Z",
    }),
  );
  const poisoned = punches[7]?.id ?? "";
  const deliveries = new Map<string, number>();
  let sends = 0;
  const sink: Sink = {
    name: "cloud",
    send: async (batch) => {
      sends++;
      for (const e of batch) deliveries.set(e.id, (deliveries.get(e.id) ?? 0) + 1);
      // The disk fills while the batch is on its way: the cloud has it, but its answer cannot be committed.
      full = true;
      return {
        acked: batch.filter((e) => e.id !== poisoned).map((e) => e.id),
        rejected: [{ id: poisoned, reason: "userId refused", permanent: true }],
      };
    },
  };
  const connectivity = onlineConnectivity();
  const wake = new Notifier();
  const config = shipperSchema.parse({ batchSize: 100, lingerMs: 0, maxInFlight: 2, maxBackoffMs: 100 });
  const shipper = new Shipper({
    store: outbox,
    space,
    sink,
    connectivity,
    clock: systemClock,
    logger: silentLogger,
    config: () => config,
    wake,
    backoffInitialMs: 5,
  });
  store.emit("src", punches, null);
  const controller = new AbortController();
  const running = shipper.run(controller.signal);
  await waitFor("the answers held in memory", () => shipper.status().unsaved === 100);
  assert.equal(space.isFull, true, "the refused commit made the disk full for the whole connector");
  assert.equal(shipper.status().lastError?.code, "STORE_FULL");
  assert.equal(store.depth, 100, "nothing is committed yet");

  full = false;
  assert.equal(space.probe(), true);
  await waitFor("the held answers committed", () => store.depth === 0);
  assert.equal(shipper.status().unsaved, 0);
  assert.equal(shipper.status().lastError, null);
  assert.deepEqual(
    store.quarantine().map((q) => q.punchId),
    [poisoned],
  );
  controller.abort(new DOMException("done", "AbortError"));
  await running.catch(() => undefined);
  assert.equal(sends, 1, "the batch was sent once");
  assert.ok([...deliveries.values()].every((n) => n === 1));
  store.close();
});
