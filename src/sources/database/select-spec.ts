import { BioError } from "../../core/errors.ts";
import { checkIdentifier } from "./identifier.ts";

/**
 * A read as data, not SQL text: every query a database source makes is one of these. SQL engines render it per
 * dialect (identifiers validated and quoted, values bound); Access, which has no SQL engine here, evaluates it in
 * memory with the same semantics. No code path builds SQL from strings a config supplied.
 */

/** A time bound: naive "YYYY-MM-DD HH:mm:ss" (wall clock, compared as stored) or an instant ending in Z / ±hh:mm. */
export interface TimeValue {
  readonly time: string;
}

export type Scalar = string | number | boolean | null | TimeValue;

export type ConditionOp =
  | "eq"
  | "ne"
  | "lt"
  | "lte"
  | "gt"
  | "gte"
  | "in"
  | "notIn"
  | "isNull"
  | "notNull"
  /** `value` is [low, high], both included. */
  | "between";

export interface Condition {
  readonly column: string;
  readonly op: ConditionOp;
  readonly value?: Scalar | readonly Scalar[] | undefined;
}

export interface SelectSpec {
  readonly table: string;
  /** Columns returned, keyed by these names in each row. Ignored when `aggregate` is set. */
  readonly columns?: readonly string[];
  /** count: `{ n }` = number of rows; max: `{ n }` = largest value of the column. */
  readonly aggregate?: { readonly count: true } | { readonly max: string };
  readonly distinct?: boolean;
  readonly where?: readonly Condition[];
  /** Rows must also meet at least one of these (ignored when empty): the open id gaps, checked in one query. */
  readonly anyOf?: readonly Condition[];
  readonly orderBy?: readonly string[];
  readonly descending?: boolean;
  /** Keyset: rows strictly after these values of `orderBy` (ascending order only). */
  readonly after?: readonly Scalar[];
  readonly limit?: number;
}

export function isTimeValue(value: unknown): value is TimeValue {
  return typeof value === "object" && value !== null && "time" in value && typeof value.time === "string";
}

export interface SqlDialect {
  readonly name: string;
  /** Quotes a validated identifier; throws IDENTIFIER_INVALID for anything else. */
  quote(identifier: string): string;
  /** The table reference, schema-qualified where the engine has schemas. */
  table(name: string): string;
  /** Placeholder for the 1-based parameter index. */
  param(index: number): string;
  /** How a value is handed to the driver (time bounds in the form the engine compares correctly). */
  bind(value: Scalar): unknown;
  /** SQL Server puts the row limit after SELECT; everyone else at the end. */
  readonly limitStyle: "top" | "limit";
}

export interface RenderedSelect {
  readonly sql: string;
  readonly params: unknown[];
  /** Result alias → name the caller asked for (aliases side-step each engine's case rules). */
  readonly names: ReadonlyMap<string, string>;
}

export function renderSelect(d: SqlDialect, spec: SelectSpec): RenderedSelect {
  const q = (c: string) => d.quote(c);
  const params: unknown[] = [];
  const bind = (v: Scalar) => {
    params.push(d.bind(v));
    return d.param(params.length);
  };
  const names = new Map<string, string>();
  let projection: string;
  if (spec.aggregate) {
    names.set("n", "n");
    projection = "count" in spec.aggregate ? "COUNT(*) AS n" : `MAX(${q(spec.aggregate.max)}) AS n`;
  } else {
    const cols = spec.columns ?? [];
    if (cols.length === 0) throw new BioError("USAGE", "A select needs columns or an aggregate.");
    projection = cols
      .map((c, i) => {
        names.set(`c${i}`, c);
        return `${q(c)} AS c${i}`;
      })
      .join(", ");
  }
  const where: string[] = [];
  for (const c of spec.where ?? []) where.push(renderCondition(c, q, bind));
  if (spec.anyOf && spec.anyOf.length > 0)
    where.push(`(${spec.anyOf.map((c) => renderCondition(c, q, bind)).join(" OR ")})`);
  const order = spec.orderBy ?? [];
  if (spec.after) {
    if (spec.after.length !== order.length || order.length === 0 || spec.descending) {
      throw new BioError("USAGE", "A keyset needs one value per ascending orderBy column.");
    }
    where.push(renderKeyset(order, spec.after, q, bind));
  }
  const limit = spec.limit === undefined ? undefined : Math.max(1, Math.trunc(spec.limit));
  const top = limit !== undefined && d.limitStyle === "top" ? `TOP (${limit}) ` : "";
  let sql = `SELECT ${top}${spec.distinct ? "DISTINCT " : ""}${projection} FROM ${d.table(spec.table)}`;
  if (where.length > 0) sql += ` WHERE ${where.join(" AND ")}`;
  if (order.length > 0) sql += ` ORDER BY ${order.map((c) => `${q(c)}${spec.descending ? " DESC" : ""}`).join(", ")}`;
  if (limit !== undefined && d.limitStyle === "limit") sql += ` LIMIT ${limit}`;
  return { sql, params, names };
}

const OPS: Record<"eq" | "ne" | "lt" | "lte" | "gt" | "gte", string> = {
  eq: "=",
  ne: "<>",
  lt: "<",
  lte: "<=",
  gt: ">",
  gte: ">=",
};

function renderCondition(c: Condition, q: (c: string) => string, bind: (v: Scalar) => string): string {
  const col = q(c.column);
  switch (c.op) {
    case "isNull":
      return `${col} IS NULL`;
    case "notNull":
      return `${col} IS NOT NULL`;
    case "in":
    case "notIn": {
      const list = Array.isArray(c.value) ? (c.value as readonly Scalar[]) : [c.value as Scalar];
      return `${col} ${c.op === "in" ? "IN" : "NOT IN"} (${list.map(bind).join(", ")})`;
    }
    case "between": {
      const [low, high] = betweenBounds(c);
      return `${col} BETWEEN ${bind(low)} AND ${bind(high)}`;
    }
    default:
      return `${col} ${OPS[c.op]} ${bind(c.value as Scalar)}`;
  }
}

/**
 * (a, b, c) > (x, y, z) spelled out: `a >= x AND (a > x OR (a = x AND (b > y OR (b = y AND c > z))))`. SQL Server
 * has no row-value comparison, and the leading `a >= x` lets every engine seek the index on a.
 */
function renderKeyset(
  columns: readonly string[],
  values: readonly Scalar[],
  q: (c: string) => string,
  bind: (v: Scalar) => string,
): string {
  const build = (i: number): string => {
    const col = q(columns[i] as string);
    const gt = `${col} > ${bind(values[i] as Scalar)}`;
    if (i === columns.length - 1) return gt;
    return `(${gt} OR (${col} = ${bind(values[i] as Scalar)} AND ${build(i + 1)}))`;
  };
  const lead = `${q(columns[0] as string)} >= ${bind(values[0] as Scalar)}`;
  return columns.length === 1 ? build(0) : `${lead} AND ${build(0)}`;
}

function betweenBounds(c: Condition): [Scalar, Scalar] {
  const v = c.value;
  if (!Array.isArray(v) || v.length !== 2) throw new BioError("USAGE", `"between" on ${c.column} needs [low, high].`);
  return [v[0] as Scalar, v[1] as Scalar];
}

/** Maps driver rows keyed by alias back to the names the spec asked for. */
export function renameRows(
  rows: readonly Record<string, unknown>[],
  names: ReadonlyMap<string, string>,
): Record<string, unknown>[] {
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [alias, name] of names) out[name] = row[alias] ?? row[alias.toUpperCase()] ?? null;
    return out;
  });
}

/** Dialect-independent identifier check for engines without SQL (Access). */
export function checkSpecIdentifiers(spec: SelectSpec): void {
  checkIdentifier(spec.table);
  for (const c of spec.columns ?? []) checkIdentifier(c);
  for (const c of [...(spec.where ?? []), ...(spec.anyOf ?? [])]) checkIdentifier(c.column);
  for (const c of spec.orderBy ?? []) checkIdentifier(c);
  if (spec.aggregate && "max" in spec.aggregate) checkIdentifier(spec.aggregate.max);
}

// ---- In-memory evaluation (Access): the same semantics as the rendered SQL. ----

function plain(v: Scalar | unknown): unknown {
  return isTimeValue(v) ? v.time : v;
}

/** SQL-like order: NULL first, numbers numerically, everything else as text. */
export function compareValues(a: unknown, b: unknown): number {
  const x = plain(a);
  const y = plain(b);
  if (x === null || x === undefined) return y === null || y === undefined ? 0 : -1;
  if (y === null || y === undefined) return 1;
  if (typeof x === "number" && typeof y === "number") return x - y;
  if (typeof x === "boolean" || typeof y === "boolean") return Number(x) - Number(y);
  const sx = typeof x === "number" ? x : String(x);
  const sy = typeof y === "number" ? y : String(y);
  if (typeof sx === "number" || typeof sy === "number") {
    const nx = Number(sx);
    const ny = Number(sy);
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx - ny;
  }
  return String(sx) < String(sy) ? -1 : String(sx) > String(sy) ? 1 : 0;
}

function matches(row: Record<string, unknown>, c: Condition): boolean {
  const v = row[c.column];
  switch (c.op) {
    case "isNull":
      return v === null || v === undefined;
    case "notNull":
      return v !== null && v !== undefined;
    case "in":
    case "notIn": {
      if (v === null || v === undefined) return false;
      const list = Array.isArray(c.value) ? (c.value as readonly Scalar[]) : [c.value as Scalar];
      const found = list.some((item) => compareValues(v, item) === 0);
      return c.op === "in" ? found : !found;
    }
    case "between": {
      if (v === null || v === undefined) return false;
      const [low, high] = betweenBounds(c);
      return compareValues(v, low) >= 0 && compareValues(v, high) <= 0;
    }
    default: {
      // SQL: a comparison with NULL is never true.
      if (v === null || v === undefined || c.value === null || c.value === undefined) return false;
      const d = compareValues(v, c.value);
      return c.op === "eq"
        ? d === 0
        : c.op === "ne"
          ? d !== 0
          : c.op === "lt"
            ? d < 0
            : c.op === "lte"
              ? d <= 0
              : c.op === "gt"
                ? d > 0
                : d >= 0;
    }
  }
}

export function evaluateSelect(rows: readonly Record<string, unknown>[], spec: SelectSpec): Record<string, unknown>[] {
  const order = spec.orderBy ?? [];
  const any = spec.anyOf ?? [];
  let out = rows.filter(
    (row) => (spec.where ?? []).every((c) => matches(row, c)) && (any.length === 0 || any.some((c) => matches(row, c))),
  );
  if (spec.after) {
    const after = spec.after;
    out = out.filter((row) => {
      for (let i = 0; i < order.length; i++) {
        const d = compareValues(row[order[i] as string], after[i]);
        if (d !== 0) return d > 0;
      }
      return false;
    });
  }
  if (spec.aggregate) {
    if ("count" in spec.aggregate) return [{ n: out.length }];
    const col = spec.aggregate.max;
    let max: unknown = null;
    for (const row of out) if (row[col] !== null && compareValues(row[col], max) > 0) max = row[col];
    return [{ n: max }];
  }
  if (order.length > 0) {
    const sign = spec.descending ? -1 : 1;
    out = [...out].sort((a, b) => {
      for (const c of order) {
        const d = compareValues(a[c], b[c]);
        if (d !== 0) return sign * d;
      }
      return 0;
    });
  }
  const cols = spec.columns ?? [];
  let projected = out.map((row) => Object.fromEntries(cols.map((c) => [c, row[c] ?? null])));
  if (spec.distinct) {
    const seen = new Set<string>();
    projected = projected.filter((row) => {
      const key = JSON.stringify(cols.map((c) => row[c]));
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
  return spec.limit === undefined ? projected : projected.slice(0, spec.limit);
}
