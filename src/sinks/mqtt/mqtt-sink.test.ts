import assert from "node:assert/strict";
import { test } from "node:test";
import { MqttCounter } from "../../../cloud/receivers/mqtt-counter.ts";
import { systemBrokerMissing } from "../../../test/helpers/mosquitto.ts";
import {
  cleanBroker,
  connected,
  deliverAll,
  punches,
  startSink,
  testNodeId,
} from "../../../test/helpers/mqtt-sink-kit.ts";
import { tcpProxy } from "../../../test/helpers/tcp-proxy.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { mqttSinkSchema } from "../../config/sink-schema.ts";
import { TopicTemplate } from "./mqtt-topic.ts";

const BROKER = "mqtt://127.0.0.1:1883";
const skip = await systemBrokerMissing();

test("a topic template with a wildcard, an empty level, a leading $ or an unknown placeholder is refused, saying why", () => {
  const refused = (topic: string) => {
    const result = mqttSinkSchema.safeParse({ id: "mq", kind: "mqtt", url: BROKER, topic });
    assert.equal(result.success, false, topic);
    return result.error?.issues.map((i) => i.message).join("; ") ?? "";
  };
  assert.match(refused("cams/+/punches"), /wildcard \(\+ or #\).*name each level/);
  assert.match(refused("cams/#"), /wildcard/);
  assert.match(refused("cams//punches"), /empty level/);
  assert.match(refused("/cams/punches"), /empty level/);
  assert.match(refused("cams/punches/"), /empty level/);
  assert.match(refused("$SYS/x"), /starts with "\$"/);
  assert.match(refused("cams/{deviceId}"), /\{deviceId\}.*use only \{nodeId\}, \{serial\}, \{userId\}, \{sourceId\}/);
  const status = mqttSinkSchema.safeParse({ id: "mq", kind: "mqtt", url: BROKER, statusTopic: "s/{serial}" });
  assert.equal(status.success, false);
  assert.ok(mqttSinkSchema.safeParse({ id: "mq", kind: "mqtt", url: BROKER, topic: "a/{userId}/{sourceId}" }).success);
});

test("a value that would break the topic (a /, a wildcard, empty) names the field and the fix", () => {
  const t = new TopicTemplate("cams/{nodeId}/punches/{serial}/{userId}");
  assert.deepEqual(t.render({ nodeId: "n", serial: "S1", userId: "7" }), { topic: "cams/n/punches/S1/7" });
  for (const [userId, why] of [
    ["a/b", /"\/"/],
    ["a+", /wildcard/],
    ["#", /wildcard/],
    ["", /empty/],
  ] as const) {
    const r = t.render({ nodeId: "n", serial: "S1", userId });
    assert.ok("problem" in r);
    assert.match(r.problem, why);
    assert.match(r.problem, /its userId .*take \{userId\} out of the topic/);
  }
});

test("send before run has connected fails at once (SINK_UNAVAILABLE, not lost connectivity) instead of waiting", async () => {
  const nodeId = testNodeId();
  await using s = startSink({ url: BROKER }, { nodeId, run: false });
  const outcome = await s.sink.send(punches(3), AbortSignal.timeout(5000));
  assert.equal(outcome.kind, "failed");
  assert.ok(outcome.kind === "failed");
  assert.equal(outcome.error.code, "SINK_UNAVAILABLE");
  assert.equal(outcome.lostConnectivity, false);
  assert.match(outcome.error.message, /Not connected to the MQTT broker 127\.0\.0\.1:1883/);
});

for (const protocolVersion of [5, 4] as const) {
  test(`MQTT ${protocolVersion === 5 ? "5" : "3.1.1"}: each punch is acked on its PUBACK and reaches a subscriber once, on its topic`, {
    skip,
  }, async (t) => {
    const nodeId = testNodeId();
    const counter = await MqttCounter.start({ url: BROKER, punches: `cams/${nodeId}/punches/+` });
    t.after(() => counter.close());
    await using s = startSink({ url: BROKER, protocolVersion }, { nodeId });
    t.after(() => cleanBroker(BROKER, `cams-${nodeId}-mq`, [`cams/${nodeId}/status`]));
    await connected(s.sink);
    const entries = punches(3000);
    const { outcomes, acked } = await deliverAll(s.sink, entries);
    assert.ok(
      outcomes.every((o) => o.kind === "delivered" && o.rejected.length === 0),
      JSON.stringify(outcomes[0]),
    );
    assert.equal(acked.size, 3000);
    await waitFor("every punch at the subscriber", () => counter.unique === 3000);
    assert.deepEqual([...counter.ids.keys()].sort(), entries.map((e) => e.id).sort());
    t.diagnostic(`duplicates at the broker: ${counter.duplicates}`);
    assert.equal(counter.duplicates, 0, "no connection dropped, so no punch was sent twice");
    // MQTT 5 carries the id in a user property too, so a subscriber can dedupe without parsing the payload.
    assert.equal(counter.withPunchIdProperty, protocolVersion === 5 ? 3000 : 0);
    const details = s.sink.details?.() ?? {};
    assert.equal(details.connected, true);
    assert.equal(details.inFlight, 0);
    assert.equal(details.clientId, `cams-${nodeId}-mq`);
    assert.match(String(details.lastPubackAt), /^\d{4}-\d\d-\d\dT/);
  });
}

test("a punch whose field would make a bad topic is rejected for good; the rest of its batch is delivered", {
  skip,
}, async (t) => {
  const nodeId = testNodeId();
  const counter = await MqttCounter.start({ url: BROKER, punches: `cams/${nodeId}/punches/+` });
  t.after(() => counter.close());
  await using s = startSink({ url: BROKER }, { nodeId });
  t.after(() => cleanBroker(BROKER, `cams-${nodeId}-mq`, [`cams/${nodeId}/status`]));
  await connected(s.sink);
  const entries = punches(4, "q", ["GOOD1", "BAD/1", "GOOD2", "BAD+"]);
  const outcome = await s.sink.send(entries, AbortSignal.timeout(10_000));
  assert.ok(outcome.kind === "delivered", outcome.kind);
  assert.deepEqual([...outcome.acked].sort(), ["q0000000", "q0000002"]);
  assert.deepEqual(
    outcome.rejected.map((r) => [r.id, r.permanent]),
    [
      ["q0000001", true],
      ["q0000003", true],
    ],
  );
  assert.match(outcome.rejected[0]?.reason ?? "", /its serial "BAD\/1" holds "\/".*take \{serial\} out of the topic/);
  await waitFor("the good punches", () => counter.unique === 2);
});

test("the heartbeat is retained with online true; a killed socket brings the last-will (offline), a stop says offline retained", {
  skip,
}, async (t) => {
  const nodeId = testNodeId();
  const statusTopic = `cams/${nodeId}/status`;
  const watcher = await MqttCounter.start({ url: BROKER, punches: `cams/${nodeId}/punches/+`, status: statusTopic });
  t.after(() => watcher.close());
  await using proxy = await tcpProxy(1883);
  let beats = 0;
  await using s = startSink(
    { url: `mqtt://127.0.0.1:${proxy.port}`, statusIntervalMs: 1000 },
    { nodeId, heartbeat: () => ({ nodeId, beats: ++beats }) },
  );
  t.after(() => cleanBroker(BROKER, `cams-${nodeId}-mq`, [statusTopic]));
  await connected(s.sink);
  await waitFor("an online heartbeat", () => watcher.status.some((m) => m.body.online === true));
  // One who subscribes later gets the retained heartbeat at once.
  const late = await MqttCounter.start({ url: BROKER, punches: `cams/${nodeId}/punches/+`, status: statusTopic });
  await waitFor("the retained heartbeat", () => late.status[0]);
  assert.equal(late.status[0]?.retained, true);
  assert.equal(late.status[0]?.body.online, true);
  assert.equal(late.status[0]?.body.nodeId, nodeId);
  assert.ok(Number(late.status[0]?.body.beats) >= 1);
  await late.close();
  // Refreshed on its interval.
  await waitFor("a second heartbeat", () => watcher.status.filter((m) => m.body.online === true).length >= 2);

  proxy.cut();
  await waitFor("the last-will", () => watcher.status.find((m) => m.body.online === false));
  const will = watcher.status.find((m) => m.body.online === false)?.body;
  assert.deepEqual(will, { nodeId, online: false, reason: "connection lost" });
  const seen = watcher.status.length;
  await waitFor("online again after the reconnect", () => watcher.status.slice(seen).some((m) => m.body.online));
  await connected(s.sink);
  assert.ok(proxy.accepted >= 2);

  await s.stop();
  await waitFor("offline on stop", () => watcher.status.find((m) => m.body.reason === "stopped"));
  const after = await MqttCounter.start({ url: BROKER, punches: `cams/${nodeId}/punches/+`, status: statusTopic });
  t.after(() => after.close());
  await waitFor("the retained offline", () => after.status[0]);
  assert.equal(after.status[0]?.retained, true);
  assert.equal(after.status[0]?.body.online, false);
  assert.equal(after.status[0]?.body.reason, "stopped");
  // A clean disconnect sends no will: the last word stays "stopped".
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(watcher.status.at(-1)?.body.reason, "stopped");
  assert.equal(s.sink.details?.().connected, false);
});

test("the session persists across restarts under the default client id cams-<nodeId>-<sink id>", {
  skip,
}, async (t) => {
  const nodeId = testNodeId();
  const counter = await MqttCounter.start({ url: BROKER, punches: `cams/${nodeId}/punches/+` });
  t.after(() => counter.close());
  t.after(() => cleanBroker(BROKER, `cams-${nodeId}-mq`, [`cams/${nodeId}/status`]));
  const first = startSink({ url: BROKER }, { nodeId });
  await connected(first.sink);
  assert.equal(first.sink.details?.().sessionPresent, false);
  await deliverAll(first.sink, punches(500, "a"));
  await first.stop();

  await using second = startSink({ url: BROKER }, { nodeId });
  await connected(second.sink);
  assert.equal(second.sink.details?.().clientId, `cams-${nodeId}-mq`);
  assert.equal(second.sink.details?.().sessionPresent, true, "the broker kept the session of the first run");
  await deliverAll(second.sink, punches(500, "b"));
  await waitFor("both runs' punches", () => counter.unique === 1000);
  assert.equal(counter.duplicates, 0);
});
