import { BioError } from "../core/errors.ts";
import type { Exec } from "../service/exec.ts";

/** The registry operations the secret store needs. Keys are full paths such as HKLM\SOFTWARE\CamsBioApi. */
export interface RegistryPort {
  getBinary(key: string, value: string): Promise<Buffer | undefined>;
  setBinary(key: string, value: string, data: Uint8Array): Promise<void>;
  deleteValue(key: string, value: string): Promise<void>;
}

/** cmd.exe-free execFile still has the 32,767-character command-line limit; hex doubles the size. */
export const REG_EXE_MAX_BYTES = 15_000;

/**
 * reg.exe argument builders. `/reg:64` pins the 64-bit view, so a 32-bit helper never writes to WOW6432Node.
 * Only ciphertext ever reaches these arguments (the envelope is sealed before it is written).
 */
export const regArgs = {
  query: (key: string, value: string): string[] => ["query", key, "/v", value, "/reg:64"],
  add: (key: string, value: string, data: Uint8Array): string[] => [
    "add",
    key,
    "/v",
    value,
    "/t",
    "REG_BINARY",
    "/d",
    Buffer.from(data).toString("hex").toUpperCase(),
    "/f",
    "/reg:64",
  ],
  deleteValue: (key: string, value: string): string[] => ["delete", key, "/v", value, "/f", "/reg:64"],
};

/**
 * Parses `reg query KEY /v VALUE`: a blank line, the key, then "    NAME    REG_TYPE    DATA". The separators are
 * four spaces; the names and types are not localised.
 */
export function parseRegQuery(stdout: string, value: string): { type: string; data: string } | undefined {
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^ {4}(.+?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/.exec(line);
    if (m && m[1]?.toLowerCase() === value.toLowerCase()) return { type: m[2] ?? "", data: (m[3] ?? "").trim() };
  }
  return undefined;
}

/** reg.exe exits 1 for both "not found" and "access denied"; only the English text tells them apart. */
function deniedError(stderr: string, key: string): BioError | undefined {
  if (!/access is denied/i.test(stderr)) return undefined;
  return new BioError("SECRET_ACCESS", `Access to the registry key ${key} was denied.`, {
    hint: "Run bioapi from an elevated prompt (Run as administrator); the key admits only SYSTEM and Administrators.",
  });
}

export class RegExeRegistry implements RegistryPort {
  readonly #exec: Exec;

  constructor(exec: Exec) {
    this.#exec = exec;
  }

  async getBinary(key: string, value: string): Promise<Buffer | undefined> {
    const r = await this.#exec("reg.exe", regArgs.query(key, value), { timeoutMs: 15_000 });
    if (r.code !== 0) {
      const denied = deniedError(r.stderr, key);
      if (denied) throw denied;
      return undefined;
    }
    const parsed = parseRegQuery(r.stdout, value);
    if (!parsed) return undefined;
    if (parsed.type !== "REG_BINARY") {
      throw new BioError("SECRET_CORRUPT", `${key}\\${value} is ${parsed.type}, expected REG_BINARY.`, {
        hint: "Something else wrote this value; enroll again with bioapi enroll --force.",
      });
    }
    return Buffer.from(parsed.data, "hex");
  }

  async setBinary(key: string, value: string, data: Uint8Array): Promise<void> {
    if (data.length > REG_EXE_MAX_BYTES) {
      throw new BioError("SECRET_CORRUPT", `The value ${value} (${data.length} bytes) is too large for reg.exe.`, {
        hint: "Keep secrets small; large configuration belongs in the data directory's store, not the registry.",
      });
    }
    const r = await this.#exec("reg.exe", regArgs.add(key, value, data), { timeoutMs: 15_000 });
    if (r.code !== 0) {
      throw (
        deniedError(r.stderr, key) ??
        new BioError("SECRET_ACCESS", `reg.exe could not write ${key}\\${value} (exit ${r.code}).`, {
          hint: "Run from an elevated prompt; check that the key is not locked by policy.",
          context: { stderr: r.stderr.trim().slice(0, 200) },
        })
      );
    }
  }

  async deleteValue(key: string, value: string): Promise<void> {
    const r = await this.#exec("reg.exe", regArgs.deleteValue(key, value), { timeoutMs: 15_000 });
    if (r.code !== 0) {
      const denied = deniedError(r.stderr, key);
      if (denied) throw denied;
    }
  }
}

/**
 * PowerShell that creates the key and replaces its ACL with exactly SYSTEM and Administrators (by SID, so it works
 * on every display language), inheritance off. reg.exe cannot set ACLs; this runs once, at install or first enroll.
 */
export function secureKeyScript(key: string): string {
  const psPath = key.replace(/^HKLM\\/i, "HKLM:\\").replace(/'/g, "''");
  return [
    "$ErrorActionPreference = 'Stop'",
    `$path = '${psPath}'`,
    "if (-not (Test-Path $path)) { New-Item -Path $path -Force | Out-Null }",
    "$acl = New-Object System.Security.AccessControl.RegistrySecurity",
    "$acl.SetAccessRuleProtection($true, $false)",
    "foreach ($sid in 'S-1-5-18', 'S-1-5-32-544') {",
    "  $id = New-Object System.Security.Principal.SecurityIdentifier($sid)",
    "  $acl.AddAccessRule((New-Object System.Security.AccessControl.RegistryAccessRule($id, 'FullControl', 'ContainerInherit', 'None', 'Allow')))",
    "}",
    "$acl.SetOwner((New-Object System.Security.Principal.SecurityIdentifier('S-1-5-32-544')))",
    "Set-Acl -Path $path -AclObject $acl",
  ].join("\r\n");
}

export const POWERSHELL_ARGS = [
  "-NoLogo",
  "-NoProfile",
  "-NonInteractive",
  "-ExecutionPolicy",
  "Bypass",
  "-Command",
  "-",
];

export async function secureRegistryKey(exec: Exec, key: string): Promise<void> {
  const r = await exec("powershell.exe", POWERSHELL_ARGS, { input: secureKeyScript(key), timeoutMs: 60_000 });
  if (r.code !== 0) {
    throw new BioError("SECRET_ACCESS", `Could not create ${key} with an administrators-only ACL (exit ${r.code}).`, {
      hint: "Run from an elevated prompt. If PowerShell is blocked by policy, create the key and set its ACL with regedit.",
      context: { stderr: r.stderr.trim().slice(0, 300) },
    });
  }
}
