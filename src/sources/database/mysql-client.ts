import type { SslOptions } from "mysql2";
import mysql from "mysql2/promise";
import type { TlsConfig } from "../../config/config-schema.ts";
import { BioError } from "../../core/errors.ts";
import { type DbErrorContext, notAllowedError } from "./db-errors.ts";
import { mysqlDialect } from "./dialects.ts";
import { pooledQuery } from "./pooled-query.ts";
import { within } from "./query-guard.ts";
import { renameRows, renderSelect, type SelectSpec } from "./select-spec.ts";
import {
  type IndexInfo,
  type QueryOptions,
  type SqlClient,
  type SqlRow,
  type TableInfo,
  tableInfoFromCatalog,
} from "./sql-client.ts";
import type { WireSecurity } from "./wire-security.ts";

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

export interface MysqlClientOptions {
  /** Tests: wraps pool creation (e.g. to start every session the way a given server would). */
  readonly createPool?: (options: mysql.PoolOptions) => mysql.Pool;
}

/**
 * mysql2's `ssl` for a mode. The greeting says whether the server has TLS (CLIENT_SSL); with `ssl` set, mysql2
 * fails on a greeting without it before sending any credential, which is what lets "prefer" retry plain.
 * "verify" checks the chain and that the certificate names `host` (mysql2's verifyIdentity).
 */
function sslOptions(tls: TlsConfig): SslOptions | undefined {
  if (tls.mode === "off") return undefined;
  if (tls.mode !== "verify") return { rejectUnauthorized: false };
  return { rejectUnauthorized: true, verifyIdentity: true, ...(tls.ca ? { ca: tls.ca } : {}) };
}

function serverHasNoTls(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause)
    if ((e as { code?: unknown }).code === "HANDSHAKE_NO_SSL_SUPPORT") return true;
  return false;
}

/** MySQL error 1193: unknown system variable (a server older than the statement limit). */
const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;

/** The session's sql_mode without NO_BACKSLASH_ESCAPES, or undefined when it does not have it. */
export function withoutNoBackslashEscapes(mode: string): string | undefined {
  const parts = mode.split(",").filter((m) => m !== "");
  if (!parts.includes("NO_BACKSLASH_ESCAPES")) return undefined;
  return parts.filter((m) => m !== "NO_BACKSLASH_ESCAPES").join(",");
}

/**
 * MySQL and MariaDB through a mysql2 pool. Times come back as text: DATETIME is a naive wall clock; TIMESTAMP is an
 * instant, read in a session pinned to UTC and marked with "Z", so the two cannot be confused.
 */
export class MysqlClient implements SqlClient {
  readonly engine = "mysql";
  readonly dialect = mysqlDialect;
  readonly wire: WireSecurity;
  readonly #pool: mysql.Pool;
  readonly #ctx: DbErrorContext;
  readonly #prepared = new WeakSet<object>();
  readonly #queryTimeoutMs: number;
  #mariadb: boolean | undefined;

  private constructor(pool: mysql.Pool, c: MysqlConnection, queryTimeoutMs: number, wire: WireSecurity) {
    this.#pool = pool;
    this.wire = wire;
    this.#queryTimeoutMs = queryTimeoutMs;
    this.#ctx = {
      engine: "mysql",
      where: `mysql ${c.host}:${c.port}/${c.database} as ${c.user}`,
      secrets: [c.password],
    };
  }

  static async open(
    c: MysqlConnection,
    queryTimeoutMs: number,
    signal: AbortSignal,
    options: MysqlClientOptions = {},
  ): Promise<MysqlClient> {
    if (c.tls.mode === "verify" && c.tls.serverName && c.tls.serverName !== c.host)
      throw new BioError(
        "DB_CONNECT",
        `tls.serverName (${c.tls.serverName}) cannot be checked on MySQL/MariaDB (mysql ${c.host}:${c.port}): the driver checks the certificate against host.`,
        { hint: "Set host to the name the server certificate carries, and leave serverName out." },
      );
    const ssl = sslOptions(c.tls);
    try {
      return await MysqlClient.#open(c, queryTimeoutMs, signal, options, ssl);
    } catch (error) {
      // Only a server that advertises no TLS in its greeting allows a plain retry (nothing was sent to it yet);
      // a TLS handshake that fails is an error as it is.
      if (c.tls.mode !== "prefer" || !serverHasNoTls(error) || signal.aborted) throw error;
      return MysqlClient.#open(c, queryTimeoutMs, signal, options, undefined);
    }
  }

  static async #open(
    c: MysqlConnection,
    queryTimeoutMs: number,
    signal: AbortSignal,
    options: MysqlClientOptions,
    ssl: SslOptions | undefined,
  ): Promise<MysqlClient> {
    const pool = (options.createPool ?? mysql.createPool)({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
      ...(ssl ? { ssl } : {}),
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
    const client = new MysqlClient(pool, c, queryTimeoutMs, {
      tls: ssl !== undefined,
      verified: c.tls.mode === "verify",
    });
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
    const [rows] = await conn.query("SELECT VERSION() AS v, @@SESSION.sql_mode AS m");
    const first = (rows as Array<{ v: string; m: string }>)[0];
    this.#mariadb ??= /mariadb/i.test(String(first?.v));
    // mysql2 escapes values client-side with backslashes; a server whose sql_mode has NO_BACKSLASH_ESCAPES reads
    // `\'` as a backslash and the end of the string, so a bound value could become SQL. Values are safe only
    // without it. Mode names are letters and underscores: checked before they are spelled into the statement.
    const mode = withoutNoBackslashEscapes(String(first?.m ?? ""));
    if (mode !== undefined) {
      if (!/^[A-Z_,]*$/.test(mode)) throw new Error(`Unexpected sql_mode ${JSON.stringify(mode)}.`);
      await conn.query(`SET SESSION sql_mode = '${mode}'`);
    }
    await conn.query("SET SESSION time_zone = '+00:00'");
    await conn.query("SET SESSION TRANSACTION READ ONLY");
    try {
      await conn.query(
        this.#mariadb
          ? `SET SESSION max_statement_time = ${this.#queryTimeoutMs / 1000}`
          : `SET SESSION max_execution_time = ${Math.trunc(this.#queryTimeoutMs)}`,
      );
    } catch (error) {
      // Servers older than the limit (MySQL < 5.7.8, MariaDB < 10.1) lack the variable: the connector's own timeout
      // (cancel + KILL QUERY) still applies.
      if ((error as { errno?: unknown }).errno !== ER_UNKNOWN_SYSTEM_VARIABLE) throw error;
    }
    this.#prepared.add(conn.connection);
  }

  query(sql: string, params: readonly unknown[], options: QueryOptions, table?: string): Promise<SqlRow[]> {
    return pooledQuery<mysql.PoolConnection>(
      {
        acquire: () => this.#pool.getConnection(),
        run: async (conn) => {
          await this.#prepare(conn);
          const [rows] = await conn.query({ sql, values: params as unknown[] });
          return rows as SqlRow[];
        },
        cancel: (conn) => {
          // Closing the socket does not stop the statement on the server; KILL QUERY does.
          const id = conn?.threadId;
          if (id) this.#pool.query(`KILL QUERY ${Math.trunc(id)}`).catch(() => undefined);
        },
        release: (conn, destroy) => (destroy ? conn.destroy() : conn.release()),
        unused: "drop",
        engine: "MySQL",
        context: this.#ctx,
      },
      options,
      table,
    );
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
    return tableInfoFromCatalog(rows, table);
  }

  async tables(options: QueryOptions): Promise<string[]> {
    const rows = await this.query(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
      [],
      options,
    );
    return rows.map((r) => String(r.name));
  }

  /**
   * MySQL and MariaDB show a user only the tables it may read, and answer a SELECT on a hidden table with "denied"
   * whether it exists or not. So a table missing from the catalog of a user without SELECT on the whole database
   * is reported as not allowed: the GRANT settles it (and fails with "doesn't exist" if it really is absent).
   */
  async notAllowed(table: string, options: QueryOptions): Promise<BioError | undefined> {
    const [row] = await this.query(
      `SELECT CURRENT_USER() AS who, DATABASE() AS db,
              EXISTS(SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = g.grantee AND PRIVILEGE_TYPE = 'SELECT')
           OR EXISTS(SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES
                      WHERE GRANTEE = g.grantee AND PRIVILEGE_TYPE = 'SELECT' AND DATABASE() LIKE TABLE_SCHEMA) AS broad
         FROM (SELECT CONCAT("'", SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "'@'",
                             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), "'") AS grantee) g`,
      [],
      options,
    );
    if (!row || Number(row.broad) === 1) return undefined;
    const who = String(row.who);
    const at = who.lastIndexOf("@");
    const account = `'${who.slice(0, at)}'@'${who.slice(at + 1)}'`;
    const qualified = `\`${String(row.db)}\`.\`${table}\``;
    const why = `user ${account} has no SELECT on it, so the server hides it (MySQL and MariaDB show a user only what it may read)`;
    return notAllowedError(this.#ctx, qualified, why, `GRANT SELECT ON ${qualified} TO ${account};`);
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
    await within(this.#pool.end());
  }
}
