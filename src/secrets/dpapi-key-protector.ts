import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { BioError } from "../core/errors.ts";
import type { Dpapi } from "../platform/windows/dpapi.ts";
import type { KeyProtector } from "./secret-store.ts";

export const APP_ENTROPY = Buffer.from("cams-bioapi/dpapi-entropy/v1", "utf8");

/** The data key wrapped by DPAPI. The wrapped blob goes into the envelope, which lives under the ACL'd HKLM key. */
export class DpapiKeyProtector implements KeyProtector {
  readonly name = "dpapi-machine";
  readonly #dpapi: Dpapi;

  constructor(dpapi: Dpapi) {
    this.#dpapi = dpapi;
  }

  protect(dataKey: Uint8Array): Promise<Buffer> {
    return this.#dpapi.protect(dataKey, APP_ENTROPY);
  }

  async unprotect(blob: Uint8Array): Promise<Buffer> {
    try {
      return await this.#dpapi.unprotect(blob, APP_ENTROPY);
    } catch (error) {
      throw new BioError("SECRET_CORRUPT", "Windows DPAPI could not unwrap the data key.", {
        cause: error,
        hint: "The secrets were written on another machine (or the registry key was restored from one): enroll here again with bioapi enroll --force.",
      });
    }
  }
}

/**
 * A stand-in for DPAPI with the same observable rules: bound to one "machine" (an instance), bound to the entropy,
 * tamper-evident. Used by the contract tests on Linux; the real one runs under the same tests on Windows.
 */
export class FakeDpapi implements Dpapi {
  readonly name = "fake-dpapi";
  readonly #machineKey = randomBytes(32);

  async protect(data: Uint8Array, entropy: Uint8Array): Promise<Buffer> {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#machineKey, iv);
    cipher.setAAD(createHash("sha256").update(entropy).digest());
    const body = Buffer.concat([cipher.update(data), cipher.final()]);
    // DPAPI blobs start with a version and a provider GUID; a fixed header keeps the blob shape similar.
    return Buffer.concat([Buffer.from([1, 0, 0, 0]), iv, body, cipher.getAuthTag()]);
  }

  async unprotect(blob: Uint8Array, entropy: Uint8Array): Promise<Buffer> {
    const b = Buffer.from(blob);
    if (b.length < 32 || b[0] !== 1) throw new Error("The data is invalid. (0x8007000D)");
    const iv = b.subarray(4, 16);
    const tag = b.subarray(b.length - 16);
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#machineKey, iv);
      decipher.setAAD(createHash("sha256").update(entropy).digest());
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(b.subarray(16, b.length - 16)), decipher.final()]);
    } catch {
      throw new Error("The data is invalid. (0x8007000D)");
    }
  }
}
