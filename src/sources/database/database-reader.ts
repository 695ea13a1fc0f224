import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { BioError } from "../../core/errors.ts";
import { resolveTime } from "../../core/local-time.ts";
import type { Logger } from "../../core/logger.ts";
import { makePunch, type Punch, UNKNOWN_STATE_CODE } from "../../core/punch.ts";
import type { CursorValue } from "../../store/store.ts";
import { type Lookup, type ReadPlan, readPlan, textOf } from "./presets.ts";
import type { Condition, Scalar } from "./select-spec.ts";
import type { QueryOptions, SqlClient, SqlRow, TableInfo } from "./sql-client.ts";

/** A table as found in the database: its real name and the real spelling of each column the plan uses. */
export interface ResolvedTable {
  /** The name the plan uses (cursor keys are built from it, so they survive a change of case). */
  readonly logical: string;
  readonly name: string;
  readonly info: TableInfo;
  col(logical: string): string;
  /** The selected columns, in real spelling. */
  readonly select: readonly string[];
  /** Time cursors: the window re-read below the cursor, after the naive-time floor (0 for id cursors). */
  readonly lookbackMs: number;
}

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

/** The lookback a time-cursor column really gets: the configured one, raised to the floor for wall-clock columns. */
export function effectiveLookbackMs(configured: number, engine: string, type: string): number {
  if (NUMERIC_TYPE.test(type)) return configured; // epoch seconds / ms: instants, ordered as numbers
  return timeSemantics(engine, type) === "naive" ? Math.max(configured, NAIVE_LOOKBACK_FLOOR_MS) : configured;
}

const ZONED_TYPE = /with time zone|timestamptz|datetimeoffset|^timestamp$/;

/** How a time column's values are read: a wall-clock time in the source's zone, or an instant. */
export function timeSemantics(engine: string, type: string): "naive" | "instant" {
  // MySQL's TIMESTAMP is an instant (kept in UTC, shown in the session zone); PostgreSQL's bare "timestamp" is not.
  if (type === "timestamp") return engine === "mysql" ? "instant" : "naive";
  return ZONED_TYPE.test(type) ? "instant" : "naive";
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

export interface PageResult {
  readonly rows: SqlRow[];
  /** Keyset position after the last row, for the next page. */
  readonly next: readonly Scalar[] | undefined;
}

export interface SweepPage {
  readonly rows: SqlRow[];
  /** Every integer id the page covered, ascending, including rows the filter left out. */
  readonly ids: number[];
  /** The page was full: there may be more above it. */
  readonly full: boolean;
}

export interface Lookups {
  readonly devices: ReadonlyMap<string, string>;
  readonly users: ReadonlyMap<string, string> | undefined;
}

/**
 * Everything a database source and `bioapi doctor` share: which tables and columns a preset reads, their real
 * names, the queries (as SelectSpecs, never SQL text), and a row's mapping to a punch.
 */
export class DatabaseReader {
  readonly config: DatabaseSourceConfig;
  readonly plan: ReadPlan;
  readonly client: SqlClient;
  readonly #opts: QueryOptions;
  readonly #logger: Logger | undefined;
  readonly #resolved = new Map<string, ResolvedTable | null>();
  readonly #warnedIndex = new Set<string>();
  readonly #warnedLookup = new Set<string>();

  constructor(client: SqlClient, config: DatabaseSourceConfig, signal: AbortSignal, logger?: Logger) {
    this.client = client;
    this.config = config;
    this.plan = readPlan(config);
    this.#opts = { signal, timeoutMs: config.queryTimeoutMs };
    this.#logger = logger;
  }

  get options(): QueryOptions {
    return this.#opts;
  }

  /** The table resolved against the database; undefined when it is missing and the preset allows that. */
  async table(logical: string): Promise<ResolvedTable | undefined> {
    const cached = this.#resolved.get(logical);
    if (cached !== undefined) return cached ?? undefined;
    const info = await this.client.describe(logical, this.#opts);
    if (!info) {
      if (this.plan.tablesMayBeMissing) return undefined;
      const denied = await this.client.notAllowed?.(logical, this.#opts);
      if (denied) throw denied;
      const tables = await this.client.tables(this.#opts);
      throw new BioError(
        "DB_SCHEMA",
        `Table "${logical}" not found in source ${this.config.id}. Tables that exist: ${tables.slice(0, 40).join(", ") || "(none)"}${tables.length > 40 ? ", …" : ""}.`,
        { hint: "Fix `table` (or the preset, or the connection's database/schema) in the source config." },
      );
    }
    const real = new Map(info.columns.map((c) => [c.name.toLowerCase(), c.name]));
    const p = this.plan;
    const roles: Array<[string, string | undefined]> = [
      ["deviceSerial", p.partition],
      [p.cursor.kind === "id" ? "id" : "cursor", p.cursor.column],
      ["userId", p.user],
      ["time", p.time],
      ["state", p.state],
      ["verify", p.verify],
      ["workCode", p.workCode],
      ...(p.cursor.kind === "time" ? p.cursor.tiebreak.map((t): [string, string] => ["tie-break", t]) : []),
      ...p.filter.map((f): [string, string] => ["filter", f.column]),
    ];
    for (const [role, name] of roles) {
      if (name !== undefined && !real.has(name.toLowerCase())) {
        throw new BioError(
          "DB_SCHEMA",
          `Column "${name}" (the ${role} column) not found in table "${info.name}". Columns that exist: ${info.columns.map((c) => c.name).join(", ")}.`,
          {
            hint:
              p.preset === "generic"
                ? `Fix the ${role} column in the source config.`
                : `This is not the ${p.preset} schema this preset expects: check the preset, table and database.`,
          },
        );
      }
    }
    const col = (name: string) => real.get(name.toLowerCase()) ?? name;
    const wanted = [
      p.cursor.column,
      ...(p.cursor.kind === "time" ? p.cursor.tiebreak : []),
      p.partition,
      p.user,
      p.time,
      p.state,
      p.verify,
      p.workCode,
      // Optional on the row: att2000 files without an sn column exist.
      p.rowSerial && real.has(p.rowSerial.toLowerCase()) ? p.rowSerial : undefined,
    ].filter((c): c is string => c !== undefined);
    const select = [...new Set(wanted.map(col))];
    const cursorType = info.columns.find((c) => c.name === col(p.cursor.column))?.type ?? "";
    const lookbackMs =
      p.cursor.kind === "time" ? effectiveLookbackMs(p.cursor.lookbackMs, this.client.engine, cursorType) : 0;
    const resolved: ResolvedTable = { logical, name: info.name, info, col, select, lookbackMs };
    this.#resolved.set(logical, resolved);
    await this.#checkIndex(resolved);
    return resolved;
  }

  /** Forget a table that vanished (a month table dropped); it is looked up again next time. */
  forget(logical: string): void {
    this.#resolved.delete(logical);
  }

  async #checkIndex(t: ResolvedTable): Promise<void> {
    const indexes = await this.client.indexes(t.name, this.#opts);
    if (!indexes) return;
    const want = this.plan.index.map((c) => t.col(c).toLowerCase());
    const ok = indexes.some((ix) => want.every((c, i) => ix.columns[i]?.toLowerCase() === c));
    if (ok || this.#warnedIndex.has(t.name)) return;
    this.#warnedIndex.add(t.name);
    this.#logger?.warn(
      `No index on (${want.join(", ")}) of ${t.name}: every poll scans the table. Ask the database owner for: CREATE INDEX bioapi_${t.name.toLowerCase()}_cursor ON ${t.name} (${this.plan.index.map((c) => t.col(c)).join(", ")})`,
      { table: t.name },
    );
  }

  /** Index advice for doctor: undefined when fine or not applicable. */
  async missingIndex(t: ResolvedTable): Promise<string | undefined> {
    const indexes = await this.client.indexes(t.name, this.#opts);
    if (!indexes) return undefined;
    const want = this.plan.index.map((c) => t.col(c).toLowerCase());
    if (indexes.some((ix) => want.every((c, i) => ix.columns[i]?.toLowerCase() === c))) return undefined;
    return `CREATE INDEX bioapi_${t.name.toLowerCase()}_cursor ON ${t.name} (${this.plan.index.map((c) => t.col(c)).join(", ")})`;
  }

  #filter(t: ResolvedTable): Condition[] {
    return this.plan.filter.map((f) => ({ ...f, column: t.col(f.column) }));
  }

  /** The partition values (usually serials) with rows at or above `since` (a cursor value), or all of them. */
  async partitions(t: ResolvedTable, since: CursorValue | undefined): Promise<string[]> {
    const where = this.#filter(t);
    const c = this.plan.cursor;
    if (since !== undefined && since !== null) {
      where.push({
        column: t.col(c.column),
        op: c.kind === "id" ? "gt" : "gte",
        value: c.kind === "id" ? Number(since) : bindable(since),
      });
    }
    const rows = await this.client.select(
      { table: t.name, columns: [t.col(this.plan.partition)], distinct: true, where },
      this.#opts,
    );
    const out: string[] = [];
    for (const row of rows) {
      const value = textOf(row[t.col(this.plan.partition)]);
      if (value !== undefined) out.push(value);
    }
    return out;
  }

  /**
   * One keyset page of a partition. Id cursors: ids above `from`. Time cursors: times at or above `from` (already
   * lowered by the lookback), continuing after `next` within one poll.
   */
  async page(
    t: ResolvedTable,
    partition: string,
    from: CursorValue | undefined,
    next: readonly Scalar[] | undefined,
  ): Promise<PageResult> {
    const c = this.plan.cursor;
    const where = this.#filter(t);
    where.push({
      column: t.col(this.plan.partition),
      op: "eq",
      value: partitionValue(t, t.col(this.plan.partition), partition),
    });
    const order = c.kind === "id" ? [t.col(c.column)] : [t.col(c.column), ...c.tiebreak.map((x) => t.col(x))];
    if (c.kind === "id") {
      where.push({ column: order[0] as string, op: "gt", value: next ? (next[0] as Scalar) : Number(from ?? 0) });
    } else {
      // A keyset over NULLs is undefined (engines even disagree on where NULLs sort); such rows are no punch anyway.
      for (const col of order) where.push({ column: col, op: "notNull" });
      if (from !== undefined && from !== null)
        where.push({ column: order[0] as string, op: "gte", value: bindable(from) });
    }
    const rows = await this.client.select(
      {
        table: t.name,
        columns: t.select,
        where,
        orderBy: order,
        ...(c.kind === "time" && next ? { after: next } : {}),
        limit: this.config.batchSize,
      },
      this.#opts,
    );
    const last = rows.at(-1);
    const nextKey = last
      ? order.map((col, i) => (i === 0 && c.kind === "time" ? bindable(last[col]) : (last[col] as Scalar)))
      : undefined;
    return { rows, next: nextKey };
  }

  /**
   * Id cursors, table-wide: the next rows above `from` in id order, and every id seen on the way (filtered-out rows
   * included, so that they are not taken for late rows). Without a filter this is one query; with one, the ids come
   * first, unfiltered, then the rows in that id range that meet the filter.
   */
  async sweep(t: ResolvedTable, from: number, limit: number): Promise<SweepPage> {
    const id = t.col(this.plan.cursor.column);
    const above: Condition = { column: id, op: "gt", value: from };
    const filter = this.#filter(t);
    if (filter.length === 0) {
      const rows = await this.client.select(
        { table: t.name, columns: t.select, where: [above], orderBy: [id], limit },
        this.#opts,
      );
      return { rows, ids: integerIds(rows, id), full: rows.length >= limit };
    }
    const idRows = await this.client.select(
      { table: t.name, columns: [id], where: [above], orderBy: [id], limit },
      this.#opts,
    );
    const ids = integerIds(idRows, id);
    const top = ids.at(-1);
    if (top === undefined) return { rows: [], ids, full: idRows.length >= limit };
    const rows = await this.client.select(
      {
        table: t.name,
        columns: t.select,
        where: [above, { column: id, op: "lte", value: top }, ...filter],
        orderBy: [id],
      },
      this.#opts,
    );
    return { rows, ids, full: idRows.length >= limit };
  }

  /**
   * The rows that turned up in open id gaps, in one query over all of them (ranges as BETWEEN, single ids as =), and
   * which ids were found (filtered-out rows close their gap too, without becoming a punch).
   */
  async gapRows(
    t: ResolvedTable,
    gaps: readonly { lo: number; hi: number }[],
  ): Promise<{ rows: SqlRow[]; found: number[] }> {
    if (gaps.length === 0) return { rows: [], found: [] };
    const id = t.col(this.plan.cursor.column);
    const anyOf: Condition[] = gaps.map((g) =>
      g.lo === g.hi ? { column: id, op: "eq", value: g.lo } : { column: id, op: "between", value: [g.lo, g.hi] },
    );
    const filter = this.#filter(t);
    if (filter.length === 0) {
      const rows = await this.client.select({ table: t.name, columns: t.select, anyOf, orderBy: [id] }, this.#opts);
      return { rows, found: integerIds(rows, id) };
    }
    const found = integerIds(
      await this.client.select({ table: t.name, columns: [id], anyOf, orderBy: [id] }, this.#opts),
      id,
    );
    if (found.length === 0) return { rows: [], found };
    const rows = await this.client.select(
      { table: t.name, columns: t.select, where: [{ column: id, op: "in", value: found }, ...filter], orderBy: [id] },
      this.#opts,
    );
    return { rows, found };
  }

  /** Rows (within the filter) with ids above `from`: the whole catch-up ahead of a table-wide sweep. */
  async countAbove(t: ResolvedTable, from: number): Promise<number> {
    const where = [...this.#filter(t), { column: t.col(this.plan.cursor.column), op: "gt" as const, value: from }];
    const [row] = await this.client.select({ table: t.name, aggregate: { count: true }, where }, this.#opts);
    return Number(row?.n ?? 0);
  }

  /**
   * The largest id in the whole table (no partition, no filter): only when even that is below a cursor were the ids
   * renumbered. One device's rows being purged, or a filter hiding the newest ones, is no reason to read it again.
   */
  async maxId(t: ResolvedTable): Promise<number> {
    const [top] = await this.client.select(
      { table: t.name, aggregate: { max: t.col(this.plan.cursor.column) } },
      this.#opts,
    );
    return top?.n === null || top?.n === undefined ? 0 : Number(top.n);
  }

  /**
   * Rows a partition's next drain will read from `from` (the cursor lowered by the lookback), by the same
   * conditions as page(): an index range count on the (partition, cursor) index the poll already needs.
   */
  async countAfter(t: ResolvedTable, partition: string, from: CursorValue | undefined): Promise<number> {
    const c = this.plan.cursor;
    const where = this.#filter(t);
    where.push({
      column: t.col(this.plan.partition),
      op: "eq",
      value: partitionValue(t, t.col(this.plan.partition), partition),
    });
    const column = t.col(c.column);
    if (c.kind === "id") where.push({ column, op: "gt", value: Number(from ?? 0) });
    else {
      where.push({ column, op: "notNull" });
      if (from !== undefined && from !== null) where.push({ column, op: "gte", value: bindable(from) });
    }
    const [row] = await this.client.select({ table: t.name, aggregate: { count: true }, where }, this.#opts);
    return Number(row?.n ?? 0);
  }

  /** Rows (within the filter) whose partition value is NULL or blank: no cursor can be kept for them. */
  async countWithoutPartition(t: ResolvedTable): Promise<number> {
    const column = t.col(this.plan.partition);
    const count = async (c: Condition) => {
      const [row] = await this.client.select(
        { table: t.name, aggregate: { count: true }, where: [...this.#filter(t), c] },
        this.#opts,
      );
      return Number(row?.n ?? 0);
    };
    let n = await count({ column, op: "isNull" });
    const type = t.info.columns.find((c) => c.name === column)?.type ?? "";
    if (!NUMERIC_TYPE.test(type)) n += await count({ column, op: "eq", value: "" });
    return n;
  }

  async count(t: ResolvedTable): Promise<number> {
    const [row] = await this.client.select(
      { table: t.name, aggregate: { count: true }, where: this.#filter(t) },
      this.#opts,
    );
    return Number(row?.n ?? 0);
  }

  /** The newest rows by cursor column (doctor). */
  async newest(t: ResolvedTable, limit: number): Promise<SqlRow[]> {
    const c = this.plan.cursor;
    const order = c.kind === "id" ? [t.col(c.column)] : [t.col(c.column), ...c.tiebreak.map((x) => t.col(x))];
    return this.client.select(
      { table: t.name, columns: t.select, where: this.#filter(t), orderBy: order, descending: true, limit },
      this.#opts,
    );
  }

  /**
   * A side table as a map. Missing, invisible or incomplete is an error, never an empty map: that would quarantine
   * every row (users) or send every punch under a made-up serial (devices).
   */
  async #lookup(l: Lookup, role: string): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    const info = await this.client.describe(l.table, this.#opts);
    if (!info) {
      const denied = await this.client.notAllowed?.(l.table, this.#opts);
      if (denied) throw denied;
      throw new BioError(
        "DB_SCHEMA",
        `Lookup table "${l.table}" (${role}) not found in source ${this.config.id}, or not visible to the connector's user.`,
        {
          hint: `Grant the connector's user SELECT on ${l.table} (docs/configuration.md, Least privilege), or check the connection's database/schema: the ${this.plan.preset} preset needs it.`,
        },
      );
    }
    const real = new Map(info.columns.map((c) => [c.name.toLowerCase(), c.name]));
    const key = real.get(l.key.toLowerCase());
    const value = real.get(l.value.toLowerCase());
    if (key && !value && l.valueMayBeMissing) {
      if (!this.#warnedLookup.has(l.table)) {
        this.#warnedLookup.add(l.table);
        this.#logger?.warn(
          `${info.name} has no ${l.value} column (${l.valueMayBeMissing}): punches carry the row's own serial, or a made-up one from the device number.`,
          { table: info.name },
        );
      }
      return map;
    }
    if (!key || !value) {
      throw new BioError(
        "DB_SCHEMA",
        `Column "${key ? l.value : l.key}" not found in lookup table "${info.name}" (${role}). Columns that exist: ${info.columns.map((c) => c.name).join(", ")}.`,
        {
          hint: `This is not the ${this.plan.preset} schema this preset expects (or the connector's user may not see that column): check the preset, the database and the grants.`,
        },
      );
    }
    const rows = await this.client.select({ table: info.name, columns: [key, value] }, this.#opts);
    for (const row of rows) {
      const k = textOf(row[key]);
      const v = textOf(row[value]);
      // Machines has several rows per machine number in real files; the one that knows the serial wins.
      if (k !== undefined && v !== undefined && !map.has(k)) map.set(k, v);
    }
    return map;
  }

  async lookups(): Promise<Lookups> {
    const devices = this.plan.devices
      ? await this.#lookup(this.plan.devices, "device number → serial")
      : new Map<string, string>();
    const users = this.plan.users ? await this.#lookup(this.plan.users, "user id → badge number") : undefined;
    return { devices, users };
  }

  /** True when some of these rows of `partition` take their serial from the device lookup, which lacks it. */
  needsDeviceLookup(t: ResolvedTable, rows: readonly SqlRow[], partition: string, lookups: Lookups): boolean {
    const p = this.plan;
    if (!p.devices || lookups.devices.has(partition)) return false;
    const own = p.rowSerial ? t.col(p.rowSerial) : undefined;
    return rows.some((row) => own === undefined || textOf(row[own]) === undefined);
  }

  /** The cursor value of a row (id or time), as stored in the cursor. */
  cursorOf(t: ResolvedTable, row: SqlRow): number | string | undefined {
    const raw = row[t.col(this.plan.cursor.column)];
    if (this.plan.cursor.kind === "id") {
      const id = Number(raw);
      if (!Number.isSafeInteger(id)) {
        throw new BioError(
          "DB_SCHEMA",
          `Column "${t.col(this.plan.cursor.column)}" of "${t.name}" holds ${JSON.stringify(raw)}, not an integer.`,
          {
            hint: "The id column must be an integer that grows with every new row (identity / autoincrement); without one, leave columns.id out and the time column becomes the cursor.",
          },
        );
      }
      return id;
    }
    if (typeof raw === "number") return raw;
    if (raw instanceof Date) return raw.toISOString();
    return typeof raw === "string" ? raw : undefined;
  }

  /** Epoch ms of a time-cursor value, or undefined when it cannot be read. */
  cursorEpoch(value: CursorValue | undefined): number | undefined {
    if (value === undefined || value === null || typeof value === "boolean" || typeof value === "object")
      return undefined;
    try {
      return resolveTime(value, this.config.timezone).epochMs;
    } catch {
      return undefined;
    }
  }

  /** A time-cursor value far in the future (a device clock gone wrong) must not move the cursor. */
  isFuture(value: number | string, nowMs: number): boolean {
    const epoch = this.cursorEpoch(value);
    return epoch !== undefined && epoch > nowMs + FUTURE_SLACK_MS;
  }

  /** Why the row's id cannot be a cursor (2.5, 'abc' in a SQLite INTEGER column), or undefined when it can. */
  badId(t: ResolvedTable, row: SqlRow): RowProblem | undefined {
    if (this.plan.cursor.kind !== "id") return undefined;
    const column = t.col(this.plan.cursor.column);
    const raw = row[column];
    if (Number.isSafeInteger(Number(raw)) && raw !== null && raw !== "") return undefined;
    // A column declared as text is the schema's fault, not one row's: every row would go to quarantine.
    const type = t.info.columns.find((c) => c.name === column)?.type.toLowerCase() ?? "";
    if (type !== "" && !NUMERIC_TYPE.test(type)) this.cursorOf(t, row);
    return {
      kind: `${column} is not an integer`,
      reason: `${column} is not an integer: ${JSON.stringify(raw)?.slice(0, 60)}`,
    };
  }

  /** The row as a punch, or why it cannot be one; a row-level fault never stops the source. */
  toPunch(t: ResolvedTable, row: SqlRow, partition: string, lookups: Lookups, collectedAt: string): Punch | RowProblem {
    const p = this.plan;
    const cursor = row[t.col(p.cursor.column)];
    const where = `(row ${p.cursor.column} ${cursor instanceof Date ? cursor.toISOString() : String(cursor)})`;
    const problem = (kind: string, detail = "") => ({ kind, reason: `${kind}${detail} ${where}` });
    let user = textOf(row[t.col(p.user)]);
    if (user === undefined) return problem(`${t.col(p.user)} is empty`);
    if (lookups.users) {
      const badge = lookups.users.get(user);
      if (badge === undefined)
        return problem(`${p.users?.table} has no such ${p.users?.key}`, `: ${user.slice(0, 64)}`);
      user = badge;
    }
    if (user.length > MAX_USER_ID_LENGTH)
      return problem(`${t.col(p.user)} is longer than ${MAX_USER_ID_LENGTH} characters`, `: ${user.length}`);
    const rawTime = row[t.col(p.time)];
    const shown = () => `: ${JSON.stringify(rawTime instanceof Date ? rawTime.toISOString() : rawTime)?.slice(0, 60)}`;
    const dateFault = calendarFault(rawTime);
    if (dateFault) return problem(`${t.col(p.time)} ${dateFault}`, shown());
    let time: ReturnType<typeof resolveTime>;
    try {
      time = resolveTime(rawTime, this.config.timezone);
    } catch {
      return problem(`${t.col(p.time)} is not a time`, shown());
    }
    if (time.epochMs < 0) return problem(`${t.col(p.time)} is before 1970`, shown());
    if (time.epochMs > Date.parse(collectedAt) + MAX_FUTURE_MS)
      return problem(`${t.col(p.time)} is more than 1 day in the future`, shown());
    const rawState = p.state ? row[t.col(p.state)] : undefined;
    const known = p.stateCode(rawState);
    // Unknown states map to "other" (docs/configuration.md) and keep the source's own value beside it.
    const stateCode = known ?? UNKNOWN_STATE_CODE;
    const stateRaw = known === undefined ? String(rawState).slice(0, MAX_RAW_STATE_LENGTH) : undefined;
    const rawVerify = p.verify ? row[t.col(p.verify)] : undefined;
    const verify = rawVerify === null || rawVerify === undefined || rawVerify === "" ? null : Number(rawVerify);
    const work = p.workCode ? textOf(row[t.col(p.workCode)]) : undefined;
    return makePunch({
      deviceSerial: p.serial(partition, { sn: p.rowSerial ? row[t.col(p.rowSerial)] : undefined }, lookups.devices),
      userId: user,
      local: time.local,
      iso: time.iso,
      stateCode,
      stateRaw,
      verifyCode: verify !== null && Number.isInteger(verify) ? verify : null,
      // "0" is what the vendors store for "no work code".
      workCode: work === "0" ? undefined : work,
      source: "database",
      collectedAt,
    });
  }
}

/** A row the reader could not turn into a punch: `kind` names the fault without the row's values (logs group by it). */
export interface RowProblem {
  readonly kind: string;
  readonly reason: string;
}

export function isRowProblem(value: Punch | RowProblem): value is RowProblem {
  return "kind" in value;
}

/** The cloud's user ids are at most this long; a longer one is a corrupt or misconfigured column. */
const MAX_USER_ID_LENGTH = 64;
const MAX_RAW_STATE_LENGTH = 64;
/** Beyond a device clock off by a time zone or two: a punch further ahead is a wrong clock or a wrong column. */
const MAX_FUTURE_MS = 24 * 3600_000;
const DATE_PREFIX = /^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/;

/** Date.parse and the drivers roll 2026-02-30 over into March; the fields are checked by hand. */
function calendarFault(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "is not a calendar date" : undefined;
  if (typeof value !== "string") return undefined;
  const m = DATE_PREFIX.exec(value);
  if (!m) return undefined;
  const n = (group: number) => Number(m[group] ?? 0);
  const [year, month, day] = [n(1), n(2), n(3)];
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > days) return "is not a calendar date";
  if (n(4) > 23 || n(5) > 59 || n(6) > 59) return "is not a time of day";
  return undefined;
}

const NUMERIC_TYPE = /int|long|byte|numeric|decimal|serial|number/;

/** The ids of rows that are integers, ascending (2.5 and 'abc' are a bad row's business, never a position). */
function integerIds(rows: readonly SqlRow[], column: string): number[] {
  const out: number[] = [];
  for (const row of rows) {
    const raw = row[column];
    if (raw === null || raw === "" || typeof raw === "boolean") continue;
    const n = Number(raw);
    if (Number.isSafeInteger(n)) out.push(n);
  }
  return out.sort((a, b) => a - b);
}

/**
 * Partition values travel as text (cursor keys); they are bound in the column's own type, because comparing a text
 * column with a number makes MySQL and SQL Server convert every row (no index, and '0123' = 123).
 */
function partitionValue(t: ResolvedTable, column: string, partition: string): Scalar {
  const type = t.info.columns.find((c) => c.name === column)?.type ?? "";
  return NUMERIC_TYPE.test(type) && /^-?\d{1,15}$/.test(partition) ? Number(partition) : partition;
}
