/**
 * A webhook consumer that verifies deliveries exactly as Standard Webhooks 1.0 says a consumer must
 * (https://www.standardwebhooks.com/, github.com/standard-webhooks/standard-webhooks spec/standard-webhooks.md,
 * "Signature scheme", "Webhook headers", "Verifying signatures"):
 * - the three headers `webhook-id`, `webhook-timestamp` (integer Unix seconds) and `webhook-signature` (a
 *   space-delimited list of `<version>,<base64 signature>`; `v1` is HMAC-SHA256) are all required;
 * - the signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`, over the body bytes as received;
 * - the symmetric secret is `whsec_` + base64; the key is the base64-decoded remainder;
 * - signatures are compared in constant time, any one valid `v1` signature is enough;
 * - the timestamp must lie within a tolerance of now (5 minutes, as the reference libraries use) against replays.
 * The payload is this project's: `{"type":"punches"|"ping","nodeId","punches":[{id,…}]}`; it answers per punch with
 * `{"results":[{"id","status":"accepted"|"duplicate"|"rejected","reason"}]}`, deduping by punch id.
 *
 * Faults for tests: fail the next N with a status (and Retry-After), answer late, answer without results, down.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { readBody } from "../read-body.ts";

const TOLERANCE_SECONDS = 5 * 60;

export interface WebhookReceiverOptions {
  /** The signing secret(s) it accepts, `whsec_…`: more than one while a secret is rotated. */
  readonly secrets: readonly string[];
  readonly port?: number;
  /** Its clock, in ms; tests move it to make a timestamp stale. */
  readonly now?: () => number;
  /** More punches than this in one delivery: 413. */
  readonly maxPunches?: number;
  /** Refuses a punch for good: the reason, or undefined to take it. */
  readonly reject?: (punch: Record<string, unknown>) => string | undefined;
}

export interface WebhookDelivery {
  readonly webhookId: string;
  readonly timestamp: number;
  readonly type: string;
  readonly punchIds: readonly string[];
}

type WebhookFault =
  | { readonly kind: "status"; readonly status: number; readonly retryAfterSeconds?: number }
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "bare" };

export class WebhookReceiver {
  readonly punches = new Map<string, Record<string, unknown>>();
  /** Every delivery whose signature verified, in arrival order. */
  readonly deliveries: WebhookDelivery[] = [];
  /** Why each refused request was refused (signature, timestamp, headers). */
  readonly refusals: string[] = [];
  requests = 0;
  duplicates = 0;
  readonly #options: WebhookReceiverOptions;
  readonly #faults: { fault: WebhookFault; left: number }[] = [];
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #port = 0;

  private constructor(options: WebhookReceiverOptions) {
    this.#options = options;
  }

  static async start(options: WebhookReceiverOptions): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(options);
    await receiver.up(options.port ?? 0);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hooks/punches`;
  }

  fail(times: number, status = 500, retryAfterSeconds?: number): void {
    const fault: WebhookFault =
      retryAfterSeconds === undefined ? { kind: "status", status } : { kind: "status", status, retryAfterSeconds };
    this.#faults.push({ fault, left: times });
  }

  /** The next `times` deliveries are taken as usual but answered only after `delayMs`. */
  slow(times: number, delayMs: number): void {
    this.#faults.push({ fault: { kind: "slow", delayMs }, left: times });
  }

  /** The next `times` deliveries are taken and answered 204 with no results (settling the whole batch). */
  bare(times: number): void {
    this.#faults.push({ fault: { kind: "bare" }, left: times });
  }

  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async up(port = this.#port): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
      });
    });
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  close(): Promise<void> {
    return this.down();
  }

  /** Why a request fails verification, or undefined when one of its v1 signatures is valid and it is fresh. */
  verify(headers: IncomingMessage["headers"], raw: Buffer): string | undefined {
    const id = headers["webhook-id"];
    const timestamp = headers["webhook-timestamp"];
    const signatures = headers["webhook-signature"];
    if (typeof id !== "string" || typeof timestamp !== "string" || typeof signatures !== "string") {
      return "missing webhook-id, webhook-timestamp or webhook-signature";
    }
    if (!/^\d+$/.test(timestamp)) return "webhook-timestamp is not integer Unix seconds";
    const now = Math.floor((this.#options.now ?? Date.now)() / 1000);
    if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) {
      return "webhook-timestamp is outside the 5-minute tolerance (stale or from the future)";
    }
    const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), raw]);
    for (const secret of this.#options.secrets) {
      const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
      const expected = createHmac("sha256", key).update(content).digest();
      for (const entry of signatures.split(" ")) {
        const comma = entry.indexOf(",");
        if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
        const given = Buffer.from(entry.slice(comma + 1), "base64");
        if (given.length === expected.length && timingSafeEqual(given, expected)) return undefined;
      }
    }
    return "no valid v1 signature (wrong secret, or the body was changed)";
  }

  #take(): WebhookFault | undefined {
    const entry = this.#faults[0];
    if (!entry) return undefined;
    entry.left -= 1;
    if (entry.left <= 0) this.#faults.shift();
    return entry.fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (!res.destroyed)
        res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
    };
    if (req.method !== "POST") {
      json(405, { error: "POST only" }, { allow: "POST" });
      return;
    }
    const raw = await readBody(req, 8 * 1024 * 1024);
    this.requests += 1;
    const fault = this.#take();
    if (fault?.kind === "status") {
      json(
        fault.status,
        { error: "injected" },
        fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) },
      );
      return;
    }
    const refusal = this.verify(req.headers, raw);
    if (refusal !== undefined) {
      this.refusals.push(refusal);
      json(401, { error: refusal });
      return;
    }
    let payload: { type?: unknown; punches?: unknown };
    try {
      payload = JSON.parse(raw.toString("utf8")) as typeof payload;
    } catch {
      json(400, { error: "the body is not JSON" });
      return;
    }
    const punches = Array.isArray(payload.punches) ? (payload.punches as Record<string, unknown>[]) : undefined;
    if (punches === undefined || typeof payload.type !== "string") {
      json(400, { error: "the body has no type or no punches array" });
      return;
    }
    if (this.#options.maxPunches !== undefined && punches.length > this.#options.maxPunches) {
      json(413, { error: `more than ${this.#options.maxPunches} punches` });
      return;
    }
    const ids = punches.map((p) => String(p.id));
    this.deliveries.push({
      webhookId: String(req.headers["webhook-id"]),
      timestamp: Number(req.headers["webhook-timestamp"]),
      type: payload.type,
      punchIds: ids,
    });
    const results = punches.map((punch) => {
      const id = punch.id;
      if (typeof id !== "string" || id === "") return { id: String(id), status: "rejected", reason: "no id" };
      if (this.punches.has(id)) {
        this.duplicates += 1;
        return { id, status: "duplicate" };
      }
      const reason = this.#options.reject?.(punch);
      if (reason !== undefined) return { id, status: "rejected", reason };
      this.punches.set(id, punch);
      return { id, status: "accepted" };
    });
    if (fault?.kind === "slow") await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault?.kind === "bare") {
      if (!res.destroyed) res.writeHead(204).end();
      return;
    }
    json(200, { results });
  }
}
