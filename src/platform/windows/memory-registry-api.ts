import {
  failed,
  ok,
  REG_TYPE,
  type RegistryApi,
  type RegistryValue,
  WIN32_ERROR,
  type Win32Outcome,
} from "./registry-api.ts";

type Operation = keyof RegistryApi;

/**
 * HKEY_LOCAL_MACHINE in memory, with the Win32 rules the secret store relies on: names are case-insensitive, a
 * missing key or value is ERROR_FILE_NOT_FOUND, a key in `denied` answers ERROR_ACCESS_DENIED (a non-elevated
 * caller), and `failNext` injects any other error number. The same contract suite runs against it and, on Windows,
 * against the koffi implementation.
 */
export class MemoryRegistryApi implements RegistryApi {
  readonly #keys = new Map<string, { sddl: string | undefined; values: Map<string, RegistryValue> }>();
  readonly denied = new Set<string>();
  readonly #faults: Array<{ op: Operation; error: number }> = [];
  /** Every call, for tests that check what was (not) done. */
  readonly calls: Array<{ op: Operation; path: string; name?: string }> = [];

  failNext(op: Operation, error: number): void {
    this.#faults.push({ op, error });
  }

  /** The access list the key was given, as the real registry would report it. */
  sddlOf(path: string): string | undefined {
    return this.#keys.get(path.toUpperCase())?.sddl;
  }

  #fault(op: Operation, path: string): number | undefined {
    const i = this.#faults.findIndex((f) => f.op === op);
    if (i >= 0) return this.#faults.splice(i, 1)[0]?.error;
    return this.#isDenied(path) ? WIN32_ERROR.ACCESS_DENIED : undefined;
  }

  #isDenied(path: string): boolean {
    const p = path.toUpperCase();
    return [...this.denied].some((d) => p === d.toUpperCase() || p.startsWith(`${d.toUpperCase()}\\`));
  }

  async createKey(path: string, sddl: string): Promise<Win32Outcome<"created" | "opened">> {
    this.calls.push({ op: "createKey", path });
    const error = this.#fault("createKey", path);
    if (error !== undefined) return failed(error);
    const existing = this.#keys.get(path.toUpperCase());
    if (existing) {
      existing.sddl = sddl;
      return ok("opened");
    }
    this.#keys.set(path.toUpperCase(), { sddl, values: new Map() });
    return ok("created");
  }

  async setBinary(path: string, name: string, data: Uint8Array): Promise<Win32Outcome<void>> {
    this.calls.push({ op: "setBinary", path, name });
    const error = this.#fault("setBinary", path);
    if (error !== undefined) return failed(error);
    const key = this.#keys.get(path.toUpperCase());
    if (!key) return failed(WIN32_ERROR.FILE_NOT_FOUND);
    key.values.set(name.toUpperCase(), { type: REG_TYPE.BINARY, data: Buffer.from(data) });
    return ok(undefined);
  }

  async query(path: string, name: string): Promise<Win32Outcome<RegistryValue>> {
    this.calls.push({ op: "query", path, name });
    const error = this.#fault("query", path);
    if (error !== undefined) return failed(error);
    const value = this.#keys.get(path.toUpperCase())?.values.get(name.toUpperCase());
    if (!value) return failed(WIN32_ERROR.FILE_NOT_FOUND);
    return ok({ type: value.type, data: Buffer.from(value.data) });
  }

  async deleteValue(path: string, name: string): Promise<Win32Outcome<void>> {
    this.calls.push({ op: "deleteValue", path, name });
    const error = this.#fault("deleteValue", path);
    if (error !== undefined) return failed(error);
    const key = this.#keys.get(path.toUpperCase());
    if (!key?.values.delete(name.toUpperCase())) return failed(WIN32_ERROR.FILE_NOT_FOUND);
    return ok(undefined);
  }

  /** Writes a value of any type, as another program could (the store must refuse what is not REG_BINARY). */
  plant(path: string, name: string, value: RegistryValue): void {
    const key = this.#keys.get(path.toUpperCase()) ?? { sddl: undefined, values: new Map() };
    key.values.set(name.toUpperCase(), value);
    this.#keys.set(path.toUpperCase(), key);
  }
}
