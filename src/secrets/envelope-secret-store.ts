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
  readonly entries: Record<string, string>;
}

/**
 * Envelope encryption in one document (a file, or a registry value on Windows): each secret is sealed with a random data key (AES-256-GCM, the secret's name as
 * associated data); the data key is stored only wrapped by a {@link KeyProtector}. The storage writes atomically, so a
 * crash mid-write leaves the previous document intact.
 */
export class EnvelopeSecretStore implements SecretStore {
  readonly #storage: EnvelopeStorage;
  readonly #protector: KeyProtector;
  #queue: Promise<unknown> = Promise.resolve();

  /** A path means a file beside the data (Linux, development); Windows passes the registry storage. */
  constructor(storage: string | EnvelopeStorage, protector: KeyProtector) {
    this.#storage = typeof storage === "string" ? new FileEnvelopeStorage(storage) : storage;
    this.#protector = protector;
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

  async get(name: string): Promise<Buffer | undefined> {
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

  set(name: string, value: Uint8Array): Promise<void> {
    return this.#exclusive(async () => {
      let file = await this.#read();
      if (!file) {
        const dataKey = randomBytes(32);
        file = {
          format: "cams-bioapi/secrets",
          v: 1,
          protector: this.#protector.name,
          wrappedKey: (await this.#protector.protect(dataKey)).toString("base64"),
          entries: {},
        };
      }
      const key = await this.#dataKey(file);
      const sealed = seal(key, value, `cams-bioapi/secret\n${name}`).toString("base64");
      await this.#write({ ...file, entries: { ...file.entries, [name]: sealed } });
    });
  }

  delete(name: string): Promise<void> {
    return this.#exclusive(async () => {
      const file = await this.#read();
      if (!file || !(name in file.entries)) return;
      const { [name]: _removed, ...rest } = file.entries;
      await this.#write({ ...file, entries: rest });
    });
  }

  /** Re-encrypts every secret under a fresh data key (key rotation); the old wrapped key is gone afterwards. */
  rotate(): Promise<void> {
    return this.#exclusive(async () => {
      const file = await this.#read();
      if (!file) return;
      const oldKey = await this.#dataKey(file);
      const newKey = randomBytes(32);
      const entries: Record<string, string> = {};
      for (const [name, blob] of Object.entries(file.entries)) {
        const aad = `cams-bioapi/secret\n${name}`;
        entries[name] = seal(newKey, open(oldKey, Buffer.from(blob, "base64"), aad, `secret "${name}"`), aad).toString(
          "base64",
        );
      }
      await this.#write({ ...file, wrappedKey: (await this.#protector.protect(newKey)).toString("base64"), entries });
    });
  }
}
