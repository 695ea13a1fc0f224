import assert from "node:assert/strict";
import { test } from "node:test";
import { startCloud } from "../../cloud/cloud-server.ts";
import { e2e, fastConfig, PATIENT_SHIPPER } from "../helpers/e2e-harness.ts";
import { loopLag } from "../helpers/loop-lag.ts";
import { waitFor } from "../helpers/wait-for.ts";

test("N punches inserted into the source database arrive exactly once at the cloud", async () => {
  await using h = await e2e({ config: (db) => fastConfig(db, { shipper: PATIENT_SHIPPER }) });
  h.db.insertMany(1500, ["S1", "S2", "S3"]);
  await h.startConnector();
  await waitFor("1500 punches in the cloud", () => h.cloud.stats(h.nodeId).total === 1500);
  h.db.insertMany(30, ["S1", "S4"], Date.UTC(2026, 10, 27, 6), 9000);
  await waitFor("1530 punches in the cloud", () => h.cloud.stats(h.nodeId).total === 1530);
  await new Promise((r) => setTimeout(r, 400));
  const stats = h.cloud.stats(h.nodeId);
  assert.equal(stats.total, 1530);
  assert.equal(stats.duplicateDeliveries, 0);
  assert.deepEqual(Object.keys(stats.byDevice).sort(), ["S1", "S2", "S3", "S4"]);
  const punches = h.cloud.punches(h.nodeId, 10_000);
  assert.ok(
    punches.every((p) => p.idConsistent),
    "every id follows the documented recipe",
  );
  assert.ok(punches.every((p) => p.deliveries === 1));
  assert.equal(h.connector().status().outbox.depth, 0);
  const heartbeat = (await waitFor("a heartbeat with the source", () => {
    const last = h.cloud.lastStatus(h.nodeId) as { sources?: unknown[] } | undefined;
    return last?.sources?.length ? last : undefined;
  })) as { configVersion: number; sources: Array<{ id: string; state: string }>; outbox: { depth: number } };
  assert.equal(heartbeat.configVersion, 1);
  assert.deepEqual(
    heartbeat.sources.map((s) => [s.id, s.state]),
    [["att", "running"]],
  );
  assert.equal(JSON.stringify(heartbeat).includes(h.secret), false);
});

test("cloud 500s, 429 with Retry-After and responses slower than the timeout lose nothing", async () => {
  await using h = await e2e();
  h.db.insertMany(600, ["S1", "S2"]);
  h.cloud.injectFault({ route: "punches", status: 500, times: 3 });
  await h.startConnector();
  await waitFor("500s served", () => (h.cloud.requests.byRouteStatus.punches[500] ?? 0) === 3);
  await waitFor("600 after 500s", () => h.cloud.stats(h.nodeId).total === 600);

  h.cloud.injectFault({ route: "punches", status: 429, retryAfterSeconds: 1, times: 1 });
  h.db.insertMany(10, ["S1"], Date.UTC(2026, 10, 27, 6), 7000);
  const t429 = await waitFor(
    "the 429",
    () => ((h.cloud.requests.byRouteStatus.punches[429] ?? 0) === 1 ? Date.now() : 0),
    10_000,
    5,
  );
  await waitFor("610 after 429", () => h.cloud.stats(h.nodeId).total === 610);
  const waited = Date.now() - t429;
  assert.ok(waited >= 900, `Retry-After of 1 s honoured (retried after ${waited} ms)`);

  // Slower than the 1 s request timeout: the connector gives up, the cloud still ingests, the retry is a duplicate.
  h.cloud.injectFault({ route: "punches", delayMs: 1500, times: 1 });
  h.db.insertMany(10, ["S2"], Date.UTC(2026, 10, 28, 6), 8000);
  await waitFor("620 after slow response", () => h.cloud.stats(h.nodeId).total === 620);
  await waitFor("outbox drained", () => h.connector().status().outbox.depth === 0);
  const ids = h.cloudIds();
  assert.equal(ids.size, 620);
  assert.ok([...ids.values()].every((n) => n >= 1));
});

test("cloud down: workers pause within one probe interval, resume by themselves, nothing lost", async () => {
  await using h = await e2e({ config: (db) => fastConfig(db, { shipper: PATIENT_SHIPPER }) });
  h.db.insertMany(100, ["S1"]);
  await h.startConnector();
  await waitFor("first 100", () => h.cloud.stats(h.nodeId).total === 100);
  using lag = loopLag();
  const downAt = Date.now();
  await h.cloud.stop();
  const pausedAt = await waitFor(
    "source paused",
    () => (h.connector().status().sources[0]?.state === "paused" ? Date.now() : 0),
    // A failure deadline only; the bound below is the assertion.
    60_000,
    10,
  );
  // Probe interval 300 ms; a first failure is confirmed within 75 ms; a refused connection fails fast. On a busy
  // machine every one of those timers runs late by the lag measured meanwhile.
  const bound = 300 + 75 + 150 + lag.totalMs;
  assert.ok(
    pausedAt - downAt <= bound,
    `paused ${pausedAt - downAt} ms after the cloud went down (bound ${Math.round(bound)} ms)`,
  );
  assert.equal(h.connector().status().connectivity.state, "offline");
  h.db.insertMany(50, ["S1", "S2"], Date.UTC(2026, 10, 27, 6), 5000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(h.connector().status().sources[0]?.state, "paused", "policy pause: no reads while offline");
  assert.equal(h.connector().status().outbox.depth, 0);
  const offlineLines = h.logs.filter((l) => l.includes("Cloud unreachable"));
  assert.equal(offlineLines.length, 1, "one log line for the loss, not one per tick");
  await h.cloud.restart();
  await waitFor("150 after recovery", () => h.cloud.stats(h.nodeId).total === 150);
  assert.equal(h.connector().status().connectivity.state, "online");
  assert.equal(h.cloud.stats(h.nodeId).duplicateDeliveries, 0);
});

test("policy buffer keeps collecting into the outbox while offline, then drains", async () => {
  await using h = await e2e({
    config: (path) =>
      fastConfig(path, { connectivity: { probeIntervalMs: 300, probeTimeoutMs: 500, policy: "buffer" } }),
  });
  await h.startConnector();
  await waitFor("config applied", () => h.connector().status().sources[0]?.state === "running");
  await h.cloud.stop();
  await waitFor("offline", () => h.connector().status().connectivity.state === "offline");
  h.db.insertMany(80, ["S1"]);
  await waitFor("80 buffered in the outbox", () => h.connector().status().outbox.depth === 80);
  assert.equal(h.connector().status().sources[0]?.state, "running");
  await h.cloud.restart();
  await waitFor("80 delivered", () => h.cloud.stats(h.nodeId).total === 80);
});

test("a punch the cloud rejects permanently goes to quarantine; the rest flows", async () => {
  await using h = await e2e();
  // Same data dir and port, now with a rule that rejects one user's punches.
  await h.cloud.close();
  await using cloud = await startCloud({
    dataDir: `${h.dir}/cloud`,
    port: h.cloud.port,
    rejectPunch: (p) => ((p as { userId?: string }).userId === "13" ? "user 13 is not on this tenant" : undefined),
  });
  h.db.insertMany(60, ["S1"]);
  await h.startConnector();
  await waitFor("the others delivered", () => cloud.stats(h.nodeId).total === 59);
  await waitFor("one quarantined", () => h.connector().status().outbox.quarantined === 1);
  assert.equal(h.connector().status().outbox.depth, 0);
  // The lookback window re-reads that row every poll: it must not be enqueued and rejected again.
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(h.connector().status().outbox.quarantined, 1);
  assert.equal(cloud.rejections(h.nodeId).length, 1);
});

test("a cloud refusing whole batches (400, 404) quarantines nothing: the punches wait and flow afterwards", async () => {
  await using h = await e2e();
  h.cloud.injectFault({ route: "punches", status: 400, times: 2 });
  h.cloud.injectFault({ route: "punches", status: 404, times: 2 });
  h.db.insertMany(300, ["S1", "S2"]);
  await h.startConnector();
  await waitFor("300 delivered", () => h.cloud.stats(h.nodeId).total === 300, 30_000);
  assert.equal(h.connector().status().outbox.quarantined, 0);
  assert.equal(
    (h.cloud.requests.byRouteStatus.punches[400] ?? 0) + (h.cloud.requests.byRouteStatus.punches[404] ?? 0),
    4,
  );
});

test("413 Payload Too Large: the batch is halved until it fits, nothing quarantined", async () => {
  await using h = await e2e();
  h.cloud.injectFault({ route: "punches", status: 413, times: 3 });
  h.db.insertMany(400, ["S1"]);
  await h.startConnector();
  await waitFor("400 delivered", () => h.cloud.stats(h.nodeId).total === 400, 30_000);
  assert.equal(h.connector().status().outbox.quarantined, 0);
});

test("the connector starts and works offline from the cached config", async () => {
  await using h = await e2e({
    config: (path) =>
      fastConfig(path, { connectivity: { probeIntervalMs: 300, probeTimeoutMs: 500, policy: "buffer" } }),
  });
  await h.startConnector();
  await waitFor("config applied", () => h.connector().status().config.version === 1);
  await h.stopConnector();
  await h.cloud.stop();
  h.db.insertMany(25, ["S9"]);
  await h.startConnector();
  assert.equal(h.connector().status().config.version, 1);
  await waitFor("25 buffered from the cached config", () => h.connector().status().outbox.depth === 25);
  await h.cloud.restart();
  await waitFor("25 delivered", () => h.cloud.stats(h.nodeId).total === 25);
});
