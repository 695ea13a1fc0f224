/**
 * Where the node's credentials live, encrypted at rest. Backends: a 0600 key file (Linux / development), memory
 * (tests), and later Windows DPAPI + registry. One contract suite runs against each.
 */
export interface SecretStore {
  readonly backend: string;
  get(name: string): Promise<Buffer | undefined>;
  set(name: string, value: Uint8Array): Promise<void>;
  delete(name: string): Promise<void>;
}

/** Protects the data key that encrypts the secrets (envelope encryption). */
export interface KeyProtector {
  readonly name: string;
  protect(dataKey: Uint8Array): Promise<Buffer>;
  unprotect(blob: Uint8Array): Promise<Buffer>;
}
