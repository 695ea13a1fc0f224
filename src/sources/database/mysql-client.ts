import mysql from "mysql2/promise";
import type { TlsConfig } from "../../config/config-schema.ts";
import { type DbErrorContext, dbError } from "./db-errors.ts";
import { mysqlDialect } from "./dialects.ts";
import { guardQuery } from "./query-guard.ts";
import { renameRows, renderSelect, type SelectSpec } from "./select-spec.ts";
import type { IndexInfo, QueryOptions, SqlClient, SqlRow, TableInfo } from "./sql-client.ts";

type MysqlConnection = {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly tls: TlsConfig;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
};

/**
 * MySQL and MariaDB through a mysql2 pool. Times come back as text: DATETIME is a naive wall clock; TIMESTAMP is an
 * instant, read in a session pinned to UTC and marked with "Z", so the two cannot be confused.
 */
export class MysqlClient implements SqlClient {
  readonly engine = "mysql";
  readonly dialect = mysqlDialect;
  readonly #pool: mysql.Pool;
  readonly #ctx: DbErrorContext;
  readonly #prepared = new WeakSet<object>();
  readonly #queryTimeoutMs: number;
  #mariadb: boolean | undefined;

  private constructor(pool: mysql.Pool, c: MysqlConnection, queryTimeoutMs: number) {
    this.#pool = pool;
    this.#queryTimeoutMs = queryTimeoutMs;
    this.#ctx = {
      engine: "mysql",
      where: `mysql ${c.host}:${c.port}/${c.database} as ${c.user}`,
      secrets: [c.password],
    };
  }

  static async open(c: MysqlConnection, queryTimeoutMs: number, signal: AbortSignal): Promise<MysqlClient> {
    const pool = mysql.createPool({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
      ...(c.tls.enabled
        ? {
            ssl: {
              rejectUnauthorized: c.tls.rejectUnauthorized,
              ...(c.tls.ca ? { ca: c.tls.ca } : {}),
              ...(c.tls.serverName ? { servername: c.tls.serverName } : {}),
            },
          }
        : {}),
      connectionLimit: c.poolSize,
      maxIdle: c.poolSize,
      idleTimeout: 60_000,
      connectTimeout: c.connectTimeoutMs,
      dateStrings: true,
      supportBigNumbers: true,
      typeCast: (field, next) => {
        if (field.type === "TIMESTAMP" || field.type === "TIMESTAMP2") {
          const text = field.string();
          return text === null ? null : `${text.replace(" ", "T")}Z`;
        }
        return next();
      },
    });
    const client = new MysqlClient(pool, c, queryTimeoutMs);
    try {
      await client.query("SELECT 1", [], { signal, timeoutMs: c.connectTimeoutMs + 1000 });
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return client;
  }

  /** Once per connection: UTC session, read-only, and a server-side statement limit (MariaDB and MySQL differ). */
  async #prepare(conn: mysql.PoolConnection): Promise<void> {
    if (this.#prepared.has(conn.connection)) return;
    if (this.#mariadb === undefined) {
      const [rows] = await conn.query("SELECT VERSION() AS v");
      this.#mariadb = /mariadb/i.test(String((rows as Array<{ v: string }>)[0]?.v));
    }
    await conn.query("SET SESSION time_zone = '+00:00'");
    await conn.query("SET SESSION TRANSACTION READ ONLY");
    await conn.query(
      this.#mariadb
        ? `SET SESSION max_statement_time = ${this.#queryTimeoutMs / 1000}`
        : `SET SESSION max_execution_time = ${Math.trunc(this.#queryTimeoutMs)}`,
    );
    this.#prepared.add(conn.connection);
  }

  async query(sql: string, params: readonly unknown[], options: QueryOptions, table?: string): Promise<SqlRow[]> {
    options.signal.throwIfAborted();
    let conn: mysql.PoolConnection | undefined;
    let done = false;
    const finish = (destroy: boolean) => {
      if (done || !conn) return;
      done = true;
      if (destroy) conn.destroy();
      else conn.release();
    };
    const work = (async () => {
      conn = await this.#pool.getConnection();
      if (options.signal.aborted) throw options.signal.reason;
      await this.#prepare(conn);
      const [rows] = await conn.query({ sql, values: params as unknown[] });
      return rows as SqlRow[];
    })();
    try {
      return await guardQuery(
        work,
        options,
        () => {
          // Closing the socket does not stop the statement on the server; KILL QUERY does.
          const id = conn?.threadId;
          if (id) this.#pool.query(`KILL QUERY ${Math.trunc(id)}`).catch(() => undefined);
          finish(true);
        },
        () => `A MySQL query on ${this.#ctx.where}`,
      );
    } catch (error) {
      finish(true);
      if (options.signal.aborted) throw error;
      throw dbError(error, { ...this.#ctx, table });
    } finally {
      finish(false);
    }
  }

  async select(spec: SelectSpec, options: QueryOptions): Promise<SqlRow[]> {
    const r = renderSelect(this.dialect, spec);
    return renameRows(await this.query(r.sql, r.params, options, spec.table), r.names);
  }

  async describe(table: string, options: QueryOptions): Promise<TableInfo | undefined> {
    const rows = await this.query(
      `SELECT TABLE_NAME AS t, COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = DATABASE() AND LOWER(TABLE_NAME) = LOWER(?) ORDER BY TABLE_NAME = ? DESC, TABLE_NAME, ORDINAL_POSITION`,
      [table, table],
      options,
    );
    const first = rows[0];
    if (!first) return undefined;
    const name = String(first.t);
    return {
      name,
      columns: rows
        .filter((r) => r.t === name)
        .map((r) => ({ name: String(r.name), type: String(r.type).toLowerCase() })),
    };
  }

  async tables(options: QueryOptions): Promise<string[]> {
    const rows = await this.query(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
      [],
      options,
    );
    return rows.map((r) => String(r.name));
  }

  async indexes(table: string, options: QueryOptions): Promise<IndexInfo[]> {
    const rows = await this.query(
      `SELECT INDEX_NAME AS idx, COLUMN_NAME AS col FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
      [table],
      options,
    );
    const out = new Map<string, string[]>();
    for (const r of rows) out.set(String(r.idx), [...(out.get(String(r.idx)) ?? []), String(r.col)]);
    return [...out].map(([name, columns]) => ({ name, columns }));
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }
}
