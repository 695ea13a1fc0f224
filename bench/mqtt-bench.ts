// npm run bench:mqtt: the mqtt sink publishing 200,000 punches into the local Mosquitto (QoS 1, batches of 1000,
// no subscriber on the punch topics), beside a bare mqtt.js client doing the same QoS 1 publishes, in the same run,
// to the same broker: that client's rate is what the broker takes from one connection, the ceiling the sink is
// judged against. Target: the sink at ≥ 20,000 punches/s. MQTT_URL picks another broker (default 127.0.0.1:1883).
import { randomBytes } from "node:crypto";
import mqtt from "mqtt";
import { mqttSinkSchema } from "../src/config/sink-schema.ts";
import { systemClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/logger.ts";
import { createSink } from "../src/sinks/sink-kinds.ts";
import type { OutboxEntry } from "../src/store/store.ts";
import { log, SERIALS } from "./bench-kit.ts";

const URL = process.env.MQTT_URL ?? "mqtt://127.0.0.1:1883";
const COUNT = 200_000;
const BATCH = 1000;
const TARGET = 20_000;
const nodeId = `bench${randomBytes(3).toString("hex")}`;

function entries(prefix: string): OutboxEntry[] {
  return Array.from({ length: COUNT }, (_, n) => {
    const id = `${prefix}${n.toString(16).padStart(30, "0")}`;
    const local = new Date(Date.UTC(2025, 0, 1) + n * 7000).toISOString().slice(0, 19);
    const body = JSON.stringify({
      id,
      deviceSerial: SERIALS[n % SERIALS.length],
      userId: String(1 + (n % 2500)),
      time: `${local}+05:30`,
      state: n % 2 ? "checkOut" : "checkIn",
      stateCode: n % 2,
      verify: "fingerprint",
      verifyCode: 1,
      source: "database",
      collectedAt: new Date().toISOString(),
    });
    return { seq: n + 1, id, sourceId: "db-1", body, enqueuedAt: 0, attempts: 0 };
  });
}

/**
 * A bare client sending the packets the sink sends (topic per serial, the same MQTT 5 properties), each batch's 1000
 * QoS 1 publishes at once, the next batch when all are acked.
 */
interface Run {
  readonly rate: number;
  /** This process's CPU per punch: what the client side costs, whatever else the machine is doing. */
  readonly cpuUsPerPunch: number;
}

async function bare(batch: readonly OutboxEntry[][]): Promise<Run> {
  const client = await mqtt.connectAsync(URL, { protocolVersion: 5, clientId: `${nodeId}-bare`, clean: true });
  const topics = SERIALS.map((serial) => `bare/${nodeId}/punches/${serial}`);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let n = 0;
  for (const b of batch) {
    await Promise.all(
      b.map(
        (e) =>
          new Promise<void>((resolve, reject) => {
            const properties = {
              payloadFormatIndicator: true,
              contentType: "application/json",
              userProperties: { punchId: e.id },
            };
            client.publish(topics[n++ % topics.length] as string, e.body, { qos: 1, properties }, (error) =>
              error ? reject(error) : resolve(),
            );
          }),
      ),
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client.endAsync();
  return { rate: COUNT / seconds, cpuUsPerPunch: (cpu.user + cpu.system) / COUNT };
}

async function sink(batch: readonly OutboxEntry[][]): Promise<Run> {
  const config = mqttSinkSchema.parse({ id: "bench", kind: "mqtt", url: URL });
  const s = createSink(config, {
    nodeId,
    client: undefined as never,
    clock: systemClock,
    logger: silentLogger,
    shipper: () => ({
      batchSize: BATCH,
      lingerMs: 25,
      maxInFlight: 2,
      requestTimeoutMs: 15_000,
      maxBackoffMs: 5000,
      gzip: true,
    }),
    memory: { get: () => undefined, put: () => undefined },
    heartbeat: () => ({ nodeId }),
  });
  const controller = new AbortController();
  const running = s.run?.(controller.signal);
  const deadline = Date.now() + 15_000;
  while (!s.details?.().connected) {
    if (Date.now() > deadline) throw new Error(`the sink did not connect to ${URL}: ${s.details?.().lastError}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let acked = 0;
  for (const b of batch) {
    const outcome = await s.send(b, AbortSignal.timeout(60_000));
    if (outcome.kind !== "delivered" || outcome.acked.length !== b.length) {
      throw new Error(`a batch was not delivered whole: ${JSON.stringify(outcome).slice(0, 300)}`);
    }
    acked += outcome.acked.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  controller.abort();
  await running;
  await s.close?.();
  // Leave nothing retained on the broker.
  const cleaner = await mqtt.connectAsync(URL, { protocolVersion: 5, clientId: `cams-${nodeId}-bench`, clean: true });
  await cleaner.publishAsync(`cams/${nodeId}/status`, "", { qos: 1, retain: true });
  await cleaner.endAsync();
  if (acked !== COUNT) throw new Error(`acked ${acked} of ${COUNT}`);
  return { rate: COUNT / seconds, cpuUsPerPunch: (cpu.user + cpu.system) / COUNT };
}

function batches(all: OutboxEntry[]): OutboxEntry[][] {
  const out: OutboxEntry[][] = [];
  for (let i = 0; i < all.length; i += BATCH) out.push(all.slice(i, i + BATCH));
  return out;
}

async function main(): Promise<void> {
  log(`mqtt bench: ${COUNT.toLocaleString()} punches, QoS 1, batches of ${BATCH}, ${URL}, no subscriber`);
  const bareRun = await bare(batches(entries("a")));
  log(`bare mqtt.js client: ${Math.round(bareRun.rate).toLocaleString()} publishes/s`);
  const sinkRun = await sink(batches(entries("b")));
  log(`mqtt sink: ${Math.round(sinkRun.rate).toLocaleString()} punches/s`);
  const ratio = sinkRun.rate / bareRun.rate;
  const pass = sinkRun.rate >= TARGET;
  const rows: [string, string, string][] = [
    [
      "bare mqtt.js client, QoS 1",
      `${Math.round(bareRun.rate).toLocaleString()} publishes/s, ${bareRun.cpuUsPerPunch.toFixed(1)} µs CPU each`,
      "the broker's rate from one connection",
    ],
    [
      "mqtt sink, QoS 1",
      `${Math.round(sinkRun.rate).toLocaleString()} punches/s, ${sinkRun.cpuUsPerPunch.toFixed(1)} µs CPU each`,
      `${ratio.toFixed(2)}× the bare client; target ≥ ${TARGET.toLocaleString()}/s ${pass ? "PASS" : "FAIL"}`,
    ],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write(`\n${rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`).join("\n")}\n\n`);
  const result = {
    count: COUNT,
    batch: BATCH,
    qos: 1,
    subscriber: false,
    bare: { rate: Math.round(bareRun.rate), cpuUsPerPunch: Number(bareRun.cpuUsPerPunch.toFixed(2)) },
    sink: { rate: Math.round(sinkRun.rate), cpuUsPerPunch: Number(sinkRun.cpuUsPerPunch.toFixed(2)) },
    ratio: Number(ratio.toFixed(3)),
    target: TARGET,
    pass,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (!pass) process.exitCode = 1;
}

await main();
