import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { WebhookReceiver, type WebhookReceiverOptions } from "../../../cloud/receivers/webhook-receiver.ts";
import type { WebhookSinkConfig } from "../../config/sink-schema.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import type { OutboxEntry } from "../../store/store.ts";
import type { Sink, SinkOutcome } from "../sink.ts";
import { SINK_KINDS } from "../sink-kinds.ts";
import { signWebhook, webhookId, webhookKey } from "./webhook-signature.ts";
import { WebhookSink, type WebhookSinkOptions } from "./webhook-sink.ts";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const OTHER_SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const HEADER_KEY = "gw-key-4c1d9a";
const never = new AbortController().signal;
const receivers: WebhookReceiver[] = [];
after(() => Promise.all(receivers.map((r) => r.close())));

async function receiver(options: Partial<WebhookReceiverOptions> = {}): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start({ secrets: [SECRET], ...options });
  receivers.push(r);
  return r;
}

let seq = 0;
function entries(count: number): OutboxEntry[] {
  return Array.from({ length: count }, () => {
    seq += 1;
    const id = createHash("sha256").update(`punch ${seq}`).digest("hex").slice(0, 32);
    const punch = {
      id,
      deviceSerial: "CKJ7201001",
      userId: String(seq % 7),
      time: new Date(Date.UTC(2024, 8, 17) + seq * 1000).toISOString().replace("Z", "+03:00"),
      state: "checkIn",
      stateCode: 0,
      verify: "fingerprint",
      verifyCode: 1,
      source: "zk",
      collectedAt: new Date().toISOString(),
    };
    return { seq, id, sourceId: "src", body: JSON.stringify(punch), enqueuedAt: 0, attempts: 0 };
  });
}

function sink(url: string, options: Partial<WebhookSinkOptions> = {}): WebhookSink {
  return new WebhookSink({
    url,
    secret: SECRET,
    nodeId: "node-1",
    clock: systemClock,
    timeoutMs: () => 5000,
    ...options,
  });
}

function texts(outcome: SinkOutcome): string {
  if (!("error" in outcome)) return JSON.stringify(outcome);
  const parts: string[] = [];
  let e: unknown = outcome.error;
  while (e instanceof Error) {
    parts.push(e.message, e.stack ?? "");
    e = e.cause;
  }
  return parts.join("\n");
}

/** What the shipper will do, in small: send what is not settled again until everything is, or `rounds` pass. */
async function deliverAll(s: Sink, batch: readonly OutboxEntry[], rounds = 50) {
  let pending = [...batch];
  const acked: string[] = [];
  const outcomes: SinkOutcome[] = [];
  for (let round = 0; round < rounds && pending.length > 0; round++) {
    const outcome = await s.send(pending, never);
    outcomes.push(outcome);
    if (outcome.kind !== "delivered") continue;
    const settled = new Set([...outcome.acked, ...outcome.rejected.map((r) => r.id)]);
    acked.push(...outcome.acked);
    pending = pending.filter((e) => !settled.has(e.id));
  }
  return { acked, outcomes, pending };
}

test("signing matches the Standard Webhooks published test vector", () => {
  const key = webhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  assert.ok(Buffer.isBuffer(key));
  assert.equal(
    signWebhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'),
    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  );
  assert.ok(Buffer.isBuffer(webhookKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")), "a bare base64 secret is accepted");
});

test("a malformed secret is refused by its shape, never shown", async () => {
  for (const [secret, shape] of [
    ["whsec_not base64!", /is not base64/],
    ["whsec_c2hvcnQ=", /decodes to 5 bytes/],
  ] as const) {
    const outcome = await sink("http://127.0.0.1:9/x", { secret }).send(entries(1), never);
    assert.ok(outcome.kind === "failed" && !outcome.lostConnectivity);
    assert.equal(outcome.error.code, "CONFIG_INVALID");
    assert.match(outcome.error.message, shape);
    assert.match(outcome.error.message, /whsec_ followed by the base64 of 24 to 64 random bytes/);
    assert.ok(!outcome.error.message.includes(secret));
  }
});

test("the receiver verifies the signature and takes every punch, each carrying its id", async () => {
  const r = await receiver();
  const batch = entries(5);
  const outcome = await sink(r.url).send(batch, never);
  assert.deepEqual(outcome, { kind: "delivered", acked: batch.map((e) => e.id), rejected: [] });
  assert.deepEqual(r.refusals, []);
  assert.deepEqual(
    [...r.punches.keys()],
    batch.map((e) => e.id),
  );
  assert.equal(r.deliveries[0]?.type, "punches");
  assert.equal(r.deliveries[0]?.webhookId, webhookId(batch.map((e) => e.id)));
  assert.deepEqual(r.punches.get(batch[0]?.id as string), JSON.parse(batch[0]?.body as string));
});

test("a wrong secret is refused by the receiver, and the error names the secret as the fix", async () => {
  const r = await receiver();
  const outcome = await sink(r.url, { secret: OTHER_SECRET, headers: { "x-api-key": HEADER_KEY } }).send(
    entries(2),
    never,
  );
  assert.ok(outcome.kind === "failed" && !outcome.lostConnectivity);
  assert.equal(outcome.error.code, "SINK_AUTH");
  assert.match(outcome.error.message, /refused the signed delivery: 401: .*no valid v1 signature/);
  assert.match(outcome.error.message, /The likely fix is the secret/);
  assert.deepEqual(r.refusals, ["no valid v1 signature (wrong secret, or the body was changed)"]);
  assert.equal(r.punches.size, 0);
  assert.ok(!texts(outcome).includes(OTHER_SECRET) && !texts(outcome).includes(HEADER_KEY));
});

test("a receiver rotating its secret takes either; a stale timestamp is refused", async () => {
  const r = await receiver({ secrets: [OTHER_SECRET, SECRET] });
  assert.equal((await sink(r.url).send(entries(1), never)).kind, "delivered");
  const late: Clock = { now: () => Date.now() - 6 * 60_000 };
  const stale = await sink(r.url, { clock: late }).send(entries(1), never);
  assert.ok(stale.kind === "failed" && stale.error.code === "SINK_AUTH");
  assert.match(stale.error.message, /outside the 5-minute tolerance.*clock is within 5 minutes/);
  const ahead: Clock = { now: () => Date.now() + 4 * 60_000 };
  assert.equal((await sink(r.url, { clock: ahead }).send(entries(1), never)).kind, "delivered");
});

test("the webhook id is stable across retries of one batch, and differs for another", async () => {
  const r = await receiver();
  const batch = entries(3);
  r.fail(2, 500);
  const s = sink(r.url);
  const first = await s.send(batch, never);
  assert.ok(first.kind === "failed" && first.error.code === "SINK_UNAVAILABLE" && !first.lostConnectivity);
  assert.equal(first.error.context.httpStatus, 500);
  assert.equal((await s.send(batch, never)).kind, "failed");
  // The receiver records only verified deliveries: a third attempt, its id, and that of another batch.
  assert.equal((await s.send(batch, never)).kind, "delivered");
  const other = entries(3);
  await s.send(other, never);
  assert.deepEqual(
    r.deliveries.map((d) => d.webhookId),
    [webhookId(batch.map((e) => e.id)), webhookId(other.map((e) => e.id))],
  );
  assert.match(r.deliveries[0]?.webhookId ?? "", /^msg_[0-9a-f]{32}$/);
  assert.equal(webhookId(batch.map((e) => e.id)), webhookId(batch.map((e) => e.id)));
});

test("per-punch results: accepted and duplicate leave the outbox, rejected goes to quarantine, unnamed stays", async () => {
  const batch = entries(4);
  const bad = batch[2]?.id as string;
  const r = await receiver({ reject: (p) => (p.id === bad ? "unknown employee" : undefined) });
  const s = sink(r.url);
  const first = await s.send(batch.slice(0, 1), never);
  assert.deepEqual(first, { kind: "delivered", acked: [batch[0]?.id], rejected: [] });
  const outcome = await s.send(batch, never);
  assert.deepEqual(outcome, {
    kind: "delivered",
    acked: [batch[0]?.id, batch[1]?.id, batch[3]?.id],
    rejected: [{ id: bad, reason: "unknown employee", permanent: true }],
  });
  assert.equal(r.duplicates, 1);
  assert.equal(r.punches.has(bad), false);
});

test("results naming only part of the batch, or ids not in it, settle only what they name", async () => {
  const { createServer } = await import("node:http");
  const batch = entries(3);
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () =>
      res.end(
        JSON.stringify({
          results: [
            { id: batch[1]?.id, status: "accepted" },
            { id: "not-in-batch", status: "accepted" },
            { id: batch[2]?.id, status: "maybe" },
            { status: "accepted" },
          ],
        }),
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as { port: number };
    const outcome = await sink(`http://127.0.0.1:${port}/`).send(batch, never);
    assert.deepEqual(outcome, { kind: "delivered", acked: [batch[1]?.id], rejected: [] });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a 2xx without results delivers the whole batch", async () => {
  const r = await receiver();
  r.bare(1);
  const batch = entries(3);
  assert.deepEqual(await sink(r.url).send(batch, never), {
    kind: "delivered",
    acked: batch.map((e) => e.id),
    rejected: [],
  });
});

test("413 is too large, 429/503 retry after, another 4xx refuses the batch, 5xx and no answer fail", async () => {
  const r = await receiver({ maxPunches: 2 });
  const s = sink(r.url);
  const big = await s.send(entries(3), never);
  assert.ok(big.kind === "too-large");
  assert.match(big.error.message, /found a batch of 3 too large: 413/);
  r.fail(1, 429, 9);
  assert.deepEqual(await s.send(entries(1), never), { kind: "retry-after", ms: 9000 });
  r.fail(1, 503);
  assert.deepEqual(await s.send(entries(1), never), { kind: "retry-after", ms: 5000 });
  for (const status of [400, 404, 410, 422]) {
    r.fail(1, status);
    const refused = await s.send(entries(2), never);
    assert.ok(refused.kind === "batch-refused", `${status}`);
    assert.equal(refused.error.code, "SINK_REJECTED");
    assert.match(refused.error.message, /refused a batch of 2: \d+: .*Check the webhook URL/);
  }
  r.fail(1, 403);
  const forbidden = await s.send(entries(1), never);
  assert.ok(forbidden.kind === "failed" && forbidden.error.code === "SINK_AUTH");
  r.fail(1, 302);
  const moved = await s.send(entries(1), never);
  assert.ok(moved.kind === "failed" && moved.error.code === "SINK_PROTOCOL");
});

test("a slow receiver times out as lost connectivity; the retry is the same webhook, kept once", async () => {
  const r = await receiver();
  const batch = entries(4);
  r.slow(1, 1500);
  const s = sink(r.url, { timeoutMs: () => 300 });
  const first = await s.send(batch, never);
  assert.ok(first.kind === "failed" && first.lostConnectivity);
  assert.match(first.error.message, /no answer within 300 ms/);
  const second = await s.send(batch, never);
  assert.deepEqual(second, { kind: "delivered", acked: batch.map((e) => e.id), rejected: [] });
  assert.equal(r.punches.size, 4);
  assert.equal(r.duplicates, 4, "the late delivery was taken; its retry came back as duplicates");
  assert.equal(r.deliveries[0]?.webhookId, r.deliveries[1]?.webhookId);
});

test("down, then up: lost connectivity, then everything exactly once by id", async () => {
  const r = await receiver();
  const batch = entries(50);
  const s = sink(r.url);
  await r.down();
  const down = await s.send(batch, never);
  assert.ok(down.kind === "failed" && down.lostConnectivity && down.error.code === "SINK_UNAVAILABLE");
  await r.up();
  r.fail(2, 500);
  r.slow(1, 20);
  const result = await deliverAll(s, batch);
  assert.deepEqual(result.pending, []);
  assert.equal(result.acked.length, 50);
  assert.equal(new Set(result.acked).size, 50);
  assert.equal(r.punches.size, 50);
});

test("the kind's secrets, details and doctor check: a signed ping proves the secret and carries no punch", async () => {
  const r = await receiver();
  const config: WebhookSinkConfig = {
    id: "wh",
    kind: "webhook",
    url: r.url,
    secret: SECRET,
    headers: { "x-k": HEADER_KEY },
  };
  const kind = SINK_KINDS.webhook;
  assert.ok(kind?.check);
  assert.deepEqual(kind.secrets(config), [SECRET, HEADER_KEY]);
  const created = kind.create(config, {
    nodeId: "n",
    clock: systemClock,
    shipper: () => ({ requestTimeoutMs: 1000 }),
  } as never);
  assert.deepEqual(created.details?.(), { url: r.url });
  const ok = await kind.check({ config, nodeId: "n", client: undefined }, never);
  assert.deepEqual(
    ok.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["signature", "ok"],
    ],
  );
  assert.equal(r.punches.size, 0);
  assert.equal(r.deliveries[0]?.type, "ping");
  const wrong = await kind.check(
    { config: { ...config, secret: OTHER_SECRET }, nodeId: "n", client: undefined },
    never,
  );
  assert.deepEqual(
    wrong.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["signature", "fail"],
    ],
  );
  assert.match(wrong[1]?.fix ?? "", /secret/);
  const malformed = await kind.check(
    { config: { ...config, secret: "whsec_xx" }, nodeId: "n", client: undefined },
    never,
  );
  assert.deepEqual(
    malformed.map((f) => [f.check, f.status]),
    [["secret", "fail"]],
  );
  await r.down();
  const down = await kind.check({ config, nodeId: "n", client: undefined }, never);
  assert.deepEqual(
    down.map((f) => [f.check, f.status]),
    [["reachable", "fail"]],
  );
  const all = JSON.stringify([ok, wrong, malformed, down]);
  assert.ok(![SECRET, OTHER_SECRET, HEADER_KEY].some((s) => all.includes(s)));
});
