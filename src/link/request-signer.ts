import { createHash, createHmac, randomBytes } from "node:crypto";

export const SIGNATURE_SCHEME = "CAMS1-HMAC-SHA256";

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
