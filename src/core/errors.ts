import { sentence } from "./sentence.ts";

/**
 * The one error class of the connector. `code` is low-cardinality (it becomes a metric label and appears on the
 * status page); `hint` names the likely fix. Whether to try again is decided where the failure is understood (a
 * sink's outcome, a source's backoff), not carried on the error.
 */
export const ERROR_CODES = [
  "CONFIG_INVALID",
  "CONFIG_DECRYPT",
  "CONFIG_STALE",
  "CONFIG_FETCH",
  "SECRET_MISSING",
  "SECRET_CORRUPT",
  "SECRET_ACCESS",
  "NOT_ENROLLED",
  "ENROLLMENT_CONFLICT",
  "CLOUD_UNAVAILABLE",
  "CLOUD_REJECTED",
  "CLOUD_TOO_LARGE",
  "CLOUD_AUTH",
  "CLOUD_PROTOCOL",
  "CLOUD_REDIRECT",
  "CLOUD_UNAUTHENTICATED",
  "SINK_UNAVAILABLE",
  "SINK_REJECTED",
  "SINK_AUTH",
  "SINK_PROTOCOL",
  "DB_CONNECT",
  "DB_AUTH",
  "DB_PERMISSION",
  "DB_SCHEMA",
  "DB_QUERY",
  "DEVICE_UNREACHABLE",
  "DEVICE_TIMEOUT",
  "DEVICE_AUTH",
  "DEVICE_BUSY",
  "DEVICE_PROTOCOL",
  "DEVICE_FORMAT",
  "DEVICE_MISMATCH",
  "IDENTIFIER_INVALID",
  "ROW_INVALID",
  "STORE",
  "STORE_FULL",
  "DATA_DIR_IN_USE",
  "TIMEOUT",
  "ABORTED",
  "USAGE",
  "SERVICE",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface BioErrorOptions {
  readonly hint?: string;
  readonly cause?: unknown;
  readonly context?: Readonly<Record<string, string | number | boolean | undefined>>;
}

export class BioError extends Error {
  override readonly name = "BioError";
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly context: Readonly<Record<string, string | number | boolean | undefined>>;

  constructor(code: ErrorCode, message: string, options: BioErrorOptions = {}) {
    super(options.hint ? `${sentence(message)} ${options.hint}` : message, { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.context = options.context ?? {};
  }
}

/** Describes any thrown value in one line, for logs and status. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof BioError) return { code: error.code, message: error.message };
  if (error instanceof Error) {
    if (isDiskFullError(error)) return { code: "STORE_FULL", message: error.message };
    if (error.name === "AbortError") return { code: "ABORTED", message: error.message };
    if (error.name === "TimeoutError") return { code: "TIMEOUT", message: error.message };
    return { code: "INTERNAL", message: error.message };
  }
  return { code: "INTERNAL", message: String(error) };
}

export function isAbortError(error: unknown): boolean {
  return (
    error instanceof Error && (error.name === "AbortError" || (error instanceof BioError && error.code === "ABORTED"))
  );
}

/**
 * The exit code of a command that failed because the data disk is full (sysexits' EX_TEMPFAIL): trying again later
 * can succeed, so the monitor keeps restarting it instead of counting a crash loop.
 */
export const EXIT_STORE_FULL = 75;

/** errno codes of a write refused for want of room: the volume is full, or the account's quota is spent. */
const NO_ROOM_ERRNO: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT"]);
/** SQLITE_FULL: the primary result code SQLite gives when a write finds the disk (or its page limit) full. */
const SQLITE_FULL = 13;

/**
 * Whether `error` (or an error it wraps) is a write that failed for want of space: ENOSPC or EDQUOT from the file
 * system, SQLITE_FULL from SQLite, or a STORE_FULL already named. Nothing else is: a disk that is read-only or
 * failing is a different problem with a different fix.
 */
export function isDiskFullError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && typeof e === "object" && depth < 8; depth++) {
    if (e instanceof BioError && e.code === "STORE_FULL") return true;
    const { code, errcode } = e as { code?: unknown; errcode?: unknown };
    if (typeof code === "string" && NO_ROOM_ERRNO.has(code)) return true;
    if (typeof errcode === "number" && (errcode & 0xff) === SQLITE_FULL) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
