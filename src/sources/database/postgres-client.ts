import type tls from "node:tls";
import pg from "pg";
import type { TlsConfig } from "../../config/config-schema.ts";
import type { BioError } from "../../core/errors.ts";
import { type DbErrorContext, notAllowedError } from "./db-errors.ts";
import { postgresDialect } from "./dialects.ts";
import { pooledQuery } from "./pooled-query.ts";
import { within } from "./query-guard.ts";
import { renameRows, renderSelect, type SelectSpec, type SqlDialect } from "./select-spec.ts";
import {
  type IndexInfo,
  type QueryOptions,
  type SqlClient,
  type SqlRow,
  type TableInfo,
  tableInfoFromCatalog,
} from "./sql-client.ts";
import type { WireSecurity } from "./wire-security.ts";

type PostgresConnection = {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly schema: string;
  readonly tls: TlsConfig;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
};

const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const DATE = 1082;

/**
 * Times stay text: pg would turn a zone-less `timestamp` into a Date in this process's zone, which is not the
 * device's. timestamptz text carries its offset; "+05" is widened to "+05:00" so every parser reads it.
 */
function timeText(value: string): string {
  return /[+-]\d{2}$/.test(value) ? `${value}:00` : value;
}

const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === TIMESTAMP || oid === TIMESTAMPTZ || oid === DATE
      ? timeText
      : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
};

/**
 * pg's `ssl` for a mode: an SSLRequest first whenever TLS may be used. "prefer" asks too; a server without TLS
 * answers 'N' before any credential is sent, and only that answer lets open() retry without TLS.
 */
function tlsOptions(tls: TlsConfig): false | tls.ConnectionOptions {
  if (tls.mode === "off") return false;
  if (tls.mode !== "verify") return { rejectUnauthorized: false };
  // pg sets the name to verify from the host (unless it is an address, where Node checks the address itself).
  return {
    rejectUnauthorized: true,
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
  };
}

/** pg's words (lib/connection.js) for a server that answered the SSLRequest with 'N': it has no TLS at all. */
const NO_SSL = "The server does not support SSL connections";

function serverHasNoTls(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) if (e.message.includes(NO_SSL)) return true;
  return false;
}

/** PostgreSQL through a small pg.Pool; every session read-only, every statement bounded by the server too. */
export class PostgresClient implements SqlClient {
  readonly engine = "postgres";
  readonly dialect: SqlDialect;
  readonly wire: WireSecurity;
  readonly #pool: pg.Pool;
  readonly #ctx: DbErrorContext;
  readonly #schema: string;

  private constructor(pool: pg.Pool, c: PostgresConnection, wire: WireSecurity) {
    this.#pool = pool;
    this.wire = wire;
    this.#schema = c.schema;
    this.dialect = postgresDialect(c.schema);
    this.#ctx = {
      engine: "postgres",
      where: `postgres ${c.host}:${c.port}/${c.database} as ${c.user}`,
      secrets: [c.password],
    };
    // An idle connection the server dropped emits here; without a listener it would crash the process.
    pool.on("error", () => undefined);
  }

  static async open(c: PostgresConnection, queryTimeoutMs: number, signal: AbortSignal): Promise<PostgresClient> {
    const ssl = tlsOptions(c.tls);
    try {
      return await PostgresClient.#open(c, queryTimeoutMs, signal, ssl);
    } catch (error) {
      // Only the server's own "no TLS here" allows a plain retry; a TLS handshake that fails is an error as it is.
      if (c.tls.mode !== "prefer" || !serverHasNoTls(error) || signal.aborted) throw error;
      return PostgresClient.#open(c, queryTimeoutMs, signal, false);
    }
  }

  static async #open(
    c: PostgresConnection,
    queryTimeoutMs: number,
    signal: AbortSignal,
    ssl: false | tls.ConnectionOptions,
  ): Promise<PostgresClient> {
    const pool = new pg.Pool({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
      ssl,
      max: c.poolSize,
      connectionTimeoutMillis: c.connectTimeoutMs,
      idleTimeoutMillis: 60_000,
      application_name: "bioapi",
      // The server stops a runaway statement even if this process has gone; the session cannot write.
      // DateStyle ISO: times come back as text (see timeText); a role or database set to 'SQL, DMY' must not change it.
      options: `-c statement_timeout=${queryTimeoutMs} -c default_transaction_read_only=on -c DateStyle=ISO`,
      types,
    });
    const client = new PostgresClient(pool, c, { tls: ssl !== false, verified: c.tls.mode === "verify" });
    try {
      // Connect now, so a wrong password or host fails the source at start with a clear error.
      await client.query("SELECT 1", [], { signal, timeoutMs: c.connectTimeoutMs + 1000 });
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return client;
  }

  query(sql: string, params: readonly unknown[], options: QueryOptions, table?: string): Promise<SqlRow[]> {
    return pooledQuery<pg.PoolClient>(
      {
        acquire: () => this.#pool.connect(),
        run: async (conn) => (await conn.query({ text: sql, values: params as unknown[] })).rows as SqlRow[],
        cancel: (conn) => {
          const pid = (conn as unknown as { processID?: number } | undefined)?.processID;
          if (pid) this.#cancelBackend(pid);
        },
        release: (conn, destroy) => conn.release(destroy ? new Error("cancelled") : undefined),
        unused: "drop",
        engine: "PostgreSQL",
        context: this.#ctx,
      },
      options,
      table,
    );
  }

  #cancelBackend(pid: number): void {
    this.#pool.query({ text: "SELECT pg_cancel_backend($1)", values: [pid] }).catch(() => undefined);
  }

  async select(spec: SelectSpec, options: QueryOptions): Promise<SqlRow[]> {
    const r = renderSelect(this.dialect, spec);
    return renameRows(await this.query(r.sql, r.params, options, spec.table), r.names);
  }

  async describe(table: string, options: QueryOptions): Promise<TableInfo | undefined> {
    const rows = await this.query(
      `SELECT table_name AS t, column_name AS name, data_type AS type FROM information_schema.columns
        WHERE table_schema = $1 AND lower(table_name) = lower($2) ORDER BY table_name = $2 DESC, table_name, ordinal_position`,
      [this.#schema, table],
      options,
    );
    return tableInfoFromCatalog(rows, table);
  }

  async tables(options: QueryOptions): Promise<string[]> {
    const rows = await this.query(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
      [this.#schema],
      options,
    );
    return rows.map((r) => String(r.name));
  }

  /** pg_class lists every table to every role; the privilege functions say whether this one may read it. */
  async notAllowed(table: string, options: QueryOptions): Promise<BioError | undefined> {
    const [row] = await this.query(
      `SELECT c.relname AS name, current_user AS who, has_schema_privilege(n.oid, 'USAGE') AS usage,
              has_table_privilege(c.oid, 'SELECT') AS can
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND lower(c.relname) = lower($2) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
        ORDER BY c.relname = $2 DESC LIMIT 1`,
      [this.#schema, table],
      options,
    );
    if (!row || (row.usage === true && row.can === true)) return undefined;
    const q = (name: unknown) => `"${String(name).replaceAll('"', '""')}"`;
    const qualified = `${q(this.#schema)}.${q(row.name)}`;
    const grants = [
      ...(row.usage === true ? [] : [`GRANT USAGE ON SCHEMA ${q(this.#schema)} TO ${q(row.who)};`]),
      ...(row.can === true ? [] : [`GRANT SELECT ON ${qualified} TO ${q(row.who)};`]),
    ];
    const missing = [row.can === true ? "" : "SELECT on it", row.usage === true ? "" : "USAGE on its schema"];
    const why = `it exists, but user ${row.who} has no ${missing.filter(Boolean).join(" and no ")}`;
    return notAllowedError(this.#ctx, qualified, why, grants.join(" "));
  }

  async indexes(table: string, options: QueryOptions): Promise<IndexInfo[]> {
    const rows = await this.query(
      `SELECT i.relname AS name, array_agg(a.attname::text ORDER BY k.ord) AS columns
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE n.nspname = $1 AND t.relname = $2
        GROUP BY i.relname`,
      [this.#schema, table],
      options,
    );
    return rows.map((r) => ({ name: String(r.name), columns: (r.columns as string[]).map(String) }));
  }

  async close(): Promise<void> {
    // pg-pool's end() waits for every checked-out client: bounded, so a stuck one cannot hold a stop.
    await within(this.#pool.end());
  }
}
