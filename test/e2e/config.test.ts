import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { main as cloudCli } from "../../cloud/cli.ts";
import { encryptConfig, newSecret } from "../../cloud/cloud-crypto.ts";
import { AttendanceDb } from "../helpers/attendance-db.ts";
import { e2e, fastConfig, PATIENT_SHIPPER } from "../helpers/e2e-harness.ts";
import { waitFor } from "../helpers/wait-for.ts";

function twoSources(pathA: string, pathB: string, pollB = 100) {
  // The test counts deliveries: a batch answered late on a busy machine must not be sent again.
  const base = fastConfig(pathA, { shipper: PATIENT_SHIPPER });
  const [a] = base.sources;
  return {
    ...base,
    sources: [
      { ...a, id: "a" },
      { ...a, id: "b", pollIntervalMs: pollB, connection: { engine: "sqlite", path: pathB } },
    ],
  };
}

test("a new config version restarts only the workers whose config changed; cursors stay intact", async () => {
  let pathB = "";
  await using h = await e2e({
    config: (pathA) => {
      pathB = join(pathA, "..", "b.db");
      return twoSources(pathA, pathB);
    },
  });
  const dbB = new AttendanceDb(pathB);
  h.db.insertMany(40, ["A1"]);
  dbB.insertMany(40, ["B1"], Date.UTC(2026, 10, 20));
  const connector = await h.startConnector();
  await waitFor("80 delivered", () => h.cloud.stats(h.nodeId).total === 80);
  const startedA = connector.supervisor.workerStartedAt("a");
  const startedB = connector.supervisor.workerStartedAt("b");
  assert.ok(startedA && startedB);
  await new Promise((r) => setTimeout(r, 20));

  assert.equal(h.cloud.setConfig(h.nodeId, twoSources(h.db.path, pathB, 150)), 2);
  await waitFor("version 2 applied", () => connector.status().config.version === 2);
  await waitFor("b restarted", () => {
    const now = connector.supervisor.workerStartedAt("b");
    return now !== undefined && now !== startedB;
  });
  assert.equal(connector.supervisor.workerStartedAt("a"), startedA, "unchanged worker kept running");
  const cursors = Object.fromEntries(connector.status().sources.map((s) => [s.sourceId, s.cursor]));
  assert.deepEqual(cursors, { a: { A1: 40 }, b: { B1: 40 } });

  h.db.insertMany(5, ["A1"], Date.UTC(2026, 10, 27));
  dbB.insertMany(5, ["B1"], Date.UTC(2026, 10, 27));
  await waitFor("90 delivered", () => h.cloud.stats(h.nodeId).total === 90);
  assert.equal(h.cloud.stats(h.nodeId).duplicateDeliveries, 0, "a restarted worker resumed from its cursor");
  dbB.close();
});

test("tampered, wrongly keyed, relabelled, older and invalid configs are rejected by name; the last good one keeps running", async () => {
  await using h = await e2e();
  const connector = await h.startConnector();
  await waitFor("v1 running", () => connector.status().sources[0]?.state === "running");
  const goodPlain = JSON.stringify(fastConfig(h.db.path));
  const started = connector.supervisor.workerStartedAt("att");

  const expectRejected = async (version: number, code: string, message: RegExp) => {
    await waitFor(`rejection of v${version}`, () => {
      const e = connector.status().config.lastError;
      return e?.code === code && e.message.includes(`version ${version} `);
    });
    const status = connector.status().config;
    assert.match(status.lastError?.message ?? "", message);
    assert.equal(status.version, 1, "the last good version keeps running");
    assert.equal(connector.supervisor.workerStartedAt("att"), started, "the worker was not disturbed");
  };

  const legit = (version: number, plaintext = goodPlain) =>
    encryptConfig({ secret: h.secret, nodeId: h.nodeId, version, plaintext });

  const tampered = legit(2);
  const bytes = Buffer.from(tampered.ciphertext, "base64");
  bytes[3] = (bytes[3] ?? 0) ^ 0x55;
  h.cloud.publishEnvelope(h.nodeId, { version: 2, iv: tampered.iv, ciphertext: bytes.toString("base64") });
  await expectRejected(2, "CONFIG_DECRYPT", /version 2 failed authentication: it was tampered with/);

  const wrongKey = encryptConfig({ secret: newSecret(), nodeId: h.nodeId, version: 3, plaintext: goodPlain });
  h.cloud.publishEnvelope(h.nodeId, { version: 3, ...wrongKey });
  await expectRejected(3, "CONFIG_DECRYPT", /version 3 failed authentication.*another node secret/);

  // A valid v1 envelope relabelled as v4: the version is associated data, so it fails.
  h.cloud.publishEnvelope(h.nodeId, { version: 4, ...legit(1) });
  await expectRejected(4, "CONFIG_DECRYPT", /version 4 failed authentication/);

  const invalid = JSON.stringify({
    ...JSON.parse(goodPlain),
    sources: [{ ...JSON.parse(goodPlain).sources[0], table: "att_log; DROP TABLE x" }],
  });
  h.cloud.publishEnvelope(h.nodeId, { version: 5, ...legit(5, invalid) });
  await expectRejected(
    5,
    "CONFIG_INVALID",
    /version 5 is invalid: sources\[0\]\.table: must be a plain SQL identifier/,
  );

  // Now the good v6 applies, and an older v5 offered afterwards is refused.
  h.cloud.publishEnvelope(h.nodeId, { version: 6, ...legit(6) });
  await waitFor("v6 applied", () => connector.status().config.version === 6);
  assert.equal(connector.status().config.lastError, null);
  assert.equal(connector.supervisor.workerStartedAt("att"), started, "same source config: worker kept");
  h.cloud.publishEnvelope(h.nodeId, { version: 5, ...legit(5) });
  await waitFor("stale rejection", () => connector.status().config.lastError?.code === "CONFIG_STALE");
  assert.match(
    connector.status().config.lastError?.message ?? "",
    /offered config version 5, not newer than the running 6/,
  );
  assert.equal(connector.status().config.version, 6);

  const warnings = h.logs.filter((l) => l.includes("Config not applied"));
  assert.ok(warnings.length >= 5 && warnings.length <= 6, `each rejection logged once (${warnings.length})`);

  h.db.insertMany(10, ["S1"]);
  await waitFor("punches still flow", () => h.cloud.stats(h.nodeId).total === 10);
});

test("a 502 on a config fetch is advised as an unreachable cloud, retried; an invalid config as the config's fault", async () => {
  await using h = await e2e();
  const connector = await h.startConnector();
  await waitFor("v1 applied", () => connector.status().config.version === 1);
  const configAdvice = () => connector.status().attention.find((a) => a.subject === "config");
  h.cloud.injectFault({ route: "config", status: 502, times: 1_000 });
  await waitFor("the 502 reported", () => connector.status().config.lastError?.code === "CLOUD_UNAVAILABLE");
  const advice = configAdvice();
  assert.match(advice?.message ?? "", /failed to serve the config: 502.*retried by itself/);
  assert.match(advice?.fix ?? "", /could not be reached or failed to answer; the fetch is retried by itself/);
  assert.doesNotMatch(`${advice?.message} ${advice?.fix}`, /Fix the config/);
  assert.equal(connector.status().connectivity.state, "online", "a cloud answering 502 is still there");

  h.cloud.clearFaults();
  const plain = JSON.stringify({ ...fastConfig(h.db.path), heartbeatIntervalMs: -1 });
  h.cloud.publishEnvelope(h.nodeId, {
    version: 2,
    ...encryptConfig({ secret: h.secret, nodeId: h.nodeId, version: 2, plaintext: plain }),
  });
  await waitFor("v2 rejected", () => connector.status().config.lastError?.code === "CONFIG_INVALID");
  assert.match(configAdvice()?.fix ?? "", /Fix the config in the cloud and publish a new version/);
});

test("cloud config set refuses what the connector would refuse, in the sentence the connector logs", async () => {
  await using h = await e2e();
  const connector = await h.startConnector();
  await waitFor("v1 running", () => connector.status().sources[0]?.state === "running");
  const good = fastConfig(h.db.path);
  const [source] = good.sources;
  const invalid = {
    ...good,
    sources: [
      { ...source, timezone: "India/Kolkata" },
      { ...source, id: "biotime", preset: "biotime", table: undefined },
      { ...source, id: "biotime", preset: "biotime", columns: undefined, table: undefined },
    ],
  };
  const file = join(h.dir, "invalid.json");
  await writeFile(file, JSON.stringify(invalid));
  let stderr = "";
  const code = await cloudCli(["config", "set", h.nodeId, file, "--data-dir", join(h.dir, "cloud")], {
    stdout: () => {},
    stderr: (text) => {
      stderr += text;
    },
  });
  assert.equal(code, 1);
  assert.match(stderr, /not published \(cloud data in .*cloud\)/);

  // Published behind the validator's back, the same config reaches the connector, which refuses it in its log.
  const sealed = encryptConfig({ secret: h.secret, nodeId: h.nodeId, version: 2, plaintext: JSON.stringify(invalid) });
  h.cloud.publishEnvelope(h.nodeId, { version: 2, ...sealed });
  await waitFor("v2 refused", () => connector.status().config.lastError?.code === "CONFIG_INVALID");
  const logged = connector.status().config.lastError?.message ?? "";
  const sentence = /version 2 is invalid: (.*)\. Fix the config/.exec(logged)?.[1];
  assert.ok(sentence, logged);
  for (const part of ["sources[0].timezone: must be an IANA time zone", "columns: preset biotime fixes the columns"]) {
    assert.ok(sentence.includes(part), `${part} in ${sentence}`);
  }
  assert.match(sentence, /sources\[2\]\.id: duplicate source id "biotime"/);
  assert.ok(stderr.includes(`would refuse it as invalid: ${sentence}.`), `cloud said: ${stderr}`);
  assert.equal(connector.status().config.version, 1, "the last good version keeps running");
});
