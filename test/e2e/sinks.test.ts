import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { percentile } from "../../bench/bench-kit.ts";
import { startAdmsServer } from "../../cloud/receivers/adms-server.ts";
import { CamsCallbackReceiver } from "../../cloud/receivers/cams-callback-receiver.ts";
import { startErpnextReceiver } from "../../cloud/receivers/erpnext-receiver.ts";
import { MqttCounter } from "../../cloud/receivers/mqtt-counter.ts";
import { WebhookReceiver } from "../../cloud/receivers/webhook-receiver.ts";
import { resolveTime } from "../../src/core/local-time.ts";
import { punchId } from "../../src/core/punch.ts";
import { ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e, fastConfig, PATIENT_SHIPPER } from "../helpers/e2e-harness.ts";
import { waitFor } from "../helpers/wait-for.ts";

interface Row {
  readonly sn: string;
  readonly pin: string;
  readonly punch_time: string;
  readonly status: number;
}

function rows(dbPath: string): Row[] {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  const all = db.prepare("SELECT sn, pin, punch_time, status FROM att_log").all() as unknown as Row[];
  db.close();
  return all;
}

const SERIALS = ["S1", "S2", "S3", "S4"];
/** Every user the attendance database can hold, as ERPNext employees looked up by their device id. */
const EMPLOYEES = Array.from({ length: 2000 }, (_, i) => ({
  name: `HR-EMP-${String(i + 1).padStart(5, "0")}`,
  employee_name: `Employee ${i + 1}`,
  fields: { attendance_device_id: String(i + 1) },
}));
const ERP_KEYS = { apiKey: "3f1e0c0d9a7b2e4", apiSecret: "b8e2c4d6f0a1c3e5" };
const HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CALLBACK_TOKEN = "cams-callback-token-7f3a";
const BROKER = process.env.MQTT_URL ?? "mqtt://127.0.0.1:1883";

async function receivers() {
  const erp = await startErpnextReceiver({ ...ERP_KEYS, employees: EMPLOYEES });
  const adms = await startAdmsServer({ delaySeconds: 1 });
  const hook = await WebhookReceiver.start({ secrets: [HOOK_SECRET] });
  const callback = await CamsCallbackReceiver.start({ authToken: CALLBACK_TOKEN });
  // The machine's Mosquitto (CI has it too); a topic of this run's own, so nothing else is counted.
  const prefix = `e2e-${process.pid}-${Date.now()}`;
  const mqtt = await MqttCounter.start({ url: BROKER, punches: `${prefix}/punches/+` });
  return {
    mqtt,
    erp,
    adms,
    hook,
    callback,
    sinks: [
      { id: "cams-cloud", kind: "cams-cloud" },
      { id: "hr", kind: "erpnext", url: erp.url, ...ERP_KEYS, concurrency: 8, requestTimeoutMs: 5000 },
      { id: "biotime", kind: "adms-relay", url: adms.url, heartbeatIntervalMs: 2000, requestTimeoutMs: 5000 },
      { id: "hook", kind: "webhook", url: hook.url, secret: HOOK_SECRET, requestTimeoutMs: 5000 },
      {
        id: "callback",
        kind: "cams-callback",
        url: callback.url,
        authToken: CALLBACK_TOKEN,
        concurrency: 8,
        requestTimeoutMs: 5000,
      },
      { id: "fleet", kind: "mqtt", url: BROKER, topic: `${prefix}/punches/{serial}`, requestTimeoutMs: 5000 },
    ],
    async [Symbol.asyncDispose]() {
      await mqtt.close();
      await erp.close();
      await adms.close();
      await hook.close();
      await callback.close();
    },
  };
}

/** What each receiver must end with, by its own dedupe key, computed from the source rows. */
function expected(all: readonly Row[]) {
  const byPin = new Map(EMPLOYEES.map((e) => [e.fields.attendance_device_id, e.name]));
  return {
    cloud: new Set(all.map((r) => punchId(r.sn, r.pin, resolveTime(r.punch_time, "Asia/Kolkata").local, r.status))),
    erp: new Set(all.map((r) => `${byPin.get(r.pin)}|${r.punch_time}`)),
    adms: new Set(all.map((r) => `${r.sn}|${r.pin}|${r.punch_time}|${r.status}`)),
  };
}

const TOTAL = 6000;
const PHASES = 10;

test(`every sink ends with exactly the ${TOTAL} punches by its own key, through ${PHASES} SIGKILLs mid-delivery and each receiver failing`, {
  timeout: 900_000,
}, async (t) => {
  await using r = await receivers();
  await using h = await e2e({
    config: (path) =>
      fastConfig(path, {
        shipper: { batchSize: 100, lingerMs: 5, requestTimeoutMs: 3000, maxBackoffMs: 500 },
        sinks: r.sinks,
      }),
  });
  const perPhase = TOTAL / PHASES;
  let inserted = 0;
  let kills = 0;
  while (inserted < TOTAL) {
    await using p = await ConnectorProcess.started(h.connectorDir);
    h.db.insertMany(perPhase, SERIALS, Date.UTC(2026, 10, 1) + inserted * 1000, 1 + (inserted % 997));
    inserted += perPhase;
    // Each receiver misbehaves in its own way while the punches travel.
    r.erp.failNext(5, 500);
    r.erp.failAfterCommit(2);
    r.adms.failAfterCommit(1);
    r.adms.slowNext(2, 1500);
    if (kills % 3 === 1) r.adms.shortNext(1, 7);
    r.hook.fail(3, 500);
    r.hook.slow(1, 4000);
    r.callback.fail(4, 500);
    r.callback.slow(2, 6000);
    // Killed while the slowest of them is somewhere in this phase.
    const target = inserted - perPhase + Math.floor(Math.random() * 0.9 * perPhase);
    await waitFor(
      "delivery progress",
      () =>
        Math.min(
          h.cloud.stats(h.nodeId).total,
          r.erp.checkins.length,
          r.adms.rows.length,
          r.hook.punches.size,
          r.callback.punches.size,
          r.mqtt.ids.size,
        ) >= target,
      120_000,
      1,
    );
    await p.kill("SIGKILL");
    kills++;
    await rm(join(h.connectorDir, "status.json"), { force: true });
  }
  await using last = await ConnectorProcess.started(h.connectorDir);
  await waitFor(
    "every receiver has every punch",
    () =>
      h.cloud.stats(h.nodeId).total === TOTAL &&
      r.erp.checkins.length >= TOTAL &&
      r.adms.rows.length >= TOTAL &&
      r.hook.punches.size >= TOTAL &&
      r.callback.punches.size >= TOTAL &&
      r.mqtt.ids.size >= TOTAL,
    180_000,
    100,
  );
  const exit = await last.kill("SIGTERM");
  assert.equal(exit.code, 0, last.output.join("").slice(-2000));

  const want = expected(rows(h.db.path));
  assert.equal(want.cloud.size, TOTAL);
  assert.deepEqual(new Set(h.cloudIds().keys()), want.cloud, "the cloud: exactly the ids");
  const erpKeys = r.erp.checkins.map((c) => `${c.employee}|${c.time}`);
  assert.equal(erpKeys.length, TOTAL, "ERPNext: one check-in per punch, none twice");
  assert.deepEqual(new Set(erpKeys), want.erp, "ERPNext: exactly the check-ins");
  const admsKeys = r.adms.rows.map((x) => `${x.sn}|${x.pin}|${x.time}|${x.status}`);
  assert.equal(admsKeys.length, TOTAL, "ADMS: one row per punch, none twice");
  assert.deepEqual(new Set(admsKeys), want.adms, "ADMS: exactly the rows");
  assert.deepEqual(new Set(r.hook.punches.keys()), want.cloud, "webhook: exactly the ids");
  assert.deepEqual(new Set(r.mqtt.ids.keys()), want.cloud, "MQTT: exactly the ids (a repeat after a kill is counted)");
  const operations = [...r.callback.punches.values()].map((p) => `${p.serialNumber}|${p.userId}|${p.logTime}`);
  assert.equal(new Set(operations).size, TOTAL, "callback: one operation per punch");
  assert.equal(r.callback.punches.size, TOTAL, "callback: exactly the punches, by OperationID");
  // A killed connector's request can still be in the receiver's hands (a slow answer) when the next start sends that
  // punch again: two in flight at once across a kill is the receiver seeing a dead process. A user's time going
  // back is what would break the promise.
  assert.deepEqual(
    r.callback.orderViolations.filter((v) => !v.endsWith("two punches in flight at once")),
    [],
    "callback: each user's punches in order",
  );
  t.diagnostic(
    `kills ${kills}; repeats absorbed by the receivers' keys: cloud ${h.cloud.stats(h.nodeId).duplicateDeliveries}, webhook ${r.hook.duplicates}, callback ${r.callback.duplicates}, mqtt ${r.mqtt.messages - r.mqtt.ids.size}`,
  );
});

test("one sink down for a minute: the others keep their latency, and it gets every punch once when it is back", {
  timeout: 600_000,
}, async () => {
  await using r = await receivers();
  await using h = await e2e({
    config: (path) => fastConfig(path, { shipper: PATIENT_SHIPPER, sinks: r.sinks.slice(0, 2) }),
  });
  await h.startConnector();
  let user = 1;
  /** One new row, and how long until the cloud holds it. */
  const latency = async (): Promise<number> => {
    const before = h.cloud.stats(h.nodeId).total;
    const t0 = performance.now();
    h.db.insertMany(1, ["S1"], Date.UTC(2026, 10, 2) + user * 1000, user++);
    await waitFor("the new punch in the cloud", () => h.cloud.stats(h.nodeId).total > before, 30_000, 5);
    return performance.now() - t0;
  };
  const baseline: number[] = [];
  for (let i = 0; i < 20; i++) baseline.push(await latency());
  await r.erp.stop();
  const down: number[] = [];
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    down.push(await latency());
    await new Promise((done) => setTimeout(done, 500));
  }
  const status = h.connector().status();
  const hr = status.sinks.find((s) => s.id === "hr");
  assert.equal(hr?.lastError?.code, "SINK_UNAVAILABLE", "the page says the ERPNext sink is failing, and why");
  assert.ok(
    status.attention.some((a) => a.subject === "sink:hr" && /punches are not being delivered/.test(a.message)),
    "a line of its own in what needs attention",
  );
  await r.erp.listen();
  const total = user - 1;
  await waitFor("ERPNext caught up", () => r.erp.checkins.length >= total, 120_000);
  await waitFor("the outbox drained", () => h.connector().status().outbox.depth === 0, 60_000);
  assert.equal(r.erp.checkins.length, total, "every punch once at ERPNext");
  // Margins from this run: a busy machine slows both phases alike.
  const base95 = percentile(baseline, 95);
  const down95 = percentile(down, 95);
  assert.ok(
    down95 <= Math.max(3 * base95, base95 + 750),
    `cloud latency p95 ${down95.toFixed(0)} ms while ERPNext was down, ${base95.toFixed(0)} ms before`,
  );
});

test("a sink's secret stays out of the log, the status and the heartbeat, even when a proxy echoes it back", {
  timeout: 120_000,
}, async (t) => {
  const leaked = "s3cr3t-0f-the-hr-sink";
  // A debugging proxy in front of the site: it fails, and prints the request's Authorization header in its answer.
  const proxy = createServer((req, res) => {
    res.writeHead(500, { "content-type": "text/plain" }).end(`upstream down; you sent ${req.headers.authorization}`);
  });
  await new Promise<void>((done) => proxy.listen(0, "127.0.0.1", done));
  t.after(() => new Promise((done) => proxy.close(() => done(undefined))));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  await using h = await e2e({
    config: (path) =>
      fastConfig(path, {
        sinks: [
          { id: "cams-cloud", kind: "cams-cloud" },
          {
            id: "hr",
            kind: "erpnext",
            url: proxyUrl,
            apiKey: ERP_KEYS.apiKey,
            apiSecret: leaked,
          },
        ],
      }),
  });
  await h.startConnector();
  h.db.insertMany(5, ["S1"]);
  await waitFor("the cloud has the 5", () => h.cloud.stats(h.nodeId).total === 5);
  await waitFor("the ERPNext sink failing", () => h.connector().status().sinks[1]?.lastError !== null);
  await waitFor("a heartbeat with the sinks", () => {
    const beat = h.cloud.lastStatus(h.nodeId) as { sinks?: Array<{ lastError: unknown }> } | undefined;
    return beat?.sinks?.[1]?.lastError ? beat : undefined;
  });
  const everywhere = [
    ...h.logs,
    JSON.stringify(h.connector().status()),
    JSON.stringify(h.cloud.lastStatus(h.nodeId)),
  ].join("\n");
  assert.ok(everywhere.includes("upstream down; you sent token"), "the proxy's answer itself is visible");
  assert.equal(everywhere.includes(leaked), false, "the secret is nowhere");
});
