/**
 * `npm run bench:callback`: the cams-callback sink alone delivering 20,000 punches, one POST each, to the loopback
 * Cams callback receiver, beside a raw baseline in the same run: a bare loop of fetch POSTs of the same bodies to the
 * same receiver with the same concurrency. The sink's extra cost (encoding, the per-user lanes, judging each answer)
 * is the gap between the two. Target: ≥ 2,000 punches/s.
 *
 * BENCH_CALLBACK_PUNCHES (20,000), BENCH_CALLBACK_CONCURRENCY (8, the config default) override the sizes.
 */
import { CamsCallbackReceiver } from "../cloud/receivers/cams-callback-receiver.ts";
import { systemClock } from "../src/core/clock.ts";
import { punchId } from "../src/core/punch.ts";
import { encodeCamsPunch } from "../src/sinks/cams-callback/cams-callback-codec.ts";
import { CamsCallbackSink } from "../src/sinks/cams-callback/cams-callback-sink.ts";
import type { OutboxEntry } from "../src/store/store.ts";
import { log, SERIALS } from "./bench-kit.ts";

const PUNCHES = Number(process.env.BENCH_CALLBACK_PUNCHES ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CALLBACK_CONCURRENCY ?? 8);
const BATCH = 1000;
const TOKEN = "bench-token-0123456789abcdef";
const TARGET = 2000;

function backlog(tag: string): OutboxEntry[] {
  return Array.from({ length: PUNCHES }, (_, n) => {
    const serial = SERIALS[n % SERIALS.length] as string;
    const userId = String(1 + (n % 2500));
    const local = new Date(Date.UTC(2025, 0, 1) + n * 7000).toISOString().slice(0, 19);
    const id = punchId(serial, `${tag}${userId}`, local, n % 2);
    const punch = {
      id,
      deviceSerial: serial,
      userId,
      time: `${local}+05:30`,
      state: n % 2 ? "checkOut" : "checkIn",
      stateCode: n % 2,
      verify: "fingerprint",
      verifyCode: 1,
      source: "database",
      collectedAt: new Date().toISOString(),
    };
    return { seq: n + 1, id, sourceId: "bench", body: JSON.stringify(punch), enqueuedAt: 0, attempts: 0 };
  });
}

/** The floor: pre-encoded bodies, `CONCURRENCY` loops of fetch, no lanes, no judging beyond the status. */
async function rawBaseline(): Promise<number> {
  const receiver = await CamsCallbackReceiver.start({ authToken: TOKEN });
  try {
    const requests = backlog("raw").map((e) =>
      encodeCamsPunch(e.body, { authToken: TOKEN, labels: {}, nowMs: Date.now() }),
    );
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const request = requests[next++] as { serial: string; body: string };
          const res = await fetch(`${receiver.url}?stgid=${encodeURIComponent(request.serial)}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: request.body,
          });
          await res.text();
          if (res.status !== 200) throw new Error(`raw baseline: ${res.status}`);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    if (receiver.punches.size !== PUNCHES) throw new Error(`raw baseline: ${receiver.punches.size} taken`);
    return PUNCHES / seconds;
  } finally {
    await receiver.close();
  }
}

/** The sink as the shipper drives it: batches of 1000, one at a time, re-sending what is not settled. */
async function sinkRun(): Promise<number> {
  const receiver = await CamsCallbackReceiver.start({ authToken: TOKEN });
  try {
    const sink = new CamsCallbackSink({
      url: receiver.url,
      authToken: TOKEN,
      concurrency: CONCURRENCY,
      clock: systemClock,
      timeoutMs: () => 15_000,
    });
    const entries = backlog("sink");
    const signal = new AbortController().signal;
    const t0 = performance.now();
    for (let i = 0; i < entries.length; i += BATCH) {
      let pending = entries.slice(i, i + BATCH);
      for (let round = 0; pending.length > 0; round++) {
        if (round > 20) throw new Error("the sink did not settle a batch in 20 rounds");
        const outcome = await sink.send(pending, signal);
        if (outcome.kind !== "delivered") continue;
        const settled = new Set([...outcome.acked, ...outcome.rejected.map((r) => r.id)]);
        pending = pending.filter((e) => !settled.has(e.id));
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    if (receiver.punches.size !== PUNCHES) throw new Error(`sink: ${receiver.punches.size} taken`);
    if (receiver.orderViolations.length > 0) throw new Error(`sink: ${receiver.orderViolations[0]}`);
    return PUNCHES / seconds;
  } finally {
    await receiver.close();
  }
}

async function main(): Promise<void> {
  log(`Delivering ${PUNCHES.toLocaleString()} punches, one POST each, concurrency ${CONCURRENCY}, over loopback…`);
  const raw = await rawBaseline();
  log(`  raw fetch loop: ${Math.round(raw).toLocaleString()} punches/s`);
  const ours = await sinkRun();
  log(`  cams-callback sink: ${Math.round(ours).toLocaleString()} punches/s`);
  const ratio = Number((ours / raw).toFixed(2));
  const pass = ours >= TARGET ? "PASS" : "FAIL";
  process.stdout.write(
    `\ncams-callback sink  ${Math.round(ours).toLocaleString()} punches/s  vs raw fetch loop ${Math.round(raw).toLocaleString()} punches/s (${ratio}×)  target ≥ ${TARGET.toLocaleString()}/s ${pass}\n\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ punches: PUNCHES, concurrency: CONCURRENCY, sinkPerSec: Math.round(ours), rawPerSec: Math.round(raw), ratio }, null, 2)}\n`,
  );
  if (ours < TARGET) process.exitCode = 1;
}

await main();
