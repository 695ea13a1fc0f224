import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../core/logger.ts";
import type { ConnectorStatus } from "./status-api.ts";

export interface StatusServerOptions {
  readonly host: string;
  readonly port: number;
  readonly status: () => ConnectorStatus;
  readonly logger: Logger;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** Loopback-only HTTP: `GET /v1/status`. Nothing here is reachable from the LAN (invariant 8). */
export class StatusServer {
  readonly #server: Server;
  readonly #o: StatusServerOptions;

  private constructor(server: Server, options: StatusServerOptions) {
    this.#server = server;
    this.#o = options;
  }

  static async start(options: StatusServerOptions): Promise<StatusServer> {
    if (!LOOPBACK.has(options.host))
      throw new Error(`The status endpoint binds to loopback only, not ${options.host}.`);
    const server = createServer((req, res) => {
      if (req.method === "GET" && (req.url === "/v1/status" || req.url === "/")) {
        const body = JSON.stringify(options.status());
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(body);
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not_found", message: "Try GET /v1/status." }));
    });
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => resolve());
    });
    return new StatusServer(server, options);
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
