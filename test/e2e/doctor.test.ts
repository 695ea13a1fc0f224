import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { startCloud } from "../../cloud/cloud-server.ts";
import { ensureDataDir } from "../../src/app/data-dir.ts";
import type { CliIo } from "../../src/cli/cli-io.ts";
import type { FullReport } from "../../src/cli/full-doctor.ts";
import { main } from "../../src/cli/main.ts";
import { saveEnrollment } from "../../src/secrets/enrollment.ts";
import { openSecretStore } from "../../src/secrets/open-secret-store.ts";
import { ZkClient } from "../../src/sources/zk/zk-client.ts";
import { e2e, fastConfig } from "../helpers/e2e-harness.ts";
import { scratch } from "../helpers/sql-servers.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { terminal } from "../helpers/zk-harness.ts";

/**
 * Nothing here waits for a timeout: a refused port, a wrong comm key and a busy terminal are answered at once. A short
 * budget only let a busy machine turn a slow answer into a finding the test is not about.
 */
const PATIENT_ZK = { connectTimeoutMs: 10_000, requestTimeoutMs: 10_000 } as const;

async function doctor(dataDir: string): Promise<{ code: number; text: string; report: FullReport }> {
  const lines: string[] = [];
  const io: CliIo = { out: (t) => lines.push(t), err: (t) => lines.push(t), stdin: new PassThrough(), env: {} };
  const code = await main(["doctor", "--data-dir", dataDir], io);
  const json: string[] = [];
  const jsonIo: CliIo = { ...io, out: (t) => json.push(t) };
  await main(["doctor", "--data-dir", dataDir, "--json"], jsonIo);
  return { code, text: lines.join("\n"), report: JSON.parse(json.join("\n")) as FullReport };
}

/** A port with nothing listening: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const find = (r: FullReport, subject: RegExp, check: string) =>
  r.findings.find((f) => subject.test(f.subject) && f.check === check);

test("bioapi doctor end to end: one finding per problem, each with its fix, exit 1", async (t) => {
  await using pg = await scratch("postgres");
  await pg?.createBiotime({ primaryKey: false });
  await pg?.insertBiotime([{ sn: "CKJ1", pin: "7", time: "2026-11-26 08:00:00+05:30" }]);
  await using locked = await terminal({ records: 12, commKey: 1111 });
  await using fast = await terminal({ records: 30, clockOffsetMs: 10 * 60_000, serial: "CKJ-FAST" });
  const gone = await closedPort();
  const zk = (id: string, port: number, extra: Record<string, unknown> = {}) => ({
    id,
    kind: "zk",
    host: "127.0.0.1",
    port,
    ...PATIENT_ZK,
    timezone: "Asia/Kolkata",
    ...extra,
  });
  await using h = await e2e({
    config: (dbPath) => {
      const base = fastConfig(dbPath);
      return {
        ...base,
        sources: [
          ...base.sources,
          zk("locked", locked.port, { commKey: 2222 }),
          zk("gone", gone),
          zk("fast", fast.port),
          ...(pg
            ? [
                { id: "bt", kind: "database", preset: "biotime", timezone: "Asia/Kolkata", connection: pg.connection },
                {
                  id: "missing",
                  kind: "database",
                  preset: "biotime",
                  connection: pg.connection,
                  table: "iclock_transactionz",
                },
                // 0.0.0.0 reaches the local server on Linux but is not loopback by name: a password on the LAN.
                {
                  id: "plain",
                  kind: "database",
                  preset: "biotime",
                  connection: { ...pg.connection, host: "0.0.0.0", password: "pw" },
                },
              ]
            : []),
        ],
      };
    },
  });
  h.db.insertMany(5, ["S1"]);
  const { code, text, report } = await doctor(h.connectorDir);
  t.diagnostic(text);
  assert.equal(code, 1, text);
  assert.equal(report.ok, false);

  await t.test("the cloud: reachable, clock, signature, config", () => {
    for (const check of ["reachable", "clock", "signature", "config"])
      assert.equal(find(report, /^cloud /, check)?.status, "ok", check);
    assert.match(text, /ok {3}config: version 1 decrypts and is valid \(\d sources\)/);
  });
  await t.test("a database that works", () => {
    assert.equal(find(report, /^database att /, "connect")?.status, "ok");
    assert.equal(find(report, /^database att /, "index")?.status, "ok");
  });
  await t.test("wrong comm key", () => {
    const f = find(report, /^terminal locked /, "authenticated");
    assert.equal(f?.status, "fail");
    assert.match(f?.detail ?? "", /comm key/i);
    assert.match(f?.fix ?? "", /Set commKey/);
    assert.doesNotMatch(text, /\b2222\b|\b1111\b/, "the comm keys are never printed");
  });
  await t.test("unreachable host", () => {
    const f = find(report, /^terminal gone /, "reachable");
    assert.equal(f?.status, "fail");
    assert.match(f?.detail ?? "", /DEVICE_UNREACHABLE/);
    assert.match(f?.fix ?? "", /terminal is on/);
  });
  await t.test("terminal: record count and clock drift", () => {
    assert.match(find(report, /^terminal fast /, "records")?.detail ?? "", /CKJ-FAST.*: 30 records/);
    const clock = find(report, /^terminal fast /, "clock");
    assert.equal(clock?.status, "warn");
    assert.match(clock?.detail ?? "", /10 min ahead/);
    assert.match(clock?.fix ?? "", /syncClock/);
  });
  await t.test("missing table", { skip: !pg && "postgres absent" }, () => {
    const f = find(report, /^database missing /, "table iclock_transactionz");
    assert.equal(f?.status, "fail");
    assert.match(f?.detail ?? "", /not found.*iclock_transaction/);
    assert.match(f?.fix ?? "", /Fix table/);
  });
  await t.test("a password that would cross the network without TLS", { skip: !pg && "postgres absent" }, () => {
    const f = find(report, /^database plain /, "tls");
    assert.equal(f?.status, "warn", text);
    assert.match(f?.detail ?? "", /^The password for postgres 0\.0\.0\.0:\d+\/\w+ crosses the network without TLS/);
    assert.match(f?.fix ?? "", /set the connection's tls to "verify"/);
    assert.equal(find(report, /^database bt /, "tls"), undefined, "loopback: no warning");
  });
  await t.test("missing index", { skip: !pg && "postgres absent" }, () => {
    const f = find(report, /^database bt /, "index");
    assert.equal(f?.status, "warn");
    assert.match(f?.fix ?? "", /CREATE INDEX/);
    assert.match(text, /WARN index: No index on \(id\) of iclock_transaction/);
  });
});

test("bioapi doctor: clock skew against the cloud, and a signature the cloud refuses", async (t) => {
  await using dir = await tempDir();
  // A cloud whose clock runs 10 minutes ahead of this machine.
  await using skewed = await startCloud({ dataDir: join(dir.path, "cloud"), now: () => Date.now() + 10 * 60_000 });
  const node = skewed.addNode();
  skewed.setConfig(node.nodeId, { schemaVersion: 1, sources: [] });
  const a = ensureDataDir(join(dir.path, "a"));
  await saveEnrollment(openSecretStore(a), { cloudUrl: skewed.url, nodeId: node.nodeId, nodeSecret: node.secret });
  const late = await doctor(a.root);
  assert.equal(late.code, 1, late.text);
  await t.test("clock skew", () => {
    const f = find(late.report, /^cloud /, "clock");
    assert.equal(f?.status, "fail");
    assert.match(f?.detail ?? "", /10 min behind the cloud/);
    assert.match(f?.fix ?? "", /Synchronise this machine's clock/);
  });

  // The right cloud, the wrong secret (say, the node was added again and the old secret kept).
  await using h = await e2e();
  await saveEnrollment(openSecretStore(ensureDataDir(h.connectorDir)), {
    cloudUrl: h.cloud.url,
    nodeId: h.nodeId,
    nodeSecret: randomBytes(32).toString("base64url"),
  });
  const bad = await doctor(h.connectorDir);
  assert.equal(bad.code, 1, bad.text);
  await t.test("bad signature", () => {
    assert.equal(find(bad.report, /^cloud /, "clock")?.status, "ok");
    const f = find(bad.report, /^cloud /, "signature");
    assert.equal(f?.status, "fail");
    assert.match(f?.detail ?? "", /refused this node's signed request: 401/);
    assert.match(f?.fix ?? "", /re-enroll/);
  });

  // The right secret, but the cloud answers the signed request with 502: a failing cloud, not a bad signature.
  await saveEnrollment(openSecretStore(ensureDataDir(h.connectorDir)), {
    cloudUrl: h.cloud.url,
    nodeId: h.nodeId,
    nodeSecret: h.secret,
  });
  // Twice: the helper runs doctor once for the text and once for --json.
  h.cloud.injectFault({ route: "config", status: 502, times: 2 });
  const failing = await doctor(h.connectorDir);
  await t.test("a 502 is not 'accepted'", () => {
    const f = find(failing.report, /^cloud /, "signature");
    assert.equal(f?.status, "warn", failing.text);
    assert.match(f?.detail ?? "", /failed to answer a signed request: 502/);
    assert.match(f?.fix ?? "", /retries by itself/);
  });
});

test("bioapi doctor: a one-connection terminal held by the running connector is reported as read, not unreachable", async () => {
  await using single = await terminal({ records: 20, singleConnection: true, transports: ["tcp"], serial: "CKJ-ONE" });
  const source = {
    id: "one",
    kind: "zk",
    host: "127.0.0.1",
    port: single.port,
    pollIntervalMs: 300,
    ...PATIENT_ZK,
  };
  await using h = await e2e({ config: (dbPath) => ({ ...fastConfig(dbPath), sources: [source] }) });

  // Nothing holds it yet but another program: the finding is a failure whose fix names the cause.
  const other = await ZkClient.connect({
    host: "127.0.0.1",
    port: single.port,
    transport: "tcp",
    commKey: 0,
    timeoutMs: PATIENT_ZK.requestTimeoutMs,
    signal: AbortSignal.timeout(30_000),
  });
  const busy = await doctor(h.connectorDir);
  const refused = find(busy.report, /^terminal one /, "reachable");
  assert.equal(refused?.status, "fail", busy.text);
  assert.match(refused?.detail ?? "", /DEVICE_BUSY/);
  assert.match(refused?.fix ?? "", /Another program holds the terminal's only connection/);
  await other.close();

  // The connector takes the session and reads the log; doctor's own session is refused, and it says why.
  const connector = await h.startConnector();
  await waitFor("the terminal read by the connector", () => connector.status().sources[0]?.device?.records === 20);
  await waitFor("a completed poll", () => connector.status().sources[0]?.lastPollAt);
  const held = await doctor(h.connectorDir);
  const reading = find(held.report, /^terminal one /, "reachable");
  assert.equal(reading?.status, "ok", held.text);
  assert.match(reading?.detail ?? "", /running connector holds the terminal's session.*20 records, serial CKJ-ONE/);
});
