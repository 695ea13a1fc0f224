import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { loopPart, type Part } from "../core/part.ts";
import type { ConfigChannel } from "./config-channel.ts";
import type { ConnectorConfig } from "./config-schema.ts";

/** Until a first config has arrived, the cloud is asked at least this often. */
const FIRST_CONFIG_POLL_MS = 5000;

/**
 * The cached last good config, applied before anything else runs: the connector works offline from the first
 * second, and the first probe, the first status answer and the first workers already use it.
 */
export function cachedConfig(channel: ConfigChannel): Part {
  return { name: "cached config", start: () => void channel.loadCached(), stop: () => undefined };
}

/** The config channel's poll as a part: a fetch every `configPollIntervalMs` while the cloud is reachable. */
export function configPoller(
  channel: ConfigChannel,
  options: {
    readonly config: () => ConnectorConfig;
    readonly isOnline: () => boolean;
    readonly logger: Logger;
    readonly clock: Clock;
  },
): Part {
  const { config } = options;
  const interval = () =>
    channel.current ? config().configPollIntervalMs : Math.min(FIRST_CONFIG_POLL_MS, config().configPollIntervalMs);
  return loopPart("config", (signal) => channel.run(signal, interval, options.isOnline), options);
}
