import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { loopPart, type Part } from "../core/part.ts";
import { CloudClient } from "./cloud-client.ts";
import { Connectivity, type ConnectivitySettings } from "./connectivity.ts";
import { Heartbeat } from "./heartbeat.ts";
import type { NodeKeys } from "./node-keys.ts";

export interface CloudLinkOptions {
  readonly baseUrl: string;
  readonly nodeId: string;
  readonly keys: NodeKeys;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly connectivity: () => ConnectivitySettings;
  readonly heartbeatIntervalMs: () => number;
  readonly heartbeatBody: () => unknown;
  /** The cloud has just been seen: whatever waits for it (the config fetch) should ask now. */
  readonly onOnline: () => void;
}

/** The node's line to the Cams cloud: the signed client, whether the cloud is reachable, and the heartbeat. */
export class CloudLink {
  readonly client: CloudClient;
  readonly connectivity: Connectivity;
  readonly #heartbeat: Heartbeat;
  readonly #o: CloudLinkOptions;

  constructor(options: CloudLinkOptions) {
    this.#o = options;
    const { baseUrl, nodeId, keys, clock, logger } = options;
    this.client = new CloudClient({ baseUrl, nodeId, keys, clock });
    this.connectivity = new Connectivity({
      client: this.client,
      clock,
      logger: logger.child("connectivity"),
      config: options.connectivity,
    });
    this.#heartbeat = new Heartbeat({
      client: this.client,
      connectivity: this.connectivity,
      logger,
      intervalMs: options.heartbeatIntervalMs,
      body: options.heartbeatBody,
    });
    this.connectivity.subscribe((state) => {
      if (state !== "online") return;
      options.onOnline();
      this.#heartbeat.wake();
    });
  }

  /** A new config: its probe and heartbeat intervals may be shorter than the ones being waited out. */
  configChanged(): void {
    this.connectivity.poke();
    this.#heartbeat.wake();
  }

  /** The probe loop, then the heartbeat loop. */
  parts(): Part[] {
    const { logger, clock } = this.#o;
    return [
      loopPart("connectivity", (s) => this.connectivity.run(s), { logger, clock }),
      loopPart("heartbeat", (s) => this.#heartbeat.run(s), { logger, clock }),
    ];
  }
}
