import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readFile, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { dirname, join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { atomicWrite } from "../core/atomic-write.ts";
import { BioError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { ConnectorStatus } from "./status-api.ts";

/**
 * The monitor's private line to the connector: HTTP over a unix socket (Linux) or a named pipe (Windows), so no
 * port is opened and the channel can be restricted to the service accounts. Answering at all proves the event loop
 * is responsive; the body says whether work is moving (see {@link assessProgress}).
 */
export interface HealthReport {
  readonly pid: number;
  readonly version: string;
  readonly startedAt: string;
  readonly uptimeMs: number;
  /** p99 event-loop delay over the last report interval: a loop that answers but crawls shows here. */
  readonly eventLoopDelayP99Ms: number;
  readonly progress: Progress;
}

export interface Progress {
  readonly progressing: boolean;
  /** Why not, naming the source or the outbox; null when progressing. */
  readonly reason: string | null;
}

/**
 * Unix socket paths are limited to ~107 bytes; a long data dir falls back to a hashed directory in /tmp, private
 * like the data dir: a socket file is only as private as the directory it sits in.
 */
const MAX_SOCKET_PATH = 100;

/**
 * On Linux a fixed socket in a 0700 directory: the file system keeps other accounts out. On Windows a pipe name is
 * anyone's to take once its server is gone, so each start serves a fresh random name, recorded in the data
 * directory (SYSTEM and Administrators only) by {@link writeHealthRecord}; pass `nonce` there.
 */
export function healthChannelPath(
  dataDir: string,
  platform: NodeJS.Platform = process.platform,
  nonce: string = randomBytes(16).toString("hex"),
): string {
  const digest = createHash("sha256").update(dataDir).digest("hex").slice(0, 16);
  if (platform === "win32") return `\\\\.\\pipe\\cams-bioapi-health-${nonce}`;
  const path = join(dataDir, "health.sock");
  return path.length <= MAX_SOCKET_PATH ? path : join("/tmp", `cams-bioapi-health-${digest}`, "health.sock");
}

/**
 * The socket's directory must be this account's and closed to everyone else (0700): in a shared directory another
 * local user could connect to the socket in the moment before its chmod, or plant a directory of their own at a
 * predictable /tmp name. One we own with a loose mode is tightened; one owned by another account is refused.
 */
export async function ensurePrivateSocketDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new BioError(
      "SERVICE",
      `The health channel's directory ${dir} is ${st.isDirectory() ? `owned by uid ${st.uid}, not this account (uid ${uid})` : "not a directory"}, so another account could take the monitor's channel. Remove it (as root) and start again.`,
    );
  }
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/**
 * Restarting helps only when the connector itself is wedged, not when a device or the cloud is down (that is for
 * the status page). So: a running source that has not polled for `stallMs`, or an outbox that is not draining
 * although the cloud is reachable and the shipper reports neither an error nor a scheduled retry.
 */
export function assessProgress(status: ConnectorStatus, now: number, stallMs: number): Progress {
  const startedAt = Date.parse(status.startedAt);
  if (now - startedAt < stallMs) return { progressing: true, reason: null };
  // A full data disk holds everything on purpose, and a restart could not write either: waiting is the progress.
  if (status.disk?.state === "full") return { progressing: true, reason: null };
  for (const source of status.sources) {
    if (source.state !== "running") continue;
    const last = Date.parse(source.lastPollAt ?? source.startedAt);
    if (now - last > stallMs) {
      return {
        progressing: false,
        reason: `source ${source.sourceId} has not polled for ${Math.round((now - last) / 1000)} s`,
      };
    }
  }
  const { outbox, shipper, connectivity } = status;
  const lastDelivery = shipper.lastDeliveryAt ? Date.parse(shipper.lastDeliveryAt) : startedAt;
  if (
    outbox.depth > 0 &&
    connectivity.state === "online" &&
    !shipper.lastError &&
    !shipper.retryAt &&
    (outbox.oldestUnsentAgeMs ?? 0) > stallMs &&
    now - lastDelivery > stallMs
  ) {
    return {
      progressing: false,
      reason: `the outbox (${outbox.depth} punches) has not drained for ${Math.round((now - lastDelivery) / 1000)} s while the cloud is reachable`,
    };
  }
  return { progressing: true, reason: null };
}

/** Which channel the running connector serves, and its process: `health-channel.json` in the data directory. */
export interface HealthRecord {
  readonly path: string;
  readonly pid: number;
  readonly startedAt: string;
}

const RECORD = "health-channel.json";

export async function writeHealthRecord(dataDir: string, record: HealthRecord): Promise<void> {
  await atomicWrite(join(dataDir, RECORD), `${JSON.stringify(record)}\n`);
}

export async function readHealthRecord(dataDir: string): Promise<HealthRecord | null> {
  try {
    const r = JSON.parse(await readFile(join(dataDir, RECORD), "utf8")) as Partial<HealthRecord>;
    return typeof r.path === "string" && typeof r.pid === "number" && typeof r.startedAt === "string"
      ? { path: r.path, pid: r.pid, startedAt: r.startedAt }
      : null;
  } catch {
    return null;
  }
}

/** Where the monitor finds the connector's channel, and proof that the connector, not another program, serves it. */
export interface HealthLocator {
  /** `pid`: the connector's process as the service manager reports it, when known. */
  locate(pid: number | null): Promise<{ readonly path: string; readonly pid?: number } | { readonly problem: string }>;
}

/** Linux and process mode: the socket's directory is private, so its path is proof enough. */
export function fixedHealthPath(path: string): HealthLocator {
  return { locate: async () => ({ path }) };
}

/**
 * Windows: the path comes from the connector's record, which must name the process the SCM runs; then the pipe's
 * server process (GetNamedPipeServerProcessId) must be that process too. Only then is a request sent, so a program
 * that took a stale name never sees the monitor's request.
 */
export function recordedHealthChannel(dataDir: string, serverPid: (path: string) => Promise<number>): HealthLocator {
  return {
    async locate(pid) {
      const record = await readHealthRecord(dataDir);
      if (!record) return { problem: "the connector has not opened its health channel yet (no health-channel.json)" };
      if (pid !== null && record.pid !== pid) {
        return {
          problem: `the health channel on record belongs to process ${record.pid}, not the running connector (pid ${pid}); it has not opened its own yet`,
        };
      }
      let server: number;
      try {
        server = await serverPid(record.path);
      } catch (error) {
        return { problem: `the health channel ${record.path} could not be opened: ${(error as Error).message}` };
      }
      if (server !== record.pid) {
        return {
          problem: `the health channel ${record.path} is served by process ${server}, not the connector (pid ${record.pid}): another program holds its name; no request was sent`,
        };
      }
      return { path: record.path, pid: record.pid };
    },
  };
}

export interface HealthChannelOptions {
  readonly path: string;
  /**
   * Windows service: replaces the pipe's default access list (which lets every account read) with SYSTEM,
   * Administrators and the service's own SID, right after it is created.
   */
  readonly restrict?: (path: string) => Promise<void>;
  readonly status: () => ConnectorStatus;
  readonly logger: Logger;
  /** Default 15 minutes: device polls run every few seconds, so this is far beyond any normal pause. */
  readonly stallMs?: number;
}

export class HealthChannel {
  readonly #server: Server;
  readonly #path: string;
  readonly #delay = monitorEventLoopDelay({ resolution: 20 });

  private constructor(server: Server, path: string) {
    this.#server = server;
    this.#path = path;
  }

  static async start(options: HealthChannelOptions): Promise<HealthChannel> {
    const stallMs = options.stallMs ?? Number(process.env.BIOAPI_STALL_MS ?? 15 * 60_000);
    let channel: HealthChannel | undefined;
    const server = createServer((req, res) => {
      if (req.method !== "GET" || req.url !== "/v1/health" || !channel) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "not_found", message: "Try GET /v1/health." }));
        return;
      }
      const status = options.status();
      const now = Date.now();
      const report: HealthReport = {
        pid: process.pid,
        version: status.version,
        startedAt: status.startedAt,
        uptimeMs: now - Date.parse(status.startedAt),
        eventLoopDelayP99Ms: Math.round(channel.#delay.percentile(99) / 1e6),
        progress: assessProgress(status, now, stallMs),
      };
      channel.#delay.reset();
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(report));
    });
    server.requestTimeout = 5_000;
    server.headersTimeout = 5_000;
    if (process.platform !== "win32") {
      await ensurePrivateSocketDir(dirname(options.path));
      // A killed connector leaves its socket file behind; binding over it fails with EADDRINUSE.
      await rm(options.path, { force: true });
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    // The service accounts (root / SYSTEM) are the only peers that need it.
    if (process.platform !== "win32") await chmod(options.path, 0o600);
    if (options.restrict) {
      await options.restrict(options.path).catch(async (error: unknown) => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw error;
      });
    }
    channel = new HealthChannel(server, options.path);
    channel.#delay.enable();
    options.logger.debug("Health channel listening.", { path: options.path });
    return channel;
  }

  get path(): string {
    return this.#path;
  }

  async close(): Promise<void> {
    this.#delay.disable();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Asks the connector for its health; rejects with TIMEOUT when it does not answer within `timeoutMs` (a hang). */
export function probeHealth(path: string, timeoutMs: number, signal?: AbortSignal): Promise<HealthReport> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: path, path: "/v1/health", method: "GET", timeout: timeoutMs, ...(signal ? { signal } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          try {
            if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as HealthReport);
          } catch (error) {
            reject(new BioError("TIMEOUT", "The connector's health channel gave an invalid answer.", { cause: error }));
          }
        });
      },
    );
    // `timeout` only fires on socket inactivity; a frozen peer never sends a byte, so that is exactly the hang case.
    req.on("timeout", () =>
      req.destroy(new BioError("TIMEOUT", `The connector did not answer its health channel within ${timeoutMs} ms.`)),
    );
    req.on("error", reject);
    req.end();
  });
}
