import { pino } from "pino";
import { describeError } from "./errors.ts";
import { RotatingFile } from "./rotating-file.ts";

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
  /** Console format: one JSON object per line, or one readable line for a person at a terminal. */
  readonly format?: "json" | "pretty";
  /** Console output, one line at a time without the newline; default stderr. */
  readonly write?: (line: string) => void;
  /** Values that must never appear in output (node secret, passwords); replaced by "[redacted]". */
  readonly redact?: Redactor;
  /** Also write JSON lines to rotating files in this directory (see RotatingFile for sizes). */
  readonly dir?: string;
  /** File name in `dir`; default bioapi.log. The connector writes connector.log, the monitor monitor.log. */
  readonly fileName?: string;
  readonly maxFileBytes?: number;
  readonly maxFiles?: number;
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

interface LineSink {
  write(chunk: string): void;
}

/** The fields pino adds itself; everything else on a line is the caller's. */
const OWN_KEYS = new Set(["time", "level", "ns", "msg", "pid"]);

/** `09:14:03.120 WARN  bioapi:source:gate: Terminal clock is off … {"serial":"CKJ1","driftMs":93000}` */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!OWN_KEYS.has(k)) extra[k] = v;
  const time = typeof o.time === "string" ? o.time.slice(11, 23) : "";
  const rest = Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : "";
  return `${time} ${String(o.level ?? "")
    .toUpperCase()
    .padEnd(5)} ${String(o.ns ?? "")}: ${String(o.msg ?? "")}${rest}`;
}

/**
 * pino underneath (one JSON object per line, ISO time, level names), behind the small `Logger` interface the code
 * uses. Redaction happens here, before pino sees a value, so no call site can forget it. Writes are synchronous:
 * a line logged just before a crash or `process.exit` is on disk.
 */
export function createLogger(options: LoggerOptions = {}, namespace = "bioapi"): Logger {
  const redact = options.redact ?? new Redactor();
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const sinks: LineSink[] = [
    options.format === "pretty"
      ? { write: (chunk) => write(prettyLine(chunk)) }
      : { write: (chunk) => write(chunk.endsWith("\n") ? chunk.slice(0, -1) : chunk) },
  ];
  if (options.dir) {
    sinks.push(
      new RotatingFile({
        dir: options.dir,
        ...(options.fileName === undefined ? {} : { name: options.fileName }),
        ...(options.maxFileBytes === undefined ? {} : { maxBytes: options.maxFileBytes }),
        ...(options.maxFiles === undefined ? {} : { maxFiles: options.maxFiles }),
      }),
    );
  }
  const destination: LineSink =
    sinks.length === 1 ? (sinks[0] as LineSink) : { write: (chunk) => sinks.forEach((s) => void s.write(chunk)) };
  const root = pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid },
      messageKey: "msg",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(root, namespace, redact);
}

function wrap(root: pino.Logger, namespace: string, redact: Redactor): Logger {
  const p = root.child({ ns: namespace });
  const log = (level: LogLevel, message: string, fields?: LogFields) => {
    if (!p.isLevelEnabled(level)) return;
    const clean = fields ? (redact.scrubValue(fields) as Record<string, unknown>) : {};
    p[level](clean, redact.scrub(message));
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    // Children hang off the root, not this logger: pino would repeat the "ns" key once per level of nesting.
    child: (ns) => wrap(root, `${namespace}:${ns}`, redact),
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
