import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { BioError, isDiskFullError } from "../core/errors.ts";
import type { Punch } from "../core/punch.ts";
import { MIGRATIONS } from "./migrations.ts";
import { SinkLanes } from "./sink-lanes.ts";
import type { CursorValue, OutboxEntry } from "./store-types.ts";

export type { CursorValue, OutboxEntry } from "./store-types.ts";

/*
 * Invariants this module owns (DESIGN.md):
 *  1. Durable before advanced: emit() inserts punches and moves the cursor in one transaction.
 *  2. Deleted only when acknowledged: a row leaves the outbox only through ack() or quarantineOutbox().
 *  3. One punch, one id: outbox.id is UNIQUE, and ids acknowledged within the retention window are remembered in
 *     `delivered`, so a re-read (lookback window, restart) never enqueues a punch twice.
 */

export type CursorUpdate = Readonly<Record<string, CursorValue>>;

export interface QuarantineInput {
  readonly reason: string;
  /** The reason without the row's own values, for grouping in logs (defaults to the reason). */
  readonly kind?: string;
  readonly payload: unknown;
  readonly punchId?: string;
  /** Identifies the source row: a row quarantined before under the same key is not quarantined again. */
  readonly rowKey?: string;
}

export interface EmitResult {
  /** Punches newly added to the outbox. */
  readonly enqueued: number;
  /** Punches already in the outbox or already delivered: dropped by id. */
  readonly duplicates: number;
  readonly quarantined: number;
  /** Rows newly quarantined, counted by kind. */
  readonly quarantinedKinds: Readonly<Record<string, number>>;
}

export interface QuarantineEntry {
  readonly rowId: number;
  readonly sourceId: string;
  readonly punchId: string | null;
  readonly stage: "source" | "sink";
  readonly reason: string;
  readonly payload: string;
  readonly at: number;
}

export interface CachedConfig {
  readonly version: number;
  readonly iv: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly appliedAt: number;
}

/** Told of every failed write, so a full disk becomes the connector's state; returns the error to throw. */
export interface WriteFailures {
  fail(error: unknown): unknown;
}

export interface StoreOptions {
  readonly clock?: Clock;
  readonly space?: WriteFailures;
  /**
   * Whether a delivered punch keeps its body (the journal a new sink's backfill reads) or only its id. Asked at every
   * settle; default: always. The connector keeps it only while the data volume has room to spare (journalRoom).
   */
  readonly journal?: () => boolean;
}

/** 256 pages of 4 KiB. */
const WAL_CHECKPOINT_PAGES = 256;
const WAL_SIZE_LIMIT_BYTES = 1024 * 1024;

/** Without a DiskSpace to tell: a full disk is still named STORE_FULL, never a bare SQLite error. */
const namedOnly: WriteFailures = {
  fail: (error) =>
    isDiskFullError(error) && !(error instanceof BioError)
      ? new BioError("STORE_FULL", `The data disk is full (STORE_FULL): ${(error as Error).message}.`, {
          cause: error,
          hint: "Free space on the volume holding the data directory.",
        })
      : error,
};

export class Store {
  readonly #db: DatabaseSync;
  readonly #clock: Clock;
  readonly #stmts: ReturnType<typeof prepare>;
  readonly #space: WriteFailures;
  readonly #journal: () => boolean;
  /** Outbox depth kept in memory: count(*) scans the table, and status asks often. */
  #depth: number;
  #closed = false;
  /** The outbox as each sink sees it: what it still has to settle. */
  readonly lanes: SinkLanes;

  private constructor(db: DatabaseSync, clock: Clock, space: WriteFailures, journal: () => boolean = () => true) {
    this.#db = db;
    this.#journal = journal;
    this.#clock = clock;
    this.#space = space;
    this.#stmts = prepare(db);
    this.#depth = (this.#stmts.depth.get() as { depth: number }).depth;
    this.lanes = new SinkLanes({
      db,
      transaction: (fn) => this.#transaction(fn),
      now: () => this.#clock.now(),
      releaseRows: (ids) => this.#release(ids, this.#clock.now()),
      depthChanged: (delta) => {
        this.#depth += delta;
      },
      depth: () => this.#depth,
    });
  }

  /** Inside a transaction: the ids leave the outbox for every sink, remembered as delivered; their bodies go to the journal. */
  #release(ids: readonly string[], now: number): number {
    const s = this.#stmts;
    const kept: Array<[string, string, string]> | undefined = this.#journal() ? [] : undefined;
    let removed = 0;
    for (const id of ids) {
      const row = s.dequeueRow.get(id) as { source_id: string; body: string } | undefined;
      s.remember.run(id, now);
      if (!row) continue;
      removed++;
      kept?.push([id, row.source_id, row.body]);
    }
    if (kept && kept.length > 0) s.journalPut.run(now, JSON.stringify(kept));
    return removed;
  }

  static open(path: string, options: StoreOptions = {}): Store {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: 5000 });
      db.exec("PRAGMA journal_mode = WAL");
      // NORMAL in WAL mode survives any process crash; a power cut may roll back the newest commits, but never
      // half of one. Because punches and their cursor commit together, a rolled-back emit is simply read again
      // from the source, and a rolled-back ack is a re-delivery the cloud absorbs by id: nothing is lost, and
      // we avoid an fsync per batch.
      db.exec("PRAGMA synchronous = NORMAL");
      // The write-ahead log checkpoints at ~1 MiB (not SQLite's 4 MiB) and is cut back to that size after a
      // checkpoint: on a small or nearly full volume the log alone must not be what fills it.
      db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
      db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
      db.exec("PRAGMA foreign_keys = ON");
      migrate(db);
    } catch (error) {
      const space = options.space ?? namedOnly;
      if (isDiskFullError(error)) throw space.fail(error);
      throw new BioError("STORE", `Cannot open the local store at ${path}: ${(error as Error).message}.`, {
        cause: error,
        hint: "Check that the data directory exists and is writable by the service account.",
      });
    }
    return new Store(db, options.clock ?? systemClock, options.space ?? namedOnly, options.journal);
  }

  /**
   * For readers beside a running connector (`bioapi doctor`): no migration, no pragma that writes, and SQLite
   * itself refuses any write. A store of another schema version is refused rather than misread.
   */
  static openReadOnly(path: string, options: StoreOptions = {}): Store {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
    } catch (error) {
      throw new BioError("STORE", `Cannot open the local store at ${path}: ${(error as Error).message}.`, {
        cause: error,
        hint: "Check that the data directory exists and is readable by this account.",
      });
    }
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (version !== MIGRATIONS.length) {
      db.close();
      throw new BioError(
        "STORE",
        `The local store at ${path} has schema version ${version}; this program reads version ${MIGRATIONS.length}.`,
        { hint: "Start the connector of this version once (it migrates the store), then run this again." },
      );
    }
    return new Store(db, options.clock ?? systemClock, namedOnly);
  }

  get schemaVersion(): number {
    return (this.#db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  }

  /** Every write goes through here: a write refused for want of room is the connector's STORE_FULL state. */
  #transaction<T>(fn: () => T): T {
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const result = fn();
        this.#db.exec("COMMIT");
        return result;
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw error;
      }
    } catch (error) {
      throw this.#space.fail(error);
    }
  }

  /**
   * The only way a source persists anything: new punches, rows it could not turn into punches, and its next
   * cursor, all in one transaction. Returns after the commit.
   */
  emit(
    sourceId: string,
    punches: readonly Punch[],
    cursor: CursorUpdate | null,
    quarantined: readonly QuarantineInput[] = [],
  ): EmitResult {
    const now = this.#clock.now();
    const s = this.#stmts;
    const result = this.#transaction(() => {
      let enqueued = 0;
      for (const punch of punches) {
        const changes = s.enqueue.run(punch.id, sourceId, JSON.stringify(punch), now, punch.id).changes;
        enqueued += Number(changes);
      }
      const kinds: Record<string, number> = {};
      let added = 0;
      for (const q of quarantined) {
        const changes = s.quarantineRow.run(
          sourceId,
          q.punchId ?? null,
          "source",
          q.reason,
          safeJson(q.payload),
          now,
          q.rowKey ?? null,
        ).changes;
        if (Number(changes) === 0) continue;
        added++;
        const kind = q.kind ?? q.reason;
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
      if (cursor) {
        for (const [key, value] of Object.entries(cursor)) s.putCursor.run(sourceId, key, JSON.stringify(value), now);
      }
      return { enqueued, duplicates: punches.length - enqueued, quarantined: added, quarantinedKinds: kinds };
    });
    this.#depth += result.enqueued;
    return result;
  }

  cursors(sourceId: string): Map<string, CursorValue> {
    const rows = this.#stmts.cursors.all(sourceId) as Array<{ key: string; value: string }>;
    return new Map(rows.map((r) => [r.key, JSON.parse(r.value) as CursorValue]));
  }

  allCursors(): Array<{ sourceId: string; key: string; value: CursorValue; updatedAt: number }> {
    const rows = this.#db
      .prepare("SELECT source_id, key, value, updated_at FROM cursors ORDER BY source_id, key")
      .all() as Array<{
      source_id: string;
      key: string;
      value: string;
      updated_at: number;
    }>;
    return rows.map((r) => ({
      sourceId: r.source_id,
      key: r.key,
      value: JSON.parse(r.value) as CursorValue,
      updatedAt: r.updated_at,
    }));
  }

  /** The oldest pending punches, in enqueue order, optionally only those after `afterSeq`. */
  peek(limit: number, afterSeq = 0): OutboxEntry[] {
    const rows = this.#stmts.peek.all(afterSeq, limit) as Array<{
      seq: number;
      id: string;
      source_id: string;
      body: string;
      enqueued_at: number;
      attempts: number;
    }>;
    return rows.map((r) => ({
      seq: r.seq,
      id: r.id,
      sourceId: r.source_id,
      body: r.body,
      enqueuedAt: r.enqueued_at,
      attempts: r.attempts,
    }));
  }

  /**
   * Settled for every sink at once: leave the outbox, remembered as delivered for dedupe (invariant 2). A running
   * connector settles through its sinks' lanes; this is for tools and tests that stand in for all of them.
   */
  ack(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const now = this.#clock.now();
    this.#depth -= this.#transaction(() => this.#release(ids, now));
  }

  /** Rejected permanently by the sink: out of the queue into quarantine, with the reason. */
  quarantineOutbox(rejections: ReadonlyArray<{ readonly id: string; readonly reason: string }>): void {
    if (rejections.length === 0) return;
    const now = this.#clock.now();
    const s = this.#stmts;
    this.#depth -= this.#transaction(() => {
      let removed = 0;
      for (const { id, reason } of rejections) {
        const row = s.outboxById.get(id) as { source_id: string; body: string } | undefined;
        if (!row) continue;
        s.quarantine.run(row.source_id, id, "sink", reason, row.body, now);
        // Remembered like a delivery, so the lookback re-read does not enqueue (and quarantine) it again.
        removed += this.#release([id], now);
      }
      return removed;
    });
  }

  /** Counts a failed delivery attempt (kept for status; order is unaffected). */
  recordAttempt(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const s = this.#stmts;
    this.#transaction(() => {
      for (const id of ids) s.attempt.run(id);
    });
  }

  /** Punches waiting for acknowledgement. */
  get depth(): number {
    return this.#depth;
  }

  outboxStats(): { depth: number; oldestEnqueuedAt: number | null } {
    const oldest = this.#stmts.oldest.get() as { enqueued_at: number } | undefined;
    return { depth: this.#depth, oldestEnqueuedAt: oldest?.enqueued_at ?? null };
  }

  deliveredCount(): number {
    return (this.#db.prepare("SELECT count(*) AS n FROM delivered").get() as { n: number }).n;
  }

  quarantine(limit = 100): QuarantineEntry[] {
    const rows = this.#db
      .prepare(
        "SELECT rowid, source_id, punch_id, stage, reason, payload, at FROM quarantine ORDER BY rowid DESC LIMIT ?",
      )
      .all(limit) as Array<{
      rowid: number;
      source_id: string;
      punch_id: string | null;
      stage: "source" | "sink";
      reason: string;
      payload: string;
      at: number;
    }>;
    return rows.map((r) => ({
      rowId: r.rowid,
      sourceId: r.source_id,
      punchId: r.punch_id,
      stage: r.stage,
      reason: r.reason,
      payload: r.payload,
      at: r.at,
    }));
  }

  quarantineCount(): number {
    return (this.#db.prepare("SELECT count(*) AS n FROM quarantine").get() as { n: number }).n;
  }

  /** Forgets delivered ids older than `retentionMs`; they are then outside every lookback window. */
  pruneDelivered(retentionMs: number): number {
    const before = this.#clock.now() - retentionMs;
    return this.#transaction(() => {
      this.#stmts.pruneJournal.run(before);
      return Number(this.#stmts.prune.run(before).changes);
    });
  }

  /** Forgets the bodies of delivered punches (their ids stay): room for the outbox comes before backfills. */
  dropJournal(): number {
    return this.#transaction(() => {
      const held = this.#db.prepare("SELECT coalesce(sum(json_array_length(punches)), 0) AS n FROM journal").get() as {
        n: number;
      };
      this.#db.exec("DELETE FROM journal");
      return held.n;
    });
  }

  cachedConfig(): CachedConfig | undefined {
    const row = this.#db
      .prepare("SELECT version, iv, ciphertext, applied_at FROM config_cache WHERE slot = 'current'")
      .get() as { version: number; iv: Uint8Array; ciphertext: Uint8Array; applied_at: number } | undefined;
    return row
      ? { version: row.version, iv: row.iv, ciphertext: row.ciphertext, appliedAt: row.applied_at }
      : undefined;
  }

  saveConfig(config: Omit<CachedConfig, "appliedAt">): void {
    this.#transaction(() =>
      this.#db
        .prepare(
          "INSERT INTO config_cache (slot, version, iv, ciphertext, applied_at) VALUES ('current', ?, ?, ?, ?) " +
            "ON CONFLICT(slot) DO UPDATE SET version = excluded.version, iv = excluded.iv, ciphertext = excluded.ciphertext, applied_at = excluded.applied_at",
        )
        .run(config.version, config.iv, config.ciphertext, this.#clock.now()),
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

function prepare(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    // One statement decides both dedupe rules: not already queued (UNIQUE) and not delivered within retention.
    // ON CONFLICT (not OR IGNORE): only a duplicate id is skipped; a NOT NULL violation still fails the emit.
    enqueue: p(
      "INSERT INTO outbox (id, source_id, body, enqueued_at) SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM delivered WHERE id = ?) ON CONFLICT(id) DO NOTHING",
    ),
    remember: p("INSERT INTO delivered (id, at) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at"),
    dequeueRow: p("DELETE FROM outbox WHERE id = ? RETURNING source_id, body"),
    // One row per settled batch, appended and never looked up by id: the cheap way to keep bodies as long as their
    // ids (DELIVERED_RETENTION_MS), for a sink added later with backfillFrom.
    journalPut: p("INSERT INTO journal (at, punches) VALUES (?, ?)"),
    outboxById: p("SELECT source_id, body FROM outbox WHERE id = ?"),
    peek: p("SELECT seq, id, source_id, body, enqueued_at, attempts FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"),
    attempt: p("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?"),
    depth: p("SELECT count(*) AS depth FROM outbox"),
    // seq order is enqueue order, so the oldest is the first row of the primary key: no scan.
    oldest: p("SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1"),
    quarantine: p("INSERT INTO quarantine (source_id, punch_id, stage, reason, payload, at) VALUES (?, ?, ?, ?, ?, ?)"),
    quarantineRow: p(
      "INSERT INTO quarantine (source_id, punch_id, stage, reason, payload, at, row_key) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, row_key) WHERE row_key IS NOT NULL DO NOTHING",
    ),
    putCursor: p(
      "INSERT INTO cursors (source_id, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(source_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    ),
    cursors: p("SELECT key, value FROM cursors WHERE source_id = ?"),
    prune: p("DELETE FROM delivered WHERE at < ?"),
    // The journal is in append order, so what is past retention is a prefix: no scan of the rest, no index on at.
    pruneJournal: p(
      "DELETE FROM journal WHERE seq < coalesce((SELECT seq FROM journal WHERE at >= ? ORDER BY seq LIMIT 1), (SELECT max(seq) + 1 FROM journal))",
    ),
  };
}

function migrate(db: DatabaseSync): void {
  const current = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (current > MIGRATIONS.length) {
    throw new BioError(
      "STORE",
      `The local store has schema version ${current}, newer than this connector knows (${MIGRATIONS.length}).`,
      {
        hint: "Run the newer connector version, or restore the data directory from before the downgrade.",
      },
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[version] as string);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "null";
  } catch {
    return String(value);
  }
}
