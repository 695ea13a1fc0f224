import { Worker } from "node:worker_threads";
import { BioError } from "../../core/errors.ts";
import { checkIdentifier } from "./identifier.ts";
import type { QueryOptions, SqlClient, SqlDialect, SqlRow } from "./sql-client.ts";

/** The worker's protocol (sqlite-worker.mjs). */
interface SqliteWorkerData {
  readonly path: string;
  readonly busyTimeoutMs: number;
}
type SqliteRequest = { readonly id: number; readonly sql: string; readonly params: readonly unknown[] };
type SqliteReply =
  | { readonly id: number; readonly ok: true; readonly rows: unknown[] }
  | { readonly id: number; readonly ok: false; readonly message: string };

export const sqliteDialect: SqlDialect = {
  name: "sqlite",
  quote: (identifier) => `"${checkIdentifier(identifier)}"`,
  param: () => "?",
  limit: (rows) => `LIMIT ${Math.trunc(rows)}`,
};

interface Pending {
  readonly resolve: (rows: SqlRow[]) => void;
  readonly reject: (error: Error) => void;
}

/**
 * A customer's SQLite attendance database, opened read-only in a worker thread (see sqlite-worker.mjs): the
 * connector never writes to it, and a query that overruns its timeout or is cancelled terminates the thread.
 */
export class SqliteClient implements SqlClient {
  readonly dialect = sqliteDialect;
  readonly #worker: Worker;
  readonly #path: string;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #dead: BioError | undefined;

  private constructor(worker: Worker, path: string) {
    this.#worker = worker;
    this.#path = path;
    worker.on("message", (reply: SqliteReply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.rows as SqlRow[]);
      else {
        pending.reject(
          new BioError("DB_QUERY", `SQLite query on ${path} failed: ${reply.message}.`, { retriable: true }),
        );
      }
    });
    worker.on("error", (error: Error) =>
      this.#fail(
        new BioError("DB_QUERY", `SQLite reader for ${path} crashed: ${error.message}.`, {
          retriable: true,
          cause: error,
        }),
      ),
    );
    worker.on("exit", () =>
      this.#fail(new BioError("DB_CONNECT", `SQLite reader for ${path} has stopped.`, { retriable: true })),
    );
  }

  static async open(path: string, busyTimeoutMs: number): Promise<SqliteClient> {
    const data: SqliteWorkerData = { path, busyTimeoutMs };
    const worker = new Worker(new URL("./sqlite-worker.mjs", import.meta.url), {
      workerData: data,
      // Pages are bounded (batchSize rows), so a small heap is plenty.
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 },
    });
    const client = new SqliteClient(worker, path);
    const opened = new Promise<SqlRow[]>((resolve, reject) => client.#pending.set(0, { resolve, reject }));
    try {
      await opened;
    } catch (error) {
      await worker.terminate();
      throw new BioError(
        "DB_CONNECT",
        `Cannot open the SQLite database ${path}: ${(error as Error).message.replace(/^SQLite query on .*? failed: /, "")}`,
        {
          retriable: true,
          cause: error,
          hint: "Check the path in the source config and that the service account may read the file.",
        },
      );
    }
    return client;
  }

  #fail(error: BioError): void {
    this.#dead ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  query(sql: string, params: readonly unknown[], options: QueryOptions): Promise<SqlRow[]> {
    if (this.#dead) return Promise.reject(this.#dead);
    options.signal.throwIfAborted();
    const id = this.#next++;
    return new Promise<SqlRow[]>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        options.signal.removeEventListener("abort", onAbort);
      };
      // The only way to stop a running SQLite statement from outside is to end its thread.
      const kill = (error: Error) => {
        finish();
        this.#pending.delete(id);
        this.#fail(error instanceof BioError ? error : new BioError("ABORTED", error.message, { retriable: true }));
        reject(error);
        this.#worker.terminate().catch(() => undefined);
      };
      const onAbort = () => kill(options.signal.reason instanceof Error ? options.signal.reason : new Error("aborted"));
      const timer = setTimeout(
        () =>
          kill(
            new BioError(
              "DB_QUERY",
              `SQLite query on ${this.#path} took longer than ${options.timeoutMs} ms; abandoned.`,
              {
                retriable: true,
                hint: "Check that the table has an index on (serial, id), or raise queryTimeoutMs.",
              },
            ),
          ),
        options.timeoutMs,
      );
      options.signal.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (rows) => {
          finish();
          resolve(rows);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      });
      const request: SqliteRequest = { id, sql, params };
      this.#worker.postMessage(request);
    });
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
    this.#dead ??= new BioError("DB_CONNECT", `SQLite reader for ${this.#path} is closed.`, { retriable: true });
    await this.#worker.terminate();
  }
}
