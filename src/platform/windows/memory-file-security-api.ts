import { DATA_DIR_SDDL, FILE_ERROR, type FileSecurityApi, SID } from "./file-security-api.ts";
import { failed, ok, type Win32Outcome } from "./registry-api.ts";

type Operation = keyof FileSecurityApi;

/** What the fake records per path: its owner, and its access list as SDDL ("inherited" below a secured root). */
export interface EntrySecurity {
  owner: string;
  dacl: string;
}

/**
 * An NTFS volume's security in memory, with the Win32 rules the installer relies on: paths are case-insensitive, a
 * missing entry is ERROR_FILE_NOT_FOUND (ERROR_PATH_NOT_FOUND when its parent is missing too), a path in `denied`
 * (or below one) answers ERROR_ACCESS_DENIED, and `failNext` injects any other number. `create` plays whoever made
 * the file or folder, so a test can set up one a standard user created with their own access list.
 */
export class MemoryFileSecurityApi implements FileSecurityApi {
  readonly #entries = new Map<string, EntrySecurity>();
  readonly denied = new Set<string>();
  readonly #faults: Array<{ op: Operation; error: number }> = [];
  readonly calls: Array<{ op: Operation; path: string }> = [];
  /** Runs first in createDir: a test's other user, racing the installer between its check and its create. */
  onCreateDir: ((path: string) => void) | undefined;

  create(path: string, security: EntrySecurity): void {
    this.#entries.set(key(path), { ...security });
  }

  securityOf(path: string): EntrySecurity | undefined {
    const e = this.#entries.get(key(path));
    return e ? { ...e } : undefined;
  }

  failNext(op: Operation, error: number): void {
    this.#faults.push({ op, error });
  }

  #fault(op: Operation, path: string): number | undefined {
    const i = this.#faults.findIndex((f) => f.op === op);
    if (i >= 0) return this.#faults.splice(i, 1)[0]?.error;
    const p = key(path);
    if ([...this.denied].some((d) => p === key(d) || p.startsWith(`${key(d)}\\`))) return FILE_ERROR.ACCESS_DENIED;
    if (!this.#entries.has(p)) {
      const parent = p.replace(/\\[^\\]*$/, "");
      return parent !== p && !this.#entries.has(parent) ? FILE_ERROR.PATH_NOT_FOUND : FILE_ERROR.FILE_NOT_FOUND;
    }
    return undefined;
  }

  async owner(path: string): Promise<Win32Outcome<string>> {
    this.calls.push({ op: "owner", path });
    const error = this.#fault("owner", path);
    if (error !== undefined) return failed(error);
    return ok(this.#entries.get(key(path))?.owner ?? "");
  }

  async secure(path: string): Promise<Win32Outcome<void>> {
    this.calls.push({ op: "secure", path });
    const error = this.#fault("secure", path);
    if (error !== undefined) return failed(error);
    const root = key(path);
    for (const [p, e] of this.#entries) {
      if (p === root) Object.assign(e, { owner: SID.ADMINISTRATORS, dacl: DATA_DIR_SDDL.replace(/^O:BA/, "") });
      else if (p.startsWith(`${root}\\`)) Object.assign(e, { owner: SID.ADMINISTRATORS, dacl: "inherited" });
    }
    return ok(undefined);
  }

  /** Paths that are junctions or symbolic links. */
  readonly links = new Set<string>();

  async linkOnPath(path: string): Promise<string | undefined> {
    for (let p = key(path); ; ) {
      if ([...this.links].some((l) => key(l) === p)) return p;
      const parent = p.replace(/\\[^\\]*$/, "");
      if (parent === p) return undefined;
      p = parent;
    }
  }

  /** The account the process runs as: an administrator's own SID by default (install runs elevated). */
  selfSid = "S-1-5-21-1004336348-1177238915-682003330-500";

  async self(): Promise<Win32Outcome<string>> {
    return ok(this.selfSid);
  }

  async createDir(path: string): Promise<Win32Outcome<void>> {
    this.calls.push({ op: "createDir", path });
    this.onCreateDir?.(path);
    const error = this.#fault("createDir", path);
    if (error === undefined) return failed(FILE_ERROR.ALREADY_EXISTS);
    if (error !== FILE_ERROR.FILE_NOT_FOUND) return failed(error);
    this.#entries.set(key(path), { owner: SID.ADMINISTRATORS, dacl: DATA_DIR_SDDL.replace(/^O:BA/, "") });
    return ok(undefined);
  }
}

/** Windows paths compare case-insensitively; either separator, no trailing one. */
function key(path: string): string {
  return path.replaceAll("/", "\\").replace(/\\+$/, "").toUpperCase();
}
