import assert from "node:assert/strict";
import { createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { gzipSync } from "node:zlib";
import { encryptConfig } from "./cloud-crypto.ts";
import { type CloudOptions, type CloudServer, startCloud } from "./cloud-server.ts";
import { SAMPLE_CONFIG } from "./sample-config.ts";
import { signedFetch, signedHeaders } from "./signed-fetch.ts";

const CONFIG = SAMPLE_CONFIG;

async function cloudFor(t: TestContext, options: Partial<CloudOptions> = {}): Promise<CloudServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "cloud-test-"));
  const cloud = await startCloud({ dataDir, ...options });
  t.after(async () => {
    await cloud.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return cloud;
}

/** A punch whose id is derived as protocol.md says. */
function punch(n: number, deviceSerial = "CKJ1234567"): Record<string, unknown> {
  const userId = String(1000 + n);
  const local = `2026-11-26T08:${String(Math.floor(n / 60) % 60).padStart(2, "0")}:${String(n % 60).padStart(2, "0")}`;
  const id = createHash("sha256")
    .update(`${deviceSerial}\u001f${userId}\u001f${local}\u001f0`)
    .digest("hex")
    .slice(0, 32);
  return {
    id,
    deviceSerial,
    userId,
    time: `${local}+05:30`,
    state: "checkIn",
    stateCode: 0,
    verify: "fingerprint",
    verifyCode: 1,
    source: "database",
    collectedAt: "2026-11-26T03:29:05.120Z",
  };
}

async function errorOf(res: Response): Promise<{ error: string; message: string }> {
  const body = (await res.json()) as { error: string; message: string };
  assert.equal(typeof body.error, "string");
  assert.ok(body.message.length > 20, `message names cause and fix: ${body.message}`);
  return body;
}

function postPunches(cloud: CloudServer, node: { nodeId: string; secret: string }, punches: unknown[], gzip = false) {
  const json = Buffer.from(JSON.stringify({ punches }));
  return signedFetch(cloud.url, {
    ...node,
    method: "POST",
    path: `/v1/nodes/${node.nodeId}/punches`,
    body: gzip ? gzipSync(json) : json,
    headers: { "content-type": "application/json", ...(gzip ? { "content-encoding": "gzip" } : {}) },
  });
}

type Results = { results: { id: string; status: string; reason?: string; permanent?: boolean }[] };

test("health answers without a signature", async (t) => {
  const cloud = await cloudFor(t, { now: () => Date.parse("2030-01-02T03:04:05.000Z") });
  const res = await fetch(`${cloud.url}/v1/health`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, time: "2030-01-02T03:04:05.000Z", protocol: 2 });
  assert.match(cloud.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test("a correctly signed request is accepted and the heartbeat is stored", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  assert.match(node.nodeId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(node.secret, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(cloud.lastStatus(node.nodeId), undefined);
  const heartbeat = { version: "0.1.0", configVersion: 7, sources: [], outbox: { depth: 0, oldestAgeMs: null } };
  const res = await signedFetch(cloud.url, {
    ...node,
    method: "POST",
    path: `/v1/nodes/${node.nodeId}/status`,
    body: JSON.stringify(heartbeat),
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 204);
  assert.deepEqual(cloud.lastStatus(node.nodeId), heartbeat);
  // The query string is part of what is signed.
  const withQuery = await signedFetch(cloud.url, { ...node, path: `/v1/nodes/${node.nodeId}/config?x=1` });
  assert.equal(withQuery.status, 404);
  assert.equal((await errorOf(withQuery)).error, "no_config");
});

test("each signing failure is refused with its code", async (t) => {
  const now = Date.parse("2031-05-05T12:00:00Z");
  const cloud = await cloudFor(t, { now: () => now });
  const node = cloud.addNode();
  const other = cloud.addNode();
  const path = `/v1/nodes/${node.nodeId}/config`;
  const at = { ...node, path, timestamp: now };
  const cases: [string, Parameters<typeof signedFetch>[1], number, string][] = [
    [
      "unknown node",
      {
        ...at,
        nodeId: "0b9e5f1e-3a8c-4b7d-9e2f-1c2d3e4f5a6b",
        secret: node.secret,
        path: "/v1/nodes/0b9e5f1e-3a8c-4b7d-9e2f-1c2d3e4f5a6b/config",
      },
      401,
      "bad_signature",
    ],
    ["timestamp too old", { ...at, timestamp: now - 301_000 }, 401, "stale_timestamp"],
    ["timestamp too new", { ...at, timestamp: now + 301_000 }, 401, "stale_timestamp"],
    ["wrong secret", { ...at, secret: other.secret }, 401, "bad_signature"],
    ["forged signature", { ...at, signature: randomBytes(32).toString("base64url") }, 401, "bad_signature"],
    ["padded signature", { ...at, signature: `${randomBytes(32).toString("base64url")}=` }, 401, "bad_signature"],
    [
      "content hash of another body",
      { ...at, contentSha256: createHash("sha256").update("x").digest("hex") },
      400,
      "bad_content_hash",
    ],
    ["other node's path", { ...other, path, timestamp: now }, 403, "node_mismatch"],
    ["absent signature", { ...at, omit: ["x-cams-signature"] }, 401, "missing_signature"],
    ["absent nonce", { ...at, omit: ["x-cams-nonce"] }, 401, "missing_signature"],
  ];
  for (const [name, options, status, code] of cases) {
    const res = await signedFetch(cloud.url, options);
    assert.equal(res.status, status, name);
    assert.equal((await errorOf(res)).error, code, name);
  }
  // Inside the window still passes (299 s each way).
  for (const skew of [-299_000, 299_000]) {
    const res = await signedFetch(cloud.url, { ...at, timestamp: now + skew });
    assert.equal(res.status, 404, `skew ${skew}`);
  }
  const unsigned = await fetch(`${cloud.url}${path}`);
  assert.equal(unsigned.status, 401);
  assert.equal((await errorOf(unsigned)).error, "missing_signature");
});

test("a nonce is accepted once; a refused request does not consume it", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const nonce = randomBytes(16).toString("base64url");
  const path = `/v1/nodes/${node.nodeId}/config`;
  const forged = await signedFetch(cloud.url, {
    ...node,
    path,
    nonce,
    signature: randomBytes(32).toString("base64url"),
  });
  assert.equal(forged.status, 401);
  const first = await signedFetch(cloud.url, { ...node, path, nonce });
  assert.equal(first.status, 404);
  const replay = await signedFetch(cloud.url, { ...node, path, nonce });
  assert.equal(replay.status, 401);
  assert.equal((await errorOf(replay)).error, "replayed_nonce");
});

test("a nonce is kept exactly as long as its request could pass the ±300 s window, both ends included", async (t) => {
  let now = Date.now();
  const cloud = await cloudFor(t, { now: () => now });
  const node = cloud.addNode();
  const path = `/v1/nodes/${node.nodeId}/config`;
  const nonce = randomBytes(16).toString("base64url");
  const timestamp = now + 300_000;
  // First seen at the earliest instant the window allows (ts − 300 s) …
  assert.equal((await signedFetch(cloud.url, { ...node, path, nonce, timestamp })).status, 404);
  // … and replayed at the latest (ts + 300 s): refused.
  now = timestamp + 300_000;
  const replay = await signedFetch(cloud.url, { ...node, path, nonce, timestamp });
  assert.equal(replay.status, 401);
  assert.equal((await errorOf(replay)).error, "replayed_nonce");
  // Past the window the timestamp is refused; a fresh request may then reuse the nonce.
  now += 1;
  assert.equal(
    (await errorOf(await signedFetch(cloud.url, { ...node, path, nonce, timestamp }))).error,
    "stale_timestamp",
  );
  assert.equal((await signedFetch(cloud.url, { ...node, path, nonce, timestamp: now })).status, 404);
  assert.equal((await signedFetch(cloud.url, { ...node, path, nonce, timestamp: now })).status, 401);
});

test("a request captured before a restart of the cloud is refused after it", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "cloud-test-"));
  try {
    const first = await startCloud({ dataDir });
    const node = first.addNode();
    const path = `/v1/nodes/${node.nodeId}/status`;
    const body = JSON.stringify({ version: "0.1.0" });
    const captured = signedHeaders({
      ...node,
      method: "POST",
      path,
      body,
      headers: { "content-type": "application/json" },
    });
    const send = (url: string) => fetch(`${url}${path}`, { method: "POST", headers: captured, body });
    assert.equal((await send(first.url)).status, 204);
    await first.close();
    const second = await startCloud({ dataDir });
    try {
      const replay = await send(second.url);
      assert.equal(replay.status, 401);
      assert.equal((await errorOf(replay)).error, "replayed_nonce");
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** The answer's MAC, spelled out from protocol.md rather than shared with the cloud. */
function expectedMac(secret: string, nonce: string, status: number, body: Buffer): string {
  const key = Buffer.from(
    hkdfSync("sha256", Buffer.from(secret, "base64url"), "cams-bioapi", "cams-bioapi/v1/response", 32),
  );
  const text = `CAMS2-RESPONSE-HMAC-SHA256\n${nonce}\n${status}\n${createHash("sha256").update(body).digest("hex")}`;
  return createHmac("sha256", key).update(text).digest("base64url");
}

test("every answer to a verified request carries a MAC over its nonce, status and body; refusals carry none", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  cloud.setConfig(node.nodeId, CONFIG);
  const nonce = () => randomBytes(16).toString("base64url");
  const cases: [string, Parameters<typeof signedFetch>[1], number][] = [
    ["config 200", { ...node, path: `/v1/nodes/${node.nodeId}/config` }, 200],
    ["config 304", { ...node, path: `/v1/nodes/${node.nodeId}/config`, headers: { "if-none-match": '"1"' } }, 304],
    ["bad content hash", { ...node, path: `/v1/nodes/${node.nodeId}/config`, contentSha256: "0".repeat(64) }, 400],
  ];
  for (const [name, options, status] of cases) {
    const n = nonce();
    const res = await signedFetch(cloud.url, { ...options, nonce: n });
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, status, name);
    assert.equal(res.headers.get("x-cams-protocol"), "2", name);
    assert.equal(res.headers.get("x-cams-response-mac"), expectedMac(node.secret, n, status, body), name);
  }
  cloud.injectFault({ route: "punches", status: 503, times: 1 });
  const injected = await postPunches(cloud, node, [punch(1)]);
  assert.equal(injected.status, 503);
  assert.match(injected.headers.get("x-cams-response-mac") ?? "", /^[A-Za-z0-9_-]{43}$/, "the cloud's own 503");
  cloud.injectFault({ route: "punches", status: 503, times: 1, unsigned: true });
  const proxied = await postPunches(cloud, node, [punch(1)]);
  assert.equal(proxied.headers.get("x-cams-response-mac"), null, "a proxy's 503 (unsigned fault)");

  // A bad signature and an unknown node get the same answer, byte for byte, and neither is authenticated.
  const unknown = "0b9e5f1e-3a8c-4b7d-9e2f-1c2d3e4f5a6b";
  const answers = [];
  for (const options of [
    { ...node, path: `/v1/nodes/${node.nodeId}/config`, signature: randomBytes(32).toString("base64url") },
    { nodeId: unknown, secret: node.secret, path: `/v1/nodes/${unknown}/config` },
  ]) {
    const res = await signedFetch(cloud.url, options);
    assert.equal(res.headers.get("x-cams-response-mac"), null);
    answers.push({ status: res.status, body: await res.text() });
  }
  assert.deepEqual(answers[0], answers[1]);
  assert.equal(answers[0]?.status, 401);
});

/** Test-side decryption, spelled out from protocol.md rather than shared with the cloud. */
function decrypt(secret: string, body: { nodeId: string; version: number; iv: string; ciphertext: string }): unknown {
  const key = Buffer.from(
    hkdfSync("sha256", Buffer.from(secret, "base64url"), "cams-bioapi", "cams-bioapi/v1/config", 32),
  );
  const iv = Buffer.from(body.iv, "base64");
  assert.equal(iv.length, 12);
  const data = Buffer.from(body.ciphertext, "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, iv);
  decipher.setAAD(Buffer.from(`cams-bioapi/config\n${body.nodeId}\n${body.version}`));
  decipher.setAuthTag(data.subarray(data.length - 16));
  return JSON.parse(Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString());
}

test("config: 404 until set, then 200 with ETag, 304 on the same version, decryptable with the AAD", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const path = `/v1/nodes/${node.nodeId}/config`;
  const none = await signedFetch(cloud.url, { ...node, path });
  assert.equal(none.status, 404);
  assert.equal((await errorOf(none)).error, "no_config");

  assert.equal(cloud.setConfig(node.nodeId, CONFIG), 1);
  const res = await signedFetch(cloud.url, { ...node, path });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("etag"), '"1"');
  const body = (await res.json()) as { nodeId: string; version: number; alg: string; iv: string; ciphertext: string };
  assert.equal(body.nodeId, node.nodeId);
  assert.equal(body.version, 1);
  assert.equal(body.alg, "AES-256-GCM");
  assert.deepEqual(decrypt(node.secret, body), CONFIG);
  // The AAD binds node and version: the same bytes under another version do not open.
  assert.throws(() => decrypt(node.secret, { ...body, version: 2 }));

  const same = await signedFetch(cloud.url, { ...node, path, headers: { "if-none-match": '"1"' } });
  assert.equal(same.status, 304);
  assert.equal(same.headers.get("etag"), '"1"');

  assert.equal(cloud.setConfig(node.nodeId, { ...CONFIG, heartbeatIntervalMs: 5000 }), 2);
  const newer = await signedFetch(cloud.url, { ...node, path, headers: { "if-none-match": '"1"' } });
  assert.equal(newer.status, 200);
  assert.equal(newer.headers.get("etag"), '"2"');
  const v2 = (await newer.json()) as typeof body;
  assert.equal((decrypt(node.secret, v2) as { heartbeatIntervalMs: number }).heartbeatIntervalMs, 5000);
});

test("setConfig refuses an invalid config naming every path", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  assert.throws(
    () => cloud.setConfig(node.nodeId, { schemaVersion: 2, sources: [{ ...CONFIG.sources[0], id: "Bad Id" }] }),
    (error: Error) => {
      assert.match(error.message, /schemaVersion: /);
      assert.match(error.message, /sources\[0\]\.id: /);
      return true;
    },
  );
  assert.throws(() => cloud.setConfig("no-such-node", CONFIG), /not registered/);
  assert.equal(cloud.currentConfig(node.nodeId), undefined);
});

test("published envelopes are served verbatim: tampered, wrongly keyed, older", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const path = `/v1/nodes/${node.nodeId}/config`;
  cloud.setConfig(node.nodeId, CONFIG);
  cloud.setConfig(node.nodeId, CONFIG);
  const wrongKey = encryptConfig({
    secret: randomBytes(32).toString("base64url"),
    nodeId: node.nodeId,
    version: 3,
    plaintext: JSON.stringify(CONFIG),
  });
  cloud.publishEnvelope(node.nodeId, { version: 3, ...wrongKey });
  const res = await signedFetch(cloud.url, { ...node, path });
  assert.equal(res.headers.get("etag"), '"3"');
  const body = (await res.json()) as { nodeId: string; version: number; iv: string; ciphertext: string };
  assert.deepEqual(body, { nodeId: node.nodeId, alg: "AES-256-GCM", version: 3, ...wrongKey });
  assert.throws(() => decrypt(node.secret, body));

  cloud.publishEnvelope(node.nodeId, { version: 1, iv: "AAAAAAAAAAAAAAAA", ciphertext: "AAAA" });
  const older = await signedFetch(cloud.url, { ...node, path });
  assert.equal(older.headers.get("etag"), '"1"');
  assert.equal(((await older.json()) as { version: number }).version, 1);
  // Versions keep counting from the highest ever issued.
  assert.equal(cloud.setConfig(node.nodeId, CONFIG), 4);
});

test("punches are upserted: repeats are duplicates and counted", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const batch = [punch(1), punch(2), punch(3, "CKJ7654321")];
  const first = await postPunches(cloud, node, batch);
  assert.equal(first.status, 200);
  assert.deepEqual(
    ((await first.json()) as Results).results,
    batch.map((p) => ({ id: p.id, status: "accepted" })),
  );
  const again = await postPunches(cloud, node, [punch(2), punch(4), punch(2)]);
  assert.deepEqual(
    ((await again.json()) as Results).results.map((r) => r.status),
    ["duplicate", "accepted", "duplicate"],
  );
  assert.deepEqual(cloud.stats(node.nodeId), {
    total: 4,
    duplicateDeliveries: 2,
    byDevice: { CKJ1234567: 3, CKJ7654321: 1 },
  });
  const stored = cloud.punches(node.nodeId);
  assert.deepEqual(
    stored.map((p) => [p.id, p.deliveries]),
    [
      [punch(1).id, 1],
      [punch(2).id, 3],
      [punch(3, "CKJ7654321").id, 1],
      [punch(4).id, 1],
    ],
  );
  const second = stored[1];
  assert.ok(second);
  assert.equal(second.idConsistent, true);
  assert.equal(second.time, "2026-11-26T08:00:02+05:30");
  assert.deepEqual(second.body, punch(2));
  // Another node's identical id is its own punch.
  const other = cloud.addNode();
  const res = await postPunches(cloud, other, [punch(1)]);
  assert.equal(((await res.json()) as Results).results[0]?.status, "accepted");
});

test("an invalid punch is rejected for good while the rest of the batch is stored", async (t) => {
  const cloud = await cloudFor(t, {
    rejectPunch: (p) => ((p as { userId: string }).userId === "1009" ? "user 1009 is not on the roster" : undefined),
  });
  const node = cloud.addNode();
  const batch: unknown[] = [
    punch(1),
    { ...punch(2), userId: "" },
    { ...punch(3), id: "ABC" },
    { ...punch(4), time: "2026-11-26T08:59:03" },
    { ...punch(5), time: "2026-02-30T08:59:03Z" },
    { ...punch(6), deviceSerial: 42 },
    { ...punch(7), state: 0 },
    "not a punch",
    punch(9),
    punch(10),
  ];
  const res = await postPunches(cloud, node, batch);
  assert.equal(res.status, 200);
  const results = ((await res.json()) as Results).results;
  assert.deepEqual(
    results.map((r) => [r.status, r.reason]),
    [
      ["accepted", undefined],
      ["rejected", "userId is empty"],
      ["rejected", "id must be 32 lowercase hex digits"],
      ["rejected", "time must be ISO 8601 with an offset or Z, e.g. 2026-11-26T08:59:03+05:30"],
      ["rejected", "time must be ISO 8601 with an offset or Z, e.g. 2026-11-26T08:59:03+05:30"],
      ["rejected", "deviceSerial must be a string"],
      ["rejected", "state must be a string"],
      ["rejected", "punch is not a JSON object"],
      ["rejected", "user 1009 is not on the roster"],
      ["accepted", undefined],
    ],
  );
  for (const r of results.filter((x) => x.status === "rejected")) assert.equal(r.permanent, true);
  assert.equal(results[1]?.id, punch(2).id);
  const stats = cloud.stats(node.nodeId);
  assert.equal(stats.total, 2);
  assert.equal(cloud.rejections(node.nodeId).length, 8);
  assert.equal(cloud.rejections(node.nodeId)[0]?.reason, "userId is empty");
});

test("gzip bodies are accepted; malformed and oversized bodies are refused", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const path = `/v1/nodes/${node.nodeId}/punches`;
  const gz = await postPunches(cloud, node, [punch(1), punch(2)], true);
  assert.equal(gz.status, 200);
  assert.equal(cloud.stats(node.nodeId).total, 2);

  const post = (body: Uint8Array | string, headers: Record<string, string> = {}) =>
    signedFetch(cloud.url, { ...node, method: "POST", path, body, headers });
  const cases: [string, Promise<Response>, number, string][] = [
    ["not JSON", post("{punches:"), 400, "malformed_body"],
    ["not gzip", post("{}", { "content-encoding": "gzip" }), 400, "malformed_body"],
    ["no punches array", post('{"punch":[]}'), 400, "malformed_body"],
    ["punches not an array", post('{"punches":{}}'), 400, "malformed_body"],
    ["unknown encoding", post("{}", { "content-encoding": "br" }), 415, "unsupported_encoding"],
    [
      "too many punches",
      post(JSON.stringify({ punches: Array.from({ length: 10_001 }, () => ({})) })),
      413,
      "too_many_punches",
    ],
    ["over 16 MiB", post(Buffer.alloc(16 * 1024 * 1024 + 1, 0x20)), 413, "payload_too_large"],
  ];
  for (const [name, response, status, code] of cases) {
    const res = await response;
    assert.equal(res.status, status, name);
    assert.equal((await errorOf(res)).error, code, name);
  }
  assert.equal(cloud.stats(node.nodeId).total, 2);
});

test("a chunked body growing past 16 MiB is refused with 413 and the connection still answers", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const path = `/v1/nodes/${node.nodeId}/punches`;
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  const body = Buffer.concat(Array.from({ length: 17 }, () => chunk));
  const headers = signedHeaders({ ...node, method: "POST", path, body });
  const { status, text } = await new Promise<{ status: number; text: string }>((done, fail) => {
    const req = request(`${cloud.url}${path}`, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => done({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", fail);
    // No content-length: the limit has to be enforced while streaming.
    for (let i = 0; i < 17; i++) req.write(chunk);
    req.end();
  });
  assert.equal(status, 413);
  assert.equal((JSON.parse(text) as { error: string }).error, "payload_too_large");
  assert.equal(cloud.stats(node.nodeId).total, 0);
});

test("unknown paths are 404 and wrong methods 405", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const missing = await fetch(`${cloud.url}/v2/anything`);
  assert.equal(missing.status, 404);
  assert.equal((await errorOf(missing)).error, "not_found");
  const wrong = await signedFetch(cloud.url, { ...node, method: "GET", path: `/v1/nodes/${node.nodeId}/punches` });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "POST");
  assert.equal((await errorOf(wrong)).error, "method_not_allowed");
  const root = await fetch(`${cloud.url}/`);
  assert.equal(((await root.json()) as { nodes: number }).nodes, 1);
});

test("faults: 500 twice then normal service, counted per route and status", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  cloud.injectFault({ route: "punches", status: 500, times: 2 });
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await postPunches(cloud, node, [punch(1)]);
    statuses.push(res.status);
    if (res.status === 500) assert.equal((await errorOf(res)).error, "injected_fault");
    else await res.body?.cancel();
  }
  assert.deepEqual(statuses, [500, 500, 200]);
  // The faulted requests were not applied.
  assert.deepEqual(cloud.stats(node.nodeId), {
    total: 1,
    duplicateDeliveries: 0,
    byDevice: { CKJ1234567: 1 },
  });
  const health = await fetch(`${cloud.url}/v1/health`);
  assert.equal(health.status, 200, "a punches fault does not touch other routes");
  const counters = cloud.requests;
  assert.equal(counters.byRoute.punches, 3);
  assert.equal(counters.byRoute.health, 1);
  assert.equal(counters.byStatus[500], 2);
  assert.deepEqual(counters.byRouteStatus.punches, { 200: 1, 500: 2 });
  cloud.resetRequests();
  assert.equal(cloud.requests.total, 0);
});

test("faults: 429 carries Retry-After; clearFaults removes pending ones; 'any' hits every route", async (t) => {
  const cloud = await cloudFor(t);
  cloud.injectFault({ route: "health", status: 429, retryAfterSeconds: 7, times: 1 });
  const limited = await fetch(`${cloud.url}/v1/health`);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "7");
  await errorOf(limited);
  assert.equal((await fetch(`${cloud.url}/v1/health`)).status, 200);

  cloud.injectFault({ route: "any", status: 503, retryAfterSeconds: 1, times: 5 });
  assert.equal((await fetch(`${cloud.url}/v1/health`)).status, 503);
  cloud.clearFaults();
  assert.equal((await fetch(`${cloud.url}/v1/health`)).status, 200);
});

test("faults: a delay answers late, and a body fully received is applied even if the client gave up", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  cloud.injectFault({ route: "health", delayMs: 300, times: 1 });
  const started = performance.now();
  const late = await fetch(`${cloud.url}/v1/health`);
  assert.equal(late.status, 200);
  assert.ok(performance.now() - started >= 280, "answered after the delay");

  cloud.injectFault({ route: "punches", delayMs: 400, times: 1 });
  const json = JSON.stringify({ punches: [punch(1)] });
  await assert.rejects(
    signedFetch(cloud.url, {
      ...node,
      method: "POST",
      path: `/v1/nodes/${node.nodeId}/punches`,
      body: json,
      signal: AbortSignal.timeout(100),
    }),
    { name: "TimeoutError" },
  );
  assert.equal(cloud.stats(node.nodeId).total, 0, "not applied before the delay ends");
  const deadline = Date.now() + 30_000;
  while (cloud.stats(node.nodeId).total === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cloud.stats(node.nodeId).total, 1, "applied once the delay ended");
  // The connector's retry is then a duplicate, not a second punch.
  const retry = await postPunches(cloud, node, [punch(1)]);
  assert.equal(((await retry.json()) as Results).results[0]?.status, "duplicate");
});

test("stop() drops connections and restart() listens on the same port with the data intact", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const { port, url } = cloud;
  assert.equal((await postPunches(cloud, node, [punch(1)])).status, 200);
  await cloud.stop();
  await assert.rejects(fetch(`${url}/v1/health`));
  await cloud.restart();
  assert.equal(cloud.port, port);
  assert.equal(cloud.url, url);
  assert.equal((await fetch(`${url}/v1/health`)).status, 200);
  const res = await postPunches(cloud, node, [punch(1), punch(2)]);
  assert.deepEqual(
    ((await res.json()) as Results).results.map((r) => r.status),
    ["duplicate", "accepted"],
  );
});

test("nodes survive a restart of the process; secrets are encrypted at rest under a 0600 key", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "cloud-test-"));
  try {
    const first = await startCloud({ dataDir });
    const node = first.addNode();
    first.setConfig(node.nodeId, CONFIG);
    await first.close();
    const second = await startCloud({ dataDir });
    try {
      const res = await signedFetch(second.url, { ...node, path: `/v1/nodes/${node.nodeId}/config` });
      assert.equal(res.status, 200);
      assert.deepEqual(decrypt(node.secret, (await res.json()) as never), CONFIG);
    } finally {
      await second.close();
    }
    assert.equal(statSync(join(dataDir, "cloud.key")).mode & 0o777, 0o600);
    const raw = Buffer.from(node.secret, "base64url");
    for (const file of ["cloud.db", "cloud.db-wal"]) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(dataDir, file));
      } catch {
        continue;
      }
      assert.equal(bytes.includes(node.secret), false, `${file} holds the secret in base64url`);
      assert.equal(bytes.includes(raw), false, `${file} holds the raw secret`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("ingest keeps up: 20,000 gzip punches in batches of 1,000", async (t) => {
  const cloud = await cloudFor(t);
  const node = cloud.addNode();
  const started = performance.now();
  for (let b = 0; b < 20; b++) {
    const batch = Array.from({ length: 1000 }, (_, i) => punch(b * 1000 + i, `DEV${b % 4}`));
    const res = await postPunches(cloud, node, batch, true);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  const seconds = (performance.now() - started) / 1000;
  assert.equal(cloud.stats(node.nodeId).total, 20_000);
  t.diagnostic(`${Math.round(20_000 / seconds)} punches/s`);
});

/** Raw HTTP, so the test sets the Host header (fetch would not let it). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

test("the nodes page answers to loopback host names only: a rebound name is refused", async (t) => {
  const cloud = await cloudFor(t);
  cloud.addNode();
  const port = cloud.port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
    const ok = await getWithHost(`${cloud.url}/nodes`, host);
    assert.equal(ok.status, 200, host);
    assert.match(ok.body, /<table/);
  }
  // DNS rebinding: a page at evil.example, re-pointed at 127.0.0.1, sends its own name; so would a wrong port.
  for (const host of [`evil.example:${port}`, "evil.example", `127.0.0.1:${port + 1}`]) {
    const refused = await getWithHost(`${cloud.url}/nodes`, host);
    assert.equal(refused.status, 421, host);
    const body = JSON.parse(refused.body) as { error: string; message: string };
    assert.equal(body.error, "misdirected");
    assert.match(body.message, new RegExp(`open http://127\\.0\\.0\\.1:${port}/nodes`));
    assert.doesNotMatch(refused.body, /<table/, "nothing of the page");
  }
});
