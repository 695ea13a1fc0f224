import { createHash } from "node:crypto";
import type { DatabaseConnectionConfig, DatabaseSourceConfig } from "../../config/config-schema.ts";
import { sleep } from "../../core/abort.ts";
import { formatDuration } from "../../core/duration.ts";
import { BioError } from "../../core/errors.ts";
import type { Punch } from "../../core/punch.ts";
import type { CursorUpdate, CursorValue, QuarantineInput } from "../../store/store.ts";
import type { LateRows, Source, SourceContext } from "../source.ts";
import {
  DatabaseReader,
  isRowProblem,
  type Lookups,
  type ResolvedTable,
  shiftTime as shiftTimeValue,
} from "./database-reader.ts";
import { describeGaps, emptySweep, type Gap, GapBook, sweepFromCursor } from "./gap-book.ts";
import { textOf } from "./presets.ts";
import type { Scalar } from "./select-spec.ts";
import type { SqlClient, SqlRow } from "./sql-client.ts";
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
 * Reads an attendance table with a cursor per partition (device serial, or the vendor's device number): the last row
 * id, or the newest time when the table has no usable id. Id cursors read the table once per poll, above its
 * high-water mark, and track the ids missing below it until they appear or outlive `lateRowWindowMs`: a row that
 * commits out of id order is collected by time, not by a row count. Time cursors read each device from its cursor
 * lowered by a lookback window. Re-read punches are dropped by id in the store (invariant 6).
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
      const cursors = new Map<string, CursorValue>();
      const sweeps = new Map<string, GapBook>();
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
        for (const [key, value] of ctx.cursors) {
          if (key.startsWith(SWEEP_KEY_PREFIX)) {
            const state = sweepFromCursor(value);
            if (state) sweeps.set(key.slice(SWEEP_KEY_PREFIX.length), new GapBook(state));
          } else if (!key.startsWith("#") && value !== null) cursors.set(key, value);
        }
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
      const idMode = reader.plan.cursor.kind === "id";

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
          if (ctx.signal.aborted) return;
          const t = await reader.table(name);
          if (!t) continue;
          if (idMode) {
            const book = sweeps.get(name) ?? (await this.#upgrade(reader, t, cursors, poll, ctx));
            sweeps.set(name, book);
            await this.#sweep(reader, t, book, cursors, poll, ctx, backfill);
            continue;
          }
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
        ctx.progress({
          lastPollAt: started,
          ...(backfill.counted.size > 0 ? { backlog: null } : {}),
          ...(idMode ? { lateRows: lateRowStatus(sweeps.values()) } : {}),
        });
        // An abort ends the wait early; the loop condition then ends the run.
        await sleep(this.#config.pollIntervalMs, ctx.signal).catch(() => undefined);
      }
    } finally {
      await client.close();
    }
  }

  /**
   * Id cursors, one table, one poll: the rows above the table's high-water mark in keyset pages (split by device in
   * memory, each page committed with the device cursors it moves and the sweep state), then one query for the ids
   * still missing below the mark, then the gaps older than the late-row window given up. An idle poll is two or three
   * small indexed queries, whatever the number of devices; a device that stopped punching costs nothing.
   */
  async #sweep(
    reader: DatabaseReader,
    t: ResolvedTable,
    book: GapBook,
    cursors: Map<string, CursorValue>,
    poll: PollState,
    ctx: SourceContext,
    backfill: Backfill,
  ): Promise<void> {
    const batch = this.#config.batchSize;
    book.tick();
    for (let page = 0; ; page++) {
      // Every page, not only every poll: a large backlog pauses mid-way when the cloud goes or the outbox fills.
      await ctx.waitUntilActive();
      const from = book.high;
      const { rows, ids, full } = await reader.sweep(t, from, batch);
      if (ids.length === 0 && rows.length === 0) {
        if (page > 0 || from === 0) break;
        // Nothing above the mark: if the newest row is below it, the table was restored, truncated or renumbered.
        // Start again from 0 rather than wait forever for ids that will never come.
        const max = await reader.maxId(t);
        if (max >= from) break;
        ctx.logger.warn("Row ids went backwards in the table; reading it again from the start.", {
          table: t.name,
          high: from,
          max,
        });
        book.rebase(0);
        const update: Record<string, CursorValue> = { [sweepKey(t)]: book.toCursor() };
        for (const key of cursors.keys()) if (ownKey(reader, t, key)) update[key] = 0;
        await ctx.emit([], update);
        for (const key of Object.keys(update)) if (cursors.has(key)) cursors.set(key, 0);
        continue;
      }
      if (page === 0 && full && !backfill.counted.has(t.logical)) {
        backfill.counted.add(t.logical);
        backfill.total += await reader.countAbove(t, from);
      }
      const dropped = book.advance(ids, ctx.clock.now());
      if (dropped.length > 0) this.#reportGivenUp(t, dropped, "more gaps than can be tracked", ctx);
      await this.#commit(reader, t, rows, book, cursors, poll, ctx, true);
      if (backfill.counted.has(t.logical)) {
        backfill.done += rows.length;
        ctx.progress({ backlog: { done: backfill.done, total: Math.max(backfill.done, backfill.total) } });
      }
      if (!full) break;
      if (!(book.high > from)) {
        throw new BioError(
          "DB_SCHEMA",
          `Paging by "${t.col(reader.plan.cursor.column)}" does not advance in "${t.name}".`,
          { hint: "The id column must be unique per row and sortable as a number." },
        );
      }
    }
    const due = book.due();
    if (due.length > 0) {
      const { rows, found } = await reader.gapRows(t, due);
      if (found.length > 0) {
        book.found(found);
        ctx.logger.info("Rows committed late (below ids already read) were found and read.", {
          table: t.name,
          rows: found.length,
        });
        await this.#commit(reader, t, rows, book, cursors, poll, ctx, false);
      }
    }
    const expired = book.expire(ctx.clock.now(), this.#config.lateRowWindowMs, this.#config.pollIntervalMs);
    if (expired.length > 0) {
      this.#reportGivenUp(t, expired, `not there after ${formatDuration(this.#config.lateRowWindowMs)}`, ctx);
      await ctx.emit([], { [sweepKey(t)]: book.toCursor() });
    }
  }

  #reportGivenUp(t: ResolvedTable, gaps: readonly Gap[], why: string, ctx: SourceContext): void {
    let ids = 0;
    for (const g of gaps) ids += g.hi - g.lo + 1;
    ctx.logger.warn(
      `${ids} row id(s) of ${t.name} below ids already read never appeared (${why}): ${describeGaps(gaps)}. A rolled-back insert leaves such a gap, and so does a sequence that skips; but a row committed later than lateRowWindowMs would not be read. If your software commits punches that late (long imports), raise lateRowWindowMs.`,
      { table: t.name, ids, ranges: gaps.length },
    );
  }

  /**
   * One committed step of a sweep: the rows as punches (or quarantined), the device cursors they move, and the
   * sweep state (none while an upgrade catches devices up: a crash then must start the upgrade again), in one
   * transaction. `onlyNew`: rows at or below their device's cursor were read before (the
   * migration window of an upgrade); a row found in a gap is new whatever its device's cursor says.
   */
  async #commit(
    reader: DatabaseReader,
    t: ResolvedTable,
    rows: readonly SqlRow[],
    book: GapBook | undefined,
    cursors: Map<string, CursorValue>,
    poll: PollState,
    ctx: SourceContext,
    onlyNew: boolean,
  ): Promise<void> {
    const idColumn = t.col(reader.plan.cursor.column);
    const partitionColumn = t.col(reader.plan.partition);
    const configured = this.#config.devices ? new Set(this.#config.devices) : undefined;
    const groups = new Map<string, SqlRow[]>();
    const quarantined: QuarantineInput[] = [];
    for (const row of rows) {
      // A bad id cannot be compared with a cursor, nor move one: the row is quarantined (once, by its key) and the
      // good rows around it go on.
      const badId = reader.badId(t, row);
      if (badId) {
        quarantined.push({ ...badId, payload: plainRow(row), rowKey: rowKey(t.name, row) });
        continue;
      }
      const partition = textOf(row[partitionColumn]);
      // No serial: counted and warned about at start. Not listed: another connector's device.
      if (partition === undefined || (configured && !configured.has(partition))) continue;
      const group = groups.get(partition) ?? [];
      group.push(row);
      groups.set(partition, group);
    }
    const punches: Punch[] = [];
    const update: Record<string, CursorValue> = {};
    const collectedAt = new Date(ctx.clock.now()).toISOString();
    for (const [partition, group] of groups) {
      const key = cursorKey(reader, t.logical, partition);
      const cursor = cursors.get(key);
      const fresh = onlyNew && cursor !== undefined ? group.filter((r) => Number(r[idColumn]) > Number(cursor)) : group;
      if (fresh.length === 0) continue;
      // A device registered since the last refresh (with its first punches): read the lookup again before any punch
      // goes out under a made-up serial, which would then stay in the cloud for good.
      if (!poll.missingDevices.has(partition) && reader.needsDeviceLookup(t, fresh, partition, poll.lookups)) {
        await poll.refresh();
        if (!poll.lookups.devices.has(partition)) poll.missingDevices.add(partition);
      }
      let high = cursor === undefined ? undefined : Number(cursor);
      for (const row of fresh) {
        const id = Number(row[idColumn]);
        if (high === undefined || id > high) high = id;
        const result = reader.toPunch(t, row, partition, poll.lookups, collectedAt);
        if (isRowProblem(result)) {
          if (reader.plan.users && / has no /.test(result.reason)) poll.lookupMiss = true;
          quarantined.push({ ...result, payload: plainRow(row), rowKey: rowKey(t.name, row) });
        } else punches.push(result);
      }
      if (high !== undefined && high !== cursor) update[key] = high;
    }
    if (book) update[sweepKey(t)] = book.toCursor();
    await ctx.emit(punches, update, quarantined);
    for (const [key, value] of Object.entries(update)) if (!key.startsWith("#")) cursors.set(key, value);
    const last = punches.at(-1);
    if (last) ctx.progress({ lastPunchTime: last.time });
  }

  /**
   * The first poll of a table without sweep state: a new source (everything is read, from id 0), or one that kept a
   * cursor per device before table-wide reads. Those devices are caught up once, each from its own cursor, up to the
   * highest cursor lowered by `lookbackRows`; the sweep starts there, and the rows between it and each device's
   * cursor are re-read and dropped in memory. Old gaps below that point cannot be known any more.
   */
  async #upgrade(
    reader: DatabaseReader,
    t: ResolvedTable,
    cursors: Map<string, CursorValue>,
    poll: PollState,
    ctx: SourceContext,
  ): Promise<GapBook> {
    let top = 0;
    for (const [key, value] of cursors) if (ownKey(reader, t, key)) top = Math.max(top, Number(value) || 0);
    const start = Math.max(0, top - this.#config.lookbackRows);
    const book = new GapBook(emptySweep(start));
    if (start > 0) {
      const configured = this.#config.devices;
      const partitions = configured ?? (await reader.partitions(t, undefined));
      let caughtUp = 0;
      for (const partition of partitions) {
        if (ctx.signal.aborted) break;
        const key = cursorKey(reader, t.logical, partition);
        let from = Number(cursors.get(key) ?? 0);
        if (from >= start) continue;
        caughtUp++;
        for (;;) {
          await ctx.waitUntilActive();
          const { rows } = await reader.page(t, partition, from, undefined);
          const idColumn = t.col(reader.plan.cursor.column);
          const below = rows.filter((r) => Number(r[idColumn]) <= start);
          if (below.length > 0) await this.#commit(reader, t, below, undefined, cursors, poll, ctx, true);
          const next = Math.max(from, ...below.map((r) => Number(r[idColumn])).filter(Number.isSafeInteger));
          if (rows.length < this.#config.batchSize || below.length < rows.length || !(next > from)) break;
          from = next;
        }
      }
      ctx.logger.info("This table is now read once per poll for all devices, not once per device.", {
        table: t.name,
        from: start,
        devicesCaughtUp: caughtUp,
      });
    }
    await ctx.emit([], { [sweepKey(t)]: book.toCursor() });
    return book;
  }

  /**
   * Time cursors are read per device: device clocks disagree, so one table-wide time keyset would pass over a device
   * whose clock runs behind. New devices show up among rows near the newest cursor (the full discovery every ten
   * minutes finds the rest): the oldest cursor would make a long-stale device cost a scan of its whole history.
   */
  #discoveryFloor(
    reader: DatabaseReader,
    t: ResolvedTable,
    cursors: Map<string, CursorValue>,
  ): CursorValue | undefined {
    let floor: CursorValue | undefined;
    let floorEpoch = Number.NEGATIVE_INFINITY;
    for (const [key, value] of cursors) {
      if (!ownKey(reader, t, key)) continue;
      const e = reader.cursorEpoch(value);
      if (e !== undefined && e > floorEpoch && (typeof value === "string" || typeof value === "number")) {
        floorEpoch = e;
        floor = shiftBack(reader, t, value);
      }
    }
    return floor;
  }

  /** Where a time-cursor partition's drain starts: the cursor lowered by the lookback window. */
  #from(reader: DatabaseReader, t: ResolvedTable, cursor: CursorValue | undefined): CursorValue | undefined {
    return cursor === undefined ? undefined : shiftBack(reader, t, cursor);
  }

  /** Time cursors: keyset pages from the cursor's lookback window upwards until a short page; each page commits. */
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
    let cursor = cursors.get(key);
    const from: CursorValue | undefined = this.#from(reader, t, cursor);
    let next: readonly Scalar[] | undefined;
    for (let page = 0; ; page++) {
      // Every page, not only every poll: a large backlog pauses mid-way when the cloud goes or the outbox fills.
      await ctx.waitUntilActive();
      const { rows, next: after } = await reader.page(t, partition, from, next);
      if (rows.length === 0) return;
      if (page === 0 && rows.length >= this.#config.batchSize) await progress.countAhead();
      if (!poll.missingDevices.has(partition) && reader.needsDeviceLookup(t, rows, partition, poll.lookups)) {
        await poll.refresh();
        if (!poll.lookups.devices.has(partition)) poll.missingDevices.add(partition);
      }
      const punches: Punch[] = [];
      const quarantined: QuarantineInput[] = [];
      const now = ctx.clock.now();
      const collectedAt = new Date(now).toISOString();
      const cursorEpoch = reader.cursorEpoch(cursor);
      let high = cursor;
      let highEpoch = cursorEpoch ?? Number.NEGATIVE_INFINITY;
      for (const row of rows) {
        const value = reader.cursorOf(t, row);
        // Only rows beyond the committed cursor are new; a bad row in the lookback window was quarantined before.
        const e = reader.cursorEpoch(value);
        const isNew = cursorEpoch === undefined || e === undefined || e > cursorEpoch;
        if (value !== undefined && e !== undefined && e > highEpoch && !reader.isFuture(value, now)) {
          high = value;
          highEpoch = e;
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
      next = after;
    }
  }
}

/** Cursor keys of a table's sweep state: `#ids:<table>` ('#' never occurs in a serial; status skips these). */
const SWEEP_KEY_PREFIX = "#ids:";

function sweepKey(t: ResolvedTable): string {
  return `${SWEEP_KEY_PREFIX}${t.logical}`;
}

/** Whether a device cursor key belongs to this table (eTimeTrackLite keeps one table per month). */
function ownKey(reader: DatabaseReader, t: ResolvedTable, key: string): boolean {
  if (key.startsWith("#")) return false;
  return reader.plan.preset !== "etimetracklite" || key.startsWith(`${t.logical}:`);
}

/** Late-row bookkeeping over all of a source's tables, for status. */
function lateRowStatus(books: Iterable<GapBook>): LateRows {
  let open = 0;
  let expired = 0;
  let last: number | null = null;
  for (const b of books) {
    open += b.openIds;
    expired += b.expired;
    if (b.lastExpiredAt !== null && (last === null || b.lastExpiredAt > last)) last = b.lastExpiredAt;
  }
  return { openIds: open, expiredIds: expired, lastExpiredAt: last === null ? null : new Date(last).toISOString() };
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
