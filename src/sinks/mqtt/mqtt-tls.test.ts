import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { MqttCounter } from "../../../cloud/receivers/mqtt-counter.ts";
import {
  freePort,
  MOSQUITTO_PASSWD,
  mosquittoMissing,
  passwordFile,
  startMosquitto,
} from "../../../test/helpers/mosquitto.ts";
import { connected, deliverAll, punches, startSink, testNodeId } from "../../../test/helpers/mqtt-sink-kit.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { mqttSinkSchema } from "../../config/sink-schema.ts";
import { SINK_KINDS, sinkSecrets } from "../sink-kinds.ts";

const PASSWORD = "s3cret-Pa55word";
const skip =
  mosquittoMissing() ??
  (existsSync(MOSQUITTO_PASSWD) || process.env.CI ? undefined : `SKIPPED: ${MOSQUITTO_PASSWD} is not installed`);

/** A CA, a broker certificate for mqtt.test only (so 127.0.0.1 needs tls.serverName) and a client certificate. */
function makeCerts(dir: string) {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=bioapi test CA");
  for (const [name, cn, ext] of [
    ["server", "mqtt.test", "subjectAltName=DNS:mqtt.test"],
    ["client", "sensor-node", "extendedKeyUsage=clientAuth"],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    ssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`);
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  }
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { ca: read("ca.crt"), clientCert: read("client.crt"), clientKey: read("client.key") };
}

/** Two TLS listeners: one wanting a username and password, one a client certificate. */
async function tlsBroker(dir: string) {
  const certs = makeCerts(dir);
  passwordFile(join(dir, "passwd"), "bioapi", PASSWORD);
  const certPort = await freePort();
  const tls = [`cafile ${dir}/ca.crt`, `certfile ${dir}/server.crt`, `keyfile ${dir}/server.key`];
  const broker = await startMosquitto(dir, [
    "per_listener_settings true",
    "listener {port} 127.0.0.1",
    ...tls,
    "allow_anonymous false",
    `password_file ${dir}/passwd`,
    `listener ${certPort} 127.0.0.1`,
    ...tls,
    "require_certificate true",
    "use_identity_as_username true",
    "allow_anonymous false",
  ]);
  return { broker, certs, certPort, passwordUrl: `mqtts://127.0.0.1:${broker.port}` };
}

test("TLS and username/password against its own Mosquitto: delivered, and no password in any error, detail or finding", {
  skip,
  timeout: 120_000,
}, async (t) => {
  await using dir = await tempDir("bioapi-mqtt-tls-");
  const { broker, certs, certPort, passwordUrl } = await tlsBroker(dir.path);
  await using _broker = broker;
  const nodeId = testNodeId();
  const good = {
    url: passwordUrl,
    username: "bioapi",
    password: PASSWORD,
    tls: { ca: certs.ca, serverName: "mqtt.test" },
  };
  const check = SINK_KINDS.mqtt?.check;
  assert.ok(check);
  const doctor = (fields: Record<string, unknown>) =>
    check(
      { config: mqttSinkSchema.parse({ id: "mq", kind: "mqtt", ...fields }), nodeId, client: undefined },
      AbortSignal.timeout(20_000),
    );
  const texts: string[] = [];

  await t.test("the right CA, name, user and password: every punch delivered", async () => {
    const counter = await MqttCounter.start({
      url: passwordUrl,
      punches: `cams/${nodeId}/punches/+`,
      client: { ca: certs.ca, servername: "mqtt.test", username: "bioapi", password: PASSWORD },
    });
    try {
      await using s = startSink(good, { nodeId });
      await connected(s.sink);
      const { acked } = await deliverAll(s.sink, punches(500));
      assert.equal(acked.size, 500);
      await waitFor("the punches over TLS", () => counter.unique === 500);
      const details = JSON.stringify(s.sink.details?.());
      texts.push(details);
      assert.match(details, new RegExp(`"broker":"127.0.0.1:${broker.port}"`));
    } finally {
      await counter.close();
    }
    const findings = await doctor(good);
    texts.push(JSON.stringify(findings));
    assert.deepEqual(
      findings.map((f) => [f.check, f.status]),
      [["connect", "ok"]],
    );
    assert.equal(findings[0]?.subject, "sink mq (mqtt)");
    assert.match(
      findings[0]?.detail ?? "",
      /The broker 127\.0\.0\.1:\d+ \(MQTT 5\) accepted the connection as user bioapi/,
    );
  });

  await t.test("a wrong password: SINK_AUTH naming the fix, in send, details and doctor", async () => {
    for (const fields of [
      { ...good, password: "wrong-password-123" },
      // The password written into the url is a secret too.
      {
        ...good,
        url: `mqtts://bioapi:wrong-password-123@127.0.0.1:${broker.port}`,
        username: undefined,
        password: undefined,
      },
    ]) {
      await using s = startSink(fields, { nodeId });
      await waitFor("the refusal", () => s.sink.details?.().lastError);
      const outcome = await s.sink.send(punches(2), AbortSignal.timeout(5000));
      assert.ok(outcome.kind === "failed", outcome.kind);
      assert.equal(outcome.error.code, "SINK_AUTH");
      assert.equal(outcome.lostConnectivity, false);
      // Mosquitto says "not authorized" for a wrong password; other brokers say "bad user name or password".
      assert.match(outcome.error.message, /refused the connection: (not authorized|bad user name or password)/);
      assert.match(outcome.error.message, /Check the sink's username and password/);
      texts.push(outcome.error.message, JSON.stringify(s.sink.details?.()));
      const findings = await doctor(fields);
      texts.push(JSON.stringify(findings));
      const connect = findings.find((f) => f.check === "connect");
      assert.equal(connect?.status, "fail");
      assert.match(connect?.detail ?? "", /not authorized|bad user name or password/);
      assert.match(connect?.fix ?? "", /Check the sink's username and password/);
    }
    assert.deepEqual(
      sinkSecrets([
        mqttSinkSchema.parse({ id: "mq", kind: "mqtt", url: "mqtt://u:from-url-pw@h", password: PASSWORD }),
      ]),
      [PASSWORD, "from-url-pw"],
    );
  });

  await t.test("no credentials at all: not authorized, and the fix says to give a username and password", async () => {
    const findings = await doctor({ ...good, username: undefined, password: undefined });
    const connect = findings.find((f) => f.check === "connect");
    assert.equal(connect?.status, "fail");
    assert.match(connect?.detail ?? "", /not authorized|bad user name or password/);
    assert.match(connect?.fix ?? "", /username and password/);
  });

  await t.test(
    "the broker's certificate: untrusted without tls.ca, wrong name without tls.serverName, verify false",
    async () => {
      const noCa = await doctor({ ...good, tls: { serverName: "mqtt.test" } });
      assert.equal(noCa[0]?.status, "fail");
      assert.match(noCa[0]?.detail ?? "", /certificate this sink does not trust/);
      assert.match(noCa[0]?.fix ?? "", /tls\.ca/);
      const noName = await doctor({ ...good, tls: { ca: certs.ca } });
      assert.equal(noName[0]?.status, "fail");
      assert.match(noName[0]?.detail ?? "", /certificate for another name/);
      assert.match(noName[0]?.fix ?? "", /tls\.serverName/);
      const unverified = await doctor({ ...good, tls: { verify: false } });
      assert.deepEqual(
        unverified.map((f) => [f.check, f.status]),
        [
          ["tls", "warn"],
          ["connect", "ok"],
        ],
      );
      texts.push(JSON.stringify([noCa, noName, unverified]));
    },
  );

  await t.test("a client certificate instead of a password", async () => {
    const certUrl = `mqtts://127.0.0.1:${certPort}`;
    const fields = {
      url: certUrl,
      tls: { ca: certs.ca, serverName: "mqtt.test", cert: certs.clientCert, key: certs.clientKey },
    };
    const counter = await MqttCounter.start({
      url: certUrl,
      punches: `cams/${nodeId}/punches/+`,
      client: { ca: certs.ca, servername: "mqtt.test", cert: certs.clientCert, key: certs.clientKey },
    });
    try {
      await using s = startSink(fields, { nodeId: `${nodeId}c` });
      await connected(s.sink);
      const { acked } = await deliverAll(s.sink, punches(100));
      assert.equal(acked.size, 100);
      const details = JSON.stringify(s.sink.details?.());
      assert.ok(!details.includes("PRIVATE KEY"));
    } finally {
      await counter.close();
    }
    const findings = await doctor(fields);
    assert.match(findings[0]?.detail ?? "", /with the client certificate/);
    const without = await doctor({ ...fields, tls: { ca: certs.ca, serverName: "mqtt.test" } });
    assert.equal(without[0]?.status, "fail", JSON.stringify(without));
    assert.match(without[0]?.detail ?? "", /did not accept this client's certificate/);
    assert.match(without[0]?.fix ?? "", /tls\.cert and tls\.key/);
    texts.push(JSON.stringify([findings, without]));
  });

  await t.test("a password over plain mqtt:// is a warning", async () => {
    const plain = await doctor({ url: `mqtt://127.0.0.1:${await freePort()}`, username: "u", password: PASSWORD });
    assert.equal(plain[0]?.check, "tls");
    assert.equal(plain[0]?.status, "warn");
    assert.equal(plain[1]?.status, "fail");
    assert.match(plain[1]?.detail ?? "", /Nothing accepts connections/);
    texts.push(JSON.stringify(plain));
  });

  for (const text of texts) {
    assert.ok(!text.includes(PASSWORD), `the password leaked: ${text}`);
    assert.ok(!text.includes("wrong-password-123"), `a password leaked: ${text}`);
  }
});
