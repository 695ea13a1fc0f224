import { sentence } from "./sentence.ts";

/**
 * The one error class of the connector. `code` is low-cardinality (it becomes a metric label and appears on the
 * status page); `retriable` tells the caller whether trying again can help; `hint` names the likely fix.
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
  "DATA_DIR_IN_USE",
  "TIMEOUT",
  "ABORTED",
  "USAGE",
  "SERVICE",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface BioErrorOptions {
  readonly retriable?: boolean;
  readonly hint?: string;
  readonly cause?: unknown;
  readonly context?: Readonly<Record<string, string | number | boolean | undefined>>;
}

export class BioError extends Error {
  override readonly name = "BioError";
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly hint: string | undefined;
  readonly context: Readonly<Record<string, string | number | boolean | undefined>>;

  constructor(code: ErrorCode, message: string, options: BioErrorOptions = {}) {
    super(options.hint ? `${sentence(message)} ${options.hint}` : message, { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.hint = options.hint;
    this.context = options.context ?? {};
  }
}

/** Describes any thrown value in one line, for logs and status. */
export function describeError(error: unknown): { code: string; message: string; retriable: boolean } {
  if (error instanceof BioError) return { code: error.code, message: error.message, retriable: error.retriable };
  if (error instanceof Error) {
    if (error.name === "AbortError") return { code: "ABORTED", message: error.message, retriable: true };
    if (error.name === "TimeoutError") return { code: "TIMEOUT", message: error.message, retriable: true };
    return { code: "INTERNAL", message: error.message, retriable: true };
  }
  return { code: "INTERNAL", message: String(error), retriable: true };
}

export function isAbortError(error: unknown): boolean {
  return (
    error instanceof Error && (error.name === "AbortError" || (error instanceof BioError && error.code === "ABORTED"))
  );
}
