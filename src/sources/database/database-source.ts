import { createHash } from "node:crypto";
import type { DatabaseConnectionConfig, DatabaseSourceConfig } from "../../config/config-schema.ts";
import { sleep } from "../../core/abort.ts";
import { BioError } from "../../core/errors.ts";
import type { Punch } from "../../core/punch.ts";
import type { CursorUpdate, CursorValue, QuarantineInput } from "../../store/store.ts";
import type { Source, SourceContext } from "../source.ts";
import {
  DatabaseReader,
  isRowProblem,
  type Lookups,
  type ResolvedTable,
  shiftTime as shiftTimeValue,
} from "./database-reader.ts";
import type { Scalar } from "./select-spec.ts";
import type { SqlClient } from "./sql-client.ts";

export interface DatabaseSourceOptions {
  readonly config: DatabaseSourceConfig;
  /** Opens a client for the configured engine; the source closes it when it stops. */
  readonly connect: (config: DatabaseSourceConfig, signal: AbortSignal) => Promise<SqlClient>;
}

/** Cursor key holding which database and table the cursors belong to ('#' never occurs in a serial). */
export const TARGET_KEY = "#target";

/** A full `SELECT DISTINCT partition` scans an index; between those, new partitions are found among the newest rows. */
const FULL_DISCOVERY_EVERY_MS = 10 * 60_000;
/** Side tables (devices, users) are re-read this often, or at once when a row names an unknown key. */
const LOOKUP_REFRESH_MS = 60_000;

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

/** The cursor key of a partition: the partition value, prefixed by the table when a preset reads several. */
export function cursorKey(reader: DatabaseReader, table: string, partition: string): string {
  return reader.plan.preset === "etimetracklite" ? `${table}:${partition}` : partition;
}

/**
 * Reads an attendance table per partition (device serial, or the vendor's device number) with a cursor per
 * partition: the last row id, or the newest time when the table has no usable id. Each poll re-reads a bounded
 * lookback window below the cursor so that a row which committed out of id order, or a device that downloaded
 * late, is still collected; re-read punches are dropped by id in the store (invariant 6).
 */
export class DatabaseSource implements Source {
  readonly #config: DatabaseSourceConfig;
  readonly #connect: DatabaseSourceOptions["connect"];

  constructor(options: DatabaseSourceOptions) {
    this.#config = options.config;
    this.#connect = options.connect;
  }

  async run(ctx: SourceContext): Promise<void> {
    const client = await this.#connect(this.#config, ctx.signal);
    try {
      const reader = new DatabaseReader(client, this.#config, ctx.signal, ctx.logger);
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
      const known = new Map<string, Set<string>>();
      let lastFullDiscovery = Number.NEGATIVE_INFINITY;
      let lookupsAt = Number.NEGATIVE_INFINITY;
      const poll: PollState = {
        lookupMiss: false,
        lookups: { devices: new Map(), users: undefined },
        missingDevices: new Set(),
        refresh: async () => {
          poll.lookups = await reader.lookups();
        },
      };

      while (!ctx.signal.aborted) {
        await ctx.waitUntilActive();
        const started = ctx.clock.now();
        if (poll.lookupMiss || started - lookupsAt >= LOOKUP_REFRESH_MS) {
          await poll.refresh();
          lookupsAt = started;
          poll.lookupMiss = false;
          poll.missingDevices.clear();
        }
        const full = started - lastFullDiscovery >= FULL_DISCOVERY_EVERY_MS;
        const backfill: Backfill = { counted: new Set(), total: 0, done: 0 };
        for (const name of reader.plan.tables(started, cursors.keys())) {
          const t = await reader.table(name);
          if (!t) continue;
          const partitions = known.get(name) ?? new Set<string>();
          known.set(name, partitions);
          const configured = this.#config.devices;
          if (configured) for (const d of configured) partitions.add(d);
          else {
            for (const p of await reader.partitions(t, full ? undefined : this.#discoveryFloor(reader, t, cursors))) {
              partitions.add(p);
            }
          }
          const order = [...partitions];
          for (const [i, partition] of order.entries()) {
            if (ctx.signal.aborted) return;
            // Counted once per poll, when a first page comes back full: idle polls cost no extra query, and the
            // total covers every partition still to drain, so done/total is the whole catch-up, not a part.
            const countAhead = async () => {
              if (backfill.counted.has(name)) return;
              backfill.counted.add(name);
              for (const p of order.slice(i))
                backfill.total += await reader.countAfter(
                  t,
                  p,
                  this.#from(reader, t, cursors.get(cursorKey(reader, name, p))),
                );
            };
            await this.#drain(reader, t, partition, cursors, poll, ctx, { backfill, countAhead });
          }
        }
        if (full) lastFullDiscovery = started;
        ctx.progress({ lastPollAt: started, ...(backfill.counted.size > 0 ? { backlog: null } : {}) });
        // An abort ends the wait early; the loop condition then ends the run.
        await sleep(this.#config.pollIntervalMs, ctx.signal).catch(() => undefined);
      }
    } finally {
      await client.close();
    }
  }

  /** New partitions show up among rows above the lowest point any known partition of the table re-reads. */
  #discoveryFloor(
    reader: DatabaseReader,
    t: ResolvedTable,
    cursors: Map<string, CursorValue>,
  ): CursorValue | undefined {
    const table = t.logical;
    const c = reader.plan.cursor;
    let floor: CursorValue | undefined;
    let floorEpoch = Number.POSITIVE_INFINITY;
    for (const [key, value] of cursors) {
      if (reader.plan.preset === "etimetracklite" && !key.startsWith(`${table}:`)) continue;
      if (c.kind === "id") {
        const v = Math.max(0, Number(value) - this.#config.lookbackRows);
        if (floor === undefined || v < Number(floor)) floor = v;
      } else {
        const e = reader.cursorEpoch(value);
        if (e !== undefined && e < floorEpoch && (typeof value === "string" || typeof value === "number")) {
          floorEpoch = e;
          floor = shiftBack(reader, t, value);
        }
      }
    }
    return floor;
  }

  /** Where a partition's drain starts: the cursor lowered by the lookback window. */
  #from(reader: DatabaseReader, t: ResolvedTable, cursor: CursorValue | undefined): CursorValue | undefined {
    if (reader.plan.cursor.kind === "id") return Math.max(0, Number(cursor ?? 0) - this.#config.lookbackRows);
    return cursor === undefined ? undefined : shiftBack(reader, t, cursor);
  }

  /** Keyset pages from the cursor's lookback window upwards until a short page; each page commits with its cursor. */
  async #drain(
    reader: DatabaseReader,
    t: ResolvedTable,
    partition: string,
    cursors: Map<string, CursorValue>,
    poll: PollState,
    ctx: SourceContext,
    progress: { backfill: Backfill; countAhead: () => Promise<void> },
  ): Promise<void> {
    const key = cursorKey(reader, t.logical, partition);
    const idMode = reader.plan.cursor.kind === "id";
    let cursor = cursors.get(key);
    let from: CursorValue | undefined = this.#from(reader, t, cursor);
    let next: readonly Scalar[] | undefined;
    for (let page = 0; ; page++) {
      // Every page, not only every poll: a large backlog pauses mid-way when the cloud goes or the outbox fills.
      await ctx.waitUntilActive();
      const { rows, next: after } = await reader.page(t, partition, from, next);
      if (rows.length === 0) {
        if (!idMode || page > 0 || !cursor) return;
        // Nothing at or below the cursor's window: if the newest row is below the cursor, the table was restored,
        // truncated or renumbered. Re-base to 0 rather than wait forever for ids that will never come.
        const max = await reader.maxId(t);
        if (max >= Number(cursor)) return;
        ctx.logger.warn("Row ids went backwards for a device; reading it again from the start.", {
          key,
          cursor: Number(cursor),
          max,
        });
        await ctx.emit([], { [key]: 0 });
        cursors.set(key, 0);
        cursor = 0;
        from = 0;
        continue;
      }
      if (page === 0 && rows.length >= this.#config.batchSize) await progress.countAhead();
      // A device registered since the last refresh (with its first punches): read the lookup again before any punch
      // goes out under a made-up serial, which would then stay in the cloud for good.
      if (!poll.missingDevices.has(partition) && reader.needsDeviceLookup(t, rows, partition, poll.lookups)) {
        await poll.refresh();
        if (!poll.lookups.devices.has(partition)) poll.missingDevices.add(partition);
      }
      const punches: Punch[] = [];
      const quarantined: QuarantineInput[] = [];
      const now = ctx.clock.now();
      const collectedAt = new Date(now).toISOString();
      const cursorEpoch = idMode ? undefined : reader.cursorEpoch(cursor);
      let high = cursor;
      let highEpoch = cursorEpoch ?? Number.NEGATIVE_INFINITY;
      for (const row of rows) {
        // A bad id cannot be compared with the cursor, nor move it: the row is quarantined (once, by its key) and
        // the good rows around it go on.
        const badId = reader.badId(t, row);
        if (badId) {
          quarantined.push({ ...badId, payload: plainRow(row), rowKey: rowKey(t.name, row) });
          continue;
        }
        const value = reader.cursorOf(t, row);
        // Only rows beyond the committed cursor are new; a bad row in the lookback window was quarantined before.
        let isNew: boolean;
        if (idMode) {
          isNew = cursor === undefined || Number(value) > Number(cursor);
          if (high === undefined || Number(value) > Number(high)) high = value;
        } else {
          const e = reader.cursorEpoch(value);
          isNew = cursorEpoch === undefined || e === undefined || e > cursorEpoch;
          if (value !== undefined && e !== undefined && e > highEpoch && !reader.isFuture(value, now)) {
            high = value;
            highEpoch = e;
          }
        }
        const result = reader.toPunch(t, row, partition, poll.lookups, collectedAt);
        if (isRowProblem(result)) {
          if (reader.plan.users && / has no /.test(result.reason)) poll.lookupMiss = true;
          if (isNew) quarantined.push({ ...result, payload: plainRow(row), rowKey: rowKey(t.name, row) });
        } else punches.push(result);
      }
      const update: CursorUpdate = high === undefined || high === cursor ? {} : { [key]: high };
      await ctx.emit(punches, update, quarantined);
      if (high !== undefined) {
        cursors.set(key, high);
        cursor = high;
      }
      const last = punches.at(-1);
      if (last) ctx.progress({ lastPunchTime: last.time });
      const { backfill } = progress;
      if (backfill.counted.has(t.logical)) {
        backfill.done += rows.length;
        ctx.progress({ backlog: { done: backfill.done, total: Math.max(backfill.done, backfill.total) } });
      }
      if (rows.length < this.#config.batchSize) return;
      if (idMode) {
        // The page's highest id that is a number: a text id ('abc' sorts after every number in SQLite) cannot be a
        // keyset position.
        const top = Math.max(
          Number.NEGATIVE_INFINITY,
          ...rows.map((r) => Number(r[t.col(reader.plan.cursor.column)])).filter(Number.isFinite),
        );
        if (!(top > Number(from))) {
          throw new BioError(
            "DB_SCHEMA",
            `Paging by "${t.col(reader.plan.cursor.column)}" does not advance in "${t.name}".`,
            {
              hint: "The id column must be unique per row and sortable as a number.",
            },
          );
        }
        from = top;
      } else next = after;
    }
  }
}

interface PollState {
  /** A row named a user the lookup lacks: refresh before the next poll. */
  lookupMiss: boolean;
  lookups: Lookups;
  /** Device numbers still unknown right after a refresh: their fallback serial stands until the periodic refresh. */
  readonly missingDevices: Set<string>;
  refresh(): Promise<void>;
}

/** Rows counted ahead and read since, for the tables counted in this poll. */
interface Backfill {
  readonly counted: Set<string>;
  total: number;
  done: number;
}

function shiftBack(reader: DatabaseReader, t: ResolvedTable, value: CursorValue): CursorValue {
  const c = reader.plan.cursor;
  if (c.kind !== "time" || (typeof value !== "string" && typeof value !== "number")) return value;
  return shiftTimeValue(value, t.lookbackMs);
}

/** The quarantine key of a source row: the same row read again (lookback, a bad id) is quarantined once. */
function rowKey(table: string, row: Readonly<Record<string, unknown>>): string {
  return createHash("sha256")
    .update(`${table}\u001f${JSON.stringify(plainRow(row))}`)
    .digest("hex")
    .slice(0, 32);
}

/** Quarantine payloads are JSON: Dates and bigints as text. */
function plainRow(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = v instanceof Date ? v.toISOString() : typeof v === "bigint" ? v.toString() : v;
  }
  return out;
}
