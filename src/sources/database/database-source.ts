import { createHash } from "node:crypto";
import type { DatabaseConnectionConfig, DatabaseSourceConfig } from "../../config/config-schema.ts";
import { sleep } from "../../core/abort.ts";
import type { CursorValue } from "../../store/store.ts";
import type { Source, SourceContext } from "../source.ts";
import { DatabaseReader } from "./database-reader.ts";
import { IdCursor } from "./id-cursor.ts";
import { PollRun } from "./poll-run.ts";
import type { SqlClient } from "./sql-client.ts";
import type { TableCursor } from "./table-cursor.ts";
import { TimeCursor } from "./time-cursor.ts";
import { cleartextPasswordWarning } from "./wire-security.ts";

export interface DatabaseSourceOptions {
  readonly config: DatabaseSourceConfig;
  /** Opens a client for the configured engine; the source closes it when it stops. */
  readonly connect: (config: DatabaseSourceConfig, signal: AbortSignal) => Promise<SqlClient>;
  /**
   * Warnings already logged, shared by every start of the source (the supervisor makes a new one each time), so a
   * password sent without TLS is logged once, not at every reconnect. Default: this source's own.
   */
  readonly warned?: Set<string>;
}

/** Cursor key holding which database and table the cursors belong to ('#' never occurs in a serial). */
export const TARGET_KEY = "#target";

/** Where a source's database is: engine and place, never credentials (this ends up in a cursor). */
export function connectionTarget(c: DatabaseConnectionConfig): string {
  switch (c.engine) {
    case "sqlite":
    case "access":
      return `${c.engine}:${c.path}`;
    case "postgres":
      return `${c.engine}://${c.host}:${c.port}/${c.database}/${c.schema}`;
    case "mssql":
      // A named instance is found through SQL Browser: the port is not where the data is.
      return c.instanceName
        ? `${c.engine}://${c.host}\\${c.instanceName}/${c.database}/${c.schema}`
        : `${c.engine}://${c.host}:${c.port}/${c.database}/${c.schema}`;
    case "mysql":
      return `${c.engine}://${c.host}:${c.port}/${c.database}`;
  }
}

/**
 * Which rows the cursors describe: database, preset, table, id / partition columns, the time column when it is the
 * cursor, and the filter (a wider filter brings rows below the cursors into view). What the first version hashed is
 * hashed the same way, so an id-cursor source with no filter keeps its cursors across the upgrade.
 */
export function targetFingerprint(config: DatabaseSourceConfig): string {
  const { connection, table, columns, preset, filter } = config;
  const parts: unknown[] = [connectionTarget(connection), preset, table, columns?.id, columns?.deviceSerial];
  const extra: Record<string, unknown> = {};
  if (columns && !columns.id) extra.time = columns.time;
  if (filter.length > 0) extra.filter = filter;
  if (Object.keys(extra).length > 0) parts.push(extra);
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 16);
}

/**
 * Reads an attendance table with a cursor per partition (device serial, or the vendor's device number): the last row
 * id (IdCursor: the table once per poll, late rows found by their missing ids), or the newest time when the table
 * has no usable id (TimeCursor: each device from its cursor lowered by a lookback window). The source owns the run:
 * the target the cursors belong to, the poll loop and its status; how a table is read is its cursor type's.
 */
export class DatabaseSource implements Source {
  readonly #config: DatabaseSourceConfig;
  readonly #connect: DatabaseSourceOptions["connect"];
  readonly #warned: Set<string>;

  constructor(options: DatabaseSourceOptions) {
    this.#config = options.config;
    this.#connect = options.connect;
    this.#warned = options.warned ?? new Set();
  }

  async run(ctx: SourceContext): Promise<void> {
    const client = await this.#connect(this.#config, ctx.signal);
    try {
      const cleartext = cleartextPasswordWarning(this.#config.connection, client.wire);
      // Keyed by the server and mode: pointed at another server, or after the mode changes, it is said again.
      const key = `cleartext ${this.#config.id} ${connectionTarget(this.#config.connection)} ${cleartext}`;
      if (cleartext && !this.#warned.has(key)) {
        this.#warned.add(key);
        ctx.logger.warn(cleartext);
      }
      const reader = new DatabaseReader(client, this.#config, ctx.signal, ctx.logger);
      const plan = reader.plan.cursor;
      // The one place the kind of cursor matters: from here on, its type does.
      const cursor: TableCursor =
        plan.kind === "id"
          ? new IdCursor(plan.column, this.#config)
          : new TimeCursor(plan, this.#config, client.engine);
      const cursors = new Map<string, CursorValue>();
      // Cursors belong to one table of one database: pointed elsewhere under the same source id, start afresh
      // (already-delivered punches are dropped by id, so this costs reading, not duplicates).
      const target = targetFingerprint(this.#config);
      const previous = ctx.cursors.get(TARGET_KEY);
      const retarget = previous !== undefined && previous !== target;
      if (retarget) {
        ctx.logger.warn("The source now points at another database, table or preset; reading it from the start.", {
          preset: this.#config.preset,
        });
      } else {
        // null is a cursor cleared by a re-target: no cursor.
        for (const [key, value] of ctx.cursors) if (!key.startsWith("#") && value !== null) cursors.set(key, value);
        cursor.restore(ctx.cursors);
      }
      // Fail fast on a wrong table or column, before the first poll.
      let withoutSerial = 0;
      for (const name of reader.plan.tables(ctx.clock.now(), cursors.keys())) {
        const t = await reader.table(name);
        if (t) withoutSerial += await reader.countWithoutPartition(t);
      }
      if (withoutSerial > 0) {
        ctx.logger.warn(
          `${withoutSerial} row(s) have no ${reader.plan.partition} (NULL or blank) and are skipped: cursors are kept per ${reader.plan.partition}, so such rows cannot be read without loss or repeats (mobile-app or manually entered punches, usually).`,
          { skipped: withoutSerial, column: reader.plan.partition },
        );
      }
      if (previous !== target) {
        // The old target's cursors are cleared in the same commit that records the new target: otherwise the next
        // start (same target now) would load them again, and rows of the new table below them would never be read.
        const update: Record<string, CursorValue> = { [TARGET_KEY]: target };
        if (retarget)
          for (const [key, value] of ctx.cursors) if (key !== TARGET_KEY && value !== null) update[key] = null;
        await ctx.emit([], update);
      }
      const run = new PollRun(reader, ctx, cursors);
      while (!ctx.signal.aborted) {
        await ctx.waitUntilActive();
        const started = ctx.clock.now();
        await run.begin(started);
        cursor.begin(started);
        for (const name of reader.plan.tables(started, cursors.keys())) {
          if (ctx.signal.aborted) return;
          const t = await reader.table(name);
          if (!t) continue;
          if ((await cursor.read(t, run)) === "stopped") return;
        }
        ctx.progress({
          lastPollAt: started,
          ...(run.backfill.counted.size > 0 ? { backlog: null } : {}),
          ...cursor.status(),
        });
        // An abort ends the wait early; the loop condition then ends the run.
        await sleep(this.#config.pollIntervalMs, ctx.signal).catch(() => undefined);
      }
    } finally {
      await client.close();
    }
  }
}
