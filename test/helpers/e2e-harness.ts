import { join } from "node:path";
import { type CloudServer, startCloud } from "../../cloud/cloud-server.ts";
import { Connector } from "../../src/app/connector.ts";
import { ensureDataDir } from "../../src/app/data-dir.ts";
import { createLogger, type Logger, Redactor } from "../../src/core/logger.ts";
import { saveEnrollment } from "../../src/secrets/enrollment.ts";
import { openSecretStore } from "../../src/secrets/open-secret-store.ts";
import { ATT_LOG_COLUMNS, AttendanceDb } from "./attendance-db.ts";
import { tempDir } from "./temp-dir.ts";

/**
 * For tests that count deliveries: nothing in them fails, so no batch may time out. With the fast config's 1 s, a
 * batch the cloud answered late on a busy machine was sent again (absorbed by id, but counted as a second
 * delivery). A slow answer is not a fault.
 */
export const PATIENT_SHIPPER = { batchSize: 500, lingerMs: 20, requestTimeoutMs: 30_000, maxBackoffMs: 1500 } as const;

/** Fast intervals so end-to-end tests settle in seconds; every value is a real config field. */
export function fastConfig(
  dbPath: string,
  overrides: Record<string, unknown> = {},
  sourceOverrides: Record<string, unknown> = {},
) {
  return {
    schemaVersion: 1,
    configPollIntervalMs: 300,
    heartbeatIntervalMs: 1000,
    connectivity: { probeIntervalMs: 300, probeTimeoutMs: 500, failuresBeforeOffline: 2, policy: "pause" },
    shipper: { batchSize: 500, lingerMs: 20, requestTimeoutMs: 1000, maxBackoffMs: 1500 },
    ...overrides,
    sources: [
      {
        id: "att",
        kind: "database",
        pollIntervalMs: 100,
        timezone: "Asia/Kolkata",
        connection: { engine: "sqlite", path: dbPath },
        table: "att_log",
        columns: ATT_LOG_COLUMNS,
        ...sourceOverrides,
      },
    ],
  };
}

export interface E2e extends AsyncDisposable {
  readonly dir: string;
  readonly cloud: CloudServer;
  readonly nodeId: string;
  readonly secret: string;
  readonly db: AttendanceDb;
  readonly logs: string[];
  readonly connectorDir: string;
  connector(): Connector;
  startConnector(): Promise<Connector>;
  stopConnector(): Promise<void>;
  /** Every id in the cloud for this node, with its delivery count. */
  cloudIds(): Map<string, number>;
}

/** Reference cloud + attendance database + an enrolled connector data dir, all real, on loopback. */
export async function e2e(options: { config?: (dbPath: string) => unknown; logger?: Logger } = {}): Promise<E2e> {
  const tmp = await tempDir("bioapi-e2e-");
  const cloud = await startCloud({ dataDir: join(tmp.path, "cloud") });
  const node = cloud.addNode();
  const db = new AttendanceDb(join(tmp.path, "att.db"));
  cloud.setConfig(node.nodeId, options.config ? options.config(db.path) : fastConfig(db.path));
  const layout = ensureDataDir(join(tmp.path, "connector"));
  await saveEnrollment(openSecretStore(layout), { cloudUrl: cloud.url, nodeId: node.nodeId, nodeSecret: node.secret });
  const logs: string[] = [];
  const redactor = new Redactor();
  const logger =
    options.logger ?? createLogger({ level: "debug", format: "json", redact: redactor, write: (l) => logs.push(l) });
  let connector: Connector | undefined;
  const h: E2e = {
    dir: tmp.path,
    cloud,
    nodeId: node.nodeId,
    secret: node.secret,
    db,
    logs,
    connectorDir: layout.root,
    connector: () => {
      if (!connector) throw new Error("connector not started");
      return connector;
    },
    async startConnector() {
      connector = await Connector.start({ dataDir: layout.root, secrets: openSecretStore(layout), logger, redactor });
      return connector;
    },
    async stopConnector() {
      await connector?.stop();
      connector = undefined;
    },
    cloudIds() {
      return new Map(cloud.punches(node.nodeId, 10_000_000).map((p) => [p.id, p.deliveries]));
    },
    async [Symbol.asyncDispose]() {
      await connector?.stop();
      await cloud.close();
      db.close();
      await tmp[Symbol.asyncDispose]();
    },
  };
  return h;
}
