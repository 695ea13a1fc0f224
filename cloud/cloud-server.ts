import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { deriveKey, PROTOCOL_VERSION, responseMac, sha256Hex } from "./cloud-crypto.ts";
import {
  CloudStore,
  type ConfigEnvelope,
  type IngestItem,
  type NodeCredentials,
  type PunchStats,
  type StoredPunch,
} from "./cloud-store.ts";
import { type Fault, FaultInjector, ROUTES, type Route } from "./fault-injector.ts";
import { nodesPage } from "./nodes-page.ts";
import { BodyIncompleteError, BodyTooLargeError, gunzipLimited, readBody } from "./read-body.ts";
import { punchProblem } from "./validate-punch.ts";
import { isRefusal, type NonceLedger, type Refusal, type VerifiedRequest, verifyRequest } from "./verify-request.ts";

export type { ConfigEnvelope, NodeCredentials, PunchStats, StoredPunch } from "./cloud-store.ts";
export type { Fault, Route } from "./fault-injector.ts";

/** protocol.md: at most 10,000 punches and 16 MiB compressed per batch. */
export const MAX_PUNCHES = 10_000;
export const MAX_PUNCH_BODY_BYTES = 16 * 1024 * 1024;
/** Guards against gzip bombs; 10,000 punches are a few MiB of JSON. */
export const MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;
export const MAX_SMALL_BODY_BYTES = 1024 * 1024;

export interface CloudOptions {
  readonly dataDir: string;
  readonly host?: string;
  readonly port?: number;
  /** Clock for the timestamp window, nonce expiry and stored times. */
  readonly now?: () => number;
  /** Returns a reason to reject a well-formed punch permanently, or undefined to store it. */
  readonly rejectPunch?: (punch: unknown) => string | undefined;
}

export interface RequestCounters {
  readonly total: number;
  readonly byRoute: Readonly<Record<Route, number>>;
  /** Keyed by status code, e.g. `byStatus[200]`. */
  readonly byStatus: Readonly<Record<number, number>>;
  readonly byRouteStatus: Readonly<Record<Route, Readonly<Record<number, number>>>>;
}

export interface CloudServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** A snapshot of the counters at the time of reading. */
  readonly requests: RequestCounters;
  addNode(): NodeCredentials;
  nodeSecret(nodeId: string): string | undefined;
  setConfig(nodeId: string, config: unknown): number;
  publishEnvelope(nodeId: string, envelope: Partial<ConfigEnvelope> & Pick<ConfigEnvelope, "version">): void;
  currentConfig(nodeId: string): ConfigEnvelope | undefined;
  stats(nodeId: string): PunchStats;
  /** Distinct punches held for the node; cheap enough to poll. */
  count(nodeId: string): number;
  punches(nodeId: string, limit?: number): StoredPunch[];
  rejections(nodeId: string): { id: string; reason: string; receivedAt: string }[];
  lastStatus(nodeId: string): unknown;
  injectFault(fault: Fault): void;
  clearFaults(): void;
  resetRequests(): void;
  /** Closes the listener and every open socket, like a crash; data stays. */
  stop(): Promise<void>;
  /** Listens again on the same host and port. */
  restart(): Promise<void>;
  /** stop() and close the database. */
  close(): Promise<void>;
}

interface Resolved {
  readonly route: Route;
  readonly nodeId?: string;
  readonly allow: string;
}

const NODE_PATH = /^\/v1\/nodes\/([^/]+)\/(config|punches|status)$/;

function resolve(pathname: string): Resolved {
  if (pathname === "/v1/health") return { route: "health", allow: "GET" };
  const m = NODE_PATH.exec(pathname);
  if (m === null) return { route: "other", allow: "GET" };
  const route = m[2] as "config" | "punches" | "status";
  return { route, nodeId: m[1] as string, allow: route === "config" ? "GET" : "POST" };
}

type Counts = Record<number, number>;

function emptyCounters(): {
  total: number;
  byRoute: Record<Route, number>;
  byStatus: Counts;
  byRouteStatus: Record<Route, Counts>;
} {
  const byRoute = {} as Record<Route, number>;
  const byRouteStatus = {} as Record<Route, Counts>;
  for (const route of ROUTES) {
    byRoute[route] = 0;
    byRouteStatus[route] = {};
  }
  return { total: 0, byRoute, byStatus: {}, byRouteStatus };
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

class Cloud implements CloudServer {
  readonly dataDir: string;
  readonly #host: string;
  #port: number;
  readonly #now: () => number;
  readonly #rejectPunch: ((punch: unknown) => string | undefined) | undefined;
  readonly #store: CloudStore;
  readonly #server: Server;
  readonly #faults = new FaultInjector();
  readonly #nonces: NonceLedger;
  readonly #keys = new Map<string, { sign: Buffer; response: Buffer }>();
  /** Answers to verified requests carry a MAC over this nonce under this node's response key. */
  readonly #answering = new WeakMap<ServerResponse, { readonly key: Buffer; readonly nonce: string }>();
  readonly #inflight = new Set<Promise<void>>();
  #counters = emptyCounters();
  #lifetime = new AbortController();
  #listening = false;

  constructor(options: CloudOptions, store: CloudStore) {
    this.dataDir = options.dataDir;
    this.#host = options.host ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.#now = options.now ?? Date.now;
    this.#rejectPunch = options.rejectPunch;
    this.#store = store;
    this.#nonces = { remember: (...args) => store.rememberNonce(...args) };
    this.#server = createServer((req, res) => {
      const work = this.#handle(req, res).finally(() => this.#inflight.delete(work));
      this.#inflight.add(work);
    });
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = this.#host.includes(":") ? `[${this.#host}]` : this.#host;
    return `http://${host}:${this.#port}`;
  }

  get requests(): RequestCounters {
    return structuredClone(this.#counters);
  }

  async listen(): Promise<void> {
    if (this.#listening) return;
    await new Promise<void>((done, fail) => {
      this.#server.once("error", fail);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off("error", fail);
        done();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#listening = true;
    this.#lifetime = new AbortController();
  }

  addNode(): NodeCredentials {
    return this.#store.addNode();
  }

  nodeSecret(nodeId: string): string | undefined {
    return this.#store.nodeSecret(nodeId);
  }

  setConfig(nodeId: string, config: unknown): number {
    return this.#store.setConfig(nodeId, config);
  }

  publishEnvelope(nodeId: string, envelope: Partial<ConfigEnvelope> & Pick<ConfigEnvelope, "version">): void {
    this.#store.publishEnvelope(nodeId, envelope);
  }

  currentConfig(nodeId: string): ConfigEnvelope | undefined {
    return this.#store.currentConfig(nodeId);
  }

  stats(nodeId: string): PunchStats {
    return this.#store.stats(nodeId);
  }

  count(nodeId: string): number {
    return this.#store.count(nodeId);
  }

  punches(nodeId: string, limit?: number): StoredPunch[] {
    return this.#store.punches(nodeId, limit);
  }

  rejections(nodeId: string): { id: string; reason: string; receivedAt: string }[] {
    return this.#store.rejections(nodeId);
  }

  lastStatus(nodeId: string): unknown {
    return this.#store.lastStatus(nodeId);
  }

  injectFault(fault: Fault): void {
    this.#faults.inject(fault);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  resetRequests(): void {
    this.#counters = emptyCounters();
  }

  async stop(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    // A crashed cloud finishes nothing: delayed requests are dropped with their sockets.
    this.#lifetime.abort();
    const closed = new Promise<void>((done) => this.#server.close(() => done()));
    this.#server.closeAllConnections();
    await closed;
    await Promise.allSettled([...this.#inflight]);
  }

  async restart(): Promise<void> {
    await this.listen();
  }

  async close(): Promise<void> {
    await this.stop();
    this.#store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #nodeKeys(nodeId: string): { sign: Buffer; response: Buffer } | undefined {
    const cached = this.#keys.get(nodeId);
    if (cached !== undefined) return cached;
    const secret = this.#store.nodeSecret(nodeId);
    if (secret === undefined) return undefined;
    const keys = { sign: deriveKey(secret, "sign"), response: deriveKey(secret, "response") };
    this.#keys.set(nodeId, keys);
    return keys;
  }

  /** Checks the signature; once it holds, everything sent on `res` is authenticated for the node. */
  #authenticate(req: IncomingMessage, res: ServerResponse, pathNodeId: string): VerifiedRequest | Refusal {
    const verified = verifyRequest({
      method: req.method ?? "GET",
      pathAndQuery: req.url ?? "/",
      pathNodeId,
      headers: req.headers,
      now: this.#now(),
      signingKey: (nodeId) => this.#nodeKeys(nodeId)?.sign,
      nonces: this.#nonces,
    });
    const keys = isRefusal(verified) ? undefined : this.#nodeKeys(verified.nodeId);
    if (keys !== undefined && !isRefusal(verified))
      this.#answering.set(res, { key: keys.response, nonce: verified.nonce });
    return verified;
  }

  #send(res: ServerResponse, route: Route, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    this.#counters.byStatus[status] = (this.#counters.byStatus[status] ?? 0) + 1;
    this.#counters.byRouteStatus[route][status] = (this.#counters.byRouteStatus[route][status] ?? 0) + 1;
    if (res.headersSent || res.destroyed) return;
    const text = body === undefined ? undefined : JSON.stringify(body);
    // A refusal of the signature itself stays unauthenticated: signing it would need the key of a node that may
    // not exist, and a MAC present only for known nodes would tell which ones do.
    const answering = this.#answering.get(res);
    res.writeHead(status, {
      "cache-control": "no-store",
      "x-cams-protocol": String(PROTOCOL_VERSION),
      ...(text === undefined
        ? {}
        : { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)) }),
      ...(answering === undefined
        ? {}
        : { "x-cams-response-mac": responseMac(answering.key, answering.nonce, status, text ?? "") }),
      ...headers,
    });
    res.end(text);
  }

  #fail(res: ServerResponse, route: Route, status: number, error: string, message: string, headers = {}): void {
    this.#send(res, route, status, { error, message }, headers);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {
      // The client may be gone (timeouts, stop()); there is nobody left to tell.
    });
    const rawUrl = req.url ?? "/";
    const query = rawUrl.indexOf("?");
    const resolved = resolve(query === -1 ? rawUrl : rawUrl.slice(0, query));
    const route = resolved.route;
    this.#counters.total += 1;
    this.#counters.byRoute[route] += 1;
    const limit = route === "punches" ? MAX_PUNCH_BODY_BYTES : MAX_SMALL_BODY_BYTES;
    let bodyPromise: Promise<Buffer> | undefined;
    const body = (): Promise<Buffer> => {
      bodyPromise ??= readBody(req, limit);
      return bodyPromise;
    };
    const lifetime = this.#lifetime.signal;
    try {
      const fault = this.#faults.take(route);
      if (fault !== undefined) {
        if (fault.delayMs > 0) {
          // Read first: a connector that times out meanwhile has still delivered, and a real cloud would apply it.
          if (fault.status === undefined) await body().catch(() => undefined);
          try {
            await sleep(fault.delayMs, undefined, { signal: lifetime });
          } catch {
            req.socket.destroy();
            return;
          }
        }
        if (fault.status !== undefined) {
          // The cloud itself answers the fault, authenticated like any answer; `unsigned` plays a proxy in front.
          if (resolved.nodeId !== undefined && !fault.unsigned) this.#authenticate(req, res, resolved.nodeId);
          const headers: Record<string, string> =
            fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) };
          this.#fail(
            res,
            route,
            fault.status,
            "injected_fault",
            `the reference cloud was told to answer ${fault.status} (test fault injection); retry later`,
            headers,
          );
          return;
        }
      }
      await this.#dispatch(req, res, resolved, rawUrl, body);
    } catch (error) {
      if (lifetime.aborted || this.#store.closed) {
        req.socket.destroy();
      } else if (error instanceof HttpError) {
        this.#fail(res, route, error.status, error.code, error.message);
      } else if (error instanceof BodyTooLargeError) {
        this.#fail(
          res,
          route,
          413,
          "payload_too_large",
          `${error.message}; send smaller batches (at most ${MAX_PUNCHES} punches and ${MAX_PUNCH_BODY_BYTES} bytes compressed)`,
          { connection: "close" },
        );
      } else if (error instanceof BodyIncompleteError) {
        req.socket.destroy();
      } else {
        process.stderr.write(`cloud: ${req.method} ${rawUrl} failed: ${String((error as Error).stack ?? error)}\n`);
        this.#fail(res, route, 500, "internal_error", "the reference cloud failed unexpectedly; see its log and retry");
      }
    }
  }

  async #dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    resolved: Resolved,
    rawUrl: string,
    body: () => Promise<Buffer>,
  ): Promise<void> {
    const { route } = resolved;
    const method = req.method ?? "GET";
    if (route === "other") {
      if (method === "GET" && (rawUrl === "/nodes" || rawUrl.startsWith("/nodes?"))) {
        this.#nodesPage(req, res);
        return;
      }
      if (method === "GET" && (rawUrl === "/" || rawUrl.startsWith("/?"))) {
        this.#send(res, route, 200, {
          service: "cams-bioapi reference cloud",
          protocol: "docs/protocol.md",
          nodes: this.#store.nodeCount(),
          endpoints: [
            "GET /v1/health",
            "GET /v1/nodes/{nodeId}/config",
            "POST /v1/nodes/{nodeId}/punches",
            "POST /v1/nodes/{nodeId}/status",
            "GET /nodes (page; from loopback only)",
          ],
        });
        return;
      }
      throw new HttpError(
        404,
        "not_found",
        `no endpoint at ${method} ${rawUrl}; see docs/protocol.md for the four endpoints`,
      );
    }
    if (method !== resolved.allow) {
      this.#fail(res, route, 405, "method_not_allowed", `${rawUrl} accepts ${resolved.allow} only, not ${method}`, {
        allow: resolved.allow,
      });
      return;
    }
    if (route === "health") {
      this.#send(res, route, 200, { ok: true, time: new Date(this.#now()).toISOString(), protocol: PROTOCOL_VERSION });
      return;
    }

    const verified = this.#authenticate(req, res, resolved.nodeId ?? "");
    if (isRefusal(verified)) {
      this.#fail(res, route, verified.status, verified.error, verified.message);
      return;
    }
    const raw = await body();
    if (sha256Hex(raw) !== verified.contentSha256) {
      throw new HttpError(
        400,
        "bad_content_hash",
        "the body does not hash to x-cams-content-sha256; send the lowercase hex SHA-256 of the body bytes as sent (after gzip, empty string when there is no body)",
      );
    }
    if (route === "config") this.#config(req, res, verified.nodeId);
    else if (route === "punches") await this.#ingest(req, res, verified.nodeId, raw);
    else await this.#status(req, res, verified.nodeId, raw);
  }

  /**
   * The operator's view of every node. It lists node ids, sources and errors, so only a browser on the cloud's own
   * machine may see it; a real cloud puts this behind its login. A loopback peer is not enough: a web page whose
   * name an attacker re-points at 127.0.0.1 (DNS rebinding) runs in that very browser, and could read the page as
   * its own origin. Its requests carry its own name as Host, so the Host must be a loopback name or the configured
   * host, with the cloud's port.
   */
  #nodesPage(req: IncomingMessage, res: ServerResponse): void {
    const from = req.socket.remoteAddress ?? "";
    if (!(from === "127.0.0.1" || from === "::1" || from === "::ffff:127.0.0.1")) {
      throw new HttpError(
        403,
        "forbidden",
        "the nodes page is served to loopback only; open it on the cloud's machine",
      );
    }
    const host = (req.headers.host ?? "").toLowerCase();
    const names = new Set([
      "127.0.0.1",
      "localhost",
      "[::1]",
      this.#host.includes(":") ? `[${this.#host}]` : this.#host,
    ]);
    const hosts = new Set([...names].flatMap((n) => [`${n}:${this.#port}`, ...(this.#port === 80 ? [n] : [])]));
    if (!hosts.has(host)) {
      throw new HttpError(
        421,
        "misdirected",
        `the nodes page answers to ${[...names].join(", ")} on port ${this.#port} only, not to the host name ${JSON.stringify(host)}; open ${this.url}/nodes`,
      );
    }
    const rows = this.#store.nodes().map((n) => ({ ...n, punches: this.#store.count(n.nodeId) }));
    const html = nodesPage(rows, this.#now());
    this.#counters.byStatus[200] = (this.#counters.byStatus[200] ?? 0) + 1;
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    });
    res.end(html);
  }

  #config(req: IncomingMessage, res: ServerResponse, nodeId: string): void {
    const envelope = this.#store.currentConfig(nodeId);
    if (envelope === undefined) {
      throw new HttpError(
        404,
        "no_config",
        `no configuration was ever set for node ${nodeId}; publish one with \`bioapi cloud config set ${nodeId} FILE\``,
      );
    }
    const etag = `"${envelope.version}"`;
    const ifNoneMatch = req.headers["if-none-match"];
    if (ifNoneMatch !== undefined) {
      const tags = ifNoneMatch.split(",").map((t) => t.trim().replace(/^W\//, ""));
      if (tags.includes(etag) || tags.includes("*")) {
        this.#send(res, "config", 304, undefined, { etag });
        return;
      }
    }
    this.#send(res, "config", 200, envelope, { etag });
  }

  async #json(req: IncomingMessage, raw: Buffer): Promise<unknown> {
    const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
    const contentType = req.headers["content-type"];
    if (contentType !== undefined && contentType.split(";")[0]?.trim().toLowerCase() !== "application/json") {
      throw new HttpError(
        415,
        "unsupported_media_type",
        `content-type ${contentType} is not accepted; send application/json`,
      );
    }
    let text: Buffer;
    if (encoding === "gzip") {
      try {
        text = await gunzipLimited(raw, MAX_DECOMPRESSED_BYTES);
      } catch (error) {
        if (error instanceof BodyTooLargeError) throw error;
        throw new HttpError(
          400,
          "malformed_body",
          "content-encoding is gzip but the body is not valid gzip; compress the JSON with gzip or drop the header",
        );
      }
    } else if (encoding === "identity") {
      text = raw;
    } else {
      throw new HttpError(
        415,
        "unsupported_encoding",
        `content-encoding ${encoding} is not supported; send gzip or identity`,
      );
    }
    try {
      return JSON.parse(text.toString("utf8"));
    } catch {
      throw new HttpError(400, "malformed_body", "the body is not valid JSON; send a UTF-8 JSON document");
    }
  }

  async #ingest(req: IncomingMessage, res: ServerResponse, nodeId: string, raw: Buffer): Promise<void> {
    const doc = await this.#json(req, raw);
    const punches = (doc as { punches?: unknown } | null)?.punches;
    if (typeof doc !== "object" || doc === null || !Array.isArray(punches)) {
      throw new HttpError(400, "malformed_body", 'the body has no "punches" array; send {"punches": [Punch, …]}');
    }
    if (punches.length > MAX_PUNCHES) {
      throw new HttpError(
        413,
        "too_many_punches",
        `the batch holds ${punches.length} punches, more than ${MAX_PUNCHES}; split it into smaller batches`,
      );
    }
    const items = punches.map((punch: unknown): IngestItem => {
      const reason = punchProblem(punch) ?? this.#rejectPunch?.(punch);
      if (reason === undefined) {
        return { kind: "valid", punch: punch as Record<string, unknown> & { id: string } };
      }
      const id = (punch as { id?: unknown } | null)?.id;
      return { kind: "rejected", id: typeof id === "string" ? id : "", reason, raw: punch };
    });
    const results = this.#store.ingest(nodeId, items);
    this.#send(res, "punches", 200, { results });
  }

  async #status(req: IncomingMessage, res: ServerResponse, nodeId: string, raw: Buffer): Promise<void> {
    const doc = await this.#json(req, raw);
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
      throw new HttpError(400, "malformed_body", "the heartbeat must be a JSON object; see docs/protocol.md");
    }
    this.#store.setStatus(nodeId, doc);
    this.#send(res, "status", 204);
  }
}

/** Opens (or creates) the data directory and listens; resolves once the port is bound. */
export async function startCloud(options: CloudOptions): Promise<CloudServer> {
  const store = CloudStore.open(options.dataDir, options.now ?? Date.now);
  const cloud = new Cloud(options, store);
  try {
    await cloud.listen();
  } catch (error) {
    store.close();
    throw error;
  }
  return cloud;
}
