import type { BioError } from "../../core/errors.ts";
import type { SelectSpec, SqlDialect } from "./select-spec.ts";
import type { WireSecurity } from "./wire-security.ts";

export type { SqlDialect } from "./select-spec.ts";

/** A row as the source sees it: column name → value. */
export type SqlRow = Readonly<Record<string, unknown>>;

export interface QueryOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
}

export interface ColumnInfo {
  readonly name: string;
  /** The engine's type name, lower case (e.g. "timestamp with time zone", "datetime", "varchar"). */
  readonly type: string;
}

export interface TableInfo {
  /** The name as the database spells it (config names match case-insensitively). */
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
}

/**
 * A table's description from catalog rows of (t: table name, name: column, type), as the information_schema
 * queries of the server engines return them: the table spelled exactly as asked wins over a case-insensitive match.
 */
export function tableInfoFromCatalog(rows: readonly SqlRow[], table: string): TableInfo | undefined {
  const first = rows.find((r) => r.t === table) ?? rows[0];
  if (!first) return undefined;
  const name = String(first.t);
  return {
    name,
    columns: rows
      .filter((r) => r.t === name)
      .map((r) => ({ name: String(r.name), type: String(r.type).toLowerCase() })),
  };
}

export interface IndexInfo {
  readonly name: string;
  readonly columns: readonly string[];
}

/**
 * The slice of a database a database source needs; one implementation per engine. Every call takes a timeout and
 * an AbortSignal, and every failure is a BioError whose message never holds the password.
 */
export interface SqlClient {
  readonly engine: string;
  /** The SQL dialect, or undefined for engines read without SQL (Access). */
  readonly dialect: SqlDialect | undefined;
  /** Whether the session runs in TLS, for engines reached over the network (absent for file engines). */
  readonly wire?: WireSecurity;
  select(spec: SelectSpec, options: QueryOptions): Promise<SqlRow[]>;
  /** A table's real name and columns, looked up case-insensitively; undefined when it does not exist. */
  describe(table: string, options: QueryOptions): Promise<TableInfo | undefined>;
  tables(options: QueryOptions): Promise<string[]>;
  /**
   * Why `describe` found nothing, when the catalog hides the table from a user who may not read it: the
   * DB_PERMISSION error with the GRANT to run; undefined when the table is simply absent. Engines whose catalog
   * shows every table leave it out.
   */
  notAllowed?(table: string, options: QueryOptions): Promise<BioError | undefined>;
  /** The table's indexes, or undefined when the engine has none that matter to us (Access: read in memory). */
  indexes(table: string, options: QueryOptions): Promise<IndexInfo[] | undefined>;
  close(): Promise<void>;
}
