import { statfsSync } from "node:fs";
import { sleep } from "../core/abort.ts";
import type { Clock } from "../core/clock.ts";
import { isDiskFullError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Store } from "./store.ts";

/**
 * Delivered ids are remembered this long, so a re-read never enqueues a punch twice; it bounds every source's
 * lookback window (config's MAX_LOOKBACK_MS stays below it).
 */
export const DELIVERED_RETENTION_MS = 7 * 24 * 3600_000;

const PRUNE_EVERY_MS = 3600_000;

/**
 * Delivered punches keep their body (the journal a sink added with backfillFrom reads) only while the data volume
 * has at least this much free: on a small or nearly full volume the room goes to the outbox, and a backfill gets
 * what the outbox still holds.
 */
export const JOURNAL_MIN_FREE_BYTES = 256 * 1024 * 1024;

/** Whether the volume holding `dir` has room for the journal; looked up at most every 10 s. */
export function journalRoom(dir: string, clock: Clock, minFree = JOURNAL_MIN_FREE_BYTES): () => boolean {
  let checkedAt = Number.NEGATIVE_INFINITY;
  let room = true;
  return () => {
    const now = clock.now();
    if (Math.abs(now - checkedAt) < 10_000) return room;
    checkedAt = now;
    try {
      const s = statfsSync(dir);
      room = s.bavail * s.bsize >= minFree;
    } catch {
      room = false;
    }
    return room;
  };
}

/** The hourly loop that forgets delivered ids past retention, and the journal's bodies when room is short. */
export function pruneDelivered(
  store: Pick<Store, "pruneDelivered" | "dropJournal">,
  logger: Logger,
  journal: () => boolean = () => true,
) {
  return async (signal: AbortSignal): Promise<void> => {
    while (!signal.aborted) {
      try {
        const removed = store.pruneDelivered(DELIVERED_RETENTION_MS);
        if (removed > 0) logger.debug("Pruned delivered ids past retention.", { removed });
        if (!journal()) {
          const dropped = store.dropJournal();
          if (dropped > 0)
            logger.info("The data volume is short of room: delivered punches keep only their ids now.", { dropped });
        }
      } catch (error) {
        // A full disk is the disk task's to report; pruning waits for the next hour like everything else waits.
        if (!isDiskFullError(error)) throw error;
      }
      await sleep(PRUNE_EVERY_MS, signal);
    }
  };
}
