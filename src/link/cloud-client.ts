import { gzipSync } from "node:zlib";
import { withTimeout } from "../core/abort.ts";
import type { Clock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import type { NodeKeys } from "./node-keys.ts";
import { signRequest } from "./request-signer.ts";

export interface CloudResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
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
}

/**
 * Every request to the cloud goes through here: signed, with a timeout and the caller's cancellation. Transport
 * failures become retriable CLOUD_UNAVAILABLE errors; HTTP statuses are returned for the caller to interpret.
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
    const headers: Record<string, string> = { ...req.headers };
    if (req.json !== undefined || req.rawJson !== undefined) {
      const raw = Buffer.from(req.rawJson ?? JSON.stringify(req.json), "utf8");
      body = req.gzip ? gzipSync(raw, { level: 1 }) : raw;
      headers["content-type"] = "application/json";
      if (req.gzip) headers["content-encoding"] = "gzip";
    }
    if (!req.unsigned) {
      Object.assign(
        headers,
        signRequest(
          this.#options.keys.sign,
          this.#options.nodeId,
          req.method,
          pathAndQuery,
          body,
          this.#options.clock.now(),
        ),
      );
    }
    const signal = withTimeout(req.signal, req.timeoutMs);
    try {
      const response = await fetch(url, { method: req.method, headers, body: body ?? null, signal });
      const buffer = Buffer.from(await response.arrayBuffer());
      return { status: response.status, headers: response.headers, body: buffer };
    } catch (error) {
      if (req.signal?.aborted) throw req.signal.reason;
      const timedOut = signal.aborted;
      throw new BioError(
        "CLOUD_UNAVAILABLE",
        timedOut
          ? `The cloud at ${this.#base.origin} did not answer ${req.method} ${url.pathname} within ${req.timeoutMs} ms.`
          : `Cannot reach the cloud at ${this.#base.origin} (${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}).`,
        {
          retriable: true,
          cause: error,
          hint: "Check the internet connection, proxy and firewall rules for outbound HTTPS from this machine.",
        },
      );
    }
  }
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
