import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { main } from "./cli.ts";
import { startCloud } from "./cloud-server.ts";
import { SAMPLE_CONFIG } from "./sample-config.ts";
import { signedFetch } from "./signed-fetch.ts";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(argv: string[], signal?: AbortSignal): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    ...(signal === undefined ? {} : { signal }),
  });
  return { code, stdout, stderr };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cloud-cli-test-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const VALID = SAMPLE_CONFIG;

/** `cloud serve` in this process until `marker` is printed; abort `stop` to end it. */
async function serve(args: string[], marker: string) {
  const stop = new AbortController();
  let printed = "";
  const done = main(["serve", ...args], {
    stdout: (text) => {
      printed += text;
    },
    stderr: () => undefined,
    signal: stop.signal,
  });
  // A failure deadline only: 5 s was within reach of a cold start on a busy machine.
  const deadline = Date.now() + 30_000;
  while (!printed.includes(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(printed)?.[1];
  assert.ok(url, printed);
  return { url, stop, done, stdout: () => printed };
}

test("node add prints the id and secret once, as text or JSON", async (t) => {
  const dataDir = join(tempDir(t), "cloud");
  const text = await run(["node", "add", "--data-dir", dataDir]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /node id: [0-9a-f-]{36}\nsecret: {2}[A-Za-z0-9_-]{43}\n/);
  const json = await run(["node", "add", "--json", "--data-dir", dataDir]);
  assert.equal(json.code, 0);
  const node = JSON.parse(json.stdout) as { nodeId: string; secret: string };
  assert.match(node.nodeId, /^[0-9a-f-]{36}$/);
  assert.match(node.secret, /^[A-Za-z0-9_-]{43}$/);
});

test("config set validates, prints each issue with its path, and versions what it stores", async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, "cloud");
  const { nodeId, secret } = JSON.parse((await run(["node", "add", "--json", "--data-dir", dataDir])).stdout) as {
    nodeId: string;
    secret: string;
  };
  const bad = join(dir, "bad.json");
  writeFileSync(
    bad,
    JSON.stringify({ ...VALID, shipper: { batchSize: 0 }, sources: [{ ...VALID.sources[0], table: "x y" }] }),
  );
  const refused = await run(["config", "set", nodeId, bad, "--data-dir", dataDir]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /shipper\.batchSize: /);
  assert.match(refused.stderr, /sources\[0\]\.table: /);

  const notJson = join(dir, "broken.json");
  writeFileSync(notJson, "{");
  assert.equal((await run(["config", "set", nodeId, notJson, "--data-dir", dataDir])).code, 1);

  const good = join(dir, "good.json");
  writeFileSync(good, JSON.stringify(VALID));
  const first = await run(["config", "set", nodeId, good, "--data-dir", dataDir]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /version 1\b/);
  assert.match((await run(["config", "set", nodeId, good, "--data-dir", dataDir])).stdout, /version 2\b/);

  const unknown = await run(["config", "set", "00000000-0000-4000-8000-000000000000", good, "--data-dir", dataDir]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /not registered/);

  // The version the CLI stored is what a running cloud on the same directory serves.
  const cloud = await startCloud({ dataDir });
  try {
    const res = await signedFetch(cloud.url, { nodeId, secret, path: `/v1/nodes/${nodeId}/config` });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("etag"), '"2"');
  } finally {
    await cloud.close();
  }
});

test("punches reports what a running cloud received, as text and JSON", async (t) => {
  const dataDir = join(tempDir(t), "cloud");
  const cloud = await startCloud({ dataDir });
  try {
    const node = cloud.addNode();
    const punches = ["A1", "A1", "B2"].map((deviceSerial, n) => ({
      id: createHash("sha256").update(`${deviceSerial}${n}`).digest("hex").slice(0, 32),
      deviceSerial,
      userId: String(n + 1),
      time: `2026-11-26T08:00:0${n}Z`,
      state: "checkIn",
      stateCode: 0,
    }));
    for (const batch of [punches, punches.slice(0, 1)]) {
      const res = await signedFetch(cloud.url, {
        ...node,
        method: "POST",
        path: `/v1/nodes/${node.nodeId}/punches`,
        body: JSON.stringify({ punches: batch }),
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    // The admin command opens the database while the server holds it (WAL).
    const json = await run(["punches", node.nodeId, "--json", "--limit", "2", "--data-dir", dataDir]);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as {
      total: number;
      duplicateDeliveries: number;
      byDevice: Record<string, number>;
      punches: { id: string; deliveries: number }[];
    };
    assert.equal(report.total, 3);
    assert.equal((report as { truncated?: boolean }).truncated, true);
    assert.match(json.stderr, /listed 2 of 3 punches; --limit N or --limit 0 lists more/);
    const all = await run(["punches", node.nodeId, "--json", "--limit", "0", "--data-dir", dataDir]);
    assert.equal((JSON.parse(all.stdout) as { punches: unknown[]; truncated: boolean }).punches.length, 3);
    assert.equal(all.stderr, "");
    assert.equal(report.duplicateDeliveries, 1);
    assert.deepEqual(report.byDevice, { A1: 2, B2: 1 });
    assert.deepEqual(
      report.punches.map((p) => [p.id, p.deliveries]),
      [
        [punches[0]?.id, 2],
        [punches[1]?.id, 1],
      ],
    );
    const text = await run(["punches", node.nodeId, "--data-dir", dataDir]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /A1\s+2\n\s+B2\s+1\n/);
    assert.match(text.stdout, /total 3 punches, 1 duplicate deliveries/);
  } finally {
    await cloud.close();
  }
});

test("usage: unknown commands exit 2, --help exits 0, bad options exit 2", async () => {
  const unknown = await run(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Usage: bioapi cloud/);
  assert.equal((await run([])).code, 2);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /serve/);
  for (const command of [["serve"], ["node", "add"], ["config", "set"], ["punches"]]) {
    const res = await run([...command, "--help"]);
    assert.equal(res.code, 0, command.join(" "));
    assert.match(res.stdout, new RegExp(`Usage: bioapi cloud ${command.join(" ")}`));
  }
  const badOption = await run(["punches", "x", "--bogus"]);
  assert.equal(badOption.code, 2);
  assert.match(badOption.stderr, /bogus/);
  assert.equal((await run(["config", "set", "only-node"])).code, 2);
});

test("serve prints its URL, answers, and closes cleanly when told to stop", async (t) => {
  const { url, stop, done } = await serve(["--port", "0", "--data-dir", join(tempDir(t), "cloud")], "http://");
  assert.equal((await fetch(`${url}/v1/health`)).status, 200);
  stop.abort();
  assert.equal(await done, 0);
  await assert.rejects(fetch(`${url}/v1/health`));
});

test("serve --faults FILE injects the listed faults, and refuses a malformed list before starting", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "faults.json");
  writeFileSync(file, JSON.stringify([{ route: "health", status: 503, retryAfterSeconds: 7, times: 2 }]));
  const serveArgs = ["--port", "0", "--data-dir", join(dir, "cloud"), "--faults", file];
  const { url, stop, done, stdout } = await serve(serveArgs, "wait for");
  assert.match(stdout(), /1 faults from .*faults\.json wait for their requests/);
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${url}/v1/health`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "7");
    await res.body?.cancel();
  }
  assert.equal((await fetch(`${url}/v1/health`)).status, 200, "the fault is spent after its two requests");
  stop.abort();
  assert.equal(await done, 0);

  writeFileSync(file, JSON.stringify([{ route: "punch", status: 503, times: 1 }]));
  const bad = await run(["serve", "--port", "0", "--data-dir", join(dir, "cloud"), "--faults", file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /entry 0: route must be one of health, config, punches, status, any/);
});
