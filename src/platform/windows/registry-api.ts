/**
 * The Win32 registry surface the secret store needs, as a port: the Windows implementation calls advapi32 through
 * koffi (src/platform/windows/koffi-registry-api.ts), the in-memory one (memory-registry-api.ts) keeps the same
 * contract for tests on Linux. Failures are Win32 error numbers, never message text: the numbers are the same in
 * every Windows display language, the text is not.
 *
 * Paths are below HKEY_LOCAL_MACHINE (e.g. SOFTWARE\CamsBioApi), always in the 64-bit view.
 */
export interface RegistryApi {
  /**
   * RegCreateKeyExW, then RegSetKeySecurity: creates the key, or opens it, and sets its owner and access list to
   * `sddl` either way, so a key created earlier with looser rights is tightened on the first write.
   */
  createKey(path: string, sddl: string): Promise<Win32Outcome<"created" | "opened">>;
  /** RegSetValueExW with REG_BINARY. The key must exist. */
  setBinary(path: string, name: string, data: Uint8Array): Promise<Win32Outcome<void>>;
  /** RegOpenKeyExW + RegQueryValueExW (size query, then read): the value's type and bytes. */
  query(path: string, name: string): Promise<Win32Outcome<RegistryValue>>;
  /** RegDeleteValueW. */
  deleteValue(path: string, name: string): Promise<Win32Outcome<void>>;
}

export interface RegistryValue {
  readonly type: number;
  readonly data: Buffer;
}

export type Win32Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: number };

export const ok = <T>(value: T): Win32Outcome<T> => ({ ok: true, value });
export const failed = <T>(error: number): Win32Outcome<T> => ({ ok: false, error });

/** The Win32 error numbers the registry calls return and we act on (winerror.h). */
export const WIN32_ERROR = {
  SUCCESS: 0,
  FILE_NOT_FOUND: 2,
  ACCESS_DENIED: 5,
  INVALID_HANDLE: 6,
  NOT_ENOUGH_MEMORY: 8,
  INVALID_PARAMETER: 87,
  MORE_DATA: 234,
  REGISTRY_CORRUPT: 1015,
  KEY_DELETED: 1018,
  PRIVILEGE_NOT_HELD: 1314,
  INVALID_SECURITY_DESCR: 1338,
  NO_SYSTEM_RESOURCES: 1450,
} as const;

/** For messages only: the symbolic name of a Win32 error number, when it is one we know. */
export function win32ErrorName(error: number): string | undefined {
  const entry = Object.entries(WIN32_ERROR).find(([, n]) => n === error);
  return entry ? `ERROR_${entry[0]}` : undefined;
}

export const REG_TYPE = { SZ: 1, EXPAND_SZ: 2, BINARY: 3, DWORD: 4, MULTI_SZ: 7, QWORD: 11 } as const;

/** For messages only. */
export function regTypeName(type: number): string {
  const entry = Object.entries(REG_TYPE).find(([, n]) => n === type);
  return entry ? `REG_${entry[0]}` : `type ${type}`;
}

/**
 * One RegQueryValueExW call: `data` null asks for the size only. Returns the error number and writes the type and
 * the size (needed, or written) into `out`.
 */
export type RawQuery = (data: Buffer | null, out: { type: number; size: number }) => number;

/**
 * The size-then-read protocol of RegQueryValueExW. Another writer can grow the value between the two calls; the
 * read then answers ERROR_MORE_DATA with the new size, and we ask again (a bounded number of times, so a value
 * rewritten in a tight loop ends in an error rather than a hang).
 */
export function queryInTwoCalls(raw: RawQuery, attempts = 4): Win32Outcome<RegistryValue> {
  const out = { type: 0, size: 0 };
  let rc = raw(null, out);
  if (rc !== WIN32_ERROR.SUCCESS) return failed(rc);
  for (let i = 0; i < attempts; i++) {
    const buffer = Buffer.alloc(out.size);
    const offered = out.size;
    // A zero-length value needs no second call, and passing an empty buffer would read as a size query again.
    if (offered === 0) return ok({ type: out.type, data: buffer });
    rc = raw(buffer, out);
    if (rc === WIN32_ERROR.SUCCESS)
      return ok({ type: out.type, data: buffer.subarray(0, Math.min(out.size, offered)) });
    if (rc !== WIN32_ERROR.MORE_DATA) return failed(rc);
  }
  return failed(WIN32_ERROR.MORE_DATA);
}

/**
 * The owner and access list of the secrets key: owner Administrators; SYSTEM and Administrators full control,
 * inherited by subkeys; nothing inherited from SOFTWARE (P, protected). The same as the installer's PowerShell.
 */
export const SECRETS_KEY_SDDL = "O:BAG:SYD:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)";
