import { type DbErrorContext, dbError } from "./db-errors.ts";
import { guardQuery } from "./query-guard.ts";
import type { QueryOptions, SqlRow } from "./sql-client.ts";

/** What a server client's pool does for one query; `pooledQuery` decides when each is called. */
export interface PooledConnection<C> {
  /** A connection from the pool (opened, or waited for). */
  acquire(): Promise<C>;
  /** The statement on that connection. */
  run(conn: C): Promise<SqlRow[]>;
  /**
   * The query gave up (abort or timeout): tell the server to stop the statement running on `conn`, if any. Dropping
   * the socket alone leaves it running until the server's own statement limit.
   */
  cancel(conn: C | undefined): void;
  /** Back to the pool, or dropped (`destroy`: after a failure or a cancel the connection is not trusted again). */
  release(conn: C, destroy: boolean): void;
  /**
   * A connection handed over after the query gave up was never used: dropped at once, or given back to the pool
   * (a pool of our own whose waiters would otherwise wait for a new connection to open).
   */
  readonly unused: "drop" | "reuse";
  /** "PostgreSQL", "MySQL", "SQL Server": how the timeout's error names the engine. */
  readonly engine: string;
  readonly context: DbErrorContext;
}

/**
 * One query on a pooled connection, bounded by the signal and the timeout (guardQuery): the connection is released
 * exactly once (dropped if the query failed or gave up), and driver errors become BioErrors that name the server,
 * never the password. An abort rejects with the signal's reason as it is.
 */
export async function pooledQuery<C>(
  pool: PooledConnection<C>,
  options: QueryOptions,
  table?: string,
): Promise<SqlRow[]> {
  options.signal.throwIfAborted();
  let conn: C | undefined;
  let released = false;
  // Set when the guard gave up: a connection the pool hands over afterwards is not used.
  let abandoned = false;
  const release = (destroy: boolean) => {
    if (released || conn === undefined) return;
    released = true;
    pool.release(conn, destroy);
  };
  const work = (async () => {
    const c = await pool.acquire();
    if (abandoned || options.signal.aborted) {
      pool.release(c, pool.unused === "drop");
      throw options.signal.aborted ? options.signal.reason : new Error("abandoned");
    }
    conn = c;
    return pool.run(c);
  })();
  try {
    return await guardQuery(
      work,
      options,
      () => {
        abandoned = true;
        pool.cancel(conn);
        release(true);
      },
      () => `A ${pool.engine} query on ${pool.context.where}`,
    );
  } catch (error) {
    release(true);
    if (options.signal.aborted) throw error;
    throw dbError(error, { ...pool.context, table });
  } finally {
    release(false);
  }
}
