import { createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";

export interface SignedFetchOptions {
  readonly nodeId: string;
  readonly secret: string;
  readonly method?: string;
  /** Path and query, signed exactly as given. */
  readonly path: string;
  readonly body?: Uint8Array | string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timestamp?: number;
  readonly nonce?: string;
  /** Overrides the content hash header (to send a wrong one). */
  readonly contentSha256?: string;
  /** Overrides the x-cams-node header (the signature is still computed over it). */
  readonly headerNodeId?: string;
  /** Overrides the signature header. */
  readonly signature?: string;
  /** Signing headers left out. */
  readonly omit?: readonly string[];
  readonly signal?: AbortSignal;
}

/**
 * A minimal protocol.md client for the cloud's own tests, written independently of src/ so that the cloud is checked
 * against the page, not against the connector.
 */
export async function signedFetch(baseUrl: string, options: SignedFetchOptions): Promise<Response> {
  const method = options.method ?? "GET";
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const init: RequestInit = { method, headers: signedHeaders(options) };
  if (options.body !== undefined) init.body = body;
  if (options.signal !== undefined) init.signal = options.signal;
  return await fetch(`${baseUrl}${options.path}`, init);
}

/** The signing headers (plus options.headers) for a request, for clients other than fetch. */
export function signedHeaders(options: SignedFetchOptions): Record<string, string> {
  const method = options.method ?? "GET";
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const nodeId = options.headerNodeId ?? options.nodeId;
  const timestamp = String(options.timestamp ?? Date.now());
  const nonce = options.nonce ?? randomBytes(16).toString("base64url");
  const contentSha256 = options.contentSha256 ?? createHash("sha256").update(body).digest("hex");
  // Spelled out here rather than imported from cloud-crypto.ts, so a mistake there cannot hide in both halves.
  const key = Buffer.from(
    hkdfSync("sha256", Buffer.from(options.secret, "base64url"), "cams-bioapi", "cams-bioapi/v1/sign", 32),
  );
  const toSign = ["CAMS1-HMAC-SHA256", method, options.path, nodeId, timestamp, nonce, contentSha256].join("\n");
  const signature = options.signature ?? createHmac("sha256", key).update(toSign).digest("base64url");
  const headers: Record<string, string> = {
    "x-cams-node": nodeId,
    "x-cams-timestamp": timestamp,
    "x-cams-nonce": nonce,
    "x-cams-content-sha256": contentSha256,
    "x-cams-signature": signature,
    ...options.headers,
  };
  for (const name of options.omit ?? []) delete headers[name];
  return headers;
}
