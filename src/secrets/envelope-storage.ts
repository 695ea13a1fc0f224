import { readFile } from "node:fs/promises";
import { atomicWrite } from "../core/atomic-write.ts";
import type { RegistryPort } from "./registry.ts";

/** Where the envelope document lives. It is ciphertext plus the wrapped data key: never plaintext. */
export interface EnvelopeStorage {
  /** For messages: the file path or the registry value. */
  readonly where: string;
  read(): Promise<string | undefined>;
  write(text: string): Promise<void>;
}

/** A 0600 file, replaced atomically ({@link atomicWrite}: exclusive random temp file, fsync, rename). */
export class FileEnvelopeStorage implements EnvelopeStorage {
  readonly where: string;

  constructor(path: string) {
    this.where = path;
  }

  async read(): Promise<string | undefined> {
    try {
      return await readFile(this.where, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  async write(text: string): Promise<void> {
    await atomicWrite(this.where, text);
  }
}

/**
 * One REG_BINARY value under an HKLM key whose owner and access list admit only SYSTEM and Administrators. A
 * registry value write is atomic, so no temp-and-rename dance is needed. The key is created and its access list set
 * once per process, before the first write.
 */
export class RegistryEnvelopeStorage implements EnvelopeStorage {
  readonly where: string;
  readonly #registry: RegistryPort;
  readonly #key: string;
  readonly #value: string;
  #keyReady = false;

  constructor(registry: RegistryPort, key: string, value: string) {
    this.#registry = registry;
    this.#key = key;
    this.#value = value;
    this.where = `${key}\\${value}`;
  }

  async read(): Promise<string | undefined> {
    return (await this.#registry.getBinary(this.#key, this.#value))?.toString("utf8");
  }

  async write(text: string): Promise<void> {
    if (!this.#keyReady) {
      await this.#registry.secureKey(this.#key);
      this.#keyReady = true;
    }
    // Compact JSON: registry values are meant to stay small (the envelope is about 1 KB).
    await this.#registry.setBinary(this.#key, this.#value, Buffer.from(JSON.stringify(JSON.parse(text)), "utf8"));
  }
}
