import { sleep } from "../core/abort.ts";
import { isDiskFullError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Store } from "./store.ts";

/**
 * Delivered ids are remembered this long, so a re-read never enqueues a punch twice; it bounds every source's
 * lookback window (config's MAX_LOOKBACK_MS stays below it).
 */
export const DELIVERED_RETENTION_MS = 7 * 24 * 3600_000;

const PRUNE_EVERY_MS = 3600_000;

/** The hourly loop that forgets delivered ids past retention. */
export function pruneDelivered(store: Pick<Store, "pruneDelivered">, logger: Logger) {
  return async (signal: AbortSignal): Promise<void> => {
    while (!signal.aborted) {
      try {
        const removed = store.pruneDelivered(DELIVERED_RETENTION_MS);
        if (removed > 0) logger.debug("Pruned delivered ids past retention.", { removed });
      } catch (error) {
        // A full disk is the disk task's to report; pruning waits for the next hour like everything else waits.
        if (!isDiskFullError(error)) throw error;
      }
      await sleep(PRUNE_EVERY_MS, signal);
    }
  };
}
