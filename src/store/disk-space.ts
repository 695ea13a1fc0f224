import { closeSync, fsyncSync, openSync, rmSync, statfsSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { sleep } from "../core/abort.ts";
import { Backoff } from "../core/backoff.ts";
import type { Clock } from "../core/clock.ts";
import { BioError, isDiskFullError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";

export const DISK_STATES = ["ok", "full"] as const;
export type DiskState = (typeof DISK_STATES)[number];

export interface DiskSpaceStatus {
  readonly state: DiskState;
  /** The data directory. */
  readonly dataDir: string;
  /** The mount point (Windows: the drive) that holds the data directory: where room must be made. */
  readonly volume: string;
  /** When the disk was found full, or null while it is not. */
  readonly since: string | null;
  /** Bytes this account may still write on the volume, or null where the platform does not say. */
  readonly freeBytes: number | null;
}

/**
 * Writes `bytes` to `path` (made durable when `durable`: a file system with delayed allocation may accept a write
 * and refuse only when the data must land), then removes the file; throws as the file system refuses.
 */
export type ProbeWrite = (path: string, bytes: number, durable: boolean) => void;

export interface DiskSpaceOptions {
  readonly dir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * The probe's size. Room for a few of the store's transactions, not one byte: a volume with a few kB free passes a
   * tiny write and fails the next commit, and the connector would flap between full and resumed.
   */
  readonly probeBytes?: number;
  /** The file system port; tests inject one that refuses writes. */
  readonly write?: ProbeWrite;
  /** First and longest wait between probes while the disk is full. */
  readonly probeInitialMs?: number;
  readonly probeMaxMs?: number;
  readonly random?: () => number;
}

export const PROBE_BYTES = 1024 * 1024;
const PROBE_FILE = ".disk-probe";
/** A disk that stayed usable this long after a resume starts its probe backoff afresh when it fills again. */
const BACKOFF_RESET_MS = 60_000;

export const writeProbeFile: ProbeWrite = (path, bytes, durable) => {
  // Never written through a link or into a file someone left there: the name is removed (a link itself, not what it
  // points at), then created exclusively. A link to connector.db must not get a megabyte of zeros.
  rmSync(path, { force: true });
  const fd = openSync(path, "wx", 0o600);
  try {
    const chunk = Buffer.alloc(Math.min(bytes, 64 * 1024));
    for (let written = 0; written < bytes; )
      written += writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written));
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
};

/**
 * The data disk as a state of the connector, not a one-off error. A write that fails for want of room (ENOSPC,
 * EDQUOT, SQLITE_FULL) turns the state to `full`, once, however many writers hit it: sources stop reading and the
 * shipper stops sending until a probe write succeeds again. Nothing is lost meanwhile: what a source did not commit
 * is still in the device or database, and what the cloud acknowledged is held by the shipper until it can be
 * committed.
 */
export class DiskSpace {
  readonly #o: DiskSpaceOptions;
  readonly #write: ProbeWrite;
  readonly #changed = new Notifier();
  readonly #backoff: Backoff;
  #volume: string | undefined;
  #fullSince: number | null = null;
  #roomSince: number | null = null;

  constructor(options: DiskSpaceOptions) {
    this.#o = options;
    this.#write = options.write ?? writeProbeFile;
    this.#backoff = new Backoff({
      initialMs: options.probeInitialMs ?? 1000,
      maxMs: options.probeMaxMs ?? 30_000,
      random: options.random ?? Math.random,
    });
  }

  get isFull(): boolean {
    return this.#fullSince !== null;
  }

  get dir(): string {
    return this.#o.dir;
  }

  /** The mount point holding the data directory, found once (walking up while the device stays the same). */
  get volume(): string {
    this.#volume ??= volumeOf(this.#o.dir);
    return this.#volume;
  }

  /**
   * A write to the data directory failed. When for want of room, the connector is now full and the STORE_FULL error
   * is returned; any other failure is returned as it was. A SQLite I/O error (EDQUOT reaches SQLite as one) is
   * settled by a probe write, which tells a spent quota from a failing disk.
   */
  fail(error: unknown): unknown {
    if (!isDiskFullError(error)) {
      if (!isSqliteIoError(error)) return error;
      const probe = this.#tryWrite();
      if (probe === undefined || !isDiskFullError(probe)) return error;
    }
    this.#markFull(error);
    return this.error(error);
  }

  /** The STORE_FULL error for the current volume, e.g. for a start that cannot write. */
  error(cause?: unknown): BioError {
    return new BioError("STORE_FULL", `The data disk is full (STORE_FULL): cannot write to ${this.#o.dir}.`, {
      cause,
      context: { volume: this.volume },
      hint: `Free space on ${this.#where()}; the connector resumes by itself once there is room, and nothing is lost.`,
    });
  }

  /** The one line a start on a full disk ends with. */
  startError(cause?: unknown): BioError {
    return new BioError("STORE_FULL", "The data disk is full (STORE_FULL): the connector cannot start.", {
      cause,
      context: { volume: this.volume },
      hint: `Free space on ${this.#where()}, then start it again (a service manager does so by itself); the punches already collected are kept.`,
    });
  }

  /** A probe write that changes no state and logs nothing: the refusal, or undefined when there is room. */
  tryWrite(): unknown {
    // Not made durable: a start on a busy disk must not wait on an fsync, and a local file system refuses the write
    // itself when it has no room. The probes of a full disk do wait for it.
    return this.#tryWrite(false);
  }

  /** "/var/lib (the volume holding /var/lib/bioapi)", or just the directory when it is a volume of its own. */
  #where(): string {
    return this.volume === this.#o.dir ? this.volume : `${this.volume} (the volume holding ${this.#o.dir})`;
  }

  /** Writes the probe now; true when there is room. Clears the full state on success. */
  probe(): boolean {
    const error = this.#tryWrite();
    if (error === undefined) {
      this.#markRoom();
      return true;
    }
    if (isDiskFullError(error)) this.#markFull(error);
    else this.#o.logger.warn("The data disk probe failed for a reason other than space.", { error });
    return false;
  }

  #tryWrite(durable = true): unknown {
    try {
      // One fixed name: a probe cut short by a kill leaves at most one file, which the next probe overwrites.
      this.#write(join(this.#o.dir, PROBE_FILE), this.#o.probeBytes ?? PROBE_BYTES, durable);
      return undefined;
    } catch (error) {
      return error ?? new Error("probe failed");
    }
  }

  #markFull(error: unknown): void {
    if (this.#fullSince !== null) return;
    const now = this.#o.clock.now();
    if (this.#roomSince === null || now - this.#roomSince >= BACKOFF_RESET_MS) this.#backoff.reset();
    this.#fullSince = now;
    this.#o.logger.error(
      `The data disk is full: sources are paused and delivery is held. Free space on ${this.#where()}; everything resumes by itself once there is room.`,
      { code: "STORE_FULL", volume: this.volume, error },
    );
    this.#changed.notify();
  }

  #markRoom(): void {
    if (this.#fullSince === null) return;
    const now = this.#o.clock.now();
    this.#o.logger.info("The data disk has room again: resuming.", {
      volume: this.volume,
      fullForMs: Math.max(0, now - this.#fullSince),
    });
    this.#fullSince = null;
    this.#roomSince = now;
    this.#changed.notify();
  }

  /** Resolves at once while there is room, else when a probe finds some. Rejects only on abort. */
  async waitRoom(signal: AbortSignal): Promise<void> {
    while (this.isFull) await this.#changed.wait(60_000, signal);
  }

  /** Resolves at the next change of state or after `ms`. */
  waitChange(ms: number, signal: AbortSignal): Promise<void> {
    return this.#changed.wait(ms, signal);
  }

  status(): DiskSpaceStatus {
    return {
      state: this.isFull ? "full" : "ok",
      dataDir: this.#o.dir,
      volume: this.volume,
      since: this.#fullSince === null ? null : new Date(this.#fullSince).toISOString(),
      freeBytes: freeBytes(this.#o.dir),
    };
  }

  /**
   * The probe loop, started through spawnTask: idle while there is room, probing with backoff while full. The probe
   * does not first give back the store's own write-ahead log: that room would be taken again by the next commits,
   * and the connector would flap between full and resumed on a disk nobody freed (the log is kept near 1 MiB).
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!this.isFull) {
        await this.#changed.wait(60_000, signal);
        continue;
      }
      await sleep(this.#backoff.next(), signal);
      this.probe();
    }
  }
}

function isSqliteIoError(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  // SQLITE_IOERR (10), with any extended code (write, fsync, truncate…).
  return typeof errcode === "number" && (errcode & 0xff) === 10;
}

/** The mount point of `dir`: the highest ancestor on the same device. */
export function volumeOf(dir: string): string {
  try {
    const dev = statSync(dir).dev;
    let current = dir;
    for (;;) {
      const parent = dirname(current);
      if (parent === current || statSync(parent).dev !== dev) return current;
      current = parent;
    }
  } catch {
    return dir;
  }
}

function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}
