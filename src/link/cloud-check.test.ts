import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { test } from "node:test";
import { startCloud } from "../../cloud/cloud-server.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import type { Finding } from "../core/check.ts";
import { systemClock } from "../core/clock.ts";
import { checkCloud } from "./cloud-check.ts";
import { CloudClient } from "./cloud-client.ts";
import { deriveNodeKeys } from "./node-keys.ts";

const statuses = (findings: readonly Finding[]) => findings.map((f) => [f.check, f.status]);

function target(cloudUrl: string, nodeId: string, secret: string) {
  const client = new CloudClient({ baseUrl: cloudUrl, nodeId, keys: deriveNodeKeys(secret), clock: systemClock });
  return { client, cloudUrl };
}

test("the cloud link: reachable, in step, the signature accepted and the config response handed on", async () => {
  await using dir = await tempDir();
  await using cloud = await startCloud({ dataDir: join(dir.path, "cloud") });
  const node = cloud.addNode();
  cloud.setConfig(node.nodeId, { schemaVersion: 1, sources: [] });
  const r = await checkCloud(target(cloud.url, node.nodeId, node.secret), AbortSignal.timeout(30_000));
  assert.equal(r.subject, `cloud ${new URL(cloud.url).origin}`);
  assert.deepEqual(statuses(r.findings), [
    ["reachable", "ok"],
    ["clock", "ok"],
    ["signature", "ok"],
  ]);
  assert.equal(r.configResponse?.status, 200);

  cloud.injectFault({ route: "config", status: 502, times: 1 });
  const failing = await checkCloud(target(cloud.url, node.nodeId, node.secret), AbortSignal.timeout(30_000));
  assert.deepEqual(statuses(failing.findings).at(-1), ["signature", "warn"]);
  assert.equal(failing.configResponse, undefined);
});

test("a skewed cloud clock fails, a wrong secret is refused, and an unreachable cloud stops at reachable", async () => {
  await using dir = await tempDir();
  await using skewed = await startCloud({ dataDir: join(dir.path, "cloud"), now: () => Date.now() + 10 * 60_000 });
  const node = skewed.addNode();
  const late = await checkCloud(target(skewed.url, node.nodeId, node.secret), AbortSignal.timeout(30_000));
  const clock = late.findings.find((f) => f.check === "clock");
  assert.equal(clock?.status, "fail");
  assert.match(clock?.detail ?? "", /10 min behind the cloud: beyond the ±5 min/);

  const stranger = randomBytes(32).toString("base64url");
  const refused = await checkCloud(target(skewed.url, node.nodeId, stranger), AbortSignal.timeout(30_000));
  const signature = refused.findings.find((f) => f.check === "signature");
  assert.equal(signature?.status, "fail");
  assert.match(signature?.fix ?? "", /re-enroll/);
  assert.equal(refused.configResponse, undefined);

  await skewed.stop();
  const gone = await checkCloud(target(skewed.url, node.nodeId, node.secret), AbortSignal.timeout(30_000));
  assert.deepEqual(statuses(gone.findings), [["reachable", "fail"]]);
  assert.match(gone.findings[0]?.fix ?? "", /outbound HTTPS/);
});
