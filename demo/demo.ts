import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startCloud } from "../cloud/cloud-server.ts";
import { CamsCallbackReceiver } from "../cloud/receivers/cams-callback-receiver.ts";
import { ZkSimulator } from "../sim/zk/zk-simulator.ts";
import { Connector } from "../src/app/connector.ts";
import { ensureDataDir } from "../src/app/data-dir.ts";
import { optionsOf, renderHelp } from "../src/cli/command-spec.ts";
import { DEMO } from "../src/cli/commands.ts";
import { readEndpoint, statusPageUrl } from "../src/cli/status-command.ts";
import { createLogger, Redactor } from "../src/core/logger.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { openSecretStore } from "../src/secrets/open-secret-store.ts";
import { DemoAttendanceWriter } from "./demo-attendance-writer.ts";

export const DEMO_USAGE = renderHelp(DEMO);

const DEVICES = ["CKJ7201001", "CKJ7201002", "OIN5320117", "BOCK194960"];

/** `npm start`: nothing to configure. Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: optionsOf(DEMO),
  });
  if (values.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const rate = Math.max(0.1, Number(values.rate));
  const root = await mkdtemp(join(tmpdir(), "bioapi-demo-"));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const redactor = new Redactor();
  const logLines: string[] = [];
  // Connector logs are kept off the live line; warnings and errors still show.
  const logger = createLogger({
    level: "info",
    format: "pretty",
    redact: redactor,
    write: (line) => {
      logLines.push(line);
      if (/ (WARN|ERROR) /.test(line)) process.stdout.write(`\r\x1b[K${line}\n`);
    },
  });

  const cloud = await startCloud({ dataDir: join(root, "cloud") });
  const node = cloud.addNode();
  redactor.add(node.secret);
  // A customer's HR system listening for the Cams Web API callback, beside the cloud: every punch goes to both.
  const callbackToken = randomBytes(18).toString("base64url");
  redactor.add(callbackToken);
  const callback = await CamsCallbackReceiver.start({ authToken: callbackToken, path: "/hr/cams/attendance" });
  const writer = new DemoAttendanceWriter(join(root, "attendance.db"), DEVICES);
  writer.seed(2000);
  // Terminals keep their own clocks in local time; each punches at a quarter of the database's rate.
  const terminals = [
    await ZkSimulator.start({ serial: "CAMS-GATE-01", records: 3000, recordSize: 40, timeZone: "Asia/Kolkata" }),
    await ZkSimulator.start({
      serial: "CAMS-CANTEEN-02",
      records: 1500,
      recordSize: 16,
      userSize: 28,
      timeZone: "Asia/Kolkata",
      transports: ["udp"],
    }),
  ];
  const terminalRecords = () => terminals.reduce((n, t) => n + t.recordCount, 0);
  const version = cloud.setConfig(node.nodeId, {
    schemaVersion: 1,
    configPollIntervalMs: 5000,
    heartbeatIntervalMs: 5000,
    connectivity: { probeIntervalMs: 2000 },
    sinks: [
      { id: "cams-cloud", kind: "cams-cloud" },
      { id: "hr-callback", kind: "cams-callback", url: callback.url, authToken: callbackToken },
    ],
    sources: [
      {
        id: "attendance-db",
        kind: "database",
        pollIntervalMs: 1000,
        timezone: "Asia/Kolkata",
        connection: { engine: "sqlite", path: writer.path },
        table: "att_log",
        columns: { id: "id", deviceSerial: "sn", userId: "pin", time: "punch_time", state: "status", verify: "verify" },
      },
      ...terminals.map((t, i) => ({
        id: `terminal-${i + 1}`,
        kind: "zk",
        host: t.host,
        port: t.port,
        transport: t.transports[0],
        serial: t.serial,
        timezone: "Asia/Kolkata",
        pollIntervalMs: 5000,
      })),
    ],
  });
  const layout = ensureDataDir(join(root, "connector"));
  const secrets = openSecretStore(layout);
  await saveEnrollment(secrets, { cloudUrl: cloud.url, nodeId: node.nodeId, nodeSecret: node.secret });

  say(`Reference cloud   ${cloud.url}   node ${node.nodeId}   config v${version}`);
  say(`Attendance db     ${writer.path}   ${DEVICES.length} devices, ${writer.inserted} rows, +${rate}/s`);
  for (const t of terminals) {
    say(
      `ZK terminal       ${t.serial} at ${t.host}:${t.port}/${t.transports[0]}   ${t.recordCount} records in its log`,
    );
  }
  say(`Callback receiver ${callback.url}   the Cams Web API real-time punch callback, one POST per punch`);
  const connector = await Connector.start({ dataDir: layout.root, secrets, logger, redactor });
  // The page with its token: the bare /v1/status would answer 401 to a browser.
  say(`Connector         data ${layout.root}   status page ${statusPageUrl(await readEndpoint(layout.root))}`);
  say("Press Ctrl-C to stop.\n");

  writer.start(rate);
  // Real-time events carry these to the cloud within a second; the polls only reconcile.
  const punching = setInterval(() => {
    for (const t of terminals) if (Math.random() < rate / 4) t.addPunch();
  }, 1000);
  const tty = process.stdout.isTTY === true;
  let lastPrinted = 0;
  const progress = () => {
    const s = connector.status();
    const cloudTotal = cloud.stats(node.nodeId).total;
    const lag = writer.lagMs(cloudTotal - terminalRecords());
    const line = `written ${writer.inserted + terminalRecords()}  read ${s.sources.reduce((n, w) => n + w.emitted, 0)}  in outbox ${s.outbox.depth}  delivered ${s.shipper.delivered}  in cloud ${cloudTotal}  at callback ${callback.punches.size}  lag ${lag === null ? "-" : `${(lag / 1000).toFixed(1)} s`}  ${s.connectivity.state}`;
    if (tty) process.stdout.write(`\r\x1b[K${line}`);
    else if (Date.now() - lastPrinted > 5000) {
      lastPrinted = Date.now();
      say(line);
    }
  };
  const ticker = setInterval(progress, 250);

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    if (values.duration) setTimeout(done, Number(values.duration) * 1000).unref();
  });

  // Let the last punches written reach the cloud (a few seconds at most) so the summary adds up.
  writer.stop();
  clearInterval(punching);
  const written = () => writer.inserted + terminalRecords();
  const settleBy = Date.now() + 5000;
  const settled = () => cloud.count(node.nodeId) >= written() && callback.punches.size >= written();
  while (Date.now() < settleBy && !settled()) await new Promise((r) => setTimeout(r, 100));
  clearInterval(ticker);
  progress();
  await connector.stop();
  await Promise.all(terminals.map((t) => t.close()));
  const stats = cloud.stats(node.nodeId);
  say(
    `\n\nStopped. Written ${written()} (${writer.inserted} database rows, ${terminalRecords()} terminal records), in cloud ${stats.total} (${stats.duplicateDeliveries} duplicate deliveries absorbed).`,
  );
  for (const [serial, count] of Object.entries(stats.byDevice)) say(`  ${serial}: ${count}`);
  say(
    `At the callback receiver ${callback.punches.size} (${callback.duplicates} repeats absorbed by OperationID, ${callback.orderViolations.length} out of order).`,
  );
  await callback.close();
  await cloud.close();
  writer.close();
  if (values.keep) say(`Kept ${root}`);
  else await rm(root, { recursive: true, force: true });
  return 0;
}
