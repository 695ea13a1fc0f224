/**
 * `npm run bench:sinks`: what a second sink costs. The same SQLite backlog is drained three times by a fresh
 * connector: to the Cams cloud alone, to a webhook receiver alone, and to both at once. Both at once must take less
 * than 1.3× the slower of the two alone (each punch is read and stored once, whatever the number of sinks).
 *
 * BENCH_ROWS overrides the backlog size (default 1,000,000).
 */
import { join } from "node:path";
import { startCloud } from "../cloud/cloud-server.ts";
import { WebhookReceiver } from "../cloud/receivers/webhook-receiver.ts";
import { ensureDataDir } from "../src/app/data-dir.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { openSecretStore } from "../src/secrets/open-secret-store.ts";
import { ConnectorProcess } from "../test/helpers/connector-process.ts";
import { tempDir } from "../test/helpers/temp-dir.ts";
import { waitFor } from "../test/helpers/wait-for.ts";
import { createBacklog, log, peakRssMb } from "./bench-kit.ts";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TARGET = 1.3;

type Scenario = "cloud" | "webhook" | "both";

async function drain(dir: string, dbPath: string, scenario: Scenario) {
  await using cloud = await startCloud({ dataDir: join(dir, `cloud-${scenario}`) });
  const hook = await WebhookReceiver.start({ secrets: [SECRET] });
  try {
    const node = cloud.addNode();
    const sinks = {
      cloud: [{ id: "cams-cloud", kind: "cams-cloud" }],
      webhook: [{ id: "hook", kind: "webhook", url: hook.url, secret: SECRET }],
      both: [
        { id: "cams-cloud", kind: "cams-cloud" },
        { id: "hook", kind: "webhook", url: hook.url, secret: SECRET },
      ],
    }[scenario];
    cloud.setConfig(node.nodeId, {
      schemaVersion: 1,
      sources: [
        {
          id: "backlog",
          kind: "database",
          pollIntervalMs: 1000,
          timezone: "Asia/Kolkata",
          connection: { engine: "sqlite", path: dbPath },
          table: "att_log",
          columns: {
            id: "id",
            deviceSerial: "sn",
            userId: "pin",
            time: "punch_time",
            state: "status",
            verify: "verify",
          },
        },
      ],
      sinks,
    });
    const layout = ensureDataDir(join(dir, `connector-${scenario}`));
    await saveEnrollment(openSecretStore(layout), {
      cloudUrl: cloud.url,
      nodeId: node.nodeId,
      nodeSecret: node.secret,
    });
    const t0 = performance.now();
    await using connector = await ConnectorProcess.started(layout.root, ["--log-level", "warn"]);
    const wantCloud = scenario !== "webhook";
    const wantHook = scenario !== "cloud";
    let lastLog = 0;
    await waitFor(
      `the backlog delivered (${scenario})`,
      () => {
        const inCloud = cloud.count(node.nodeId);
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`  ${scenario}: cloud ${inCloud.toLocaleString()}, webhook ${hook.punches.size.toLocaleString()}`);
        }
        return (!wantCloud || inCloud === ROWS) && (!wantHook || hook.punches.size === ROWS);
      },
      60 * 60_000,
      50,
    );
    const seconds = (performance.now() - t0) / 1000;
    const rss = await peakRssMb(connector.child.pid as number);
    await connector.kill("SIGTERM");
    log(`${scenario}: ${seconds.toFixed(1)} s, ${Math.round(ROWS / seconds).toLocaleString()} punches/s`);
    return {
      seconds,
      rss,
      webhookDuplicates: hook.duplicates,
      cloudDuplicates: cloud.stats(node.nodeId).duplicateDeliveries,
    };
  } finally {
    await hook.close();
  }
}

async function main(): Promise<void> {
  await using dir = await tempDir("bioapi-sinks-bench-");
  const dbPath = join(dir.path, "att.db");
  log(`Creating a ${ROWS.toLocaleString()}-row backlog…`);
  createBacklog(dbPath, ROWS);
  const cloud = await drain(dir.path, dbPath, "cloud");
  const webhook = await drain(dir.path, dbPath, "webhook");
  const both = await drain(dir.path, dbPath, "both");
  const slower = Math.max(cloud.seconds, webhook.seconds);
  const ratio = both.seconds / slower;
  const result = {
    rows: ROWS,
    cloudAloneSeconds: Number(cloud.seconds.toFixed(1)),
    webhookAloneSeconds: Number(webhook.seconds.toFixed(1)),
    bothSeconds: Number(both.seconds.toFixed(1)),
    bothVsSlowerAlone: Number(ratio.toFixed(3)),
    target: TARGET,
    peakRssMb: { cloud: cloud.rss, webhook: webhook.rss, both: both.rss },
    duplicateDeliveries: { cloud: both.cloudDuplicates, webhook: both.webhookDuplicates },
  };
  const line = (a: string, b: string, c = "") => `${a.padEnd(22)}${b.padStart(22)}  ${c}`;
  process.stdout.write(
    `\n${[
      line("Cams cloud alone", `${Math.round(ROWS / cloud.seconds).toLocaleString()} punches/s`, "baseline"),
      line("webhook alone", `${Math.round(ROWS / webhook.seconds).toLocaleString()} punches/s`, "baseline"),
      line(
        "both at once",
        `${Math.round(ROWS / both.seconds).toLocaleString()} punches/s`,
        `${result.bothVsSlowerAlone}× the slower alone's time (target < ${TARGET}) ${ratio < TARGET ? "PASS" : "FAIL"}`,
      ),
    ].join("\n")}\n\n${JSON.stringify(result, null, 2)}\n`,
  );
}

await main();
