import { DatabaseSync } from "node:sqlite";
import { BioError } from "../../core/errors.ts";
import { checkIdentifier } from "./identifier.ts";
import type { QueryOptions, SqlClient, SqlDialect, SqlRow } from "./sql-client.ts";

export const sqliteDialect: SqlDialect = {
  name: "sqlite",
  quote: (identifier) => `"${checkIdentifier(identifier)}"`,
  param: () => "?",
  limit: (rows) => `LIMIT ${Math.trunc(rows)}`,
};

/**
 * A customer's SQLite attendance database, opened read-only: the connector never writes to it. node:sqlite is
 * synchronous, so queries are kept to bounded keyset pages.
 */
export class SqliteClient implements SqlClient {
  readonly dialect = sqliteDialect;
  readonly #db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  static open(path: string, busyTimeoutMs: number): SqliteClient {
    try {
      return new SqliteClient(new DatabaseSync(path, { readOnly: true, timeout: busyTimeoutMs }));
    } catch (error) {
      throw new BioError("DB_CONNECT", `Cannot open the SQLite database ${path}: ${(error as Error).message}.`, {
        retriable: true,
        cause: error,
        hint: "Check the path in the source config and that the service account may read the file.",
      });
    }
  }

  async query(sql: string, params: readonly unknown[], options: QueryOptions): Promise<SqlRow[]> {
    options.signal.throwIfAborted();
    try {
      return this.#db.prepare(sql).all(...(params as Array<string | number | null>)) as SqlRow[];
    } catch (error) {
      throw new BioError("DB_QUERY", `SQLite query failed: ${(error as Error).message}.`, {
        retriable: true,
        cause: error,
      });
    }
  }

  async columns(table: string, options: QueryOptions): Promise<string[] | undefined> {
    const rows = await this.query(`PRAGMA table_info(${this.dialect.quote(table)})`, [], options);
    return rows.length === 0 ? undefined : rows.map((r) => String(r.name));
  }

  async tables(options: QueryOptions): Promise<string[]> {
    const rows = await this.query(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
      [],
      options,
    );
    return rows.map((r) => String(r.name));
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
