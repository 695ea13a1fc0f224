import type { SecretStore } from "./secret-store.ts";

/** For tests and the in-process demo pieces: nothing touches the disk. */
export class MemorySecretStore implements SecretStore {
  readonly backend = "memory";
  readonly #values = new Map<string, Buffer>();

  async get(name: string): Promise<Buffer | undefined> {
    const value = this.#values.get(name);
    return value ? Buffer.from(value) : undefined;
  }

  async set(name: string, value: Uint8Array): Promise<void> {
    this.#values.set(name, Buffer.from(value));
  }

  async delete(name: string): Promise<void> {
    this.#values.delete(name);
  }
}
