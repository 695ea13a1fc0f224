import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { MqttCounter } from "../../../cloud/receivers/mqtt-counter.ts";
import { mosquittoMissing, startMosquitto } from "../../../test/helpers/mosquitto.ts";
import { connected, deliverAll, punches, startSink, testNodeId } from "../../../test/helpers/mqtt-sink-kit.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";

const skip = mosquittoMissing();

test("the broker goes down mid-stream: failed outcomes, then delivery resumes; every id arrives, duplicates counted", {
  skip,
  timeout: 120_000,
}, async (t) => {
  await using dir = await tempDir("bioapi-mqtt-down-");
  await using broker = await startMosquitto(dir.path, ["allow_anonymous true"]);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const nodeId = testNodeId();
  // A persistent subscriber: what the broker acked but had not yet passed on when it stopped waits for it.
  const counter = await MqttCounter.start({ url, punches: `cams/${nodeId}/punches/+`, persistent: true });
  t.after(() => counter.close());
  await using s = startSink({ url, requestTimeoutMs: 2000, maxBackoffMs: 300 }, { nodeId });
  await connected(s.sink);

  const entries = punches(20_000);
  let stopped = false;
  let restarted: Promise<void> | undefined;
  const failures: string[] = [];
  const { outcomes, acked } = await deliverAll(s.sink, entries, {
    batchSize: 1000,
    pauseMs: 50,
    timeoutMs: 90_000,
    beforeSend: (n) => {
      // Stopped while a batch is travelling, not between two.
      if (!stopped && n >= 5000) {
        stopped = true;
        setTimeout(() => {
          void broker.stop("SIGTERM").then(() => {
            restarted = sleep(1500).then(() => broker.start());
          });
        }, 2);
      }
    },
  });
  await restarted;
  for (const o of outcomes) if (o.kind === "failed") failures.push(`${o.error.code} ${o.lostConnectivity}`);
  t.diagnostic(`outcomes: ${outcomes.length}, failed: ${failures.length}`);
  assert.ok(failures.length >= 1, "sends while the broker was down failed");
  assert.ok(
    failures.every((f) => f === "SINK_UNAVAILABLE false"),
    `a LAN broker down is not lost connectivity: ${[...new Set(failures)].join(", ")}`,
  );
  assert.equal(acked.size, entries.length);

  await waitFor("every acked punch at the subscriber", () => counter.unique === entries.length, 60_000);
  const expected = new Set(entries.map((e) => e.id));
  const missing = [...expected].filter((id) => !counter.ids.has(id));
  const unknown = [...counter.ids.keys()].filter((id) => !expected.has(id));
  assert.deepEqual(missing, []);
  assert.deepEqual(unknown, []);
  t.diagnostic(`arrived ${counter.messages}, unique ${counter.unique}, duplicates at the broker ${counter.duplicates}`);
  assert.equal(counter.messages, counter.unique + counter.duplicates);
  assert.ok(s.sink.details?.().connected);
});

test("a broker that stops answering: no PUBACK means not delivered; the publish times out, the sink reconnects", {
  skip,
  timeout: 60_000,
}, async (t) => {
  await using dir = await tempDir("bioapi-mqtt-stall-");
  await using broker = await startMosquitto(dir.path, ["allow_anonymous true"]);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const nodeId = testNodeId();
  const counter = await MqttCounter.start({ url, punches: `cams/${nodeId}/punches/+`, persistent: true });
  t.after(() => counter.close());
  await using s = startSink({ url, requestTimeoutMs: 1000, maxBackoffMs: 300 }, { nodeId });
  await connected(s.sink);
  const mosquittoPid = broker.pid;
  assert.ok(mosquittoPid);
  process.kill(mosquittoPid, "SIGSTOP");
  try {
    const outcome = await s.sink.send(punches(50, "s"), AbortSignal.timeout(20_000));
    assert.equal(outcome.kind, "failed", "nothing was acked by a broker that answers nothing");
    assert.ok(outcome.kind === "failed");
    assert.match(outcome.error.message, /sent no PUBACK within 1000 ms/);
    assert.equal(outcome.lostConnectivity, false);
  } finally {
    process.kill(mosquittoPid, "SIGCONT");
  }
  const { acked } = await deliverAll(s.sink, punches(50, "s"), { pauseMs: 100, timeoutMs: 30_000 });
  assert.equal(acked.size, 50);
  await waitFor("the 50 punches", () => counter.unique === 50, 30_000);
  // The stalled connection's publishes may have reached the broker before it froze: seen twice, never missing.
  t.diagnostic(`duplicates at the broker: ${counter.duplicates}`);
});

test("MQTT 5 PUBACK 0x87 (access rules) is no delivery: a batch of only refused punches fails SINK_AUTH; a mixed one acks the rest", {
  skip,
}, async (t) => {
  await using dir = await tempDir("bioapi-mqtt-acl-");
  const nodeId = testNodeId();
  const acl = join(dir.path, "acl");
  await writeFile(acl, `topic readwrite cams/${nodeId}/status\ntopic readwrite cams/${nodeId}/punches/OK\n`);
  await using broker = await startMosquitto(dir.path, ["allow_anonymous true", `acl_file ${acl}`]);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const counter = await MqttCounter.start({ url, punches: `cams/${nodeId}/punches/OK` });
  t.after(() => counter.close());
  await using s = startSink({ url }, { nodeId });
  await connected(s.sink);

  const denied = await s.sink.send(punches(3, "d", ["DENIED"]), AbortSignal.timeout(10_000));
  assert.ok(denied.kind === "failed", denied.kind);
  assert.equal(denied.error.code, "SINK_AUTH");
  assert.match(denied.error.message, /does not let this client publish to "cams\/\w+\/punches\/DENIED" \(0x87\)/);
  assert.match(denied.error.message, /access rules \(ACL\)/);

  const mixed = await s.sink.send(punches(4, "m", ["OK", "DENIED"]), AbortSignal.timeout(10_000));
  assert.ok(mixed.kind === "delivered", mixed.kind);
  assert.deepEqual(mixed.acked, ["m0000000", "m0000002"]);
  assert.deepEqual(
    mixed.rejected.map((r) => [r.id, r.permanent]),
    [
      ["m0000001", false],
      ["m0000003", false],
    ],
    "refused by configuration, not by the punch: sent again, never quarantined",
  );
  await waitFor("the allowed punches", () => counter.unique === 2);
});
