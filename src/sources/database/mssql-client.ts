import { Connection, type ConnectionConfiguration, Request, TYPES } from "tedious";
import type { TlsConfig } from "../../config/config-schema.ts";
import { BioError } from "../../core/errors.ts";
import type { DbErrorContext } from "./db-errors.ts";
import { mssqlDialect } from "./dialects.ts";
import { pooledQuery } from "./pooled-query.ts";
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

type MssqlConnection = {
  readonly host: string;
  readonly port: number;
  readonly instanceName?: string | undefined;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly schema: string;
  readonly tls: TlsConfig;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
};

/** One query's claim on the pool, so that a query that gives up leaves the waiting queue. */
interface Ticket {
  waiter?: ((c: Connection | Error) => void) | undefined;
}

/** tedious' configuration for a connection (exported so its mapping is unit-tested: no SQL Server runs here). */
export function tediousConfig(c: MssqlConnection, queryTimeoutMs: number): ConnectionConfiguration {
  return {
    server: c.host,
    authentication: { type: "default", options: { userName: c.user, password: c.password } },
    options: {
      // A named instance is found through SQL Browser, which then gives the port.
      ...(c.instanceName ? { instanceName: c.instanceName } : { port: c.port }),
      database: c.database,
      // TDS encrypts the login packet whenever the server can, even unencrypted: off and prefer both leave the rest
      // of the session plain. require and verify encrypt all of it; only verify checks the certificate.
      encrypt: c.tls.mode === "require" || c.tls.mode === "verify",
      trustServerCertificate: c.tls.mode !== "verify",
      ...(c.tls.ca ? { cryptoCredentialsDetails: { ca: c.tls.ca } } : {}),
      ...(c.tls.serverName ? { serverName: c.tls.serverName } : {}),
      connectTimeout: c.connectTimeoutMs,
      requestTimeout: queryTimeoutMs,
      // Routes to a readable secondary on an availability group; harmless elsewhere.
      readOnlyIntent: true,
      appName: "bioapi",
      // datetime / datetime2 come back with the stored wall clock in the UTC fields (see naive() below).
      useUTC: true,
      rowCollectionOnRequestCompletion: false,
    },
  };
}

/** The parameter type tedious sends for a value (unit-tested). */
export function tediousParam(value: unknown): { type: (typeof TYPES)[keyof typeof TYPES]; value: unknown } {
  if (value === null || value === undefined) return { type: TYPES.NVarChar, value: null };
  if (typeof value === "number") {
    if (Number.isInteger(value)) return { type: Math.abs(value) <= 2_147_483_647 ? TYPES.Int : TYPES.BigInt, value };
    return { type: TYPES.Float, value };
  }
  if (typeof value === "boolean") return { type: TYPES.Bit, value };
  // Time bounds arrive as ISO text: SQL Server converts nvarchar to the column's datetime type (higher precedence).
  return { type: TYPES.NVarChar, value: String(value) };
}

const ZONE_LESS = new Set(["DateTime", "DateTime2", "SmallDateTime", "DateN", "Date", "DateTimeN"]);

function naive(value: unknown, typeName: string): unknown {
  if (value instanceof Date && ZONE_LESS.has(typeName)) return value.toISOString().slice(0, 19).replace("T", " ");
  if (value instanceof Date) return value.toISOString();
  return value;
}

/**
 * SQL Server through tedious with a small pool of its own (tedious connections run one request at a time).
 * Untested against a server here: no SQL Server runs on the build machine. Its SQL is unit-tested.
 */
export class MssqlClient implements SqlClient {
  readonly engine = "mssql";
  readonly dialect: SqlDialect;
  readonly wire: WireSecurity;
  readonly #config: ConnectionConfiguration;
  readonly #ctx: DbErrorContext;
  readonly #schema: string;
  readonly #size: number;
  readonly #idle: Connection[] = [];
  readonly #waiters: Array<(c: Connection | Error) => void> = [];
  #open = 0;
  #closed = false;

  private constructor(c: MssqlConnection, queryTimeoutMs: number) {
    this.dialect = mssqlDialect(c.schema);
    this.#schema = c.schema;
    this.#size = c.poolSize;
    this.#config = tediousConfig(c, queryTimeoutMs);
    this.wire = { tls: this.#config.options?.encrypt === true, verified: c.tls.mode === "verify" };
    this.#ctx = {
      engine: "mssql",
      where: `mssql ${c.host}${c.instanceName ? `\\${c.instanceName}` : `:${c.port}`}/${c.database} as ${c.user}`,
      secrets: [c.password],
    };
  }

  static async open(c: MssqlConnection, queryTimeoutMs: number, signal: AbortSignal): Promise<MssqlClient> {
    const client = new MssqlClient(c, queryTimeoutMs);
    try {
      await client.query("SELECT 1 AS ok", [], { signal, timeoutMs: c.connectTimeoutMs + 1000 });
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  #connect(): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const conn = new Connection(this.#config);
      // Errors after connect (socket reset) must not crash the process; the next request reports them.
      conn.on("error", () => undefined);
      conn.connect((error) => (error ? reject(error) : resolve(conn)));
    });
  }

  async #acquire(ticket: Ticket = {}): Promise<Connection> {
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#open < this.#size) {
      this.#open++;
      try {
        return await this.#connect();
      } catch (error) {
        this.#open--;
        throw error;
      }
    }
    const got = await new Promise<Connection | Error>((resolve) => {
      let settled = false;
      const waiter = (c: Connection | Error) => {
        if (settled) {
          // Handed over after this waiter gave up (a replacement connection opened for it): back to the pool.
          if (!(c instanceof Error)) this.#release(c, false);
          return;
        }
        settled = true;
        resolve(c);
      };
      ticket.waiter = waiter;
      this.#waiters.push(waiter);
    });
    ticket.waiter = undefined;
    if (got instanceof Error) throw got;
    return got;
  }

  /** A query that gave up: out of the queue if still waiting; a connection reaching it later goes back (pooledQuery). */
  #abandon(ticket: Ticket): void {
    const waiter = ticket.waiter;
    if (!waiter) return;
    ticket.waiter = undefined;
    const i = this.#waiters.indexOf(waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
    waiter(new Error("abandoned"));
  }

  #release(conn: Connection, broken: boolean): void {
    if (broken || this.#closed) {
      this.#open--;
      conn.close();
      const waiter = this.#waiters.shift();
      if (waiter) this.#acquire().then(waiter, waiter);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter(conn);
    else this.#idle.push(conn);
  }

  query(sql: string, params: readonly unknown[], options: QueryOptions, table?: string): Promise<SqlRow[]> {
    const ticket: Ticket = {};
    return pooledQuery<Connection>(
      {
        acquire: () => this.#acquire(ticket),
        run: (c) =>
          new Promise<SqlRow[]>((resolve, reject) => {
            const rows: Record<string, unknown>[] = [];
            const request = new Request(sql, (error) => (error ? reject(error) : resolve(rows)));
            params.forEach((value, i) => {
              const p = tediousParam(value);
              request.addParameter(`p${i + 1}`, p.type, p.value);
            });
            request.on("row", (columns) => {
              const row: Record<string, unknown> = {};
              for (const col of columns as Array<{
                value: unknown;
                metadata: { colName: string; type: { name: string } };
              }>) {
                row[col.metadata.colName] = naive(col.value, col.metadata.type.name);
              }
              rows.push(row);
            });
            c.execSql(request);
          }),
        cancel: (conn) => {
          this.#abandon(ticket);
          // An attention packet stops the statement on the server; the connection stays usable but we drop it.
          conn?.cancel();
        },
        release: (conn, broken) => this.#release(conn, broken),
        // Opened or handed over for a query that gave up: unused, so it goes back to the pool.
        unused: "reuse",
        engine: "SQL Server",
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
      `SELECT TABLE_NAME AS t, COLUMN_NAME AS name, DATA_TYPE AS type FROM INFORMATION_SCHEMA.COLUMNS
        WHERE TABLE_SCHEMA = @p1 AND LOWER(TABLE_NAME) = LOWER(@p2) ORDER BY TABLE_NAME, ORDINAL_POSITION`,
      [this.#schema, table],
      options,
    );
    return tableInfoFromCatalog(rows, table);
  }

  async tables(options: QueryOptions): Promise<string[]> {
    const rows = await this.query(
      "SELECT TABLE_NAME AS name FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = @p1 ORDER BY TABLE_NAME",
      [this.#schema],
      options,
    );
    return rows.map((r) => String(r.name));
  }

  async indexes(table: string, options: QueryOptions): Promise<IndexInfo[]> {
    const rows = await this.query(
      `SELECT i.name AS idx, c.name AS col FROM sys.indexes i
         JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id AND ic.is_included_column = 0
         JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
        WHERE i.object_id = OBJECT_ID(QUOTENAME(@p1) + '.' + QUOTENAME(@p2))
        ORDER BY i.name, ic.key_ordinal`,
      [this.#schema, table],
      options,
    );
    const out = new Map<string, string[]>();
    for (const r of rows) out.set(String(r.idx), [...(out.get(String(r.idx)) ?? []), String(r.col)]);
    return [...out].map(([name, columns]) => ({ name, columns }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.close();
    for (const w of this.#waiters.splice(0)) w(new BioError("DB_CONNECT", "The SQL Server client is closed."));
  }
}
