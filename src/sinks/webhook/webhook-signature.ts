import { createHash, createHmac } from "node:crypto";
import { BioError } from "../../core/errors.ts";

/**
 * Standard Webhooks 1.0, symmetric scheme (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):
 * the secret is `whsec_` + base64 of 24 to 64 random bytes; the signature is `v1,` + base64(HMAC-SHA256(key,
 * "{webhook-id}.{webhook-timestamp}.{body}")), the timestamp in integer Unix seconds.
 */
const SECRET_PREFIX = "whsec_";
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** The HMAC key of a `whsec_…` secret (or its bare base64), or the error naming what is wrong with it. */
export function webhookKey(secret: string): Buffer | BioError {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = BASE64.test(encoded) ? Buffer.from(encoded, "base64") : undefined;
  if (key === undefined || key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    // Never the secret itself, nor a part of it: only its shape.
    const shape = key === undefined ? "is not base64" : `decodes to ${key.length} bytes`;
    return new BioError("CONFIG_INVALID", `The webhook sink's secret ${shape}.`, {
      hint: `Set it to whsec_ followed by the base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} random bytes, the same secret the receiver verifies with.`,
    });
  }
  return key;
}

export function signWebhook(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/**
 * The webhook id of a batch: the same punches give the same id on every retry (the spec's idempotency key), and it
 * holds no full stop, which the signed content uses as its delimiter.
 */
export function webhookId(punchIds: readonly string[]): string {
  return `msg_${createHash("sha256").update(punchIds.join("\n")).digest("hex").slice(0, 32)}`;
}
