import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BioError } from "../core/errors.ts";

/** Who holds a data directory, as the holder recorded it beside the lock. */
export interface LockHolder {
  readonly pid: number;
  /** `run` (a connector) or `enroll`. */
  readonly command: string;
  readonly since: string;
}

const LOCK_FILE = "instance.lock";
const HOLDER_FILE = "instance.lock.json";

/**
 * One connector per data directory, enforced by the OS. SQLite in `locking_mode = EXCLUSIVE` keeps an exclusive
 * byte-range lock on `instance.lock` (fcntl on POSIX, LockFileEx on Windows) for as long as the connection is open,
 * and the kernel drops it when the process ends in any way, kill -9 included — unlike a pid file, it can never go
 * stale. The pid beside it is only a label for the error message; the lock is what decides.
 */
export class InstanceLock {
  readonly #db: DatabaseSync;
  readonly #holderFile: string;
  #released = false;

  private constructor(db: DatabaseSync, holderFile: string) {
    this.#db = db;
    this.#holderFile = holderFile;
  }

  /** Takes the data directory for this process, or throws DATA_DIR_IN_USE naming the pid that holds it. */
  static acquire(dir: string, command: string): InstanceLock {
    const lock = InstanceLock.#tryAcquire(dir);
    if (!lock) throw inUse(dir, InstanceLock.holder(dir));
    const holder: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
    writeFileSync(lock.#holderFile, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
    return lock;
  }

  /** The process holding `dir`, or null when nobody does (the lock is taken and dropped at once to find out). */
  static probe(dir: string): LockHolder | { readonly pid: null } | null {
    const lock = InstanceLock.#tryAcquire(dir);
    if (lock) {
      lock.#db.close();
      return null;
    }
    return InstanceLock.holder(dir) ?? { pid: null };
  }

  /** What the holder wrote; undefined while it is still starting, or when the file belongs to a dead process. */
  static holder(dir: string): LockHolder | undefined {
    try {
      const holder = JSON.parse(readFileSync(join(dir, HOLDER_FILE), "utf8")) as LockHolder;
      return isAlive(holder.pid) ? holder : undefined;
    } catch {
      return undefined;
    }
  }

  static #tryAcquire(dir: string): InstanceLock | undefined {
    // timeout 0: a held lock answers SQLITE_BUSY at once instead of waiting for it.
    const db = new DatabaseSync(join(dir, LOCK_FILE), { timeout: 0 });
    try {
      // The journal in memory: the file holds no data, so there is nothing for a crash to leave half-written and no
      // -journal file beside it. (node:sqlite's defensive mode refuses journal_mode = OFF.)
      db.exec("PRAGMA journal_mode = MEMORY");
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      // The first write transaction takes the EXCLUSIVE lock; in this locking mode it is kept after COMMIT.
      db.exec("BEGIN EXCLUSIVE");
      db.exec("COMMIT");
      return new InstanceLock(db, join(dir, HOLDER_FILE));
    } catch (error) {
      db.close();
      if (isBusy(error)) return undefined;
      throw new BioError("STORE", `Cannot lock the data directory ${dir}: ${(error as Error).message}.`, {
        cause: error,
        hint: "Check that the data directory is writable by this account.",
      });
    }
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    rmSync(this.#holderFile, { force: true });
    this.#db.close();
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: number }).errcode;
  // SQLITE_BUSY (5) or SQLITE_LOCKED (6), with or without extended bits.
  return code !== undefined && ((code & 0xff) === 5 || (code & 0xff) === 6);
}

function isAlive(pid: unknown): boolean {
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another account's process.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function inUse(dir: string, holder: LockHolder | undefined): BioError {
  const who = holder
    ? `${holder.command === "enroll" ? "bioapi enroll" : "a connector"} (pid ${holder.pid}, since ${holder.since})`
    : "another process (still starting; its pid is not recorded yet)";
  return new BioError("DATA_DIR_IN_USE", `The data directory ${dir} is in use by ${who}.`, {
    context: { pid: holder?.pid },
    hint: holder
      ? `Stop pid ${holder.pid} first (bioapi service stop, or end that process). Two connectors on one directory would read and deliver every punch twice.`
      : "Wait a moment and try again, or stop the other connector first.",
  });
}
