import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { startCloud } from "../../cloud/cloud-server.ts";
import { dataDirLayout } from "../../src/app/data-dir.ts";
import { loadEnrollment } from "../../src/secrets/enrollment.ts";
import { openSecretStore } from "../../src/secrets/open-secret-store.ts";
import { ConnectorProcess, runBioapi } from "../helpers/connector-process.ts";
import { e2e, fastConfig, PATIENT_SHIPPER } from "../helpers/e2e-harness.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

async function endpointPid(dataDir: string): Promise<number | undefined> {
  const text = await readFile(dataDirLayout(dataDir).statusFile, "utf8").catch(() => undefined);
  return text ? (JSON.parse(text) as { pid: number }).pid : undefined;
}

test("two runs on one directory: the second exits 1 naming the first's pid, and the first goes on alone", async (t) => {
  // Counts deliveries: a batch answered late on a busy machine must not be sent again.
  await using h = await e2e({ config: (db) => fastConfig(db, { shipper: PATIENT_SHIPPER }) });
  h.db.insertMany(200, ["S1", "S2"]);
  const first = await ConnectorProcess.started(h.connectorDir);
  t.after(() => first.kill());
  await waitFor("200 delivered", () => h.cloud.stats(h.nodeId).total === 200);
  const pid = first.child.pid;
  assert.equal(await endpointPid(h.connectorDir), pid);

  const second = new ConnectorProcess(h.connectorDir);
  const exit = await second.exited;
  assert.equal(exit.code, 1, second.output.join(""));
  assert.match(second.output.join(""), new RegExp(`in use by a connector \\(pid ${pid}\\b`));
  assert.equal(await endpointPid(h.connectorDir), pid, "the second instance left the first's status.json alone");
  const status = await runBioapi(["status", "--data-dir", h.connectorDir, "--json"]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).outbox.depth, 0);

  const service = await runBioapi(["service", "start", "--manager", "process", "--data-dir", h.connectorDir]);
  assert.equal(service.code, 1, service.stderr);
  assert.match(service.stderr, new RegExp(`already runs on .* \\(pid ${pid}\\)`));
  const enroll = await runBioapi(
    ["enroll", "--cloud-url", h.cloud.url, "--node-id", h.nodeId, "--data-dir", h.connectorDir, "--no-verify"],
    h.secret,
  );
  assert.equal(enroll.code, 1, enroll.stderr);
  assert.match(enroll.stderr, new RegExp(`in use by a connector \\(pid ${pid}\\b`));

  h.db.insertMany(100, ["S1", "S2"], Date.UTC(2026, 10, 27, 6));
  await waitFor("300 delivered", () => h.cloud.stats(h.nodeId).total === 300);
  assert.deepEqual(
    [...h.cloudIds().values()].filter((n) => n !== 1),
    [],
    "every punch delivered exactly once",
  );

  // kill -9 leaves no stale lock behind: the next run starts at once.
  await first.kill("SIGKILL");
  const third = new ConnectorProcess(h.connectorDir);
  t.after(() => third.kill());
  await waitFor("the third connector's endpoint", async () => (await endpointPid(h.connectorDir)) === third.child.pid);
  h.db.insertMany(10, ["S1"], Date.UTC(2026, 10, 28, 6));
  await waitFor("310 delivered", () => h.cloud.stats(h.nodeId).total === 310);
  assert.equal((await third.kill("SIGTERM")).code, 0);
});

test("enroll refuses to replace another node's enrollment without --force, naming both node ids", async () => {
  await using dir = await tempDir();
  await using cloud = await startCloud({ dataDir: join(dir.path, "cloud") });
  const a = cloud.addNode();
  const b = cloud.addNode();
  const dataDir = join(dir.path, "c");
  const enroll = (node: { nodeId: string; secret: string }, ...extra: string[]) =>
    runBioapi(
      ["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, "--data-dir", dataDir, ...extra],
      node.secret,
    );

  assert.equal((await enroll(a)).code, 0);
  const refused = await enroll(b);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(`enrolled as node ${a.nodeId}; refusing to replace it with node ${b.nodeId}`),
  );
  assert.equal((await loadEnrollment(openSecretStore(dataDirLayout(dataDir)))).nodeId, a.nodeId);

  assert.equal((await enroll(a)).code, 0, "the same node enrolls again without --force");
  const forced = await enroll(b, "--force");
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, new RegExp(`Replacing the enrollment of node ${a.nodeId} with node ${b.nodeId}`));
  assert.equal((await loadEnrollment(openSecretStore(dataDirLayout(dataDir)))).nodeId, b.nodeId);
});
