import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import type { Punch } from "../core/punch.ts";
import type { CursorUpdate, CursorValue, EmitResult, QuarantineInput } from "../store/store.ts";

/** What a terminal source knows about the device it reads; shown by `bioapi status`. */
export interface DeviceStatus {
  readonly serial: string;
  readonly address: string;
  readonly model?: string | undefined;
  readonly firmware?: string | undefined;
  readonly records?: number | undefined;
  readonly users?: number | undefined;
  readonly recordCapacity?: number | undefined;
  readonly recordSize?: number | undefined;
  /** The record layout chosen from the log (e.g. "zem500"); it differs between firmwares of one record size. */
  readonly recordLayout?: string | undefined;
  /** Device clock minus host clock, in ms (resolution 1 s); never corrected unless the config asks. */
  readonly clockDriftMs?: number | undefined;
  readonly realtime?: boolean | undefined;
}

/**
 * Work a source knows is ahead of it, in one unit (records or rows) for both numbers, so that done/total and the
 * rate derived from them are true. Terminal: the cursor's record position and the device's record count. Database:
 * rows read and rows counted ahead at the start of a catch-up (counted only when a poll finds a full page).
 */
export interface Backlog {
  readonly done: number;
  readonly total: number;
}

/** Id gaps below a database cursor: rows that may still commit late, and those given up on. */
export interface LateRows {
  /** Ids missing below ids already read, still looked for. */
  readonly openIds: number;
  /** Ids looked for longer than the late-row window and given up: rolled back, or lost. */
  readonly expiredIds: number;
  readonly lastExpiredAt: string | null;
}

/** What a source can tell the status page about itself between polls. */
export interface SourceProgress {
  /** Start of the last poll that completed: everything up to this moment has been read. */
  readonly lastPollAt?: number;
  readonly lastPunchTime?: string;
  readonly device?: DeviceStatus;
  /** A catch-up in progress, or null when it is over. */
  readonly backlog?: Backlog | null;
  readonly lateRows?: LateRows;
}

/**
 * Everything a source may touch. It never writes to the store except through `emit`, which resolves after the
 * punches, the quarantined rows and the next cursor are committed in one transaction.
 */
export interface SourceContext {
  readonly sourceId: string;
  /** The cursors as committed, keyed by device serial. */
  readonly cursors: ReadonlyMap<string, CursorValue>;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly clock: Clock;
  emit(
    punches: readonly Punch[],
    cursor: CursorUpdate | null,
    quarantined?: readonly QuarantineInput[],
  ): Promise<EmitResult>;
  /** Resolves when the source may poll (not paused by lost connectivity). Call before every poll. */
  waitUntilActive(): Promise<void>;
  progress(update: SourceProgress): void;
}

/** A source runs until its signal aborts; a thrown error makes the supervisor restart it with backoff. */
export interface Source {
  run(ctx: SourceContext): Promise<void>;
}
