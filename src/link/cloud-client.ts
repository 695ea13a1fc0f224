import { gzipSync } from "node:zlib";
import { withTimeout } from "../core/abort.ts";
import type { Clock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import type { NodeKeys } from "./node-keys.ts";
import { PROTOCOL_VERSION, signRequest, verifyResponseMac } from "./request-signer.ts";

export interface CloudResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  /**
   * The cloud's MAC over this request's nonce, the status and the body checked out. Only a refusal of the
   * signature (401/403), a 429 or a 5xx is ever returned without one, and each of those only leads to a retry.
   */
  readonly authenticated: boolean;
}

/**
 * Whether a request got no answer at all (refused, reset, timed out): CLOUD_UNAVAILABLE without an HTTP status. Only
 * that is evidence of lost connectivity; a 5xx, a redirect or a forged answer is something talking.
 */
export function isTransportFailure(error: unknown): boolean {
  return error instanceof BioError && error.code === "CLOUD_UNAVAILABLE" && error.context.httpStatus === undefined;
}

/** An answer bigger than this is not the cloud's: the largest, a config envelope, is a few hundred KiB. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** What may arrive unauthenticated: none of it acknowledges, rejects or applies anything. */
function mayBeUnauthenticated(status: number): boolean {
  return status === 401 || status === 403 || status === 429 || status >= 500;
}

export interface CloudRequest {
  readonly method: "GET" | "POST";
  /** Path and query below the cloud base URL, e.g. /v1/nodes/<id>/config. */
  readonly path: string;
  readonly json?: unknown;
  /** A body that is already JSON text. */
  readonly rawJson?: string;
  readonly gzip?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** The health probe is the only unsigned request. */
  readonly unsigned?: boolean;
}

export interface CloudClientOptions {
  readonly baseUrl: string;
  readonly nodeId: string;
  readonly keys: NodeKeys;
  readonly clock: Clock;
  readonly maxResponseBytes?: number;
}

/**
 * Every request to the cloud goes through here: signed, with a timeout and the caller's cancellation. Transport
 * failures become CLOUD_UNAVAILABLE errors without an HTTP status (isTransportFailure); HTTP statuses are returned
 * for the caller to interpret.
 */
export class CloudClient {
  readonly #options: CloudClientOptions;
  readonly #base: URL;

  constructor(options: CloudClientOptions) {
    this.#options = options;
    this.#base = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
  }

  get nodeId(): string {
    return this.#options.nodeId;
  }

  nodePath(suffix: string): string {
    return `/v1/nodes/${this.#options.nodeId}/${suffix}`;
  }

  async request(req: CloudRequest): Promise<CloudResponse> {
    const url = new URL(req.path.replace(/^\//, ""), this.#base);
    const pathAndQuery = url.pathname + url.search;
    let body: Buffer | undefined;
    const headers: Record<string, string> = { ...req.headers, "x-cams-protocol": String(PROTOCOL_VERSION) };
    if (req.json !== undefined || req.rawJson !== undefined) {
      const raw = Buffer.from(req.rawJson ?? JSON.stringify(req.json), "utf8");
      body = req.gzip ? gzipSync(raw, { level: 1 }) : raw;
      headers["content-type"] = "application/json";
      if (req.gzip) headers["content-encoding"] = "gzip";
    }
    const signed = req.unsigned
      ? undefined
      : signRequest(
          this.#options.keys.sign,
          this.#options.nodeId,
          req.method,
          pathAndQuery,
          body,
          this.#options.clock.now(),
        );
    Object.assign(headers, signed);
    const signal = withTimeout(req.signal, req.timeoutMs);
    let response: Response;
    let buffer: Buffer;
    try {
      // Never followed: a redirect would re-send the signed headers and the batch to wherever it points, and take
      // that origin's answer for the cloud's.
      response = await fetch(url, { method: req.method, headers, body: body ?? null, signal, redirect: "manual" });
      if (isRedirect(response.status)) {
        await response.body?.cancel().catch(() => undefined);
        throw this.#redirected(req, url, response);
      }
      buffer = await readLimited(response, this.#options.maxResponseBytes ?? MAX_RESPONSE_BYTES);
    } catch (error) {
      if (error instanceof BioError) throw error;
      if (req.signal?.aborted) throw req.signal.reason;
      const timedOut = signal.aborted;
      throw new BioError(
        "CLOUD_UNAVAILABLE",
        timedOut
          ? `The cloud at ${this.#base.origin} did not answer ${req.method} ${url.pathname} within ${req.timeoutMs} ms.`
          : `Cannot reach the cloud at ${this.#base.origin} (${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}).`,
        {
          cause: error,
          hint: "Check the internet connection, proxy and firewall rules for outbound HTTPS from this machine.",
        },
      );
    }
    const authenticated =
      signed !== undefined &&
      verifyResponseMac(
        this.#options.keys.response,
        signed["x-cams-nonce"],
        response.status,
        buffer,
        response.headers.get("x-cams-response-mac"),
      );
    if (signed !== undefined && !authenticated && !mayBeUnauthenticated(response.status)) {
      const protocol = response.headers.get("x-cams-protocol");
      throw new BioError(
        "CLOUD_UNAUTHENTICATED",
        `The answer to ${req.method} ${url.pathname} (HTTP ${response.status}) does not carry the cloud's response MAC${protocol === null ? "" : ` (it speaks protocol ${protocol.slice(0, 10)}; this connector needs ${PROTOCOL_VERSION})`}; it was ignored and nothing was acknowledged.`,
        {
          context: { httpStatus: response.status },
          hint: "Something other than the cloud answered: a TLS-inspecting proxy, a captive portal, or a cloud too old for this connector. Check the cloud URL and the proxy; the request is retried and the punches stay in the outbox.",
        },
      );
    }
    return { status: response.status, headers: response.headers, body: buffer, authenticated };
  }

  #redirected(req: CloudRequest, url: URL, response: Response): BioError {
    // Truncated: the Location is the other side's text, and it ends up in logs and status.
    const location = (response.headers.get("location") ?? "(none)").slice(0, 300);
    return new BioError(
      "CLOUD_REDIRECT",
      `The cloud at ${this.#base.origin} answered ${req.method} ${url.pathname} with HTTP ${response.status}, a redirect to ${location}; redirects are never followed.`,
      {
        context: { httpStatus: response.status, location },
        hint: "If the cloud moved, enroll again with its new URL (bioapi enroll --cloud-url ...); otherwise a proxy or captive portal is answering. Nothing was sent there, and the request is retried.",
      },
    );
  }
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400 && status !== 304;
}

/** The body, or CLOUD_PROTOCOL as soon as it grows past `limit` (the rest is never read). */
async function readLimited(response: Response, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new BioError("CLOUD_PROTOCOL", `The cloud's answer is larger than ${limit} bytes; it was not read.`, {
      context: { httpStatus: response.status },
      hint: "Something other than the cloud may be answering (a proxy or portal page); check the cloud URL.",
    });
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream, so the rest never arrives.
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Parses a cloud JSON error body into words for logs; never throws. */
export function cloudErrorText(response: CloudResponse): string {
  try {
    const parsed = JSON.parse(response.body.toString("utf8")) as { error?: string; message?: string };
    return `${response.status} ${parsed.error ?? ""}${parsed.message ? `: ${parsed.message}` : ""}`.trim();
  } catch {
    return `${response.status} ${response.body.toString("utf8").slice(0, 200)}`;
  }
}

/** Retry-After in milliseconds (seconds or HTTP date), or undefined. */
export function retryAfterMs(headers: Headers, nowMs: number): number | undefined {
  const value = headers.get("retry-after");
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - nowMs) : undefined;
}
