import { BioError } from "../core/errors.ts";
import {
  REG_TYPE,
  type RegistryApi,
  regTypeName,
  SECRETS_KEY_SDDL,
  WIN32_ERROR,
  win32ErrorName,
} from "../platform/windows/registry-api.ts";

/** The registry operations the secret store needs. Keys are full paths such as HKLM\SOFTWARE\CamsBioApi. */
export interface RegistryPort {
  /** Creates the key if needed and gives it the administrators-only owner and access list. */
  secureKey(key: string): Promise<void>;
  getBinary(key: string, value: string): Promise<Buffer | undefined>;
  setBinary(key: string, value: string, data: Uint8Array): Promise<void>;
  deleteValue(key: string, value: string): Promise<void>;
}

const ELEVATE =
  "Run bioapi from an elevated prompt (Run as administrator), or as the service (LocalSystem); the key admits only SYSTEM and Administrators.";

/** HKLM\… or HKEY_LOCAL_MACHINE\… → the path below the hive; the secret store uses no other hive. */
function belowHklm(key: string): string {
  const m = /^(?:HKLM|HKEY_LOCAL_MACHINE)\\(.+)$/i.exec(key);
  if (!m?.[1]) {
    throw new BioError("USAGE", `The registry key ${key} is not under HKLM.`, {
      hint: "Secrets live under HKEY_LOCAL_MACHINE only; write it as HKLM\\SOFTWARE\\...",
    });
  }
  return m[1];
}

/**
 * A failed Win32 registry call as a BioError. Told apart by the number alone: ERROR_ACCESS_DENIED means elevation,
 * anything else is reported with its number so it can be looked up (`certutil -error N`) on any language.
 */
export function registryError(call: string, where: string, error: number): BioError {
  if (error === WIN32_ERROR.ACCESS_DENIED) {
    return new BioError("SECRET_ACCESS", `Access to the registry key ${where} was denied (${call}, Win32 error 5).`, {
      hint: ELEVATE,
      context: { win32Error: error },
    });
  }
  const name = win32ErrorName(error);
  return new BioError(
    "SECRET_ACCESS",
    `${call} on ${where} failed with Win32 error ${error}${name ? ` (${name})` : ""}.`,
    {
      hint: `Look the number up with: certutil -error ${error}. If the key was damaged, delete it (reg delete ${where.replace(/\\[^\\]*$/, "")} /f from an elevated prompt) and enroll again.`,
      context: { win32Error: error },
    },
  );
}

/**
 * The registry through Win32 calls, never a child process: the envelope must not appear on a command line, where
 * process-creation auditing (event 4688, Sysmon, EDR) would record it for anyone who can read those logs.
 */
export class Win32Registry implements RegistryPort {
  readonly #api: RegistryApi;

  constructor(api: RegistryApi) {
    this.#api = api;
  }

  async secureKey(key: string): Promise<void> {
    const r = await this.#api.createKey(belowHklm(key), SECRETS_KEY_SDDL);
    if (!r.ok) throw registryError("RegCreateKeyEx", key, r.error);
  }

  /** Undefined when the key or the value does not exist (ERROR_FILE_NOT_FOUND): the connector is not enrolled. */
  async getBinary(key: string, value: string): Promise<Buffer | undefined> {
    const r = await this.#api.query(belowHklm(key), value);
    if (!r.ok) {
      if (r.error === WIN32_ERROR.FILE_NOT_FOUND) return undefined;
      throw registryError("RegQueryValueEx", `${key}\\${value}`, r.error);
    }
    if (r.value.type !== REG_TYPE.BINARY) {
      throw new BioError("SECRET_CORRUPT", `${key}\\${value} is ${regTypeName(r.value.type)}, expected REG_BINARY.`, {
        hint: "Something else wrote this value; enroll again with bioapi enroll --force.",
      });
    }
    return r.value.data;
  }

  async setBinary(key: string, value: string, data: Uint8Array): Promise<void> {
    const r = await this.#api.setBinary(belowHklm(key), value, data);
    if (!r.ok) {
      if (r.error === WIN32_ERROR.FILE_NOT_FOUND) {
        throw new BioError("SECRET_ACCESS", `The registry key ${key} does not exist, so ${value} cannot be written.`, {
          hint: "It was deleted while the connector ran; run the command again (it recreates the key).",
          context: { win32Error: r.error },
        });
      }
      throw registryError("RegSetValueEx", `${key}\\${value}`, r.error);
    }
  }

  /** Deleting what is not there is done. */
  async deleteValue(key: string, value: string): Promise<void> {
    const r = await this.#api.deleteValue(belowHklm(key), value);
    if (!r.ok && r.error !== WIN32_ERROR.FILE_NOT_FOUND)
      throw registryError("RegDeleteValue", `${key}\\${value}`, r.error);
  }
}
