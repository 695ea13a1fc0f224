import { createHash } from "node:crypto";
import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { sleep } from "../../core/abort.ts";
import { BioError } from "../../core/errors.ts";
import { resolveTime } from "../../core/local-time.ts";
import { makePunch, type Punch } from "../../core/punch.ts";
import type { CursorUpdate, QuarantineInput } from "../../store/store.ts";
import type { Source, SourceContext } from "../source.ts";
import type { SqlClient, SqlRow } from "./sql-client.ts";

export interface DatabaseSourceOptions {
  readonly config: DatabaseSourceConfig;
  /** Opens a client for the configured engine; the source closes it when it stops. */
  readonly connect: (config: DatabaseSourceConfig) => Promise<SqlClient>;
}

/** Cursor key holding which database and table the cursors belong to ('#' never occurs in a serial). */
export const TARGET_KEY = "#target";

/** A full `SELECT DISTINCT serial` scans an index; between those, new serials are found among the newest ids. */
const FULL_DISCOVERY_EVERY_MS = 10 * 60_000;

/**
 * Reads an attendance table per device serial with cursor = last row id per serial. Each poll re-reads a bounded
 * lookback window below the cursor so that a row which committed out of id order is still collected; re-read
 * punches are dropped by id in the store (invariant 6).
 */
export class DatabaseSource implements Source {
  readonly #config: DatabaseSourceConfig;
  readonly #connect: DatabaseSourceOptions["connect"];

  constructor(options: DatabaseSourceOptions) {
    this.#config = options.config;
    this.#connect = options.connect;
  }

  async run(ctx: SourceContext): Promise<void> {
    const client = await this.#connect(this.#config);
    try {
      const sql = await this.#prepare(client, ctx);
      const cursors = new Map<string, number>();
      // Cursors belong to one table of one database: pointed elsewhere under the same source id, start afresh
      // (already-delivered punches are dropped by id, so this costs reading, not duplicates).
      const target = this.#fingerprint();
      const previous = ctx.cursors.get(TARGET_KEY);
      if (previous !== undefined && previous !== target) {
        ctx.logger.warn("The source now points at another database or table; reading it from the start.", {
          table: this.#config.table,
        });
      } else {
        for (const [serial, value] of ctx.cursors) if (typeof value === "number") cursors.set(serial, value);
      }
      if (previous !== target) await ctx.emit([], { [TARGET_KEY]: target });
      const configured = this.#config.devices;
      const serials = new Set<string>(configured ?? cursors.keys());
      let lastFullDiscovery = Number.NEGATIVE_INFINITY;

      while (!ctx.signal.aborted) {
        await ctx.waitUntilActive();
        const started = ctx.clock.now();
        if (!configured) {
          const full = started - lastFullDiscovery >= FULL_DISCOVERY_EVERY_MS;
          const high = Math.max(0, ...cursors.values()) - this.#config.lookbackRows;
          const found = full
            ? await this.#query(client, sql.allSerials, [], ctx)
            : await this.#query(client, sql.serialsAbove, [high], ctx);
          if (full) lastFullDiscovery = started;
          for (const row of found) if (row.serial !== null && row.serial !== undefined) serials.add(String(row.serial));
        }
        for (const serial of serials) {
          if (ctx.signal.aborted) return;
          await this.#drainSerial(client, sql, serial, cursors, ctx);
        }
        ctx.progress({ lastPollAt: started });
        // An abort ends the wait early; the loop condition then ends the run.
        await sleep(this.#config.pollIntervalMs, ctx.signal).catch(() => undefined);
      }
    } finally {
      await client.close();
    }
  }

  async #prepare(client: SqlClient, ctx: SourceContext) {
    const { table, columns } = this.#config;
    const opts = { signal: ctx.signal, timeoutMs: this.#config.queryTimeoutMs };
    const existing = await client.columns(table, opts);
    if (!existing) {
      const tables = await client.tables(opts);
      throw new BioError(
        "DB_SCHEMA",
        `Table "${table}" not found in source ${this.#config.id}. Tables that exist: ${tables.join(", ") || "(none)"}.`,
        {
          hint: "Fix `table` in the source config.",
        },
      );
    }
    const lower = new Set(existing.map((c) => c.toLowerCase()));
    for (const [role, name] of Object.entries(columns)) {
      if (name !== undefined && !lower.has(name.toLowerCase())) {
        throw new BioError(
          "DB_SCHEMA",
          `Column "${name}" (the ${role} column) not found in table "${table}". Columns that exist: ${existing.join(", ")}.`,
          { hint: `Fix columns.${role} in the source config.` },
        );
      }
    }
    const d = client.dialect;
    const q = d.quote;
    const t = q(table);
    const select = [
      `${q(columns.id)} AS id`,
      `${q(columns.deviceSerial)} AS serial`,
      `${q(columns.userId)} AS user_id`,
      `${q(columns.time)} AS punch_time`,
      columns.state ? `${q(columns.state)} AS state` : "0 AS state",
      columns.verify ? `${q(columns.verify)} AS verify` : "NULL AS verify",
      columns.workCode ? `${q(columns.workCode)} AS work_code` : "NULL AS work_code",
    ].join(", ");
    return {
      page: `SELECT ${select} FROM ${t} WHERE ${q(columns.deviceSerial)} = ${d.param(1)} AND ${q(columns.id)} > ${d.param(2)} ORDER BY ${q(columns.id)} ${d.limit(this.#config.batchSize)}`,
      maxId: `SELECT MAX(${q(columns.id)}) AS max_id FROM ${t} WHERE ${q(columns.deviceSerial)} = ${d.param(1)}`,
      allSerials: `SELECT DISTINCT ${q(columns.deviceSerial)} AS serial FROM ${t}`,
      serialsAbove: `SELECT DISTINCT ${q(columns.deviceSerial)} AS serial FROM ${t} WHERE ${q(columns.id)} > ${d.param(1)}`,
    };
  }

  #fingerprint(): string {
    const { connection, table, columns } = this.#config;
    const where = JSON.stringify([connection.engine, connection.path, table, columns.id, columns.deviceSerial]);
    return createHash("sha256").update(where).digest("hex").slice(0, 16);
  }

  #query(client: SqlClient, sql: string, params: readonly unknown[], ctx: SourceContext): Promise<SqlRow[]> {
    return client.query(sql, params, { signal: ctx.signal, timeoutMs: this.#config.queryTimeoutMs });
  }

  /** Keyset pages from (cursor - lookback) upwards until a short page; each page is committed with its cursor. */
  async #drainSerial(
    client: SqlClient,
    sql: { readonly page: string; readonly maxId: string },
    serial: string,
    cursors: Map<string, number>,
    ctx: SourceContext,
  ): Promise<void> {
    let cursor = cursors.get(serial) ?? 0;
    let after = Math.max(0, cursor - this.#config.lookbackRows);
    for (let page = 0; ; page++) {
      // Every page, not only every poll: a large backlog pauses mid-way when the cloud goes or the outbox fills.
      await ctx.waitUntilActive();
      const rows = await this.#query(client, sql.page, [serial, after], ctx);
      if (rows.length === 0) {
        if (page > 0 || cursor === 0) return;
        // Nothing at or below the cursor's window: if the newest row is below the cursor, the table was restored,
        // truncated or renumbered. Re-base to 0 rather than wait forever for ids that will never come.
        const [top] = await this.#query(client, sql.maxId, [serial], ctx);
        const max = top?.max_id === null || top?.max_id === undefined ? 0 : Number(top.max_id);
        if (max >= cursor) return;
        ctx.logger.warn("Row ids went backwards for a device; reading it again from the start.", {
          serial,
          cursor,
          max,
        });
        await ctx.emit([], { [serial]: 0 });
        cursors.set(serial, 0);
        cursor = 0;
        after = 0;
        continue;
      }
      const punches: Punch[] = [];
      const quarantined: QuarantineInput[] = [];
      const collectedAt = new Date(ctx.clock.now()).toISOString();
      let maxId = cursors.get(serial) ?? 0;
      const pageStart = after;
      for (const row of rows) {
        const id = Number(row.id);
        if (!Number.isSafeInteger(id)) {
          throw new BioError(
            "DB_SCHEMA",
            `Column "${this.#config.columns.id}" of "${this.#config.table}" holds ${JSON.stringify(row.id)}, not an integer.`,
            {
              hint: "columns.id must name an integer column that grows with every new row (an identity / autoincrement id).",
            },
          );
        }
        if (id > maxId) maxId = id;
        if (id > after) after = id;
        const result = this.#toPunch(row, serial, collectedAt);
        if (typeof result === "string") {
          // Only rows beyond the committed cursor are new; a bad row in the lookback window was quarantined before.
          if (id > cursor) quarantined.push({ reason: result, payload: row });
        } else punches.push(result);
      }
      const update: CursorUpdate = { [serial]: maxId };
      await ctx.emit(punches, update, quarantined);
      cursors.set(serial, maxId);
      const last = punches.at(-1);
      if (last) ctx.progress({ lastPunchTime: last.time });
      if (rows.length < this.#config.batchSize) return;
      if (after <= pageStart) {
        throw new BioError(
          "DB_SCHEMA",
          `Paging by "${this.#config.columns.id}" does not advance in "${this.#config.table}".`,
          {
            hint: "columns.id must be unique per row and sortable as a number.",
          },
        );
      }
    }
  }

  #toPunch(row: SqlRow, serial: string, collectedAt: string): Punch | string {
    const { columns, timezone } = this.#config;
    const user = row.user_id;
    if (user === null || user === undefined || String(user).trim() === "")
      return `${columns.userId} is empty (row id ${String(row.id)})`;
    let time: ReturnType<typeof resolveTime>;
    try {
      time = resolveTime(row.punch_time, timezone);
    } catch {
      return `${columns.time} is not a time: ${JSON.stringify(row.punch_time)?.slice(0, 60)} (row id ${String(row.id)})`;
    }
    const stateCode = row.state === null || row.state === undefined || row.state === "" ? 0 : Number(row.state);
    if (!Number.isInteger(stateCode))
      return `${columns.state ?? "state"} is not an integer code: ${JSON.stringify(row.state)}`;
    const verifyCode = row.verify === null || row.verify === undefined || row.verify === "" ? null : Number(row.verify);
    return makePunch({
      deviceSerial: serial,
      userId: String(user).trim(),
      local: time.local,
      iso: time.iso,
      stateCode,
      verifyCode: verifyCode !== null && Number.isInteger(verifyCode) ? verifyCode : null,
      workCode: row.work_code === null || row.work_code === undefined ? undefined : String(row.work_code),
      source: "database",
      collectedAt,
    });
  }
}
