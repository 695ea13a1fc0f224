import { appendFileSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

export interface LogFileOptions {
  /** Rotate when the file would grow past this many bytes. */
  readonly maxBytes?: number;
  /** How many rotated files to keep: NAME.1 (newest) … NAME.keep. */
  readonly keep?: number;
}

export const LOG_FILE_DEFAULTS = { maxBytes: 10 * 1024 * 1024, keep: 5 } as const;

/**
 * MINIMAL log file for the services (issue 5): appends each line to DIR/NAME and rotates by size (NAME.1 … NAME.keep),
 * so a service left alone for years does not fill the disk. Issue 6 brings the real logging stack (pino, rotation
 * by its transport); on merge, take issue 6's version and drop this.
 */
export function logFileWriter(dir: string, name: string, options: LogFileOptions = {}): (line: string) => void {
  const maxBytes = options.maxBytes ?? LOG_FILE_DEFAULTS.maxBytes;
  const keep = Math.max(1, options.keep ?? LOG_FILE_DEFAULTS.keep);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const file = join(dir, name);
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    // Not there yet.
  }
  const rotate = () => {
    rmSync(`${file}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      try {
        renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        // A gap in the sequence is fine.
      }
    }
    renameSync(file, `${file}.1`);
    size = 0;
  };
  return (line: string) => {
    const text = line.endsWith("\n") ? line : `${line}\n`;
    const bytes = Buffer.byteLength(text);
    try {
      if (size > 0 && size + bytes > maxBytes) rotate();
    } catch {
      // Rotation failed (e.g. the file is locked on Windows): keep appending rather than lose the line.
    }
    appendFileSync(file, text, { mode: 0o640 });
    size += bytes;
  };
}
