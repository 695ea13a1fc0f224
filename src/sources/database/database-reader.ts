import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { BioError } from "../../core/errors.ts";
import { resolveTime } from "../../core/local-time.ts";
import type { Logger } from "../../core/logger.ts";
import { makePunch, type Punch, UNKNOWN_STATE_CODE } from "../../core/punch.ts";
import { NUMERIC_TYPE } from "./column-types.ts";
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
    const [cursor, ...tiebreaks] = p.cursor.columns.map((c): [string, string] => [c.role, c.name]);
    const roles: Array<[string, string | undefined]> = [
      ["deviceSerial", p.partition],
      ...(cursor ? [cursor] : []),
      ["userId", p.user],
      ["time", p.time],
      ["state", p.state],
      ["verify", p.verify],
      ["workCode", p.workCode],
      ...tiebreaks,
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
      ...p.cursor.columns.map((c) => c.name),
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
    const resolved: ResolvedTable = { logical, name: info.name, info, col, select };
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

  /** The partition values (usually serials) of the rows that meet `since` (the cursor's bound), or all of them. */
  async partitions(t: ResolvedTable, since?: Condition): Promise<string[]> {
    const where = this.#filter(t);
    if (since) where.push(since);
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

  /** The keyset order of a table: the cursor column, then its tie-breaks (real spelling). */
  #order(t: ResolvedTable): string[] {
    return this.plan.cursor.columns.map((c) => t.col(c.name));
  }

  /** Within the filter, one partition's rows that meet `from` (the cursor's bounds on its columns). */
  #inPartition(t: ResolvedTable, partition: string, from: readonly Condition[]): Condition[] {
    const column = t.col(this.plan.partition);
    return [...this.#filter(t), { column, op: "eq", value: partitionValue(t, column, partition) }, ...from];
  }

  /** One keyset page of a partition: rows meeting `from`, in cursor order, continuing after `after` within a poll. */
  async page(
    t: ResolvedTable,
    partition: string,
    from: readonly Condition[],
    after?: readonly Scalar[],
  ): Promise<SqlRow[]> {
    return this.client.select(
      {
        table: t.name,
        columns: t.select,
        where: this.#inPartition(t, partition, from),
        orderBy: this.#order(t),
        ...(after ? { after } : {}),
        limit: this.config.batchSize,
      },
      this.#opts,
    );
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
   * Rows a partition's next drain will read, by the same kind of bounds as page(): an index range count on the
   * (partition, cursor) index the poll already needs.
   */
  async countIn(t: ResolvedTable, partition: string, from: readonly Condition[]): Promise<number> {
    const where = this.#inPartition(t, partition, from);
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
    return this.client.select(
      { table: t.name, columns: t.select, where: this.#filter(t), orderBy: this.#order(t), descending: true, limit },
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
