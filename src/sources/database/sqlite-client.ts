import { Worker } from "node:worker_threads";
import { BioError } from "../../core/errors.ts";
import { clause } from "../../core/sentence.ts";
import { embedded } from "../../core/version.ts";
import { sqliteDialect } from "./dialects.ts";
import { renameRows, renderSelect, type SelectSpec } from "./select-spec.ts";
import type { IndexInfo, QueryOptions, SqlClient, SqlRow, TableInfo } from "./sql-client.ts";

/** The worker's protocol (sqlite-worker.mjs). */
interface SqliteWorkerData {
  readonly path: string;
  readonly busyTimeoutMs: number;
}
type SqliteRequest = { readonly id: number; readonly sql: string; readonly params: readonly unknown[] };
type SqliteReply =
  | { readonly id: number; readonly ok: true; readonly rows: unknown[] }
  | { readonly id: number; readonly ok: false; readonly message: string };

interface Pending {
  readonly resolve: (rows: SqlRow[]) => void;
  readonly reject: (error: Error) => void;
}

/**
 * A customer's SQLite attendance database, opened read-only in a worker thread (see sqlite-worker.mjs): the
 * connector never writes to it, and a query that overruns its timeout or is cancelled terminates the thread.
 */
export class SqliteClient implements SqlClient {
  readonly engine = "sqlite";
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
        pending.reject(new BioError("DB_QUERY", `SQLite query on ${path} failed: ${clause(reply.message)}.`));
      }
    });
    worker.on("error", (error: Error) =>
      this.#fail(
        new BioError("DB_QUERY", `SQLite reader for ${path} crashed: ${clause(error.message)}.`, {
          cause: error,
        }),
      ),
    );
    worker.on("exit", () => this.#fail(new BioError("DB_CONNECT", `SQLite reader for ${path} has stopped.`)));
  }

  static async open(path: string, busyTimeoutMs: number): Promise<SqliteClient> {
    const data: SqliteWorkerData = { path, busyTimeoutMs };
    const options = {
      workerData: data,
      // Pages are bounded (batchSize rows), so a small heap is plenty.
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 },
    };
    // The single executable has no worker file on disk: it carries the worker's source (bundled to CommonJS).
    const bundled = embedded("sqlite-worker.cjs");
    const worker = bundled
      ? new Worker(bundled, { ...options, eval: true })
      : new Worker(new URL("./sqlite-worker.mjs", import.meta.url), options);
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
        this.#fail(error instanceof BioError ? error : new BioError("ABORTED", error.message));
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
                hint: "Check that the table has the index bioapi doctor names for this source, or raise queryTimeoutMs.",
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

  async select(spec: SelectSpec, options: QueryOptions): Promise<SqlRow[]> {
    const r = renderSelect(this.dialect, spec);
    return renameRows(await this.query(r.sql, r.params, options), r.names);
  }

  async describe(table: string, options: QueryOptions): Promise<TableInfo | undefined> {
    const [found] = await this.query(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND lower(name) = lower(?) ORDER BY name = ? DESC",
      [table, table],
      options,
    );
    if (!found) return undefined;
    const name = String(found.name);
    const cols = await this.query("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", [name], options);
    return { name, columns: cols.map((c) => ({ name: String(c.name), type: String(c.type).toLowerCase() })) };
  }

  async tables(options: QueryOptions): Promise<string[]> {
    const rows = await this.query(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
      [],
      options,
    );
    return rows.map((r) => String(r.name));
  }

  async indexes(table: string, options: QueryOptions): Promise<IndexInfo[]> {
    const rows = await this.query(
      "SELECT il.name AS idx, ii.name AS col FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii ORDER BY il.name, ii.seqno",
      [table],
      options,
    );
    const out = new Map<string, string[]>();
    for (const r of rows) {
      const cols = out.get(String(r.idx)) ?? [];
      cols.push(String(r.col));
      out.set(String(r.idx), cols);
    }
    // An INTEGER PRIMARY KEY is the rowid itself: the table's own order, listed by no pragma_index_list.
    const rowid = await this.query(
      "SELECT name FROM pragma_table_info(?) WHERE pk = 1 AND upper(type) = 'INTEGER' AND (SELECT count(*) FROM pragma_table_info(?) WHERE pk > 0) = 1",
      [table, table],
      options,
    );
    const indexes = [...out].map(([name, columns]) => ({ name, columns }));
    return rowid[0] ? [{ name: "rowid", columns: [String(rowid[0].name)] }, ...indexes] : indexes;
  }

  async close(): Promise<void> {
    this.#dead ??= new BioError("DB_CONNECT", `SQLite reader for ${this.#path} is closed.`);
    await this.#worker.terminate();
  }
}
