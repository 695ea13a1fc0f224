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
import { makePunch, type Punch } from "../core/punch.ts";
import type { CloudClient } from "../link/cloud-client.ts";
import { Connectivity } from "../link/connectivity.ts";
import type { Sink, SinkOutcome } from "../sinks/sink.ts";
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

/** `count` punches spread over `serials` terminals, each with its own id. */
function somePunches(count: number, serials = 1): Punch[] {
  return Array.from({ length: count }, (_, i) =>
    makePunch({
      deviceSerial: `S${i % serials}`,
      userId: String(i),
      local: "2026-11-26T08:00:00",
      iso: "2026-11-26T08:00:00+00:00",
      stateCode: 0,
      verifyCode: 1,
      source: "database",
      collectedAt: "2026-11-26T08:00:01.000Z",
    }),
  );
}

const lostConnectivity = (message: string): SinkOutcome => ({
  kind: "failed",
  error: new BioError("CLOUD_UNAVAILABLE", message),
  lostConnectivity: true,
});
const batchRefused = (message: string): SinkOutcome => ({
  kind: "batch-refused",
  error: new BioError("CLOUD_REJECTED", message, { context: { httpStatus: 400 } }),
});
const tooLarge = (message: string): SinkOutcome => ({
  kind: "too-large",
  error: new BioError("CLOUD_TOO_LARGE", message, { context: { httpStatus: 413 } }),
});

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

  async send(batch: readonly OutboxEntry[]): Promise<SinkOutcome> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 1 + this.#random() * 4));
      const roll = this.#random();
      if (roll < 0.08) return lostConnectivity("connection reset");
      if (roll < 0.12) {
        const error = new BioError("CLOUD_UNAVAILABLE", "502", { context: { httpStatus: 502 } });
        return { kind: "failed", error, lostConnectivity: false };
      }
      if (roll < 0.15) return batchRefused("400 from a proxy");
      if (batch.length > 40 && roll < 0.25) return tooLarge("413");
      if (roll < 0.28) return { kind: "retry-after", ms: 5 };
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
      if (this.#random() < 0.05) return lostConnectivity("reply lost");
      return { kind: "delivered", acked, rejected };
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
    const punches = somePunches(1500, 3);
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
function onlineConnectivity(failuresBeforeOffline = 1000): Connectivity {
  const connectivity = new Connectivity({
    client: {} as CloudClient,
    clock: systemClock,
    logger: silentLogger,
    config: () => ({ probeIntervalMs: 1000, probeTimeoutMs: 1000, failuresBeforeOffline, policy: "pause" }),
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
  const punches = somePunches(100);
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
        kind: "delivered",
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

interface Scripted extends AsyncDisposable {
  readonly store: Store;
  readonly shipper: Shipper;
  readonly connectivity: Connectivity;
  /** Every batch the sink was sent, in order. */
  readonly sent: OutboxEntry[][];
  /** Aborts the run and closes the store; a failed assertion leaves the rest to the disposal. */
  stop(): Promise<void>;
}

/**
 * A shipper over a real store whose sink answers `answer(batch, n)` for its n-th send (from 1). Connectivity goes
 * offline at the first reported failure, so a failure wrongly taken for lost connectivity shows.
 */
function scripted(
  path: string,
  count: number,
  answer: (
    batch: readonly OutboxEntry[],
    n: number,
    h: Scripted,
    signal: AbortSignal,
  ) => SinkOutcome | Promise<SinkOutcome>,
  options: { batchSize?: number; backoffInitialMs?: number } = {},
): Scripted {
  const store = Store.open(join(path, "s.db"));
  const sent: OutboxEntry[][] = [];
  const sink: Sink = {
    name: "scripted",
    send: async (batch, signal) => {
      sent.push([...batch]);
      return answer(batch, sent.length, h, signal);
    },
  };
  const connectivity = onlineConnectivity(1);
  const config = shipperSchema.parse({
    batchSize: options.batchSize ?? 100,
    lingerMs: 0,
    maxInFlight: 1,
    maxBackoffMs: 3_600_000,
  });
  const shipper = new Shipper({
    store,
    space: new DiskSpace({ dir: path, clock: systemClock, logger: silentLogger }),
    sink,
    connectivity,
    clock: systemClock,
    logger: silentLogger,
    config: () => config,
    wake: new Notifier(),
    // No jitter: every backoff is half its ceiling.
    random: () => 0,
    backoffInitialMs: options.backoffInitialMs ?? 5,
  });
  store.emit("src", somePunches(count), null);
  const controller = new AbortController();
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      controller.abort(new DOMException("done", "AbortError"));
      await running.catch(() => undefined);
      store.close();
    })();
    return stopped;
  };
  const h: Scripted = { store, shipper, connectivity, sent, stop, [Symbol.asyncDispose]: stop };
  const running = shipper.run(controller.signal);
  return h;
}

const ids = (batch: readonly OutboxEntry[]) => batch.map((e) => e.id);

test("delivered: one answer acknowledges, quarantines and leaves the rest for a retry after a backoff", async () => {
  await using dir = await tempDir();
  let retried: unknown;
  await using h = scripted(dir.path, 3, (batch, n, self) => {
    if (n > 1) {
      retried = self.shipper.status().lastError;
      return { kind: "delivered", acked: ids(batch), rejected: [] };
    }
    const [a, b, c] = ids(batch);
    return {
      kind: "delivered",
      acked: [a ?? ""],
      rejected: [
        { id: b ?? "", reason: "userId refused", permanent: true },
        { id: c ?? "", reason: "try later", permanent: false },
      ],
    };
  });
  await waitFor("everything settled", () => h.store.depth === 0);
  const [first, second] = h.sent;
  assert.equal(h.sent.length, 2);
  assert.deepEqual(ids(second ?? []), ids(first ?? []).slice(2), "only the unsettled punch is sent again");
  assert.deepEqual(retried, { code: "CLOUD_RETRY", message: "1 punches not settled by the cloud; retrying." });
  assert.deepEqual(
    h.store.quarantine().map((q) => [q.punchId, q.reason]),
    [[first?.[1]?.id, "userId refused"]],
  );
  const status = h.shipper.status();
  assert.deepEqual([status.delivered, status.quarantined, status.lastError], [2, 1, null]);
});

test("retry-after: nothing settles or counts as an attempt, and the wait is the cloud's, capped at 15 minutes", async () => {
  await using dir = await tempDir();
  await using h = scripted(dir.path, 3, () => ({ kind: "retry-after", ms: 24 * 3600_000 }));
  await waitFor("the cloud's wait on the status", () => h.shipper.status().lastError?.code === "CLOUD_BUSY");
  const status = h.shipper.status();
  assert.equal(status.lastError?.message, "The cloud asked to retry after 900 s.");
  const waitMs = Date.parse(status.retryAt ?? "") - Date.now();
  assert.ok(waitMs > 14 * 60_000 && waitMs <= 15 * 60_000, `waits the capped Retry-After (${waitMs} ms)`);
  assert.equal(h.connectivity.isOnline, true);
  assert.equal(h.sent.length, 1);
  assert.deepEqual(
    h.store.peek(10).map((e) => e.attempts),
    [0, 0, 0],
    "a request to slow down is not a failed attempt",
  );
});

test("too-large: the batch is halved until it fits; a punch too large alone goes to quarantine with the cloud's words", async () => {
  await using dir = await tempDir();
  let big = "";
  await using h = scripted(
    dir.path,
    8,
    (batch, n) => {
      if (n === 1) big = batch[5]?.id ?? "";
      if (batch.length > 2 || ids(batch).includes(big)) return tooLarge(`a batch of ${batch.length} is too large`);
      return { kind: "delivered", acked: ids(batch), rejected: [] };
    },
    { batchSize: 8 },
  );
  await waitFor("everything settled", () => h.store.depth === 0);
  assert.deepEqual(
    h.sent.slice(0, 3).map((b) => b.length),
    [8, 4, 2],
    "halved after each refusal",
  );
  assert.deepEqual(
    h.store.quarantine().map((q) => [q.punchId, q.reason]),
    [[big, "a batch of 1 is too large"]],
  );
  assert.equal(h.shipper.status().delivered, 7);
  assert.equal(h.connectivity.isOnline, true);
});

test("batch-refused: the same batch is retried whole with backoff, never halved or quarantined", async () => {
  await using dir = await tempDir();
  const seen: unknown[] = [];
  await using h = scripted(
    dir.path,
    4,
    (batch, n, self) => {
      seen.push({
        attempts: batch[0]?.attempts,
        online: self.connectivity.isOnline,
        error: self.shipper.status().lastError,
      });
      if (n <= 3) return batchRefused("The cloud refused a batch of 4: 400 bad request.");
      return { kind: "delivered", acked: ids(batch), rejected: [] };
    },
    { batchSize: 4 },
  );
  await waitFor("everything settled", () => h.store.depth === 0);
  assert.deepEqual(
    h.sent.map((b) => b.length),
    [4, 4, 4, 4],
  );
  const refusal = { code: "CLOUD_REJECTED", message: "The cloud refused a batch of 4: 400 bad request." };
  assert.deepEqual(seen, [
    { attempts: 0, online: true, error: null },
    { attempts: 1, online: true, error: refusal },
    { attempts: 2, online: true, error: refusal },
    { attempts: 3, online: true, error: refusal },
  ]);
  assert.equal(h.store.quarantineCount(), 0);
});

test("failed with lost connectivity: connectivity hears of it, and its return cuts a long backoff short", async () => {
  await using dir = await tempDir();
  await using h = scripted(
    dir.path,
    2,
    (batch, n) =>
      n === 1 ? lostConnectivity("Cannot reach the cloud.") : { kind: "delivered", acked: ids(batch), rejected: [] },
    { backoffInitialMs: 60_000 },
  );
  await waitFor("offline", () => h.connectivity.state === "offline");
  assert.deepEqual(h.shipper.status().lastError, { code: "CLOUD_UNAVAILABLE", message: "Cannot reach the cloud." });
  h.connectivity.reportSuccess();
  await waitFor("delivered without waiting out 30 s", () => h.store.depth === 0, 5000);
});

test("failed with an answer (5xx): connectivity stays online and the backoff runs in full", async () => {
  await using dir = await tempDir();
  await using h = scripted(
    dir.path,
    2,
    () => ({
      kind: "failed",
      error: new BioError("CLOUD_UNAVAILABLE", "The cloud failed to take punches: 502.", {
        context: { httpStatus: 502 },
      }),
      lostConnectivity: false,
    }),
    { backoffInitialMs: 60_000 },
  );
  await waitFor("the failure on the status", () => h.shipper.status().lastError?.code === "CLOUD_UNAVAILABLE");
  assert.equal(h.connectivity.isOnline, true);
  const waitMs = Date.parse(h.shipper.status().retryAt ?? "") - Date.now();
  assert.ok(waitMs > 25_000, `backs off (${waitMs} ms)`);
  // A loss and return of connectivity seen elsewhere does not cut a backoff the cloud's own failure caused.
  h.connectivity.reportFailure(new Error("probe failed"));
  h.connectivity.reportSuccess();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(h.sent.length, 1);
  assert.equal(h.store.peek(10)[0]?.attempts, 1);
});

test("a sink that throws (a bug) is retried like a failed attempt; an abort during a send ends the run", async () => {
  await using dir = await tempDir();
  let afterBug: unknown;
  await using h = scripted(dir.path, 1, (_batch, n, self, signal) => {
    if (n === 1) throw new TypeError("a bug in the sink");
    afterBug = { error: self.shipper.status().lastError, online: self.connectivity.isOnline };
    return new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  });
  await waitFor("the retry", () => h.sent.length === 2);
  assert.deepEqual(afterBug, { error: { code: "INTERNAL", message: "a bug in the sink" }, online: true });
  await h.stop();
  assert.equal(h.sent.length, 2, "nothing is sent after the abort");
  assert.equal(h.store.depth, 1);
});
