import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { waitFor } from "../../test/helpers/wait-for.ts";
import { type ConnectorConfig, connectorConfigSchema } from "../config/config-schema.ts";
import { LiveConfig } from "../config/live-config.ts";
import type { SinkConfig } from "../config/sink-schema.ts";
import { systemClock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import { silentLogger } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import { makePunch, type Punch } from "../core/punch.ts";
import type { CloudClient } from "../link/cloud-client.ts";
import { Connectivity } from "../link/connectivity.ts";
import type { Sink, SinkOutcome } from "../sinks/sink.ts";
import { Store } from "../store/store.ts";
import { Deliveries } from "./deliveries.ts";

function punches(count: number, from = 0): Punch[] {
  return Array.from({ length: count }, (_, i) =>
    makePunch({
      deviceSerial: "S1",
      userId: String(from + i),
      local: "2026-11-26T08:00:00",
      iso: "2026-11-26T08:00:00+00:00",
      stateCode: 0,
      verifyCode: 1,
      source: "database",
      collectedAt: "2026-11-26T08:00:01.000Z",
    }),
  );
}

/** A receiver in memory: counts what it holds by id, and fails while `down` is set. */
class Receiver implements Sink {
  readonly name: string;
  readonly held = new Map<string, number>();
  down = false;
  inFlight = 0;
  maxInFlight = 0;
  closed = false;
  constructor(name: string) {
    this.name = name;
  }
  async send(batch: readonly { id: string }[]): Promise<SinkOutcome> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 2));
      if (this.down)
        return {
          kind: "failed",
          error: new BioError("SINK_UNAVAILABLE", `${this.name} is down`),
          lostConnectivity: true,
        };
      for (const e of batch) this.held.set(e.id, (this.held.get(e.id) ?? 0) + 1);
      return { kind: "delivered", acked: batch.map((e) => e.id), rejected: [] };
    } finally {
      this.inFlight--;
    }
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function config(sinks: SinkConfig[]): ConnectorConfig {
  return connectorConfigSchema.parse({
    schemaVersion: 1,
    sources: [],
    sinks,
    shipper: { batchSize: 50, lingerMs: 0, maxBackoffMs: 200 },
  });
}

const hook = (id: string): SinkConfig =>
  ({
    id,
    kind: "webhook",
    url: "http://127.0.0.1:9/hook",
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  }) as SinkConfig;

async function harness(
  t: { after: (fn: () => Promise<void>) => void },
  oneBatch = false,
  beforeMake: (id: string) => void = () => undefined,
) {
  const dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  const live = new LiveConfig();
  const connectivity = new Connectivity({
    client: {} as CloudClient,
    clock: systemClock,
    logger: silentLogger,
    config: () => ({ probeIntervalMs: 1000, probeTimeoutMs: 1000, failuresBeforeOffline: 1000, policy: "pause" }),
  });
  connectivity.reportSuccess();
  const receivers = new Map<string, Receiver>();
  const made: string[] = [];
  const wake = new Notifier();
  const deliveries = new Deliveries({
    store,
    space: { isFull: false, waitRoom: async () => undefined },
    live,
    connectivity,
    clock: systemClock,
    logger: silentLogger,
    wake,
    backoffInitialMs: 10,
    createSink: (sink) => {
      beforeMake(sink.id);
      made.push(sink.id);
      const receiver = receivers.get(sink.id) ?? new Receiver(sink.id);
      receivers.set(sink.id, receiver);
      return receiver;
    },
    oneBatchAtATime: () => oneBatch,
  });
  const controller = new AbortController();
  deliveries.start(controller.signal);
  t.after(async () => {
    await deliveries.stop(Date.now() + 5000);
    controller.abort();
    store.close();
    await dir[Symbol.asyncDispose]();
  });
  const emit = (list: Punch[]) => {
    store.emit("src", list, null);
    wake.notify();
  };
  const receiver = (id: string) => {
    const r = receivers.get(id) ?? new Receiver(id);
    receivers.set(id, r);
    return r;
  };
  return { store, live, deliveries, emit, receiver, made };
}

test("nothing is delivered until a config has said which sinks there are", async (t) => {
  const h = await harness(t);
  h.emit(punches(10));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(h.made, []);
  assert.deepEqual(h.deliveries.status(), []);
  h.live.set(config([hook("a")]));
  await waitFor("the backlog delivered", () => h.store.depth === 0);
  assert.equal(h.receiver("a").held.size, 10);
});

test("one sink down never stops the other; when it is back it gets every punch once, and only then do they leave", async (t) => {
  const h = await harness(t);
  h.receiver("down").down = true;
  h.live.set(config([hook("up"), hook("down")]));
  const list = punches(300);
  h.emit(list);
  await waitFor("the working sink has all 300", () => h.receiver("up").held.size === 300);
  assert.equal(h.store.depth, 300, "the outbox keeps them for the sink that is down");
  const [up, down] = h.deliveries.status();
  assert.equal(up?.backlog, 0);
  assert.equal(down?.backlog, 300);
  assert.equal(down?.lastError?.code, "SINK_UNAVAILABLE");
  h.receiver("down").down = false;
  await waitFor("the outbox drained", () => h.store.depth === 0, 20_000);
  for (const id of ["up", "down"]) {
    const r = h.receiver(id);
    assert.equal(r.held.size, 300, `${id} holds every punch`);
    assert.ok(
      [...r.held.values()].every((n) => n === 1),
      `${id} got each once`,
    );
  }
});

test("a new config version starts only the sink it adds, restarts only the one it changes, stops only the one it removes", async (t) => {
  const h = await harness(t);
  h.live.set(config([hook("a")]));
  h.emit(punches(20));
  await waitFor("a has the first 20", () => h.receiver("a").held.size === 20);
  h.live.set(config([hook("a"), hook("b")]));
  await waitFor("b running", () => h.deliveries.status().length === 2);
  h.emit(punches(5, 100));
  await waitFor("both have the 5 new", () => h.receiver("b").held.size === 5 && h.receiver("a").held.size === 25);
  assert.deepEqual(h.made, ["a", "b"], "a was not restarted");
  assert.equal(h.receiver("b").held.size, 5, "b starts from the moment it was added");
  h.live.set(config([{ ...hook("b"), batchSize: 10 } as SinkConfig]));
  await waitFor("a stopped", () => h.deliveries.status().length === 1);
  assert.equal(h.receiver("a").closed, true);
  assert.deepEqual(h.made, ["a", "b", "b"], "b restarted for its new settings");
  h.emit(punches(3, 200));
  await waitFor("b has the 3 new", () => h.receiver("b").held.size === 8);
  await waitFor("the outbox drained", () => h.store.depth === 0);
  assert.equal(h.receiver("a").held.size, 25, "a removed gets nothing more");
});

test("a sink that sends punch by punch has one batch in flight at a time", async (t) => {
  const h = await harness(t, true);
  h.live.set(config([hook("a")]));
  h.emit(punches(500));
  await waitFor("all delivered", () => h.store.depth === 0);
  assert.equal(h.receiver("a").maxInFlight, 1);
});

test("a sink that cannot be made waits with its cause on the page, and the others deliver", async (t) => {
  const h = await harness(t, false, (id) => {
    if (id === "broken") throw new TypeError("no such kind in this build");
  });
  h.live.set(config([hook("broken"), hook("fine")]));
  h.emit(punches(20));
  await waitFor("fine has them all", () => h.receiver("fine").held.size === 20);
  await waitFor("broken says why", () => h.deliveries.status()[0]?.lastError !== null);
  const [broken] = h.deliveries.status();
  assert.equal(broken?.lastError?.code, "CONFIG_INVALID");
  assert.match(broken?.lastError?.message ?? "", /Sink broken \(webhook\) cannot start: no such kind in this build/);
  assert.equal(broken?.backlog, 20);
  assert.equal(h.store.depth, 20, "its punches wait");
});
