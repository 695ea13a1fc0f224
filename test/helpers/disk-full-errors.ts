import { closeSync, openSync, writeSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";

/** A real ENOSPC: /dev/full refuses every write with it. */
export function enospc(): Error {
  const fd = openSync("/dev/full", "w");
  try {
    writeSync(fd, Buffer.alloc(1));
  } catch (error) {
    return error as Error;
  } finally {
    closeSync(fd);
  }
  throw new Error("/dev/full accepted a write");
}

/** A real SQLITE_FULL, as the store meets it on a full disk: a database held to two pages by max_page_count. */
export function sqliteFull(): Error {
  const db = new DatabaseSync(":memory:");
  try {
    db.exec("PRAGMA max_page_count = 2; CREATE TABLE t (x TEXT)");
    db.exec(`INSERT INTO t VALUES ('${"x".repeat(10_000)}')`);
  } catch (error) {
    return error as Error;
  } finally {
    db.close();
  }
  throw new Error("SQLite accepted the write");
}
