import type { ZkSourceConfig } from "../../config/config-schema.ts";
import type { Clock } from "../../core/clock.ts";
import { resolveTime } from "../../core/local-time.ts";
import { ZkClient } from "./zk-client.ts";

/**
 * A session with the terminal a source config names, opened as the source and the doctor both open it: its
 * transport, comm key, timeouts and checksum policy. `label` names the terminal in errors (default host:port).
 */
export function openZkSession(config: ZkSourceConfig, signal: AbortSignal, label?: string): Promise<ZkClient> {
  return ZkClient.connect({
    host: config.host,
    port: config.port,
    transport: config.transport,
    commKey: config.commKey,
    timeoutMs: config.requestTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    signal,
    ...(label === undefined ? {} : { label }),
    checksum: config.checksum,
  });
}

/**
 * The terminal's clock minus this machine's, in ms: its local time read in the source's time zone, against the
 * middle of the round trip (the terminal answers in whole seconds, so the round trip is most of the error).
 */
export async function readClockDrift(client: ZkClient, timezone: string, clock: Clock): Promise<number> {
  const before = clock.now();
  const local = await client.deviceTime();
  const hostNow = (before + clock.now()) / 2;
  return Math.round(resolveTime(local, timezone).epochMs - hostNow);
}
