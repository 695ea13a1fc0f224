import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";

/** HKDF `info` per purpose (docs/protocol.md, "Credentials and keys"). */
export const KEY_INFO = {
  sign: "cams-bioapi/v1/sign",
  config: "cams-bioapi/v1/config",
  local: "cams-bioapi/v1/local",
  response: "cams-bioapi/v1/response",
} as const;

export type KeyPurpose = keyof typeof KEY_INFO;

const HKDF_SALT = "cams-bioapi";
const SECRET_BYTES = 32;
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;

export const CONFIG_ALG = "AES-256-GCM";
export const SIGNATURE_SCHEME = "CAMS1-HMAC-SHA256";
/** Protocol 2 authenticates every answer to a signed request (docs/protocol.md, "Authenticated answers"). */
export const PROTOCOL_VERSION = 2;
export const RESPONSE_MAC_SCHEME = "CAMS2-RESPONSE-HMAC-SHA256";

/** A fresh node secret: 32 random bytes, base64url without padding (43 characters). */
export function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString("base64url");
}

export function secretBytes(secret: string): Buffer {
  if (!/^[A-Za-z0-9_-]{43}$/.test(secret)) {
    throw new Error("a node secret must be 32 bytes written as base64url without padding (43 characters)");
  }
  return Buffer.from(secret, "base64url");
}

export function deriveKey(secret: string, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync("sha256", secretBytes(secret), HKDF_SALT, KEY_INFO[purpose], 32));
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export interface SigningInput {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly nodeId: string;
  readonly timestamp: string;
  readonly nonce: string;
  readonly contentSha256: string;
}

export function stringToSign(input: SigningInput): string {
  return [
    SIGNATURE_SCHEME,
    input.method.toUpperCase(),
    input.pathAndQuery,
    input.nodeId,
    input.timestamp,
    input.nonce,
    input.contentSha256,
  ].join("\n");
}

/** Raw HMAC bytes; callers compare them with timingSafeEqual, never as strings. */
export function hmac(signingKey: Uint8Array, text: string): Buffer {
  return createHmac("sha256", signingKey).update(text, "utf8").digest();
}

/** The answer's MAC: binds the request's nonce, the status and the body bytes, under the node's response key. */
export function responseMac(responseKey: Uint8Array, nonce: string, status: number, body: Uint8Array | string): string {
  const text = [RESPONSE_MAC_SCHEME, nonce, String(status), sha256Hex(body)].join("\n");
  return createHmac("sha256", responseKey).update(text, "utf8").digest("base64url");
}

export function configAad(nodeId: string, version: number): Buffer {
  return Buffer.from(`cams-bioapi/config\n${nodeId}\n${version}`, "utf8");
}

export interface Sealed {
  /** base64, 12 bytes */
  readonly iv: string;
  /** base64: ciphertext ‖ 16-byte tag */
  readonly ciphertext: string;
}

export function seal(key: Uint8Array, plaintext: Uint8Array | string, aad: Uint8Array): Sealed {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { iv: iv.toString("base64"), ciphertext: body.toString("base64") };
}

/** Throws when the key, the AAD or the bytes are wrong: GCM authenticates all three. */
export function open(key: Uint8Array, sealed: Sealed, aad: Uint8Array): Buffer {
  const iv = Buffer.from(sealed.iv, "base64");
  const body = Buffer.from(sealed.ciphertext, "base64");
  if (iv.length !== GCM_IV_BYTES) throw new Error(`iv must be ${GCM_IV_BYTES} bytes, got ${iv.length}`);
  if (body.length < GCM_TAG_BYTES) throw new Error("ciphertext is shorter than the 16-byte GCM tag");
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(body.length - GCM_TAG_BYTES));
  return Buffer.concat([decipher.update(body.subarray(0, body.length - GCM_TAG_BYTES)), decipher.final()]);
}

export interface ConfigEncryption {
  readonly secret: string;
  readonly nodeId: string;
  readonly version: number;
  readonly plaintext: string;
}

/** The config envelope's iv and ciphertext per protocol.md; exported so tests can forge wrongly-keyed envelopes. */
export function encryptConfig(input: ConfigEncryption): Sealed {
  return seal(deriveKey(input.secret, "config"), input.plaintext, configAad(input.nodeId, input.version));
}

export function decryptConfig(secret: string, nodeId: string, version: number, sealed: Sealed): string {
  return open(deriveKey(secret, "config"), sealed, configAad(nodeId, version)).toString("utf8");
}
