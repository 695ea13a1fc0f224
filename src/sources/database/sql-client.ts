/** A row as drivers return it: column name → value. */
export type SqlRow = Readonly<Record<string, unknown>>;

export interface QueryOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
}

/** The slice of a database driver a database source needs; one implementation per dialect. */
export interface SqlClient {
  readonly dialect: SqlDialect;
  query(sql: string, params: readonly unknown[], options: QueryOptions): Promise<SqlRow[]>;
  /** Column names of a table, or undefined when the table does not exist. */
  columns(table: string, options: QueryOptions): Promise<string[] | undefined>;
  tables(options: QueryOptions): Promise<string[]>;
  close(): Promise<void>;
}

export interface SqlDialect {
  readonly name: string;
  /** Quotes a validated identifier; throws IDENTIFIER_INVALID for anything else. */
  quote(identifier: string): string;
  /** Placeholder for the 1-based parameter index. */
  param(index: number): string;
  /** Clause appended to limit the rows of a query. */
  limit(rows: number): string;
}
