import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { resolveTime } from "../../core/local-time.ts";
import type { CursorValue } from "../../store/store.ts";
import { NUMERIC_TYPE, timeSemantics } from "./column-types.ts";
import { cursorKey, ownKey } from "./cursor-key.ts";
import type { ResolvedTable } from "./database-reader.ts";
import type { PollRun, RowBatch } from "./poll-run.ts";
import type { CursorPlan } from "./presets.ts";
import type { Condition, Scalar } from "./select-spec.ts";
import type { SqlRow } from "./sql-client.ts";
import type { ReadOutcome, TableCursor } from "./table-cursor.ts";

/**
 * Rows more than this far in the future are a device clock gone wrong: sent, but never allowed to move a cursor.
 * Small on purpose: a cursor moved hours ahead would put every row written until then below the lookback window.
 */
export const FUTURE_SLACK_MS = 5 * 60_000;

/**
 * The least lookback of a naive (wall-clock) time cursor. When clocks fall back, an hour of wall-clock times repeats:
 * rows of the second pass sort below a cursor set in the first. The floor covers the largest shift in use (1 h;
 * Lord Howe's is 30 min) plus an hour of lateness, whatever smaller `lookbackMs` a preset or config sets.
 */
export const NAIVE_LOOKBACK_FLOOR_MS = 2 * 3600_000;

/** A full `SELECT DISTINCT partition` scans an index; between those, new partitions are found among the newest rows. */
const FULL_DISCOVERY_EVERY_MS = 10 * 60_000;

/** The lookback a time-cursor column really gets: the configured one, raised to the floor for wall-clock columns. */
export function effectiveLookbackMs(configured: number, engine: string, type: string): number {
  if (NUMERIC_TYPE.test(type)) return configured; // epoch seconds / ms: instants, ordered as numbers
  return timeSemantics(engine, type) === "naive" ? Math.max(configured, NAIVE_LOOKBACK_FLOOR_MS) : configured;
}

const NAIVE = /^(\d{4})-(\d{2})-(\d{2})([T ])(\d{2}):(\d{2})(?::(\d{2}))?/;
const OFFSET = /(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * The same kind of time value `ms` earlier, spelled like the value: same separator, same offset suffix (if any).
 * Text columns compare the bound as text, so "…T02:00:00-05:00" must not become "…T07:00:00Z" (which sorts after
 * every row of that day). The wall clock is shifted in the value's own offset, so the instant moves by exactly `ms`.
 */
export function shiftTime(value: string | number, ms: number): string | number {
  if (typeof value === "number") return value > 1e11 ? value - ms : value - Math.ceil(ms / 1000);
  const text = value.trim();
  const m = NAIVE.exec(text);
  if (m) {
    const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[5]), Number(m[6]), Number(m[7] ?? 0));
    const iso = new Date(t - ms).toISOString();
    return `${iso.slice(0, 10)}${m[4]}${iso.slice(11, 19)}${OFFSET.exec(text)?.[1] ?? ""}`;
  }
  return new Date(Date.parse(value) - ms).toISOString();
}

function bindable(value: unknown): Scalar {
  if (typeof value === "string") return { time: value };
  if (typeof value === "number") return value;
  if (value instanceof Date) return { time: value.toISOString() };
  return String(value);
}

/**
 * Time cursors: the newest time per partition, read per device from the cursor lowered by a lookback window (the
 * rows re-read there are dropped by id in the store, invariant 6). Device clocks disagree, so one table-wide time
 * keyset would pass over a device whose clock runs behind. Pages are keyed on (time, ...tie-breaks).
 */
export class TimeCursor implements TableCursor {
  readonly #plan: Extract<CursorPlan, { kind: "time" }>;
  readonly #config: DatabaseSourceConfig;
  readonly #engine: string;
  /** Partitions seen so far, per table (logical name). */
  readonly #known = new Map<string, Set<string>>();
  #lastFullDiscovery = Number.NEGATIVE_INFINITY;
  #full = false;

  constructor(plan: Extract<CursorPlan, { kind: "time" }>, config: DatabaseSourceConfig, engine: string) {
    this.#plan = plan;
    this.#config = config;
    this.#engine = engine;
  }

  restore(): void {}

  begin(now: number): void {
    // A poll cut short ends the run, so the full discovery counts as done from its start.
    this.#full = now - this.#lastFullDiscovery >= FULL_DISCOVERY_EVERY_MS;
    if (this.#full) this.#lastFullDiscovery = now;
  }

  status(): Record<string, never> {
    return {};
  }

  async read(t: ResolvedTable, run: PollRun): Promise<ReadOutcome> {
    const { reader, ctx, cursors, backfill } = run;
    const partitions = this.#known.get(t.logical) ?? new Set<string>();
    this.#known.set(t.logical, partitions);
    const configured = this.#config.devices;
    if (configured) for (const d of configured) partitions.add(d);
    else {
      const floor = this.#full ? undefined : this.#discoveryFloor(t, run);
      const since: Condition | undefined =
        floor === undefined ? undefined : { column: t.col(this.#plan.column), op: "gte", value: bindable(floor) };
      for (const p of await reader.partitions(t, since)) partitions.add(p);
    }
    const order = [...partitions];
    for (const [i, partition] of order.entries()) {
      if (ctx.signal.aborted) return "stopped";
      // Counted once per poll, when a first page comes back full: idle polls cost no extra query, and the
      // total covers every partition still to drain, so done/total is the whole catch-up, not a part.
      const countAhead = async () => {
        if (backfill.counted.has(t.logical)) return;
        backfill.counted.add(t.logical);
        for (const p of order.slice(i)) {
          const from = this.#from(t, cursors.get(cursorKey(reader, t.logical, p)));
          backfill.total += await reader.countIn(t, p, this.#atOrAfter(from, [t.col(this.#plan.column)]));
        }
      };
      await this.#drain(t, partition, run, countAhead);
    }
    return "read";
  }

  /**
   * New devices show up among rows near the newest cursor (the full discovery every ten minutes finds the rest):
   * the oldest cursor would make a long-stale device cost a scan of its whole history.
   */
  #discoveryFloor(t: ResolvedTable, run: PollRun): CursorValue | undefined {
    let floor: CursorValue | undefined;
    let floorEpoch = Number.NEGATIVE_INFINITY;
    for (const [key, value] of run.cursors) {
      if (!ownKey(run.reader, t.logical, key)) continue;
      const e = this.#epoch(value);
      if (e !== undefined && e > floorEpoch && (typeof value === "string" || typeof value === "number")) {
        floorEpoch = e;
        floor = this.#from(t, value);
      }
    }
    return floor;
  }

  /** Where a partition's drain starts: the cursor lowered by the lookback window. */
  #from(t: ResolvedTable, cursor: CursorValue | undefined): CursorValue | undefined {
    if (cursor === undefined || (typeof cursor !== "string" && typeof cursor !== "number")) return cursor;
    return shiftTime(cursor, this.#lookbackMs(t));
  }

  /** The window re-read below the cursor: the configured one, after the naive-time floor for this column's type. */
  #lookbackMs(t: ResolvedTable): number {
    const column = t.col(this.#plan.column);
    const type = t.info.columns.find((c) => c.name === column)?.type ?? "";
    return effectiveLookbackMs(this.#plan.lookbackMs, this.#engine, type);
  }

  /**
   * Rows at or after `from` (already lowered by the lookback). A keyset over NULLs is undefined (engines even
   * disagree on where NULLs sort); such rows are no punch anyway.
   */
  #atOrAfter(from: CursorValue | undefined, notNull: readonly string[]): Condition[] {
    const where: Condition[] = notNull.map((column) => ({ column, op: "notNull" }));
    if (from !== undefined && from !== null)
      where.push({ column: notNull[0] as string, op: "gte", value: bindable(from) });
    return where;
  }

  /** Keyset pages from the cursor's lookback window upwards until a short page; each page commits. */
  async #drain(t: ResolvedTable, partition: string, run: PollRun, countAhead: () => Promise<void>): Promise<void> {
    const { reader, ctx } = run;
    const key = cursorKey(reader, t.logical, partition);
    let cursor = run.cursors.get(key);
    const order = this.#plan.columns.map((c) => t.col(c.name));
    const from = this.#atOrAfter(this.#from(t, cursor), order);
    let next: readonly Scalar[] | undefined;
    for (let page = 0; ; page++) {
      // Every page, not only every poll: a large backlog pauses mid-way when the cloud goes or the outbox fills.
      await ctx.waitUntilActive();
      const rows = await reader.page(t, partition, from, next);
      if (rows.length === 0) return;
      if (page === 0 && rows.length >= this.#config.batchSize) await countAhead();
      const now = ctx.clock.now();
      const cursorEpoch = this.#epoch(cursor);
      // Only rows beyond the committed cursor are new; a bad row in the lookback window was quarantined before.
      const isNew = (row: SqlRow) => {
        const e = this.#epoch(this.#valueOf(t, row));
        return cursorEpoch === undefined || e === undefined || e > cursorEpoch;
      };
      const batch: RowBatch = { punches: [], quarantined: [] };
      await run.add(t, rows, partition, new Date(now).toISOString(), batch, isNew);
      let high = cursor;
      let highEpoch = cursorEpoch ?? Number.NEGATIVE_INFINITY;
      for (const row of rows) {
        const value = this.#valueOf(t, row);
        const e = this.#epoch(value);
        if (value !== undefined && e !== undefined && e > highEpoch && !this.#isFuture(value, now)) {
          high = value;
          highEpoch = e;
        }
      }
      await run.commit(batch, high === undefined || high === cursor ? {} : { [key]: high });
      if (high !== undefined) cursor = high;
      run.read(t, rows.length);
      if (rows.length < this.#config.batchSize) return;
      const last = rows.at(-1) as SqlRow;
      next = order.map((col, i) => (i === 0 ? bindable(last[col]) : (last[col] as Scalar)));
    }
  }

  /** The cursor value of a row, as stored in the cursor. */
  #valueOf(t: ResolvedTable, row: SqlRow): number | string | undefined {
    const raw = row[t.col(this.#plan.column)];
    if (typeof raw === "number") return raw;
    if (raw instanceof Date) return raw.toISOString();
    return typeof raw === "string" ? raw : undefined;
  }

  /** Epoch ms of a cursor value, or undefined when it cannot be read. */
  #epoch(value: CursorValue | undefined): number | undefined {
    if (value === undefined || value === null || typeof value === "boolean" || typeof value === "object")
      return undefined;
    try {
      return resolveTime(value, this.#config.timezone).epochMs;
    } catch {
      return undefined;
    }
  }

  /** A value far in the future (a device clock gone wrong) must not move the cursor. */
  #isFuture(value: number | string, nowMs: number): boolean {
    const epoch = this.#epoch(value);
    return epoch !== undefined && epoch > nowMs + FUTURE_SLACK_MS;
  }
}
