import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import mqtt from "mqtt";
import { type MqttSinkConfig, mqttSinkSchema } from "../../src/config/sink-schema.ts";
import { systemClock } from "../../src/core/clock.ts";
import { type Logger, silentLogger } from "../../src/core/logger.ts";
import type { Sink, SinkOutcome } from "../../src/sinks/sink.ts";
import { createSink, type SinkContext } from "../../src/sinks/sink-kinds.ts";
import type { OutboxEntry } from "../../src/store/store.ts";
import { waitFor } from "./wait-for.ts";

/** A node id no other test run shares, so topics and sessions on the machine's broker never mix. */
export function testNodeId(): string {
  return `t${randomBytes(5).toString("hex")}`;
}

export const SERIALS = ["CKJ7201001", "OIN5320117", "ZKT0000005"] as const;

/** Outbox entries holding punches as the store holds them: a Punch's JSON with its id. */
export function punches(count: number, prefix = "p", serials: readonly string[] = SERIALS): OutboxEntry[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `${prefix}${String(i).padStart(7, "0")}`;
    const punch = {
      id,
      deviceSerial: serials[i % serials.length],
      userId: String(1 + (i % 250)),
      time: new Date(Date.UTC(2025, 0, 1) + i * 7000).toISOString().replace("Z", "+00:00"),
      state: i % 2 ? "checkOut" : "checkIn",
      stateCode: i % 2,
      verify: "fingerprint",
      verifyCode: 1,
      source: "zk",
      collectedAt: "2025-01-01T00:00:00.000Z",
    };
    return { seq: i + 1, id, sourceId: "src-1", body: JSON.stringify(punch), enqueuedAt: 0, attempts: 0 };
  });
}

export interface RunningSink extends AsyncDisposable {
  readonly sink: Sink;
  readonly config: MqttSinkConfig;
  /** Aborts run(), waits for it to end, then closes the sink. */
  stop(): Promise<void>;
}

/** The mqtt kind, made through its sink-kinds entry as the connector makes it, with run() started. */
export function startSink(
  fields: Record<string, unknown>,
  options: { nodeId: string; logger?: Logger; heartbeat?: () => unknown; run?: boolean },
): RunningSink {
  const config = mqttSinkSchema.parse({ id: "mq", kind: "mqtt", ...fields });
  const ctx: SinkContext = {
    nodeId: options.nodeId,
    client: undefined as never,
    clock: systemClock,
    logger: options.logger ?? silentLogger,
    shipper: () => ({
      batchSize: 1000,
      lingerMs: 25,
      maxInFlight: 2,
      requestTimeoutMs: 5000,
      maxBackoffMs: 1000,
      gzip: true,
    }),
    memory: { get: () => undefined, put: () => undefined },
    heartbeat: options.heartbeat ?? (() => ({ nodeId: options.nodeId, version: "test" })),
  };
  const sink = createSink(config, ctx);
  const controller = new AbortController();
  const running = options.run === false ? Promise.resolve() : (sink.run?.(controller.signal) ?? Promise.resolve());
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      controller.abort();
      await running;
      await sink.close?.();
    })();
    return stopped;
  };
  return { sink, config, stop, [Symbol.asyncDispose]: stop };
}

export async function connected(sink: Sink, timeoutMs = 20_000): Promise<void> {
  await waitFor("the sink connected", () => sink.details?.().connected === true, timeoutMs);
}

/**
 * What the shipper does, reduced: send in batches until every punch is acked, retrying the rest after a pause.
 * Returns every outcome, in order, for the test to look at.
 */
export async function deliverAll(
  sink: Sink,
  entries: readonly OutboxEntry[],
  options: { batchSize?: number; pauseMs?: number; timeoutMs?: number; beforeSend?: (acked: number) => void } = {},
): Promise<{ outcomes: SinkOutcome[]; acked: Set<string> }> {
  const { batchSize = 1000, pauseMs = 100, timeoutMs = 60_000 } = options;
  const acked = new Set<string>();
  const outcomes: SinkOutcome[] = [];
  const deadline = Date.now() + timeoutMs;
  let pending = [...entries];
  while (pending.length > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.length} punches still unacked after ${timeoutMs} ms`);
    options.beforeSend?.(acked.size);
    const batch = pending.slice(0, batchSize);
    const outcome = await sink.send(batch, AbortSignal.timeout(30_000));
    outcomes.push(outcome);
    if (outcome.kind === "delivered") {
      for (const id of outcome.acked) acked.add(id);
      for (const r of outcome.rejected) if (r.permanent) acked.add(r.id);
      pending = pending.filter((e) => !acked.has(e.id));
      if (outcome.acked.length === batch.length) continue;
    }
    await sleep(pauseMs);
  }
  return { outcomes, acked };
}

/** Removes what a test left on a shared broker: retained messages on `topics` and the session of `clientId`. */
export async function cleanBroker(url: string, clientId: string, topics: readonly string[]): Promise<void> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId,
    clean: true,
    properties: { sessionExpiryInterval: 0 },
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  for (const topic of topics) await client.publishAsync(topic, "", { qos: 1, retain: true });
  await client.endAsync();
}
