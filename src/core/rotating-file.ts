import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface RotatingFileOptions {
  readonly dir: string;
  /** Default `bioapi.log`; rotated copies are `bioapi.1.log` (newest) … `bioapi.<maxFiles>.log` (oldest). */
  readonly name?: string;
  /** A file is rotated before a line would take it past this size. Default 10 MiB. */
  readonly maxBytes?: number;
  /** Rotated files kept besides the current one. Default 5, so the logs never take more than 60 MiB. */
  readonly maxFiles?: number;
}

export const LOG_FILE_DEFAULTS = { maxBytes: 10 * 1024 * 1024, maxFiles: 5 } as const;

/**
 * Size-bounded log files, written synchronously: the connector logs a few lines a minute in steady state, and a
 * synchronous write means the last line before a crash is on disk. Rotation is by rename, so a reader tailing
 * `bioapi.log` sees the old file end and a new one begin. Files are 0600: log lines name users and terminals.
 */
export class RotatingFile {
  readonly #dir: string;
  readonly #name: string;
  readonly #maxBytes: number;
  readonly #maxFiles: number;
  #fd: number | undefined;
  #size = 0;
  #failed = false;

  constructor(options: RotatingFileOptions) {
    this.#dir = options.dir;
    this.#name = options.name ?? "bioapi.log";
    this.#maxBytes = Math.max(1024, options.maxBytes ?? LOG_FILE_DEFAULTS.maxBytes);
    this.#maxFiles = Math.max(1, options.maxFiles ?? LOG_FILE_DEFAULTS.maxFiles);
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#open();
  }

  get path(): string {
    return join(this.#dir, this.#name);
  }

  #rotated(n: number): string {
    const dot = this.#name.lastIndexOf(".");
    const stem = dot > 0 ? this.#name.slice(0, dot) : this.#name;
    const ext = dot > 0 ? this.#name.slice(dot) : "";
    return join(this.#dir, `${stem}.${n}${ext}`);
  }

  #open(): void {
    this.#fd = openSync(this.path, "a", 0o600);
    this.#size = fstatSync(this.#fd).size;
  }

  #rotate(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.#rotated(this.#maxFiles), { force: true });
    for (let n = this.#maxFiles - 1; n >= 1; n--) {
      try {
        renameSync(this.#rotated(n), this.#rotated(n + 1));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    renameSync(this.path, this.#rotated(1));
    this.#open();
  }

  write(chunk: string): void {
    // A full or read-only disk must not take the connector down with it: the console still gets every line, and
    // the first failure says so there once.
    if (this.#failed) return;
    try {
      const bytes = Buffer.from(chunk.endsWith("\n") ? chunk : `${chunk}\n`, "utf8");
      if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) {
        try {
          this.#rotate();
        } catch {
          // A rotated file held open elsewhere (a viewer, an antivirus scan on Windows) blocks the renames: keep
          // appending past the size bound and try again at the next line rather than lose the log for good.
          if (this.#fd === undefined) this.#open();
        }
      }
      if (this.#fd === undefined) this.#open();
      this.#size += writeSync(this.#fd as number, bytes);
    } catch (error) {
      this.#failed = true;
      process.stderr.write(
        `bioapi: cannot write the log file ${this.path} (${(error as Error).message}); logging to the console only.\n`,
      );
    }
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
