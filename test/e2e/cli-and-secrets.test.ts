import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { startCloud } from "../../cloud/cloud-server.ts";
import { decryptEnvelope, parseEnvelope } from "../../src/config/config-envelope.ts";
import { deriveNodeKeys } from "../../src/link/node-keys.ts";
import { BIN, runBioapi as bioapi, ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e } from "../helpers/e2e-harness.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

const exec = promisify(execFile);

/** The secret in every spelling it could leak as. */
function spellings(secret: string): string[] {
  const raw = Buffer.from(secret, "base64url");
  return [secret, raw.toString("base64"), raw.toString("hex"), raw.toString("latin1")];
}

async function filesContaining(dir: string, needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path);
    const text = bytes.toString("latin1");
    if (needles.some((n) => text.includes(n) || bytes.toString("utf8").includes(n))) hits.push(path);
  }
  return hits;
}

async function processList(): Promise<string> {
  return (await exec("ps", ["-eo", "args"])).stdout;
}

test("--version and unknown commands", async () => {
  const v = await bioapi(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const u = await bioapi(["frobnicate"]);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /Unknown command "frobnicate"/);
});

test("enroll refuses a secret on the command line and wrong credentials; takes the secret from stdin", async () => {
  await using dir = await tempDir();
  await using cloud = await startCloud({ dataDir: join(dir.path, "cloud") });
  const node = cloud.addNode();
  const dataDir = join(dir.path, "c");

  const argv = await bioapi([
    "enroll",
    "--cloud-url",
    cloud.url,
    "--node-id",
    node.nodeId,
    "--secret",
    "abc",
    "--data-dir",
    dataDir,
  ]);
  assert.equal(argv.code, 2);
  assert.match(argv.stderr, /Refusing --secret.*process list/);

  const other = cloud.addNode();
  const wrong = await bioapi(
    ["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, "--data-dir", dataDir],
    other.secret,
  );
  assert.equal(wrong.code, 1);
  assert.match(
    wrong.stderr,
    /refused these credentials: the secret does not match node [0-9a-f-]{36}\. .*Nothing was stored/,
  );
  assert.doesNotMatch(wrong.stderr, /string to sign|x-cams-signature/);
  assert.equal(wrong.stderr.includes(other.secret), false);

  const positional = await bioapi(["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, node.secret]);
  assert.equal(positional.code, 2);
  assert.match(positional.stderr, /Unexpected or malformed argument/);
  assert.equal(positional.stderr.includes(node.secret), false, "a pasted secret is not echoed");

  const plain = await bioapi(
    ["enroll", "--cloud-url", "http://cloud.example", "--node-id", node.nodeId, "--no-verify"],
    node.secret,
  );
  assert.equal(plain.code, 2);
  assert.match(plain.stderr, /must use https for cloud.example/);

  const garbled = await bioapi(
    ["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, "--data-dir", dataDir],
    "short",
  );
  assert.equal(garbled.code, 2);
  assert.match(garbled.stderr, /not 32 bytes of base64url/);

  const ok = await bioapi(
    ["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, "--data-dir", dataDir],
    `${node.secret}\n`,
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`Enrolled node ${node.nodeId}`));
  assert.deepEqual(await filesContaining(dataDir, spellings(node.secret)), []);

  // A lost key file: the error names the fix, and --force starts afresh while keeping the old file aside.
  const { rm } = await import("node:fs/promises");
  await rm(join(dataDir, "master.key"));
  const again = await bioapi(
    ["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, "--data-dir", dataDir],
    node.secret,
  );
  assert.equal(again.code, 1);
  assert.match(again.stderr, /key file .* is missing.*--force/);
  const forced = await bioapi(
    ["enroll", "--cloud-url", cloud.url, "--node-id", node.nodeId, "--data-dir", dataDir, "--force"],
    node.secret,
  );
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /Kept the previous secrets file aside/);
});

test("status reports sources, cursor, outbox and connectivity; no secret in status, logs, files or ps", async () => {
  await using h = await e2e();
  h.db.insertMany(200, ["S1", "S2"]);
  await using p = await ConnectorProcess.started(h.connectorDir);
  await waitFor("200 delivered", () => h.cloud.stats(h.nodeId).total === 200);
  const ps = await processList();

  const human = await bioapi(["status", "--data-dir", h.connectorDir]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /connectivity: online \(policy pause\)/);
  assert.match(human.stdout, /config: version 1/);
  assert.match(human.stdout, /outbox: 0 pending/);
  assert.match(human.stdout, /att \[database\] running .* cursor S1=199 S2=200/);

  const json = await bioapi(["status", "--data-dir", h.connectorDir, "--json"]);
  const status = JSON.parse(json.stdout);
  assert.equal(status.nodeId, h.nodeId);
  assert.equal(status.sources[0].emitted, 200);
  assert.deepEqual(status.sources[0].cursor, { S1: 199, S2: 200 });

  const exit = await p.kill("SIGTERM");
  assert.equal(exit.code, 0);
  // One set of exit codes: not running is 1, with or without --url, whether status.json is gone or stale.
  const after = await bioapi(["status", "--data-dir", h.connectorDir]);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /No connector is running with data directory/);
  const afterUrl = await bioapi(["status", "--data-dir", h.connectorDir, "--url"]);
  assert.equal(afterUrl.code, 1);
  assert.equal(afterUrl.stdout, "");
  assert.equal((await bioapi(["status", "--data-dir", h.connectorDir, "--bogus"])).code, 2);

  const needles = spellings(h.secret);
  const logs = p.output.join("");
  assert.ok(logs.includes("Connector started."), "the logs were captured");
  for (const n of needles) {
    assert.equal(ps.includes(n), false, "secret in ps output");
    assert.equal(logs.includes(n), false, "secret in the logs");
    assert.equal(json.stdout.includes(n) || human.stdout.includes(n), false, "secret in status");
  }
  assert.deepEqual(await filesContaining(h.connectorDir, needles), [], "secret in a data-dir file");
});

test("the demo runs, delivers, stops cleanly, and leaks no secret", async () => {
  // Stopped once the seeded backlog is in, not after a fixed --duration: how long that takes depends on the machine.
  // The long --duration only ends a demo this test failed to stop.
  const child = spawn(process.execPath, [BIN, "demo", "--duration", "900", "--keep", "--rate", "20"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  let psDuring = "";
  try {
    // Failure deadlines only: at load 19 the demo took over 20 s to start.
    psDuring = await waitFor("demo running", async () => (out.includes("Press Ctrl-C") ? processList() : ""), 120_000);
    // 2000 seeded database rows and the terminals' 4500 preloaded records.
    await waitFor(
      "the seeded backlog in the cloud",
      () =>
        [...out.matchAll(/in cloud (\d+) {2}at callback (\d+)/g)].some(
          (m) => Number(m[1]) >= 6500 && Number(m[2]) >= 6500,
        ),
      300_000,
      100,
    );
  } finally {
    child.kill("SIGINT");
  }
  const code = await exited;
  assert.equal(code, 0, out);
  const stopped = /Written (\d+) \(.*\), in cloud (\d+)/.exec(out);
  assert.ok(stopped, out);
  assert.ok(Number(stopped[2]) >= 6500, `the seeded backlog reached the cloud: ${stopped[0]}`);
  // Both sinks took every punch: the callback receiver counts by OperationID what the cloud counts by punch id.
  // "Out of order" is by LogTime and is not asserted: on a loaded machine a live punch on CAMS-GATE-01 can be read
  // before the older records of the same user in its backlog, and the sink keeps outbox order, as it promises. The
  // sink's own ordering (never a user's later outbox row first, never two at once) is held by its unit tests.
  const atCallback = /At the callback receiver (\d+) \(\d+ repeats absorbed by OperationID, \d+ out of order\)/.exec(
    out,
  );
  assert.ok(atCallback, out);
  assert.equal(atCallback[1], stopped[2], "the callback receiver and the cloud hold the same number of punches");
  const root = /Kept (\S+)/.exec(out)?.[1];
  const nodeId = /node ([0-9a-f-]{36})/.exec(out)?.[1];
  assert.ok(root && nodeId, out);
  await using cloud = await startCloud({ dataDir: join(root, "cloud") });
  const secret = cloud.nodeSecret(nodeId);
  assert.ok(secret);
  // The callback's AuthToken is a secret too: it travels only inside the encrypted config.
  const envelope = cloud.currentConfig(nodeId);
  assert.ok(envelope);
  const config = decryptEnvelope(
    deriveNodeKeys(secret).config,
    nodeId,
    parseEnvelope(Buffer.from(JSON.stringify(envelope))),
  ) as {
    sinks: { kind: string; authToken?: string }[];
  };
  const authToken = config.sinks.find((s) => s.kind === "cams-callback")?.authToken;
  assert.ok(authToken && authToken.length >= 16);
  const needles = [...spellings(secret), ...spellings(authToken)];
  for (const n of needles) {
    assert.equal(out.includes(n), false, "secret in demo output");
    assert.equal(psDuring.includes(n), false, "secret in ps output");
  }
  assert.deepEqual(await filesContaining(join(root, "connector"), needles), []);
  await cloud.close();
  const { rm } = await import("node:fs/promises");
  await rm(root, { recursive: true, force: true });
});
