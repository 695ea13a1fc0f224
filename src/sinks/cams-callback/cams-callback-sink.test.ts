import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, test } from "node:test";
import { CamsCallbackReceiver, parseCamsLogTime } from "../../../cloud/receivers/cams-callback-receiver.ts";
import type { CamsCallbackSinkConfig } from "../../config/sink-schema.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import { STATE_NAMES, VERIFY_NAMES } from "../../core/punch.ts";
import type { OutboxEntry } from "../../store/store.ts";
import type { Sink, SinkOutcome } from "../sink.ts";
import { SINK_KINDS } from "../sink-kinds.ts";
import { checkCamsCallback } from "./cams-callback-check.ts";
import { CamsCallbackSink, type CamsCallbackSinkOptions } from "./cams-callback-sink.ts";

const TOKEN = "COJJ7eiiPBGUfmIQPvh2PJWWDLX7OuKs";
const GATEWAY_KEY = "gw-key-5b1f0c9e7d";
const never = new AbortController().signal;
const receivers: CamsCallbackReceiver[] = [];
after(() => Promise.all(receivers.map((r) => r.close())));

async function receiver(options: { authToken?: string; path?: string } = { authToken: TOKEN }) {
  const r = await CamsCallbackReceiver.start(options);
  receivers.push(r);
  return r;
}

interface PunchSpec {
  readonly serial?: string;
  readonly user?: string;
  readonly time?: string;
  readonly state?: string;
  readonly stateCode?: number;
  readonly verify?: string;
}

let seq = 0;
function entry(spec: PunchSpec = {}): OutboxEntry {
  seq += 1;
  const serial = spec.serial ?? "CKJ7201001";
  const user = spec.user ?? "1";
  const time = spec.time ?? new Date(Date.UTC(2024, 8, 17, 5) + seq * 1000).toISOString().replace("Z", "+00:00");
  const id = createHash("sha256").update(`${serial}/${user}/${time}/${seq}`).digest("hex").slice(0, 32);
  const punch = {
    id,
    deviceSerial: serial,
    userId: user,
    time,
    state: spec.state ?? "checkIn",
    stateCode: spec.stateCode ?? 0,
    verify: spec.verify ?? "fingerprint",
    verifyCode: 1,
    source: "zk",
    collectedAt: new Date().toISOString(),
  };
  return { seq, id, sourceId: "src", body: JSON.stringify(punch), enqueuedAt: 0, attempts: 0 };
}

function sink(url: string, options: Partial<CamsCallbackSinkOptions> = {}): CamsCallbackSink {
  return new CamsCallbackSink({
    url,
    authToken: TOKEN,
    concurrency: 8,
    clock: systemClock,
    timeoutMs: () => 5000,
    ...options,
  });
}

/** What the shipper will do, in small: send what is not settled again until everything is, or `rounds` pass. */
async function deliverAll(s: Sink, batch: readonly OutboxEntry[], rounds = 100) {
  let pending = [...batch];
  const acked: string[] = [];
  const rejected: string[] = [];
  const outcomes: SinkOutcome[] = [];
  for (let round = 0; round < rounds && pending.length > 0; round++) {
    const outcome = await s.send(pending, never);
    outcomes.push(outcome);
    if (outcome.kind !== "delivered") continue;
    const settled = new Set([...outcome.acked, ...outcome.rejected.map((r) => r.id)]);
    acked.push(...outcome.acked);
    rejected.push(...outcome.rejected.map((r) => r.id));
    pending = pending.filter((e) => !settled.has(e.id));
  }
  return { acked, rejected, outcomes, pending };
}

function opId(e: OutboxEntry): string {
  const h = e.id;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Every text of an outcome a person could see: error message, hint, cause chain. */
function texts(outcome: SinkOutcome): string {
  if (!("error" in outcome)) return JSON.stringify(outcome);
  const parts: string[] = [];
  let e: unknown = outcome.error;
  while (e instanceof Error) {
    parts.push(e.message, e.stack ?? "");
    e = e.cause;
  }
  return parts.join("\n") + JSON.stringify(outcome.error.context);
}

test("every state and every verify mode arrives as the Type and InputType a Cams consumer reads", async () => {
  const r = await receiver();
  const states = [...Object.entries(STATE_NAMES), ["99", "other"]] as const;
  const verifies = [...new Set([...Object.values(VERIFY_NAMES), "other", "unknown"])];
  const batch = [
    ...states.map(([code, state], i) => entry({ user: `s${i}`, state, stateCode: Number(code) })),
    ...verifies.map((verify, i) => entry({ user: `v${i}`, verify })),
  ];
  const { acked } = await deliverAll(sink(r.url, { labels: { CKJ7201001: "Main Gate" } }), batch);
  assert.equal(acked.length, batch.length);
  const got = (e: OutboxEntry) => r.punches.get(opId(e));
  const types = states.map((_, i) => got(batch[i] as OutboxEntry)?.type);
  assert.deepEqual(types, ["CheckIn", "CheckOut", "BreakOut", "BreakIn", "OverTimeIn", "OverTimeOut", "Unknown"]);
  const inputs = Object.fromEntries(
    verifies.map((v, i) => [v, got(batch[states.length + i] as OutboxEntry)?.inputType]),
  );
  assert.deepEqual(inputs, {
    password: "Password",
    fingerprint: "Fingerprint",
    card: "Card",
    face: "Face",
    palm: "Palm",
    other: "Unknown",
    unknown: "Unknown",
  });
  const first = got(batch[0] as OutboxEntry);
  assert.equal(first?.stgid, "CKJ7201001");
  assert.equal(first?.serialNumber, "CKJ7201001");
  assert.equal(first?.labelName, "Main Gate");
  assert.equal(first?.userId, "s0");
  assert.match(first?.time ?? "", /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} GMT \+0000$/);
});

test("LogTime arrives as the device's local time and offset, the same instant as the punch", async () => {
  const r = await receiver();
  const times = ["2024-09-17T08:00:00+03:00", "2024-09-17T08:00:00-04:00", "2024-09-17T08:00:00+00:00"];
  const batch = times.map((time, i) => entry({ user: `t${i}`, time }));
  await deliverAll(sink(r.url), batch);
  const got = batch.map((e) => r.punches.get(opId(e)));
  assert.deepEqual(
    got.map((p) => p?.logTime),
    ["2024-09-17 08:00:00 GMT +0300", "2024-09-17 08:00:00 GMT -0400", "2024-09-17 08:00:00 GMT +0000"],
  );
  assert.deepEqual(
    got.map((p) => p?.logTimeMs),
    times.map((t) => Date.parse(t)),
  );
  assert.equal(parseCamsLogTime("2024-09-17 08:00:00 GMT -0930"), Date.parse("2024-09-17T08:00:00-09:30"));
});

test("exactly once by OperationID through 500s: each punch is taken once and acknowledged once", async () => {
  const r = await receiver();
  const batch = Array.from({ length: 40 }, (_, i) => entry({ user: String(i % 10) }));
  r.fail(5);
  const result = await deliverAll(sink(r.url, { concurrency: 4 }), batch);
  assert.deepEqual(result.pending, []);
  assert.equal(new Set(result.acked).size, 40);
  assert.equal(result.acked.length, 40);
  assert.equal(r.punches.size, 40);
  assert.equal(r.duplicates, 0);
  const failed = result.outcomes.find((o) => o.kind === "failed" || (o.kind === "delivered" && o.acked.length < 40));
  assert.ok(failed, "the 500s were seen");
  assert.deepEqual(r.orderViolations, []);
});

test("a 500 alone is a failed attempt with the receiver's words, not lost connectivity", async () => {
  const r = await receiver();
  r.fail(8);
  const outcome = await sink(r.url, { concurrency: 1 }).send([entry()], never);
  assert.ok(outcome.kind === "failed");
  assert.equal(outcome.lostConnectivity, false);
  assert.equal(outcome.error.code, "SINK_UNAVAILABLE");
  assert.equal(outcome.error.context.httpStatus, 500);
  assert.match(outcome.error.message, /failed to take a punch: 500: \{"status":"error","message":"injected"\}/);
});

test("a slow receiver: the request times out, the punch is sent again, and is kept once", async () => {
  const r = await receiver();
  const e = entry();
  r.slow(1, 2000);
  const s = sink(r.url, { timeoutMs: () => 300 });
  const first = await s.send([e], never);
  assert.ok(first.kind === "failed" && first.lostConnectivity, JSON.stringify(first));
  assert.match(first.error.message, /did not answer \(no answer within 300 ms\)/);
  const second = await s.send([e], never);
  assert.deepEqual(second, { kind: "delivered", acked: [e.id], rejected: [] });
  assert.equal(r.punches.size, 1);
  assert.equal(r.duplicates, 1, "the late one was taken, its retry acknowledged as a duplicate");
});

test("a receiver that is down costs one request per lane; back up, everything arrives", async () => {
  const r = await receiver();
  const batch = Array.from({ length: 30 }, (_, i) => entry({ user: String(i % 6) }));
  await r.down();
  const s = sink(r.url, { concurrency: 3 });
  const down = await s.send(batch, never);
  assert.ok(down.kind === "failed" && down.lostConnectivity);
  assert.equal(down.error.code, "SINK_UNAVAILABLE");
  assert.match(down.error.message, /The Cams callback http:\/\/127\.0\.0\.1:\d+\/cams\/callback did not answer/);
  await r.up();
  const result = await deliverAll(s, batch);
  assert.equal(result.acked.length, 30);
  assert.equal(r.punches.size, 30);
  assert.equal(r.requests, 30);
});

test("200 without done (a wrong status body) is not taken: retried with the receiver's words", async () => {
  const r = await receiver();
  const e = entry();
  r.answer(1, '{"status":"error","message":"queue full"}');
  const s = sink(r.url);
  const first = await s.send([e], never);
  assert.ok(first.kind === "failed" && !first.lostConnectivity);
  assert.equal(first.error.code, "SINK_REJECTED");
  assert.match(first.error.message, /did not acknowledge a punch: 200: \{"status":"error","message":"queue full"\}/);
  r.answer(1, "OK");
  assert.equal((await s.send([e], never)).kind, "failed");
  r.answer(1, '{"status":"done"}', 202);
  assert.equal((await s.send([e], never)).kind, "failed", "202 is not the acknowledgement");
  r.answer(1, '{"status":"ok"}', 201);
  assert.deepEqual(await s.send([e], never), { kind: "delivered", acked: [e.id], rejected: [] });
  assert.equal(r.punches.size, 0, "the receiver's own answers took nothing");
});

test("a wrong AuthToken is refused as the navari consumer does (200, status error), retried, never quarantined", async () => {
  const r = await receiver();
  const e = entry();
  const wrong = sink(r.url, { authToken: "wrong-token-123" });
  const outcome = await wrong.send([e], never);
  assert.ok(outcome.kind === "failed");
  assert.match(outcome.error.message, /Invalid auth token/);
  assert.match(outcome.error.message, /check the sink's authToken/);
  assert.doesNotMatch(texts(outcome), /wrong-token-123/);
  assert.equal(r.punches.size, 0);
  assert.equal((await deliverAll(sink(r.url), [e])).acked.length, 1);
});

test("429 and 503 with Retry-After ask to slow down for that long; without it, a plain retry", async () => {
  const r = await receiver();
  r.fail(1, 429, 7);
  assert.deepEqual(await sink(r.url).send([entry()], never), { kind: "retry-after", ms: 7000 });
  r.fail(1, 503, 2);
  assert.deepEqual(await sink(r.url).send([entry()], never), { kind: "retry-after", ms: 2000 });
  r.fail(1, 503);
  const plain = await sink(r.url).send([entry()], never);
  assert.ok(plain.kind === "failed" && plain.error.code === "SINK_UNAVAILABLE");
});

test("each user's punches arrive in order and one at a time, under concurrency and failures", async () => {
  const r = await receiver();
  const batch: OutboxEntry[] = [];
  for (let i = 0; i < 400; i++) {
    const user = String(i % 16);
    const serial = i % 3 === 0 ? "CKJ7201002" : "CKJ7201001";
    batch.push(entry({ user, serial, time: new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString() }));
  }
  const s = sink(r.url, { concurrency: 8 });
  // Faults scattered through the run: each failure stops that user's lane, slowness widens the overlap window.
  for (let k = 0; k < 12; k++) {
    r.slow(5, 5);
    r.fail(1, k % 2 ? 500 : 503);
  }
  const result = await deliverAll(s, batch, 400);
  assert.deepEqual(result.pending, []);
  assert.equal(r.punches.size, 400);
  assert.deepEqual(r.orderViolations, []);
  assert.ok(r.refused >= 12);
});

test("a punch the callback cannot carry goes to quarantine; its neighbours are delivered", async () => {
  const r = await receiver();
  const bad = { ...entry(), body: JSON.stringify({ ...JSON.parse(entry().body), time: "2024-09-17 08:00" }) };
  const good = entry({ user: "2" });
  const outcome = await sink(r.url).send([bad, good], never);
  assert.ok(outcome.kind === "delivered");
  assert.deepEqual(outcome.acked, [good.id]);
  assert.equal(outcome.rejected.length, 1);
  assert.equal(outcome.rejected[0]?.id, bad.id);
  assert.equal(outcome.rejected[0]?.permanent, true);
  assert.match(outcome.rejected[0]?.reason ?? "", /not ISO 8601 with a UTC offset/);
});

test("no secret in any error, detail or check text, even from a receiver that echoes the request", async () => {
  const r = await receiver();
  const s = sink(`${r.url}?key=${GATEWAY_KEY}`, { headers: { "x-api-key": GATEWAY_KEY } });
  const seen: string[] = [JSON.stringify(s.details())];
  r.echo(1);
  const echoed = await s.send([entry()], never);
  assert.ok(echoed.kind === "failed" && echoed.error.code === "SINK_REJECTED");
  assert.match(echoed.error.message, /Bad request \(AuthToken \[redacted\]\): \{"RealTime"/);
  seen.push(texts(echoed));
  for (const status of [401, 500, 429]) {
    r.fail(1, status);
    seen.push(texts(await s.send([entry()], never)));
  }
  r.slow(1, 1000);
  seen.push(texts(await sink(`${r.url}?key=${GATEWAY_KEY}`, { timeoutMs: () => 200 }).send([entry()], never)));
  await r.down();
  seen.push(texts(await s.send([entry()], never)));
  const config: CamsCallbackSinkConfig = {
    id: "cb",
    kind: "cams-callback",
    url: `${r.url}?key=${GATEWAY_KEY}`,
    authToken: TOKEN,
    headers: { "x-api-key": GATEWAY_KEY },
    concurrency: 8,
  };
  seen.push(JSON.stringify(await checkCamsCallback({ config, nodeId: "n" }, never)));
  const all = seen.join("\n");
  assert.doesNotMatch(all, new RegExp(TOKEN));
  assert.doesNotMatch(all, new RegExp(GATEWAY_KEY));
  assert.deepEqual(SINK_KINDS["cams-callback"]?.secrets(config), [TOKEN, GATEWAY_KEY]);
});

test("the 401 of a gateway in front of the receiver names the headers and the token as the fix", async () => {
  const r = await receiver();
  r.fail(1, 401);
  const outcome = await sink(r.url).send([entry()], never);
  assert.ok(outcome.kind === "failed" && outcome.error.code === "SINK_AUTH");
  assert.match(outcome.error.message, /refused the request: 401.*extra headers.*authToken/);
});

test("the doctor's check: reachable by a GET that delivers nothing, and says the token is not proven", async () => {
  const r = await receiver();
  const config: CamsCallbackSinkConfig = {
    id: "cb",
    kind: "cams-callback",
    url: r.url,
    authToken: TOKEN,
    concurrency: 8,
  };
  const check = SINK_KINDS["cams-callback"]?.check;
  assert.ok(check);
  const findings = await check({ config, nodeId: "n", client: undefined }, never);
  assert.deepEqual(
    findings.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["auth token", "ok"],
    ],
  );
  assert.match(findings[0]?.detail ?? "", /a GET got 405/);
  assert.match(findings[1]?.detail ?? "", /not proven.*sends none/);
  assert.equal(r.punches.size, 0);
  assert.equal(r.requests, 0, "a GET is no callback");
  const { authToken: _, ...noToken } = config;
  const warned = await check({ config: noToken, nodeId: "n", client: undefined }, never);
  assert.equal(warned[1]?.status, "warn");
  await r.down();
  const down = await check({ config, nodeId: "n", client: undefined }, never);
  assert.deepEqual(
    down.map((f) => [f.check, f.status]),
    [["reachable", "fail"]],
  );
  assert.match(down[0]?.fix ?? "", /Check the URL/);
});

test("the kind entry sends one batch at a time and uses the sink's own timeout", () => {
  const kind = SINK_KINDS["cams-callback"];
  assert.equal(kind?.oneBatchAtATime, true);
  const clock: Clock = systemClock;
  const s = kind?.create({ id: "cb", kind: "cams-callback", url: "http://127.0.0.1:9/cb", concurrency: 3 }, {
    clock,
    shipper: () => ({ requestTimeoutMs: 1234 }),
  } as never);
  assert.deepEqual(s?.details?.(), { url: "http://127.0.0.1:9/cb", concurrency: 3 });
});
