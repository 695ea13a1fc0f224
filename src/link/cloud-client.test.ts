import assert from "node:assert/strict";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { startCloud } from "../../cloud/cloud-server.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { systemClock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import { CloudClient, isTransportFailure } from "./cloud-client.ts";
import { deriveNodeKeys } from "./node-keys.ts";

const NODE = "0b9e5f1e-3a8c-4b7d-9e2f-1c2d3e4f5a6b";
const SECRET = Buffer.alloc(32, 7).toString("base64url");

async function serve(t: TestContext, handler: RequestListener): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((done) => server.close(() => done()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(baseUrl: string, maxResponseBytes?: number): CloudClient {
  return new CloudClient({
    baseUrl,
    nodeId: NODE,
    keys: deriveNodeKeys(SECRET),
    clock: systemClock,
    ...(maxResponseBytes === undefined ? {} : { maxResponseBytes }),
  });
}

const post = (c: CloudClient) =>
  c.request({ method: "POST", path: c.nodePath("punches"), json: { punches: [] }, timeoutMs: 5000 });

/** Something answered, so the sink retries the batch and never takes it for lost connectivity. */
function rejectsWith(code: string, pattern: RegExp) {
  return (e: unknown) => e instanceof BioError && e.code === code && !isTransportFailure(e) && pattern.test(e.message);
}

test("a redirect is never followed: CLOUD_REDIRECT names the Location, and the target sees nothing", async (t) => {
  let followed = 0;
  const elsewhere = await serve(t, (_req, res) => {
    followed++;
    res.end("{}");
  });
  for (const status of [301, 302, 307, 308]) {
    const url = await serve(t, (_req, res) => {
      res.writeHead(status, { location: `${elsewhere}/steal` }).end();
    });
    await assert.rejects(post(client(url)), rejectsWith("CLOUD_REDIRECT", new RegExp(`${status}.*${elsewhere}/steal`)));
  }
  assert.equal(followed, 0);
});

test("an answer without the cloud's MAC acknowledges nothing; only retry-only statuses come back, marked", async (t) => {
  const status = { code: 200 };
  const url = await serve(t, (_req, res) => {
    res.writeHead(status.code, { "content-type": "application/json", "x-cams-response-mac": "A".repeat(43) });
    res.end('{"results":[]}');
  });
  for (const code of [200, 204, 304, 400, 404, 413]) {
    status.code = code;
    await assert.rejects(
      post(client(url)),
      rejectsWith("CLOUD_UNAUTHENTICATED", /nothing was acknowledged/),
      `${code}`,
    );
  }
  for (const code of [401, 403, 429, 502, 503]) {
    status.code = code;
    const answer = await post(client(url));
    assert.deepEqual([answer.status, answer.authenticated], [code, false]);
  }
});

test("the reference cloud's answers authenticate; another node's key does not", async (t) => {
  await using dir = await tempDir();
  const cloud = await startCloud({ dataDir: join(dir.path, "cloud") });
  t.after(() => cloud.close());
  const node = cloud.addNode();
  const keys = deriveNodeKeys(node.secret);
  const real = new CloudClient({ baseUrl: cloud.url, nodeId: node.nodeId, keys, clock: systemClock });
  const answer = await real.request({ method: "GET", path: real.nodePath("config"), timeoutMs: 5000 });
  assert.deepEqual([answer.status, answer.authenticated], [404, true]);

  const wrongKeys = { ...keys, response: deriveNodeKeys(SECRET).response };
  const fooled = new CloudClient({ baseUrl: cloud.url, nodeId: node.nodeId, keys: wrongKeys, clock: systemClock });
  await assert.rejects(
    fooled.request({ method: "GET", path: fooled.nodePath("config"), timeoutMs: 5000 }),
    rejectsWith("CLOUD_UNAUTHENTICATED", /HTTP 404/),
  );
});

test("the answer's size is bounded, declared or streamed", async (t) => {
  const url = await serve(t, (req, res) => {
    if (req.url?.includes("declared")) {
      res.writeHead(200, { "content-length": String(10_000) }).end("x".repeat(10_000));
      return;
    }
    // Streams without a length, far past the bound: the client must stop reading, not buffer it all.
    res.writeHead(200);
    let sent = 0;
    const more = () => {
      while (sent < 64 * 1024 * 1024 && res.write(Buffer.alloc(65536))) sent += 65536;
      if (sent < 64 * 1024 * 1024) res.once("drain", more);
      else res.end();
    };
    res.on("error", () => undefined);
    more();
  });
  const c = client(url, 4096);
  await assert.rejects(
    c.request({ method: "GET", path: "/declared", timeoutMs: 5000 }),
    rejectsWith("CLOUD_PROTOCOL", /larger than 4096 bytes/),
  );
  await assert.rejects(
    c.request({ method: "GET", path: "/streamed", timeoutMs: 20_000 }),
    rejectsWith("CLOUD_PROTOCOL", /larger than 4096 bytes/),
  );
});
