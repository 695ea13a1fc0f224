import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { captureIo } from "../../test/helpers/capture-io.ts";
import { scratch } from "../../test/helpers/sql-servers.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { main } from "./main.ts";

test("bioapi doctor on a PostgreSQL BioTime source: table, count, newest rows, start cursor; exit 1 on a wrong table", async (t) => {
  await using s = await scratch("postgres");
  if (!s) return t.skip("postgres absent");
  await s.createBiotime({ primaryKey: false });
  await s.insertBiotime([
    { sn: "CKJ1", pin: "7", time: "2026-11-26 08:00:00+05:30" },
    { sn: "CKJ1", pin: "8", time: "2026-11-26 08:05:00+05:30", state: "1" },
    { sn: "CKJ2", pin: "9", time: "2026-11-26 08:06:00+05:30" },
  ]);
  await using dir = await tempDir();
  const file = join(dir.path, "source.json");
  const source = {
    id: "bt",
    kind: "database",
    preset: "biotime",
    timezone: "Asia/Kolkata",
    connection: { ...s.connection, password: "never-shown-pw" },
  };
  await writeFile(file, JSON.stringify(source));
  const io = captureIo();
  const code = await main(["doctor", "--source-config", file, "--data-dir", dir.path], io);
  const text = io.text();
  assert.equal(code, 0, text);
  assert.match(text, /ok {3}connect: postgres/);
  assert.match(text, /punch_time \(timestamp with time zone\) is an instant shown in Asia\/Kolkata/);
  assert.match(text, /iclock_transaction: 3 rows, 2 devices/);
  assert.match(text, /CKJ2 {2}user 9 {2}2026-11-26T08:06:00\+05:30 {2}checkIn/);
  assert.match(
    text,
    /starts from: CKJ1=the beginning {2}CKJ2=the beginning|starts from: CKJ2=the beginning {2}CKJ1=the beginning/,
  );
  assert.match(
    text,
    /No index on \(id\) of iclock_transaction.*CREATE INDEX bioapi_iclock_transaction_cursor ON iclock_transaction \(id\)/,
  );
  assert.ok(!text.includes("never-shown-pw"));

  await writeFile(file, JSON.stringify({ ...source, table: "iclock_transactionz" }));
  const bad = captureIo();
  assert.equal(await main(["doctor", "--source-config", file, "--data-dir", dir.path], bad), 1);
  assert.match(bad.text(), /FAIL table iclock_transactionz: Table "iclock_transactionz" not found.*iclock_transaction/);
});

test("bioapi doctor warns when a source's password would cross the network without TLS", async (t) => {
  await using s = await scratch("postgres");
  if (!s) return t.skip("postgres absent");
  await s.createBiotime();
  await using dir = await tempDir();
  const file = join(dir.path, "source.json");
  // Linux hands a connection to 0.0.0.0 to the local server; by name it is not loopback, so it stands for the LAN.
  const connection = { ...s.connection, host: "0.0.0.0", password: "never-shown-pw" };
  const run = async (tls: unknown, host = "0.0.0.0") => {
    await writeFile(
      file,
      JSON.stringify({ id: "bt", kind: "database", preset: "biotime", connection: { ...connection, host, tls } }),
    );
    const io = captureIo();
    const code = await main(["doctor", "--source-config", file, "--data-dir", dir.path], io);
    return { code, text: io.text() };
  };
  const prefer = await run("prefer");
  assert.equal(prefer.code, 0, prefer.text);
  assert.match(prefer.text, /ok {3}connect: postgres in \d+ ms; no TLS \(tls "prefer"\)/);
  assert.match(
    prefer.text,
    /! The password for postgres 0\.0\.0\.0:\d+\/test crosses the network without TLS: the server offers no TLS/,
  );
  assert.ok(!prefer.text.includes("never-shown-pw"));
  assert.match((await run("off")).text, /without TLS: its tls is "off"/);
  const loopback = await run("prefer", "127.0.0.1");
  assert.match(loopback.text, /no TLS \(tls "prefer"\); loopback, never leaves this machine/);
  assert.doesNotMatch(loopback.text, /crosses the network/);
  const required = await run("require");
  assert.equal(required.code, 1);
  assert.match(required.text, /FAIL connect: The server offers no TLS, and the connection's tls requires it/);
});

test("bioapi doctor on an Access att2000 file, from a whole connector config", async (t) => {
  const samples = resolve(new URL("../../", import.meta.url).pathname, "..", "shared", "testdata", "att2000");
  const path = join(process.env.BIOAPI_TESTDATA_ATT2000 ?? samples, "att2000-socianovation-74punches.mdb");
  if (!existsSync(path)) {
    if (process.env.CI === "true") throw new Error(`missing ${path}`);
    return t.skip("no Access samples");
  }
  await using dir = await tempDir();
  const file = join(dir.path, "config.json");
  await writeFile(
    file,
    JSON.stringify({
      schemaVersion: 1,
      sources: [{ id: "zk", kind: "database", preset: "att2000", connection: { engine: "access", path } }],
    }),
  );
  const io = captureIo();
  assert.equal(await main(["doctor", "--source-config", file, "--data-dir", dir.path, "--rows", "2", "--json"], io), 0);
  const report = JSON.parse(io.text()) as {
    ok: boolean;
    tables: Array<{ rows: number; newest: Array<{ deviceSerial: string }> }>;
  };
  assert.equal(report.ok, true);
  assert.equal(report.tables[0]?.rows, 74);
  assert.equal(report.tables[0]?.newest.length, 2);
  assert.equal(report.tables[0]?.newest[0]?.deviceSerial, "OID6110056101900165");
});

test("bioapi doctor --source ID reads the connector's cached config and its committed cursors", async () => {
  const { e2e } = await import("../../test/helpers/e2e-harness.ts");
  const { waitFor } = await import("../../test/helpers/wait-for.ts");
  await using h = await e2e();
  h.db.insertMany(30, ["S1", "S2"]);
  await h.startConnector();
  await waitFor("30 in the cloud", () => h.cloud.stats(h.nodeId).total === 30);
  await h.stopConnector();
  const io = captureIo();
  const code = await main(["doctor", "--source", "att", "--data-dir", h.connectorDir], io);
  assert.equal(code, 0, io.text());
  assert.match(io.text(), /att_log: 30 rows, 2 devices/);
  assert.match(io.text(), /starts from: (S1=29 {2}S2=30|S2=30 {2}S1=29)/);
});

test("bioapi doctor --source-config words a mistake as the config check does: field, expectation, nearest key", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "source.json");
  const connection = { engine: "postgres", host: "127.0.0.1", database: "test", user: "u", pasword: "never-shown" };
  await writeFile(file, JSON.stringify({ id: "bt", kind: "database", preset: "biotime", connection }));
  const io = captureIo();
  assert.equal(await main(["doctor", "--source-config", file, "--data-dir", dir.path], io), 1);
  assert.match(io.text(), /connection\.pasword: unknown key; did you mean `password`\?/);
  assert.ok(!io.text().includes("never-shown"));
});

test("bioapi doctor --source-config on a terminal source points to bioapi doctor instead of listing schema errors", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "gate.json");
  await writeFile(file, JSON.stringify({ id: "gate", kind: "zk", host: "10.0.0.20" }));
  const io = captureIo();
  assert.equal(await main(["doctor", "--source-config", file, "--data-dir", dir.path], io), 2);
  assert.match(
    io.text(),
    /is a terminal source: --source-config checks only database sources\. For terminals run `bioapi doctor`/,
  );
  assert.doesNotMatch(io.text(), /unknown key|expected/);
  const whole = join(dir.path, "config.json");
  await writeFile(
    whole,
    JSON.stringify({ schemaVersion: 1, sources: [{ id: "gate", kind: "zk", host: "10.0.0.20" }] }),
  );
  const byId = captureIo();
  assert.equal(await main(["doctor", "--source-config", whole, "--source", "gate", "--data-dir", dir.path], byId), 2);
  assert.match(byId.text(), /checks only database sources/);
});
