import type { Logger } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import type { CloudClient } from "./cloud-client.ts";
import type { Connectivity } from "./connectivity.ts";

export interface HeartbeatOptions {
  readonly client: CloudClient;
  readonly connectivity: Pick<Connectivity, "isOnline">;
  readonly logger: Logger;
  readonly intervalMs: () => number;
  /** The body of POST status, built fresh for every beat (status/'s heartbeatBody). */
  readonly body: () => unknown;
}

const HEARTBEAT_TIMEOUT_MS = 10_000;

/** POST status while the cloud is reachable: what the fleet page shows of this node. A failed beat is only logged. */
export class Heartbeat {
  readonly #o: HeartbeatOptions;
  readonly #wake = new Notifier();

  constructor(options: HeartbeatOptions) {
    this.#o = options;
  }

  /** Beat now: a new config (its interval may be shorter), or the cloud coming back. */
  wake(): void {
    this.#wake.notify();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { client, connectivity, logger } = this.#o;
    while (!signal.aborted) {
      if (connectivity.isOnline) {
        const response = await client
          .request({
            method: "POST",
            path: client.nodePath("status"),
            json: this.#o.body(),
            timeoutMs: HEARTBEAT_TIMEOUT_MS,
            signal,
          })
          .catch((error: unknown) => {
            if (signal.aborted) throw error;
            logger.debug("Heartbeat failed.", { error });
            return undefined;
          });
        if (response && response.status >= 300) logger.debug("Heartbeat refused.", { status: response.status });
      }
      await this.#wake.wait(this.#o.intervalMs(), signal);
    }
  }
}
