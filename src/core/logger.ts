import { describeError } from "./errors.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(namespace: string): Logger;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: "json" | "pretty";
  readonly write?: (line: string) => void;
  /** Values that must never appear in output (node secret, passwords); replaced by "[redacted]". */
  readonly redact?: Redactor;
}

const SECRET_KEY = /secret|password|passwd|token|authorization|signature|commkey|key$/i;

/** Holds the secret values known at run time and scrubs them from any text. Shared by logs, errors and status. */
export class Redactor {
  #values = new Set<string>();

  add(value: string | undefined): void {
    if (value && value.length >= 4) this.#values.add(value);
  }

  scrub(text: string): string {
    let out = text;
    for (const value of this.#values) if (out.includes(value)) out = out.split(value).join("[redacted]");
    return out;
  }

  /** Deep copy with secret-looking keys and known secret values replaced. */
  scrubValue(value: unknown, depth = 0): unknown {
    if (depth > 6) return "[deep]";
    if (typeof value === "string") return this.scrub(value);
    if (value instanceof Error) return { ...describeError(value), message: this.scrub(value.message) };
    if (Array.isArray(value)) return value.map((v) => this.scrubValue(v, depth + 1));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value))
        out[k] = SECRET_KEY.test(k) ? "[redacted]" : this.scrubValue(v, depth + 1);
      return out;
    }
    return value;
  }
}

export function createLogger(options: LoggerOptions = {}, namespace = "bioapi"): Logger {
  const level = options.level ?? "info";
  const min = LOG_LEVELS.indexOf(level);
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const redact = options.redact ?? new Redactor();
  const format = options.format ?? "json";

  const log = (lvl: LogLevel, message: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(lvl) < min) return;
    const clean = fields ? (redact.scrubValue(fields) as Record<string, unknown>) : undefined;
    const msg = redact.scrub(message);
    if (format === "json") {
      write(JSON.stringify({ time: new Date().toISOString(), level: lvl, ns: namespace, msg, ...clean }));
    } else {
      const extra = clean && Object.keys(clean).length > 0 ? ` ${JSON.stringify(clean)}` : "";
      write(`${new Date().toISOString().slice(11, 23)} ${lvl.toUpperCase().padEnd(5)} ${namespace}: ${msg}${extra}`);
    }
  };

  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    child: (ns) => createLogger({ ...options, redact }, `${namespace}:${ns}`),
  };
}

/** For tests and library use: drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
