import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { atomicWrite } from "../core/atomic-write.ts";
import { BioError } from "../core/errors.ts";
import { open, seal } from "./envelope.ts";
import type { KeyProtector } from "./secret-store.ts";

const KEY_BYTES = 32;

/**
 * Wraps the data key with a key-encryption key kept in a file only its owner may read (0600). The file is the
 * Linux fallback when systemd-creds is unavailable; on Windows DPAPI replaces it.
 */
export class KeyFileProtector implements KeyProtector {
  readonly name = "key-file";
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  async #kek(create: boolean): Promise<Buffer> {
    try {
      const info = await stat(this.#path);
      if (process.platform !== "win32" && (info.mode & 0o077) !== 0) {
        throw new BioError(
          "SECRET_CORRUPT",
          `The key file ${this.#path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}).`,
          {
            hint: `Restrict it: chmod 600 ${this.#path}`,
          },
        );
      }
      const key = await readFile(this.#path);
      if (key.length !== KEY_BYTES) {
        throw new BioError(
          "SECRET_CORRUPT",
          `The key file ${this.#path} has ${key.length} bytes, expected ${KEY_BYTES}.`,
          {
            hint: "Restore it from backup, or enroll again with --force (bioapi enroll --force ...).",
          },
        );
      }
      return key;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      if (!create) {
        throw new BioError(
          "SECRET_MISSING",
          `The key file ${this.#path} is missing, so the stored credentials cannot be opened.`,
          {
            hint: "Restore it from backup, or enroll again with --force (the old secrets file is kept aside).",
          },
        );
      }
    }
    const key = randomBytes(KEY_BYTES);
    // "create": never overwrite a key another process just created (use that one), and never leave a short key
    // behind a crash: the file appears whole or not at all.
    if (!(await atomicWrite(this.#path, key, { existing: "create" }))) return this.#kek(false);
    return key;
  }

  async protect(dataKey: Uint8Array): Promise<Buffer> {
    return seal(await this.#kek(true), dataKey, "cams-bioapi/data-key");
  }

  async unprotect(blob: Uint8Array): Promise<Buffer> {
    return open(await this.#kek(false), blob, "cams-bioapi/data-key", "data key");
  }
}

/** Holds the key-encryption key in memory: for contract tests of the envelope store. */
export class MemoryKeyProtector implements KeyProtector {
  readonly name = "memory";
  readonly #kek = randomBytes(KEY_BYTES);

  async protect(dataKey: Uint8Array): Promise<Buffer> {
    return seal(this.#kek, dataKey, "cams-bioapi/data-key");
  }

  async unprotect(blob: Uint8Array): Promise<Buffer> {
    return open(this.#kek, blob, "cams-bioapi/data-key", "data key");
  }
}
