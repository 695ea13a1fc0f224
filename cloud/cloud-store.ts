import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { CONFIG_ALG, encryptConfig, newSecret, open, type Sealed, seal } from "./cloud-crypto.ts";
import { ConfigInvalidError, validateConfig } from "./validate-config.ts";
import { idMatchesFields } from "./validate-punch.ts";

export interface NodeCredentials {
  readonly nodeId: string;
  readonly secret: string;
}

/** What GET /v1/nodes/{id}/config serves. Test hooks may publish any field values, so nothing is trusted here. */
export interface ConfigEnvelope {
  readonly nodeId: string;
  readonly version: number;
  readonly alg: string;
  readonly iv: string;
  readonly ciphertext: string;
}

export interface PunchStats {
  readonly total: number;
  readonly duplicateDeliveries: number;
  readonly byDevice: Record<string, number>;
}

export interface StoredPunch {
  readonly id: string;
  readonly deviceSerial: string;
  readonly userId: string;
  readonly time: string;
  readonly state: string;
  /** Times this id was delivered and answered accepted or duplicate. */
  readonly deliveries: number;
  /** Whether the id equals the hash protocol.md derives from the punch's own fields. */
  readonly idConsistent: boolean;
  readonly firstReceivedAt: string;
  readonly lastReceivedAt: string;
  /** The punch exactly as the connector sent it the first time. */
  readonly body: Readonly<Record<string, unknown>>;
}

export type IngestItem =
  | { readonly kind: "valid"; readonly punch: Readonly<Record<string, unknown>> & { readonly id: string } }
  | { readonly kind: "rejected"; readonly id: string; readonly reason: string; readonly raw: unknown };

export type IngestResult =
  | { readonly id: string; readonly status: "accepted" | "duplicate" }
  | { readonly id: string; readonly status: "rejected"; readonly reason: string; readonly permanent: true };

const MASTER_KEY_FILE = "cloud.key";
const DB_FILE = "cloud.db";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY,
  secret_iv TEXT NOT NULL,
  secret_sealed TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  envelope TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS configs_by_node ON configs(node_id, seq);
CREATE TABLE IF NOT EXISTS punches (
  seq INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  id TEXT NOT NULL,
  device_serial TEXT NOT NULL,
  user_id TEXT NOT NULL,
  time TEXT NOT NULL,
  state TEXT NOT NULL,
  body TEXT NOT NULL,
  id_consistent INTEGER NOT NULL,
  deliveries INTEGER NOT NULL DEFAULT 1,
  first_received_at TEXT NOT NULL,
  last_received_at TEXT NOT NULL,
  UNIQUE (node_id, id)
);
CREATE INDEX IF NOT EXISTS punches_by_device ON punches(node_id, device_serial);
CREATE TABLE IF NOT EXISTS rejections (
  seq INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  id TEXT NOT NULL,
  reason TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
  node_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  keep_until INTEGER NOT NULL,
  PRIMARY KEY (node_id, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces(keep_until);
CREATE TABLE IF NOT EXISTS node_status (
  node_id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL
);
`;

/**
 * The master key lives beside the database, never in it, so a copied cloud.db alone does not reveal node secrets.
 * Created through link() so two processes starting at once (serve and an admin command) agree on one key.
 */
function loadMasterKey(dataDir: string): Buffer {
  const path = join(dataDir, MASTER_KEY_FILE);
  try {
    return readMasterKey(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(tmp, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(tmp, 0o600);
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    unlinkSync(tmp);
  }
  return readMasterKey(path);
}

function readMasterKey(path: string): Buffer {
  const text = readFileSync(path, "utf8").trim();
  if (process.platform !== "win32" && (statSync(path).mode & 0o077) !== 0) {
    throw new Error(`${path} is readable by other users; run chmod 600 ${path}`);
  }
  const key = Buffer.from(text, "base64url");
  if (key.length !== 32) throw new Error(`${path} does not hold a 32-byte base64url key; restore it from backup`);
  return key;
}

function secretAad(nodeId: string): Buffer {
  return Buffer.from(`cams-bioapi-cloud/node-secret\n${nodeId}`, "utf8");
}

function isoNow(now: () => number): string {
  return new Date(now()).toISOString();
}

/** SQLite storage of the reference cloud; shared by the server and the admin commands (WAL lets both open it). */
export class CloudStore {
  readonly #db: DatabaseSync;
  readonly #counts = new Map<string, number>();
  readonly #masterKey: Buffer;
  readonly #now: () => number;
  readonly #secrets = new Map<string, string>();
  readonly #upsertPunch: StatementSync;
  readonly #insertRejection: StatementSync;
  readonly #selectSecret: StatementSync;
  readonly #selectConfig: StatementSync;
  readonly #rememberNonce: StatementSync;
  readonly #pruneNonces: StatementSync;
  #noncesPrunedAt = 0;
  #closed = false;

  private constructor(db: DatabaseSync, masterKey: Buffer, now: () => number) {
    this.#db = db;
    this.#masterKey = masterKey;
    this.#now = now;
    this.#upsertPunch = db.prepare(
      `INSERT INTO punches (node_id, id, device_serial, user_id, time, state, body, id_consistent,
                            first_received_at, last_received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (node_id, id) DO UPDATE SET deliveries = deliveries + 1, last_received_at = excluded.last_received_at
       RETURNING deliveries`,
    );
    this.#insertRejection = db.prepare(
      "INSERT INTO rejections (node_id, id, reason, body, received_at) VALUES (?, ?, ?, ?, ?)",
    );
    this.#selectSecret = db.prepare("SELECT secret_iv, secret_sealed FROM nodes WHERE node_id = ?");
    this.#selectConfig = db.prepare("SELECT envelope FROM configs WHERE node_id = ? ORDER BY seq DESC LIMIT 1");
    // Inserts a new nonce, or takes over one whose time is up; a live one changes nothing (0 rows).
    this.#rememberNonce = db.prepare(
      `INSERT INTO nonces (node_id, nonce, keep_until) VALUES (?, ?, ?)
       ON CONFLICT (node_id, nonce) DO UPDATE SET keep_until = excluded.keep_until WHERE nonces.keep_until < ?`,
    );
    this.#pruneNonces = db.prepare("DELETE FROM nonces WHERE keep_until < ?");
  }

  /** The NonceLedger of verify-request.ts, durable: a restarted cloud still refuses a captured request. */
  rememberNonce(nodeId: string, nonce: string, keepUntil: number, now: number): boolean {
    if (now - this.#noncesPrunedAt > 60_000) {
      this.#noncesPrunedAt = now;
      this.#pruneNonces.run(now);
    }
    return Number(this.#rememberNonce.run(nodeId, nonce, keepUntil, now).changes) === 1;
  }

  static open(dataDir: string, now: () => number = Date.now): CloudStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const masterKey = loadMasterKey(dataDir);
    const db = new DatabaseSync(join(dataDir, DB_FILE), { timeout: 5000 });
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec(SCHEMA);
      return new CloudStore(db, masterKey, now);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  #transaction<T>(work: () => T): T {
    // IMMEDIATE takes the write lock up front, so a concurrent admin command waits instead of failing mid-way.
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  addNode(): NodeCredentials {
    const nodeId = randomUUID();
    const secret = newSecret();
    const sealed = seal(this.#masterKey, secret, secretAad(nodeId));
    this.#db
      .prepare("INSERT INTO nodes (node_id, secret_iv, secret_sealed, created_at) VALUES (?, ?, ?, ?)")
      .run(nodeId, sealed.iv, sealed.ciphertext, isoNow(this.#now));
    this.#secrets.set(nodeId, secret);
    return { nodeId, secret };
  }

  /** The node's secret, or undefined when the node is not registered. Looked up again on a miss: admins add nodes live. */
  nodeSecret(nodeId: string): string | undefined {
    const cached = this.#secrets.get(nodeId);
    if (cached !== undefined) return cached;
    const row = this.#selectSecret.get(nodeId) as { secret_iv: string; secret_sealed: string } | undefined;
    if (row === undefined) return undefined;
    const sealed: Sealed = { iv: row.secret_iv, ciphertext: row.secret_sealed };
    const secret = open(this.#masterKey, sealed, secretAad(nodeId)).toString("utf8");
    this.#secrets.set(nodeId, secret);
    return secret;
  }

  #requireSecret(nodeId: string): string {
    const secret = this.nodeSecret(nodeId);
    if (secret === undefined) {
      throw new Error(`node ${nodeId} is not registered; add it first with \`bioapi cloud node add\``);
    }
    return secret;
  }

  nodeCount(): number {
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM nodes").get() as { n: number }).n;
  }

  /** Validates against docs/config.schema.json, then stores it encrypted as the next version. */
  setConfig(nodeId: string, config: unknown): number {
    const secret = this.#requireSecret(nodeId);
    const issues = validateConfig(config);
    if (issues.length > 0) throw new ConfigInvalidError(issues);
    const plaintext = JSON.stringify(config);
    return this.#transaction(() => {
      const row = this.#db
        .prepare("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM configs WHERE node_id = ?")
        .get(nodeId) as { next: number };
      const version = row.next;
      const sealed = encryptConfig({ secret, nodeId, version, plaintext });
      this.#insertEnvelope(nodeId, { nodeId, version, alg: CONFIG_ALG, ...sealed });
      return version;
    });
  }

  /** Serves `envelope` verbatim from now on (test hook for tampered, wrongly keyed or older envelopes). */
  publishEnvelope(nodeId: string, envelope: Partial<ConfigEnvelope> & Pick<ConfigEnvelope, "version">): void {
    this.#requireSecret(nodeId);
    this.#insertEnvelope(nodeId, { nodeId, alg: CONFIG_ALG, iv: "", ciphertext: "", ...envelope });
  }

  #insertEnvelope(nodeId: string, envelope: ConfigEnvelope): void {
    this.#db
      .prepare("INSERT INTO configs (node_id, version, envelope, created_at) VALUES (?, ?, ?, ?)")
      .run(nodeId, envelope.version, JSON.stringify(envelope), isoNow(this.#now));
  }

  currentConfig(nodeId: string): ConfigEnvelope | undefined {
    const row = this.#selectConfig.get(nodeId) as { envelope: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.envelope) as ConfigEnvelope);
  }

  /** One transaction per batch: a crash leaves either the whole batch or none of it. */
  /**
   * Distinct punches held for a node, kept in memory after the first count so that tests and benchmarks can poll
   * it every few milliseconds without scanning the table (stats() does).
   */
  count(nodeId: string): number {
    let n = this.#counts.get(nodeId);
    if (n === undefined) {
      n = (this.#db.prepare("SELECT COUNT(*) AS n FROM punches WHERE node_id = ?").get(nodeId) as { n: number }).n;
      this.#counts.set(nodeId, n);
    }
    return n;
  }

  ingest(nodeId: string, items: readonly IngestItem[]): IngestResult[] {
    const receivedAt = isoNow(this.#now);
    const results = this.#ingestBatch(nodeId, items, receivedAt);
    const known = this.#counts.get(nodeId);
    if (known !== undefined) this.#counts.set(nodeId, known + results.filter((r) => r.status === "accepted").length);
    return results;
  }

  #ingestBatch(nodeId: string, items: readonly IngestItem[], receivedAt: string): IngestResult[] {
    return this.#transaction(() =>
      items.map((item): IngestResult => {
        if (item.kind === "rejected") {
          this.#insertRejection.run(nodeId, item.id, item.reason, JSON.stringify(item.raw) ?? "null", receivedAt);
          return { id: item.id, status: "rejected", reason: item.reason, permanent: true };
        }
        const p = item.punch;
        const row = this.#upsertPunch.get(
          nodeId,
          p.id,
          p.deviceSerial as string,
          p.userId as string,
          p.time as string,
          p.state as string,
          JSON.stringify(p),
          idMatchesFields(p) ? 1 : 0,
          receivedAt,
          receivedAt,
        ) as { deliveries: number };
        return { id: p.id, status: row.deliveries === 1 ? "accepted" : "duplicate" };
      }),
    );
  }

  stats(nodeId: string): PunchStats {
    const totals = this.#db
      .prepare("SELECT COUNT(*) AS total, COALESCE(SUM(deliveries - 1), 0) AS dups FROM punches WHERE node_id = ?")
      .get(nodeId) as { total: number; dups: number };
    const byDevice: Record<string, number> = {};
    const rows = this.#db
      .prepare(
        "SELECT device_serial, COUNT(*) AS n FROM punches WHERE node_id = ? GROUP BY device_serial ORDER BY device_serial",
      )
      .all(nodeId) as { device_serial: string; n: number }[];
    for (const row of rows) byDevice[row.device_serial] = row.n;
    return { total: totals.total, duplicateDeliveries: totals.dups, byDevice };
  }

  /** In order of first receipt. */
  punches(nodeId: string, limit = -1): StoredPunch[] {
    const rows = this.#db
      .prepare(
        `SELECT id, device_serial, user_id, time, state, body, id_consistent, deliveries, first_received_at,
                last_received_at FROM punches WHERE node_id = ? ORDER BY seq LIMIT ?`,
      )
      .all(nodeId, limit) as {
      id: string;
      device_serial: string;
      user_id: string;
      time: string;
      state: string;
      body: string;
      id_consistent: number;
      deliveries: number;
      first_received_at: string;
      last_received_at: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      deviceSerial: r.device_serial,
      userId: r.user_id,
      time: r.time,
      state: r.state,
      deliveries: r.deliveries,
      idConsistent: r.id_consistent === 1,
      firstReceivedAt: r.first_received_at,
      lastReceivedAt: r.last_received_at,
      body: JSON.parse(r.body) as Record<string, unknown>,
    }));
  }

  rejectedCount(nodeId: string): number {
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM rejections WHERE node_id = ?").get(nodeId) as { n: number }).n;
  }

  /** Every punch answered `rejected`, one row per delivery, oldest first. */
  rejections(nodeId: string): { id: string; reason: string; receivedAt: string }[] {
    return this.#db
      .prepare("SELECT id, reason, received_at AS receivedAt FROM rejections WHERE node_id = ? ORDER BY seq")
      .all(nodeId) as { id: string; reason: string; receivedAt: string }[];
  }

  setStatus(nodeId: string, body: unknown): void {
    this.#db
      .prepare(
        `INSERT INTO node_status (node_id, body, received_at) VALUES (?, ?, ?)
         ON CONFLICT (node_id) DO UPDATE SET body = excluded.body, received_at = excluded.received_at`,
      )
      .run(nodeId, JSON.stringify(body), isoNow(this.#now));
  }

  /** Every node with its newest heartbeat (if any), oldest node first. */
  nodes(): { nodeId: string; createdAt: string; status: unknown; lastSeen: string | null }[] {
    const rows = this.#db
      .prepare(
        `SELECT n.node_id AS nodeId, n.created_at AS createdAt, s.body AS body, s.received_at AS lastSeen
           FROM nodes n LEFT JOIN node_status s ON s.node_id = n.node_id ORDER BY n.created_at, n.node_id`,
      )
      .all() as { nodeId: string; createdAt: string; body: string | null; lastSeen: string | null }[];
    return rows.map((r) => ({
      nodeId: r.nodeId,
      createdAt: r.createdAt,
      status: r.body === null ? undefined : JSON.parse(r.body),
      lastSeen: r.lastSeen,
    }));
  }

  lastStatus(nodeId: string): unknown {
    const row = this.#db.prepare("SELECT body FROM node_status WHERE node_id = ?").get(nodeId) as
      | { body: string }
      | undefined;
    return row === undefined ? undefined : JSON.parse(row.body);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
