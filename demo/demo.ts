import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startCloud } from "../cloud/cloud-server.ts";
import { Connector } from "../src/app/connector.ts";
import { ensureDataDir, openSecretStore } from "../src/app/data-dir.ts";
import { createLogger, Redactor } from "../src/core/logger.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { DemoAttendanceWriter } from "./demo-attendance-writer.ts";

export const DEMO_USAGE = `Usage: bioapi demo [--duration SECONDS] [--rate PUNCHES_PER_SECOND] [--keep]

Runs everything on this machine: the reference cloud, a sample SQLite attendance database that keeps receiving
punches from four devices, and the connector, enrolled and configured through the cloud. Ctrl-C stops it all.`;

const DEVICES = ["CKJ7201001", "CKJ7201002", "OIN5320117", "BOCK194960"];

/** `npm start`: nothing to configure. Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: "string" },
      rate: { type: "string", default: "4" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
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
  const writer = new DemoAttendanceWriter(join(root, "attendance.db"), DEVICES);
  writer.seed(2000);
  const version = cloud.setConfig(node.nodeId, {
    schemaVersion: 1,
    configPollIntervalMs: 5000,
    heartbeatIntervalMs: 5000,
    connectivity: { probeIntervalMs: 2000 },
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
    ],
  });
  const layout = ensureDataDir(join(root, "connector"));
  const secrets = openSecretStore(layout);
  await saveEnrollment(secrets, { cloudUrl: cloud.url, nodeId: node.nodeId, nodeSecret: node.secret });

  say(`Reference cloud   ${cloud.url}   node ${node.nodeId}   config v${version}`);
  say(`Attendance db     ${writer.path}   ${DEVICES.length} devices, ${writer.inserted} rows, +${rate}/s`);
  const connector = await Connector.start({ dataDir: layout.root, secrets, logger, redactor });
  say(`Connector         data ${layout.root}   status ${connector.statusUrl}/v1/status`);
  say("Press Ctrl-C to stop.\n");

  writer.start(rate);
  const tty = process.stdout.isTTY === true;
  let lastPrinted = 0;
  const progress = () => {
    const s = connector.status();
    const cloudTotal = cloud.stats(node.nodeId).total;
    const lag = writer.lagMs(cloudTotal);
    const line = `written ${writer.inserted}  read ${s.sources.reduce((n, w) => n + w.emitted, 0)}  in outbox ${s.outbox.depth}  delivered ${s.shipper.delivered}  in cloud ${cloudTotal}  lag ${lag === null ? "-" : `${(lag / 1000).toFixed(1)} s`}  ${s.connectivity.state}`;
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
  const settleBy = Date.now() + 5000;
  while (Date.now() < settleBy && cloud.count(node.nodeId) < writer.inserted)
    await new Promise((r) => setTimeout(r, 100));
  clearInterval(ticker);
  progress();
  await connector.stop();
  const stats = cloud.stats(node.nodeId);
  say(
    `\n\nStopped. Written ${writer.inserted}, in cloud ${stats.total} (${stats.duplicateDeliveries} duplicate deliveries absorbed).`,
  );
  for (const [serial, count] of Object.entries(stats.byDevice)) say(`  ${serial}: ${count}`);
  await cloud.close();
  writer.close();
  if (values.keep) say(`Kept ${root}`);
  else await rm(root, { recursive: true, force: true });
  return 0;
}
