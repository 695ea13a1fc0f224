import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import MDBReader from "mdb-reader";
import { sleep } from "../../core/abort.ts";
import { BioError } from "../../core/errors.ts";
import { clause } from "../../core/sentence.ts";
import { checkSpecIdentifiers, evaluateSelect, type SelectSpec } from "./select-spec.ts";
import type { ColumnInfo, QueryOptions, SqlClient, SqlRow, TableInfo } from "./sql-client.ts";

type AccessConnection = { readonly path: string; readonly password?: string | undefined };

interface Snapshot {
  readonly mtimeMs: number;
  readonly size: number;
  readonly reader: MDBReader;
  readonly names: ReadonlyMap<string, string>;
  readonly rows: Map<string, Record<string, unknown>[]>;
}

const ATTEMPTS = 4;

/** Access keeps wall-clock times with no zone; mdb-reader hands them over as a Date whose UTC fields are that time. */
function naive(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().slice(0, 19).replace("T", " ");
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/**
 * An MS Access .mdb/.accdb, which the attendance software keeps open and writes while we read. Each change of the
 * file (mtime or size) is copied to a private snapshot, checked to be unchanged across the copy, parsed whole
 * (mdb-reader reads the file in memory), and queried there; between changes nothing is re-read.
 */
export class AccessClient implements SqlClient {
  readonly engine = "access";
  readonly dialect = undefined;
  readonly #path: string;
  readonly #password: string | undefined;
  #snapshot: Snapshot | undefined;

  private constructor(c: AccessConnection) {
    this.#path = c.path;
    this.#password = c.password;
  }

  static async open(c: AccessConnection, signal: AbortSignal): Promise<AccessClient> {
    const client = new AccessClient(c);
    await client.#current(signal);
    return client;
  }

  async #current(signal: AbortSignal): Promise<Snapshot> {
    let last: unknown;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      signal.throwIfAborted();
      let before: Awaited<ReturnType<typeof stat>>;
      try {
        before = await stat(this.#path);
      } catch (error) {
        throw new BioError(
          "DB_CONNECT",
          `Cannot read the Access database ${this.#path}: ${clause((error as Error).message)}.`,
          {
            cause: error,
            hint: "Check the path in the source config and that the service account may read the file.",
          },
        );
      }
      const snap = this.#snapshot;
      if (snap && snap.mtimeMs === before.mtimeMs && snap.size === before.size) return snap;
      const dir = await mkdtemp(join(tmpdir(), "bioapi-access-"));
      try {
        const copy = join(dir, basename(this.#path));
        await copyFile(this.#path, copy);
        const after = await stat(this.#path);
        // Written during the copy: the copy may be torn. Try again once the writer is done.
        if (after.mtimeMs !== before.mtimeMs || after.size !== before.size) {
          last = new Error("the file changed while it was copied");
        } else {
          const reader = new MDBReader(await readFile(copy, { signal }), { password: this.#password });
          const names = new Map(reader.getTableNames().map((n) => [n.toLowerCase(), n]));
          const next: Snapshot = { mtimeMs: before.mtimeMs, size: before.size, reader, names, rows: new Map() };
          this.#snapshot = next;
          return next;
        }
      } catch (error) {
        if (signal.aborted) throw error;
        if (/password/i.test((error as Error).message)) {
          throw new BioError("DB_AUTH", `The Access database ${this.#path} refused the password.`, {
            cause: error,
            hint: "Set connection.password to the database password.",
          });
        }
        last = error;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      await sleep(200 * attempt, signal);
    }
    throw new BioError(
      "DB_QUERY",
      `Cannot get a consistent copy of the Access database ${this.#path}: ${(last as Error)?.message ?? last}.`,
      {
        cause: last,
        hint: "The attendance software may be writing continuously; the source retries with backoff.",
      },
    );
  }

  #rows(snap: Snapshot, name: string): Record<string, unknown>[] {
    let rows = snap.rows.get(name);
    if (!rows) {
      rows = snap.reader
        .getTable(name)
        .getData()
        .map((row) => {
          const out: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(row)) out[k] = naive(v);
          return out;
        });
      snap.rows.set(name, rows);
    }
    return rows;
  }

  async select(spec: SelectSpec, options: QueryOptions): Promise<SqlRow[]> {
    checkSpecIdentifiers(spec);
    const snap = await this.#current(options.signal);
    const name = snap.names.get(spec.table.toLowerCase());
    if (!name) throw new BioError("DB_SCHEMA", `Table "${spec.table}" is gone from ${this.#path}.`);
    return evaluateSelect(this.#rows(snap, name), spec);
  }

  async describe(table: string, options: QueryOptions): Promise<TableInfo | undefined> {
    const snap = await this.#current(options.signal);
    const name = snap.names.get(table.toLowerCase());
    if (!name) return undefined;
    const columns: ColumnInfo[] = snap.reader
      .getTable(name)
      .getColumns()
      .map((c) => ({ name: c.name, type: String(c.type).toLowerCase() }));
    return { name, columns };
  }

  async tables(options: QueryOptions): Promise<string[]> {
    return [...(await this.#current(options.signal)).names.values()].sort();
  }

  async indexes(): Promise<undefined> {
    return undefined;
  }

  async close(): Promise<void> {
    this.#snapshot = undefined;
  }
}
