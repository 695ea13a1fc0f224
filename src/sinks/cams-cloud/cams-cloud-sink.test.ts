import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import type { CloudClient, CloudResponse } from "../../link/cloud-client.ts";
import type { OutboxEntry } from "../../store/store.ts";
import type { SinkOutcome } from "../sink.ts";
import { CamsCloudSink } from "./cams-cloud-sink.ts";

const batch: OutboxEntry[] = ["a", "b", "c"].map((id, i) => ({
  seq: i + 1,
  id,
  sourceId: "src",
  body: JSON.stringify({ id }),
  enqueuedAt: 0,
  attempts: 0,
}));

/** The sink over a client whose request returns what `answer` returns, or throws what it throws. */
function send(answer: () => CloudResponse, signal = new AbortController().signal): Promise<SinkOutcome> {
  const client = {
    nodePath: (suffix: string) => `/v1/nodes/n/${suffix}`,
    request: async () => answer(),
  } as unknown as CloudClient;
  const sink = new CamsCloudSink({ client, clock: systemClock, timeoutMs: () => 1000, gzip: () => false });
  return sink.send(batch, signal);
}

function reply(status: number, body: unknown = {}, headers: Record<string, string> = {}): () => CloudResponse {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  return () => ({ status, headers: new Headers(headers), body: Buffer.from(raw), authenticated: true });
}

/** The outcome with its BioError reduced to what status and logs show of it. */
async function outcomeOf(answer: () => CloudResponse): Promise<unknown> {
  const outcome = await send(answer);
  if (!("error" in outcome)) return outcome;
  const { error, ...rest } = outcome;
  return { ...rest, code: error.code, message: error.message, httpStatus: error.context.httpStatus };
}

test("per-id results: accepted and duplicate are acknowledged, rejections keep their reason and permanence", async () => {
  const results = [
    { id: "a", status: "accepted" },
    { id: "b", status: "duplicate" },
    { id: "c", status: "rejected", reason: "userId refused" },
    { id: "d", status: "rejected", permanent: false },
  ];
  assert.deepEqual(await outcomeOf(reply(200, { results })), {
    kind: "delivered",
    acked: ["a", "b"],
    rejected: [
      { id: "c", reason: "userId refused", permanent: true },
      { id: "d", reason: "rejected by the cloud", permanent: false },
    ],
  });
});

test("429 and 503 ask to slow down: the Retry-After, else 5 s", async () => {
  assert.deepEqual(await outcomeOf(reply(429, {}, { "retry-after": "7" })), { kind: "retry-after", ms: 7000 });
  assert.deepEqual(await outcomeOf(reply(503)), { kind: "retry-after", ms: 5000 });
});

test("413 is too large, naming the batch size", async () => {
  assert.deepEqual(await outcomeOf(reply(413, { error: "too_large" })), {
    kind: "too-large",
    code: "CLOUD_TOO_LARGE",
    message: "The cloud found a batch of 3 too large: 413 too_large.",
    httpStatus: 413,
  });
});

test("another 4xx refuses the batch as a whole and says where to look", async () => {
  for (const status of [400, 404, 422]) {
    const outcome = await send(reply(status, "<html>proxy</html>"));
    assert.equal(outcome.kind, "batch-refused", `${status}`);
    assert.ok("error" in outcome && outcome.error.code === "CLOUD_REJECTED");
    assert.equal(outcome.error.context.httpStatus, status);
    assert.match(
      outcome.error.message,
      new RegExp(`refused a batch of 3: ${status} <html>proxy</html>\\. Check the cloud URL`),
    );
  }
});

test("a 5xx, a refused signature and an unreadable 200 are failed attempts, not lost connectivity", async () => {
  assert.deepEqual(await outcomeOf(reply(500, { error: "internal" })), {
    kind: "failed",
    lostConnectivity: false,
    code: "CLOUD_UNAVAILABLE",
    message: "The cloud failed to take punches: 500 internal.",
    httpStatus: 500,
  });
  for (const status of [401, 403]) {
    const outcome = await send(reply(status));
    assert.ok(outcome.kind === "failed" && !outcome.lostConnectivity && outcome.error.code === "CLOUD_AUTH");
    assert.match(outcome.error.message, /signature.*Check the host clock/);
  }
  const unreadable = await send(reply(200, "not json"));
  assert.ok(unreadable.kind === "failed" && !unreadable.lostConnectivity);
  assert.equal(unreadable.error.code, "CLOUD_PROTOCOL");
});

test("what the client throws is a failed attempt; only no answer at all is lost connectivity", async () => {
  const thrown = (error: BioError) => () => {
    throw error;
  };
  const noAnswer = await send(thrown(new BioError("CLOUD_UNAVAILABLE", "Cannot reach the cloud.")));
  assert.ok(noAnswer.kind === "failed" && noAnswer.lostConnectivity);
  const redirect = new BioError("CLOUD_REDIRECT", "redirect", { context: { httpStatus: 302 } });
  const redirected = await send(thrown(redirect));
  assert.deepEqual(redirected, { kind: "failed", error: redirect, lostConnectivity: false });
});

test("an abort and a bug still throw", async () => {
  const controller = new AbortController();
  const reason = new DOMException("stop", "AbortError");
  controller.abort(reason);
  await assert.rejects(
    send(() => {
      throw reason;
    }, controller.signal),
    (e) => e === reason,
  );
  // Even a BioError is no answer once the caller has aborted.
  const late = new BioError("CLOUD_UNAVAILABLE", "cut off");
  await assert.rejects(
    send(() => {
      throw late;
    }, controller.signal),
    (e) => e === late,
  );
  const bug = new TypeError("a bug");
  await assert.rejects(
    send(() => {
      throw bug;
    }),
    (e) => e === bug,
  );
});
