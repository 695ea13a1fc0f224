import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Clock, systemClock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import type { ConnectorMetrics } from "./metrics.ts";
import type { ConnectorStatus } from "./status-api.ts";
import { STATUS_PAGE_CSP, statusPage } from "./status-page.ts";

export interface StatusServerOptions {
  readonly host: string;
  readonly port: number;
  readonly status: () => ConnectorStatus;
  readonly logger: Logger;
  readonly metrics?: ConnectorMetrics;
  /** Default: 32 random bytes, base64url. */
  readonly token?: string;
  /** Decides when sessions expire; injectable so tests can move it. */
  readonly clock?: Clock;
}

/** A working day: long enough to keep the page open through a shift, short enough that a copied cookie dies. */
export const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;
/** Each use of the token opens one; the oldest give way so a loop of page opens cannot grow memory. */
const MAX_SESSIONS = 64;

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** A fresh unguessable token (256 bits). */
export function newStatusToken(): string {
  return randomBytes(32).toString("base64url");
}

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * Loopback-only HTTP (invariant 8): the page at `/`, `GET /v1/status` and `GET /metrics`, all behind one token.
 * The token comes as `Authorization: Bearer`, or once as `/?token=` from the URL `bioapi status --url` prints. That
 * opens a browser session: a fresh random value, kept here with its expiry, set as an HttpOnly SameSite=Strict cookie,
 * and a redirect so the token leaves the address bar and history. The token itself is never a cookie: cookies are
 * not isolated by port, so every other server on this machine's loopback (another user's, on a shared RDP host)
 * receives them. What such a server can learn is a session that opens only the page and its status document, and
 * only until it expires. The Host header must name loopback, so a web page elsewhere cannot reach this server
 * through DNS rebinding.
 */
export class StatusServer {
  readonly #server: Server;
  readonly #o: StatusServerOptions;
  readonly token: string;

  private constructor(server: Server, options: StatusServerOptions, token: string) {
    this.#server = server;
    this.#o = options;
    this.token = token;
  }

  static async start(options: StatusServerOptions): Promise<StatusServer> {
    if (!LOOPBACK.has(options.host))
      throw new Error(`The status endpoint binds to loopback only, not ${options.host}.`);
    const token = options.token ?? newStatusToken();
    const expected = digest(token);
    // Hashing first gives equal lengths, so the comparison takes the same time whatever the guess.
    const matches = (given: string | undefined) => given !== undefined && timingSafeEqual(digest(given), expected);
    const clock = options.clock ?? systemClock;
    // Keyed by the value's digest: a heap dump shows no live cookie, and a lookup's timing tells nothing of the value.
    const sessions = new Map<string, number>();
    const openSession = (): string => {
      const now = clock.now();
      for (const [key, expires] of sessions) if (expires <= now) sessions.delete(key);
      while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
      const value = randomBytes(32).toString("base64url");
      sessions.set(digest(value).toString("hex"), now + SESSION_LIFETIME_MS);
      return value;
    };
    const session = (given: string | undefined): "valid" | "expired" | "none" => {
      if (given === undefined) return "none";
      const key = digest(given).toString("hex");
      const expires = sessions.get(key);
      if (expires === undefined) return "none";
      // Kept until the next session opens (pruned there), so every poll of an open page hears "expired".
      return expires > clock.now() ? "valid" : "expired";
    };
    let port = 0;
    const cookieName = () => `bioapi_status_${port}`;
    const server = createServer((req, res) => {
      handle(req, res).catch((error: unknown) => {
        options.logger.warn("Status request failed.", { error, url: req.url?.split("?")[0] });
        if (!res.headersSent) send(res, 500, "application/json", JSON.stringify({ error: "internal" }));
        else res.destroy();
      });
    });
    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const host = (req.headers.host ?? "").toLowerCase();
      if (![`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host)) {
        send(res, 421, "text/plain", "Use the loopback address printed by bioapi status --url.\n");
        return;
      }
      const url = new URL(req.url ?? "/", `http://${host}`);
      if (req.method !== "GET" && req.method !== "HEAD") {
        send(res, 405, "application/json", JSON.stringify({ error: "method_not_allowed" }), { allow: "GET" });
        return;
      }
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
      const cookie = parseCookies(req.headers.cookie)[cookieName()];
      const queryToken = url.searchParams.get("token") ?? undefined;
      if (url.pathname === "/" && queryToken !== undefined && matches(queryToken)) {
        res.writeHead(303, {
          location: "/",
          "set-cookie": `${cookieName()}=${openSession()}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_LIFETIME_MS / 1000}`,
          "cache-control": "no-store",
          "referrer-policy": "no-referrer",
        });
        res.end();
        return;
      }
      // A session opens what the page needs, nothing more; /metrics is for scrapers, which send the token.
      const sessionScope = url.pathname === "/" || url.pathname === "/v1/status";
      const bySession = sessionScope ? session(cookie) : "none";
      if (!matches(bearer) && bySession !== "valid") {
        const expired = bySession === "expired";
        const again =
          "Open the address printed by `bioapi status --url` (run it as the service account or an administrator).";
        send(
          res,
          401,
          url.pathname === "/" ? "text/plain; charset=utf-8" : "application/json",
          url.pathname === "/"
            ? `${expired ? "This page's session expired. " : ""}${again}\n`
            : JSON.stringify(
                expired
                  ? { error: "session_expired", message: `The page's session expired. ${again}` }
                  : {
                      error: "unauthorized",
                      message: "Send Authorization: Bearer <token>; the token is in status.json in the data directory.",
                    },
              ),
          {
            "www-authenticate": "Bearer",
            ...(expired ? { "set-cookie": `${cookieName()}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` } : {}),
          },
        );
        return;
      }
      if (url.pathname === "/") {
        send(res, 200, "text/html; charset=utf-8", statusPage(), { "content-security-policy": STATUS_PAGE_CSP });
      } else if (url.pathname === "/v1/status") {
        send(res, 200, "application/json", JSON.stringify(options.status()));
      } else if (url.pathname === "/metrics" && options.metrics) {
        options.metrics.update(options.status(), Date.now());
        send(res, 200, options.metrics.contentType, await options.metrics.text());
      } else {
        send(
          res,
          404,
          "application/json",
          JSON.stringify({ error: "not_found", message: "Try /, /v1/status or /metrics." }),
        );
      }
    };
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    return new StatusServer(server, options, token);
  }

  get url(): string {
    const address = this.#server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#o.logger.debug("Status endpoint closed.");
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    ...headers,
  });
  res.end(body);
}

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
