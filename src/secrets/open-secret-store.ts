import { BioError } from "../core/errors.ts";
import { KoffiDpapi } from "../platform/windows/koffi-dpapi.ts";
import { KoffiRegistryApi } from "../platform/windows/koffi-registry-api.ts";
import { DpapiKeyProtector } from "./dpapi-key-protector.ts";
import { EnvelopeSecretStore } from "./envelope-secret-store.ts";
import { RegistryEnvelopeStorage } from "./envelope-storage.ts";
import { KeyFileProtector } from "./key-file-protector.ts";
import { Win32Registry } from "./registry.ts";
import type { SecretStore } from "./secret-store.ts";
import { SystemdCredsProtector, systemdCredsAvailable } from "./systemd-creds-protector.ts";

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
export function openSecretStore(
  layout: { readonly secrets: string; readonly keyFile: string },
  env: NodeJS.ProcessEnv = process.env,
): SecretStore {
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
