import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const SIGNATURE_SCHEME = "CAMS1-HMAC-SHA256";
/** 2: every answer to a signed request carries a MAC (docs/protocol.md, "Authenticated answers"). */
export const PROTOCOL_VERSION = 2;
export const RESPONSE_MAC_SCHEME = "CAMS2-RESPONSE-HMAC-SHA256";

export interface SignedHeaders {
  readonly "x-cams-node": string;
  readonly "x-cams-timestamp": string;
  readonly "x-cams-nonce": string;
  readonly "x-cams-content-sha256": string;
  readonly "x-cams-signature": string;
}

/** Signs method, path, timestamp, nonce and body hash (docs/protocol.md); the secret never travels. */
export function signRequest(
  signKey: Uint8Array,
  nodeId: string,
  method: string,
  pathAndQuery: string,
  body: Uint8Array | undefined,
  nowMs: number,
): SignedHeaders {
  const nonce = randomBytes(16).toString("base64url");
  const contentHash = createHash("sha256")
    .update(body ?? new Uint8Array())
    .digest("hex");
  const timestamp = String(nowMs);
  const toSign = [SIGNATURE_SCHEME, method.toUpperCase(), pathAndQuery, nodeId, timestamp, nonce, contentHash].join(
    "\n",
  );
  return {
    "x-cams-node": nodeId,
    "x-cams-timestamp": timestamp,
    "x-cams-nonce": nonce,
    "x-cams-content-sha256": contentHash,
    "x-cams-signature": createHmac("sha256", signKey).update(toSign).digest("base64url"),
  };
}

/** Whether `mac` (x-cams-response-mac) authenticates this status and body as the answer to the request `nonce`. */
export function verifyResponseMac(
  responseKey: Uint8Array,
  nonce: string,
  status: number,
  body: Uint8Array,
  mac: string | null,
): boolean {
  if (mac === null || !/^[A-Za-z0-9_-]{43}$/.test(mac)) return false;
  const bodyHash = createHash("sha256").update(body).digest("hex");
  const expected = createHmac("sha256", responseKey)
    .update([RESPONSE_MAC_SCHEME, nonce, String(status), bodyHash].join("\n"))
    .digest();
  return timingSafeEqual(expected, Buffer.from(mac, "base64url"));
}
