import { randomBytes } from "node:crypto";
import { BioError } from "../core/errors.ts";
import { open, seal } from "./envelope.ts";
import { type EnvelopeStorage, FileEnvelopeStorage } from "./envelope-storage.ts";
import type { KeyProtector, SecretStore } from "./secret-store.ts";

interface EnvelopeFile {
  readonly format: "cams-bioapi/secrets";
  readonly v: 1;
  readonly protector: string;
  readonly wrappedKey: string;
  /**
   * How many times a forced rotation has replaced the data key; absent means 1 (documents from before the field).
   * Older versions ignore the field, so a downgrade still reads the document.
   */
  readonly keyGeneration?: number;
  readonly entries: Record<string, string>;
}

export interface EnvelopeSecretStoreOptions {
  /**
   * The data-key generation this build requires. A document below it is re-encrypted under a fresh data key on the
   * first use of the store, before anything else is read or written. Windows sets it because envelopes written by
   * earlier versions went through reg.exe's command line, where process-creation auditing may have recorded them.
   */
  readonly keyGeneration?: number;
}

const generationOf = (file: EnvelopeFile): number => file.keyGeneration ?? 1;

/**
 * Envelope encryption in one document (a file, or a registry value on Windows): each secret is sealed with a random data key (AES-256-GCM, the secret's name as
 * associated data); the data key is stored only wrapped by a {@link KeyProtector}. The storage writes atomically, so a
 * crash mid-write leaves the previous document intact.
 */
export class EnvelopeSecretStore implements SecretStore {
  readonly #storage: EnvelopeStorage;
  readonly #protector: KeyProtector;
  readonly #keyGeneration: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #upgraded: Promise<void> | undefined;

  /** A path means a file beside the data (Linux, development); Windows passes the registry storage. */
  constructor(storage: string | EnvelopeStorage, protector: KeyProtector, options: EnvelopeSecretStoreOptions = {}) {
    this.#storage = typeof storage === "string" ? new FileEnvelopeStorage(storage) : storage;
    this.#protector = protector;
    this.#keyGeneration = options.keyGeneration;
  }

  get backend(): string {
    return `envelope+${this.#protector.name}`;
  }

  async #read(): Promise<EnvelopeFile | undefined> {
    const text = await this.#storage.read();
    if (text === undefined) return undefined;
    let parsed: EnvelopeFile;
    try {
      parsed = JSON.parse(text) as EnvelopeFile;
    } catch (error) {
      throw new BioError("SECRET_CORRUPT", `The secrets in ${this.#storage.where} are not valid JSON.`, {
        cause: error,
        hint: "Restore it from backup, or enroll again with --force (the file is kept aside).",
      });
    }
    if (parsed.format !== "cams-bioapi/secrets" || parsed.v !== 1) {
      throw new BioError("SECRET_CORRUPT", `The secrets in ${this.#storage.where} have an unknown format.`, {
        hint: "It may belong to a newer connector version; run that version, or enroll again with --force.",
      });
    }
    return parsed;
  }

  async #write(file: EnvelopeFile): Promise<void> {
    await this.#storage.write(`${JSON.stringify(file, null, 2)}\n`);
  }

  async #dataKey(file: EnvelopeFile): Promise<Buffer> {
    return this.#protector.unprotect(Buffer.from(file.wrappedKey, "base64"));
  }

  /** Serialises read-modify-write cycles so two concurrent set() calls cannot lose one another's entry. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Once per store: a document below the required key generation gets a fresh data key first. A failure (say, a
   * non-elevated prompt that may read but not write) is thrown to the caller and retried on the next call.
   */
  #upgrade(): Promise<void> {
    const target = this.#keyGeneration;
    if (target === undefined) return Promise.resolve();
    this.#upgraded ??= this.#exclusive(async () => {
      const file = await this.#read();
      if (file && generationOf(file) < target) await this.#write(await this.#rotated(file, target));
    }).catch((error: unknown) => {
      this.#upgraded = undefined;
      throw error;
    });
    return this.#upgraded;
  }

  /** Every entry re-sealed under a fresh data key; the old wrapped key is not kept anywhere. */
  async #rotated(file: EnvelopeFile, generation: number): Promise<EnvelopeFile> {
    const oldKey = await this.#dataKey(file);
    const newKey = randomBytes(32);
    const entries: Record<string, string> = {};
    for (const [name, blob] of Object.entries(file.entries)) {
      const aad = `cams-bioapi/secret\n${name}`;
      entries[name] = seal(newKey, open(oldKey, Buffer.from(blob, "base64"), aad, `secret "${name}"`), aad).toString(
        "base64",
      );
    }
    return {
      ...file,
      wrappedKey: (await this.#protector.protect(newKey)).toString("base64"),
      keyGeneration: generation,
      entries,
    };
  }

  async get(name: string): Promise<Buffer | undefined> {
    await this.#upgrade();
    const file = await this.#read();
    const entry = file?.entries[name];
    if (!file || entry === undefined) return undefined;
    return open(
      await this.#dataKey(file),
      Buffer.from(entry, "base64"),
      `cams-bioapi/secret\n${name}`,
      `secret "${name}"`,
    );
  }

  async set(name: string, value: Uint8Array): Promise<void> {
    await this.#upgrade();
    return this.#exclusive(async () => {
      let file = await this.#read();
      if (!file) {
        const dataKey = randomBytes(32);
        file = {
          format: "cams-bioapi/secrets",
          v: 1,
          protector: this.#protector.name,
          wrappedKey: (await this.#protector.protect(dataKey)).toString("base64"),
          ...(this.#keyGeneration !== undefined ? { keyGeneration: this.#keyGeneration } : {}),
          entries: {},
        };
      }
      const key = await this.#dataKey(file);
      const sealed = seal(key, value, `cams-bioapi/secret\n${name}`).toString("base64");
      await this.#write({ ...file, entries: { ...file.entries, [name]: sealed } });
    });
  }

  async delete(name: string): Promise<void> {
    await this.#upgrade();
    return this.#exclusive(async () => {
      const file = await this.#read();
      if (!file || !(name in file.entries)) return;
      const { [name]: _removed, ...rest } = file.entries;
      await this.#write({ ...file, entries: rest });
    });
  }

  /** Re-encrypts every secret under a fresh data key (key rotation); the old wrapped key is gone afterwards. */
  async rotate(): Promise<void> {
    await this.#upgrade();
    return this.#exclusive(async () => {
      const file = await this.#read();
      if (!file) return;
      await this.#write(await this.#rotated(file, Math.max(generationOf(file), this.#keyGeneration ?? 1)));
    });
  }
}
