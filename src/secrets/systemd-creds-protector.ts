import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { BioError } from "../core/errors.ts";
import { type Exec, execTool } from "../platform/exec.ts";
import { open, seal } from "./envelope.ts";
import type { KeyProtector } from "./secret-store.ts";

export const CREDENTIAL_NAME = "cams-bioapi-kek";
export const CREDSTORE_PATH = `/etc/credstore.encrypted/${CREDENTIAL_NAME}`;

export interface SystemdCredsOptions {
  /** The encrypted credential (systemd-creds encrypt output); the unit loads it with LoadCredentialEncrypted=. */
  readonly credentialPath?: string;
  /** $CREDENTIALS_DIRECTORY of a running unit: systemd has already decrypted the key there, readable by the unit only. */
  readonly credentialsDirectory?: string | undefined;
  readonly exec?: Exec;
  readonly env?: NodeJS.ProcessEnv;
}

/** Whether systemd-creds can protect the key here: the tool exists and an encrypted credential exists or can be made. */
export function systemdCredsAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.platform !== "linux") return false;
  if (env.CREDENTIALS_DIRECTORY && existsSync(join(env.CREDENTIALS_DIRECTORY, CREDENTIAL_NAME))) return true;
  return existsSync(env.BIOAPI_CREDENTIAL_PATH ?? CREDSTORE_PATH);
}

/**
 * The key-encryption key sealed by systemd-creds with the host key (and the TPM where there is one), so the secrets
 * file and the key are useless off this machine. The service reads the decrypted key from $CREDENTIALS_DIRECTORY; a
 * root shell (bioapi enroll) decrypts the credential with systemd-creds. The key travels only through pipes.
 */
export class SystemdCredsProtector implements KeyProtector {
  readonly name = "systemd-creds";
  readonly #path: string;
  readonly #dir: string | undefined;
  readonly #exec: Exec;
  readonly #env: NodeJS.ProcessEnv;

  constructor(options: SystemdCredsOptions = {}) {
    this.#env = options.env ?? process.env;
    this.#path = options.credentialPath ?? this.#env.BIOAPI_CREDENTIAL_PATH ?? CREDSTORE_PATH;
    this.#dir = "credentialsDirectory" in options ? options.credentialsDirectory : this.#env.CREDENTIALS_DIRECTORY;
    this.#exec = options.exec ?? execTool;
  }

  async #kek(create: boolean): Promise<Buffer> {
    if (this.#dir) {
      const loaded = join(this.#dir, CREDENTIAL_NAME);
      if (existsSync(loaded)) return this.#check(await readFile(loaded));
    }
    if (existsSync(this.#path)) {
      const r = await this.#exec("systemd-creds", ["decrypt", `--name=${CREDENTIAL_NAME}`, this.#path, "-"], {
        timeoutMs: 15_000,
        encoding: "latin1",
        env: this.#env,
      });
      if (r.code !== 0) {
        throw new BioError("SECRET_ACCESS", `systemd-creds could not decrypt ${this.#path}.`, {
          hint: "Run as root on the machine that wrote it. If the host key (/var/lib/systemd/credential.secret) or the TPM changed, enroll again with --force.",
          context: { stderr: r.stderr.trim().slice(0, 200) },
        });
      }
      return this.#check(Buffer.from(r.stdout, "latin1"));
    }
    if (!create) {
      throw new BioError("SECRET_MISSING", `The encrypted key ${this.#path} is missing.`, {
        hint: "Restore it from backup, or enroll again with --force.",
      });
    }
    const key = randomBytes(32);
    await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
    const r = await this.#exec(
      "systemd-creds",
      ["encrypt", `--name=${CREDENTIAL_NAME}`, "--with-key=auto", "-", this.#path],
      { timeoutMs: 15_000, input: key, env: this.#env },
    );
    if (r.code !== 0) {
      throw new BioError("SECRET_ACCESS", `systemd-creds could not write ${this.#path}.`, {
        hint: "Run as root (sudo bioapi enroll ...), or use the key-file backend (BIOAPI_SECRET_BACKEND=key-file).",
        context: { stderr: r.stderr.trim().slice(0, 200) },
      });
    }
    return key;
  }

  #check(key: Buffer): Buffer {
    if (key.length !== 32) {
      throw new BioError(
        "SECRET_CORRUPT",
        `The systemd credential ${CREDENTIAL_NAME} holds ${key.length} bytes, not 32.`,
        {
          hint: "Enroll again with --force to create a fresh key.",
        },
      );
    }
    return key;
  }

  async protect(dataKey: Uint8Array): Promise<Buffer> {
    return seal(await this.#kek(true), dataKey, "cams-bioapi/data-key");
  }

  async unprotect(blob: Uint8Array): Promise<Buffer> {
    return open(await this.#kek(false), blob, "cams-bioapi/data-key", "data key");
  }
}
