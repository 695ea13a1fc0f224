import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import pg from "pg";

/**
 * Scratch space on the machine's real PostgreSQL and MariaDB: a schema / database of its own per test, dropped
 * afterwards, so concurrent runs never meet. URLs from BIOAPI_TEST_PG_URL / BIOAPI_TEST_MYSQL_URL.
 */
export const PG_URL = process.env.BIOAPI_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = process.env.BIOAPI_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

export type EngineName = "postgres" | "mysql";

export interface Writer {
  exec(sql: string, params?: readonly unknown[]): Promise<void>;
  close(): Promise<void>;
}

export interface Scratch extends AsyncDisposable {
  readonly engine: EngineName;
  /** The `connection` block of a source config pointing at this scratch space. */
  readonly connection: Record<string, unknown>;
  /** Placeholder for parameter i (1-based). */
  p(i: number): string;
  exec(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** A separate session, like the attendance software's own. */
  writer(): Promise<Writer>;
  /** BioTime's iclock_transaction (the columns the preset reads and a few it doesn't), with its cursor index. */
  createBiotime(options?: { index?: boolean; primaryKey?: boolean }): Promise<void>;
  insertBiotime(
    rows: ReadonlyArray<{ sn: string | null; pin: string; time: string; state?: string }>,
    w?: Writer,
  ): Promise<void>;
}

const unique = () => `bioapi_t_${randomBytes(5).toString("hex")}`;

/** A scratch space, or undefined (with a loud notice) when the server is absent and CI is not set. */
export async function scratch(engine: EngineName): Promise<Scratch | undefined> {
  try {
    return engine === "postgres" ? await pgScratch() : await mysqlScratch();
  } catch (error) {
    const message = `${engine} is not reachable (${(error as Error).message})`;
    if (process.env.CI === "true") throw new Error(`${message}; CI=true requires it.`);
    process.stderr.write(`\n!!! SKIPPED: ${message}. Set CI=true to make this a failure.\n`);
    return undefined;
  }
}

async function pgScratch(): Promise<Scratch> {
  const url = new URL(PG_URL);
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  await admin.connect();
  admin.on("error", () => undefined);
  const schema = unique();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.query(`SET search_path TO ${schema}`);
  const config = {
    host: url.hostname,
    port: Number(url.port || 5432),
    database: url.pathname.slice(1),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
  const exec = async (sql: string, params: readonly unknown[] = []) =>
    (await admin.query({ text: sql, values: params as unknown[] })).rows as Record<string, unknown>[];
  const s: Scratch = {
    engine: "postgres",
    connection: { engine: "postgres", ...config, schema },
    p: (i) => `$${i}`,
    exec,
    async writer() {
      const c = new pg.Client({ ...config, options: `-c search_path=${schema}` });
      await c.connect();
      c.on("error", () => undefined);
      return {
        exec: async (sql, params = []) => {
          await c.query({ text: sql, values: params as unknown[] });
        },
        close: () => c.end(),
      };
    },
    async createBiotime(options = {}) {
      await exec(`CREATE TABLE ${schema}.iclock_transaction (
        id serial${options.primaryKey === false ? "" : " PRIMARY KEY"}, emp_code varchar(20) NOT NULL, punch_time timestamptz NOT NULL,
        punch_state varchar(5) NOT NULL, verify_type int NOT NULL, work_code varchar(20), terminal_sn varchar(50),
        terminal_alias varchar(50), upload_time timestamptz DEFAULT now())`);
      if (options.index !== false) {
        await exec(`CREATE INDEX iclock_transaction_sn_id ON ${schema}.iclock_transaction (terminal_sn, id)`);
      }
    },
    async insertBiotime(rows, w) {
      const values: unknown[] = [];
      const tuples = rows.map((r, i) => {
        values.push(r.pin, r.time, r.state ?? "0", r.sn);
        return `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, 1, $${i * 4 + 4})`;
      });
      const sql = `INSERT INTO ${schema}.iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn) VALUES ${tuples.join(", ")}`;
      if (w) await w.exec(sql, values);
      else await exec(sql, values);
    },
    async [Symbol.asyncDispose]() {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
  return s;
}

async function mysqlScratch(): Promise<Scratch> {
  const url = new URL(MYSQL_URL);
  const base = {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
  const admin = await mysql.createConnection({ ...base, connectTimeout: 3000, dateStrings: true });
  const database = unique();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.query(`USE ${database}`);
  const exec = async (sql: string, params: readonly unknown[] = []) =>
    (await admin.query(sql, params as unknown[]))[0] as Record<string, unknown>[];
  const s: Scratch = {
    engine: "mysql",
    connection: { engine: "mysql", ...base, database },
    p: () => "?",
    exec,
    async writer() {
      const c = await mysql.createConnection({ ...base, database });
      return {
        exec: async (sql, params = []) => {
          await c.query(sql, params as unknown[]);
        },
        close: () => c.end(),
      };
    },
    async createBiotime(options = {}) {
      await exec(`CREATE TABLE iclock_transaction (
        id int AUTO_INCREMENT ${options.primaryKey === false ? ", KEY (id)" : "PRIMARY KEY"}, emp_code varchar(20) NOT NULL, punch_time datetime(6) NOT NULL,
        punch_state varchar(5) NOT NULL, verify_type int NOT NULL, work_code varchar(20), terminal_sn varchar(50),
        terminal_alias varchar(50), upload_time datetime(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB`);
      if (options.index !== false)
        await exec("CREATE INDEX iclock_transaction_sn_id ON iclock_transaction (terminal_sn, id)");
    },
    async insertBiotime(rows, w) {
      const values: unknown[] = [];
      const tuples = rows.map((r) => {
        values.push(r.pin, r.time.replace(/[+-]\d{2}:\d{2}$/, ""), r.state ?? "0", r.sn);
        return "(?, ?, ?, 1, ?)";
      });
      const sql = `INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn) VALUES ${tuples.join(", ")}`;
      if (w) await w.exec(sql, values);
      else await exec(sql, values);
    },
    async [Symbol.asyncDispose]() {
      await admin.query(`DROP DATABASE ${database}`);
      await admin.end();
    },
  };
  return s;
}
