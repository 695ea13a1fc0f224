import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BioError } from "../core/errors.ts";
import { DpapiKeyProtector } from "../secrets/dpapi.ts";
import { EnvelopeSecretStore } from "../secrets/envelope-secret-store.ts";
import { RegistryEnvelopeStorage } from "../secrets/envelope-storage.ts";
import { KeyFileProtector } from "../secrets/key-file-protector.ts";
import { Win32Registry } from "../secrets/registry.ts";
import type { SecretStore } from "../secrets/secret-store.ts";
import { SystemdCredsProtector, systemdCredsAvailable } from "../secrets/systemd-creds-protector.ts";
import { KoffiRegistryApi } from "../service/windows/koffi-registry-api.ts";
import { KoffiDpapi } from "../service/windows/win32.ts";

/** The files of a connector's data directory. Nothing in it holds a secret in plaintext. */
export interface DataDirLayout {
  readonly root: string;
  readonly store: string;
  readonly secrets: string;
  readonly keyFile: string;
  readonly statusFile: string;
}

export function dataDirLayout(root: string): DataDirLayout {
  return {
    root,
    store: join(root, "connector.db"),
    secrets: join(root, "secrets.json"),
    keyFile: join(root, "master.key"),
    statusFile: join(root, "status.json"),
  };
}

/** `BIOAPI_DATA_DIR`, else ./.data/connector (the production service passes its state directory explicitly). */
export function defaultDataDir(): string {
  return process.env.BIOAPI_DATA_DIR ?? join(process.cwd(), ".data", "connector");
}

export function ensureDataDir(root: string): DataDirLayout {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  return dataDirLayout(root);
}

/** Where Windows keeps the connector's secrets: one REG_BINARY value under an administrators-only key. */
export const WINDOWS_SECRETS_KEY = "HKLM\\SOFTWARE\\CamsBioApi";
export const WINDOWS_SECRETS_VALUE = "Secrets";
/**
 * The data-key generation Windows requires. 2: the first data key that never crossed reg.exe's command line (versions
 * before it wrote the envelope through reg.exe, so process-creation audit logs may hold the old wrapped key).
 */
export const WINDOWS_KEY_GENERATION = 2;

export const SECRET_BACKENDS = ["auto", "key-file", "systemd-creds", "dpapi-registry"] as const;
export type SecretBackend = (typeof SECRET_BACKENDS)[number];

/**
 * The SecretStore for this platform (`BIOAPI_SECRET_BACKEND` overrides): Windows: DPAPI-wrapped data key, envelope
 * in the registry. Linux: the data key wrapped by a systemd-creds credential when one exists (the service installer
 * creates it), else by a 0600 key file in the data dir (development, containers, hosts without systemd).
 */
export function openSecretStore(layout: DataDirLayout, env: NodeJS.ProcessEnv = process.env): SecretStore {
  const wanted = (env.BIOAPI_SECRET_BACKEND ?? "auto") as SecretBackend;
  if (!SECRET_BACKENDS.includes(wanted)) {
    throw new BioError("USAGE", `Unknown BIOAPI_SECRET_BACKEND "${wanted}".`, {
      hint: `Use one of: ${SECRET_BACKENDS.join(", ")}.`,
    });
  }
  const backend: SecretBackend =
    wanted !== "auto"
      ? wanted
      : process.platform === "win32"
        ? "dpapi-registry"
        : systemdCredsAvailable(env)
          ? "systemd-creds"
          : "key-file";
  switch (backend) {
    case "dpapi-registry":
      return new EnvelopeSecretStore(
        new RegistryEnvelopeStorage(
          new Win32Registry(new KoffiRegistryApi()),
          WINDOWS_SECRETS_KEY,
          WINDOWS_SECRETS_VALUE,
        ),
        new DpapiKeyProtector(new KoffiDpapi()),
        { keyGeneration: WINDOWS_KEY_GENERATION },
      );
    case "systemd-creds":
      return new EnvelopeSecretStore(layout.secrets, new SystemdCredsProtector({ env }));
    default:
      return new EnvelopeSecretStore(layout.secrets, new KeyFileProtector(layout.keyFile));
  }
}
