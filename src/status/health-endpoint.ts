import type { Logger } from "../core/logger.ts";
import type { Part } from "../core/part.ts";
import { HealthChannel, healthChannelPath, writeHealthRecord } from "./health-channel.ts";
import type { ConnectorStatus } from "./status-api.ts";

export interface HealthEndpointOptions {
  readonly dataDir: string;
  readonly startedAt: number;
  readonly status: () => ConnectorStatus;
  readonly logger: Logger;
  /** Windows service: narrows the pipe's access list once it exists (see HealthChannelOptions.restrict). */
  readonly restrict?: (path: string) => Promise<void>;
}

/** The monitor's private line (unix socket / named pipe) as a part: responsive and making progress, or not. */
export class HealthEndpoint implements Part {
  readonly name = "health";
  readonly #o: HealthEndpointOptions;
  #channel: HealthChannel | undefined;

  constructor(options: HealthEndpointOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const { dataDir, status, logger, restrict, startedAt } = this.#o;
    this.#channel = await HealthChannel.start({
      path: healthChannelPath(dataDir),
      status,
      logger,
      ...(restrict ? { restrict } : {}),
    });
    // Written once the channel serves: the monitor trusts a channel only when this names the running connector.
    try {
      await writeHealthRecord(dataDir, {
        path: this.#channel.path,
        pid: process.pid,
        startedAt: new Date(startedAt).toISOString(),
      });
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<undefined> {
    await this.#channel?.close();
    return undefined;
  }
}
