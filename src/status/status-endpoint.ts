import { chmod, readFile, rm } from "node:fs/promises";
import { atomicWrite } from "../core/atomic-write.ts";
import { BioError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Part } from "../core/part.ts";
import type { ConnectorMetrics } from "./metrics.ts";
import type { ConnectorStatus, StatusEndpointFile } from "./status-api.ts";
import { newStatusToken, StatusServer } from "./status-server.ts";

export interface StatusEndpointOptions {
  readonly host: string;
  /** 0: the OS picks a free port; the URL is written to the status file. */
  readonly port: number;
  /** `<dataDir>/status.json`; the token sits beside it as `status.token`. */
  readonly statusFile: string;
  readonly startedAt: number;
  readonly status: () => ConnectorStatus;
  readonly metrics: ConnectorMetrics;
  readonly logger: Logger;
}

/**
 * The loopback status endpoint as a part: the server, and `status.json` that tells `bioapi status` and the page
 * where it is and with which token. Stopping closes the server and removes the file, if it is still ours.
 */
export class StatusEndpoint implements Part {
  readonly name = "status";
  readonly #o: StatusEndpointOptions;
  #server: StatusServer | undefined;

  constructor(options: StatusEndpointOptions) {
    this.#o = options;
  }

  get url(): string {
    if (!this.#server) throw new BioError("USAGE", "The connector is not running.");
    return this.#server.url;
  }

  async start(): Promise<void> {
    const { statusFile } = this.#o;
    this.#server = await StatusServer.start({
      host: this.#o.host,
      port: this.#o.port,
      status: this.#o.status,
      logger: this.#o.logger,
      metrics: this.#o.metrics,
      token: await statusToken(`${statusFile.replace(/\.json$/, "")}.token`),
    });
    const endpoint: StatusEndpointFile = {
      url: this.#server.url,
      token: this.#server.token,
      pid: process.pid,
      startedAt: new Date(this.#o.startedAt).toISOString(),
    };
    // Atomic and 0600: a reader never sees half a file, and nothing left at the path lends it a wider mode (the
    // token opens the status API).
    try {
      await atomicWrite(statusFile, `${JSON.stringify(endpoint)}\n`);
    } catch (error) {
      // A part whose start throws cleans up after itself (Parts stops only the parts that are up).
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<undefined> {
    await this.#server?.close();
    await removeIfOurs(this.#o.statusFile);
    return undefined;
  }
}

/** status.json belongs to the process that wrote it: never delete another process's endpoint. */
async function removeIfOurs(statusFile: string): Promise<void> {
  const text = await readFile(statusFile, "utf8").catch(() => undefined);
  if (text === undefined) return;
  try {
    if ((JSON.parse(text) as Partial<StatusEndpointFile>).pid !== process.pid) return;
  } catch {
    // Unreadable: not a file anyone can use, so nobody loses anything by its removal.
  }
  await rm(statusFile, { force: true });
}

/**
 * The status token survives restarts, so a Prometheus scrape configured with `credentials_file` pointing at this
 * file keeps working; delete the file to rotate it. 0600, like every file in the data directory.
 */
async function statusToken(path: string): Promise<string> {
  try {
    const existing = (await readFile(path, "utf8")).trim();
    if (/^[A-Za-z0-9_-]{43}$/.test(existing)) {
      await chmod(path, 0o600);
      return existing;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = newStatusToken();
  await atomicWrite(path, `${token}\n`);
  return token;
}
