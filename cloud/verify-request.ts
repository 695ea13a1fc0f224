import { randomBytes, timingSafeEqual } from "node:crypto";
import { hmac, stringToSign } from "./cloud-crypto.ts";

export const TIMESTAMP_WINDOW_MS = 300_000;

export const SIGNING_HEADERS = [
  "x-cams-node",
  "x-cams-timestamp",
  "x-cams-nonce",
  "x-cams-content-sha256",
  "x-cams-signature",
] as const;

export interface Refusal {
  readonly status: number;
  readonly error: string;
  readonly message: string;
}

export interface VerifiedRequest {
  readonly nodeId: string;
  readonly contentSha256: string;
  /** The answer's MAC covers it (protocol 2). */
  readonly nonce: string;
}

/**
 * Where used nonces are kept. `keepUntil` is the last instant the request could still pass the timestamp window, so
 * a nonce is remembered exactly as long as a replay could otherwise be accepted; the reference cloud keeps them in
 * its database, so a restart forgets none.
 */
export interface NonceLedger {
  /** Records the nonce; false when it is already recorded with `keepUntil >= now`. */
  remember(nodeId: string, nonce: string, keepUntil: number, now: number): boolean;
}

export interface VerifyInput {
  readonly method: string;
  /** Path and query exactly as the request line carried them. */
  readonly pathAndQuery: string;
  /** The node id in the path; must equal x-cams-node. */
  readonly pathNodeId: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly now: number;
  /** Signing key of a registered node, undefined for an unknown one. */
  readonly signingKey: (nodeId: string) => Uint8Array | undefined;
  readonly nonces: NonceLedger;
}

const DECOY_KEY = randomBytes(32);
const SIGNATURE_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const TIMESTAMP_FORMAT = /^\d{1,16}$/;
const NONCE_FORMAT = /^[A-Za-z0-9_-]{22}(?:==)?$/;

function header(headers: VerifyInput["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

function refuse(status: number, error: string, message: string): Refusal {
  return { status, error, message };
}

/**
 * Checks everything that can be checked from the headers alone; the body's hash is compared once it has arrived.
 * The nonce is recorded only after the signature verifies, so forged requests cannot burn a node's nonces.
 */
export function verifyRequest(input: VerifyInput): VerifiedRequest | Refusal {
  const values: Record<string, string> = {};
  for (const name of SIGNING_HEADERS) {
    const value = header(input.headers, name);
    if (value === undefined || value === "") {
      return refuse(
        401,
        "missing_signature",
        `the ${name} header is absent; sign every request except GET /v1/health as docs/protocol.md describes`,
      );
    }
    values[name] = value;
  }
  const nodeId = values["x-cams-node"] as string;
  const timestamp = values["x-cams-timestamp"] as string;
  const nonce = values["x-cams-nonce"] as string;
  const contentSha256 = values["x-cams-content-sha256"] as string;
  const signature = values["x-cams-signature"] as string;

  if (!TIMESTAMP_FORMAT.test(timestamp)) {
    return refuse(
      401,
      "missing_signature",
      `x-cams-timestamp "${timestamp}" is not milliseconds since the Unix epoch in decimal; send Date.now()`,
    );
  }
  if (!NONCE_FORMAT.test(nonce)) {
    return refuse(
      401,
      "missing_signature",
      "x-cams-nonce is not 16 random bytes in base64url; generate a fresh one for every request",
    );
  }
  if (nodeId !== input.pathNodeId) {
    return refuse(
      403,
      "node_mismatch",
      `the path names node ${input.pathNodeId} but x-cams-node is ${nodeId}; a node may only use its own paths`,
    );
  }
  // An unknown node goes down the same path with a key nobody holds, so it is answered exactly as a bad signature
  // would be: the answers do not tell a caller which node ids exist.
  const key = input.signingKey(nodeId) ?? DECOY_KEY;
  const skewMs = Number(timestamp) - input.now;
  // Inclusive at both ends: accepted while |skew| <= window, and the nonce is kept until the same last instant.
  if (Math.abs(skewMs) > TIMESTAMP_WINDOW_MS) {
    return refuse(
      401,
      "stale_timestamp",
      `x-cams-timestamp is ${Math.round(skewMs / 1000)} s away from the cloud clock (limit ±${TIMESTAMP_WINDOW_MS / 1000} s); synchronise the site clock (NTP) and retry`,
    );
  }
  const expected = hmac(
    key,
    stringToSign({
      method: input.method,
      pathAndQuery: input.pathAndQuery,
      nodeId,
      timestamp,
      nonce,
      contentSha256,
    }),
  );
  const given = SIGNATURE_FORMAT.test(signature) ? Buffer.from(signature, "base64url") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return refuse(
      401,
      "bad_signature",
      "x-cams-signature does not match, or the node is not registered; check the node id and secret and that the string to sign uses the exact method, path and query, and headers sent (base64url HMAC-SHA256, no padding)",
    );
  }
  if (!input.nonces.remember(nodeId, nonce, Number(timestamp) + TIMESTAMP_WINDOW_MS, input.now)) {
    return refuse(
      401,
      "replayed_nonce",
      `nonce ${nonce} was already used by this node; use 16 fresh random bytes for every request, including retries`,
    );
  }
  return { nodeId, contentSha256, nonce };
}

export function isRefusal(value: VerifiedRequest | Refusal): value is Refusal {
  return "error" in value;
}
