import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { BioError } from "../core/errors.ts";

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM: iv ‖ ciphertext ‖ tag. The associated data binds the blob to its name so blobs cannot be swapped. */
export function seal(key: Uint8Array, plaintext: Uint8Array, associatedData: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(associatedData, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

export function open(key: Uint8Array, sealed: Uint8Array, associatedData: string, what: string): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) {
    throw new BioError("SECRET_CORRUPT", `The encrypted ${what} is truncated.`, {
      hint: "Enroll again with --force (bioapi enroll --force ...) to write fresh credentials.",
    });
  }
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (error) {
    throw new BioError(
      "SECRET_CORRUPT",
      `The encrypted ${what} failed authentication: it was altered or the key is wrong.`,
      {
        cause: error,
        hint: "If the data directory was copied from another machine, enroll here again with --force.",
      },
    );
  }
}
