import type { Clock } from "../core/clock.ts";
import { isDiskFullError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { DiskSpace } from "./disk-space.ts";
import { InstanceLock } from "./instance-lock.ts";

/**
 * Runs `start` holding the data directory: the disk has room (a start on a full disk ends in one line that says so,
 * before anything is written or logged) and no other connector runs on it. A start that fails releases the lock;
 * the disk filling during the start is told as the full disk it is.
 */
export async function holdDataDir<T>(
  root: string,
  options: { readonly clock: Clock; readonly logger: Logger },
  start: (claim: { readonly lock: InstanceLock; readonly space: DiskSpace }) => Promise<T>,
): Promise<T> {
  const space = new DiskSpace({ dir: root, clock: options.clock, logger: options.logger.child("disk") });
  const refused = space.tryWrite();
  if (isDiskFullError(refused)) throw space.startError(refused);
  try {
    // Before anything in the directory is read or written: a second connector must leave the first one's store,
    // status.json and health channel alone.
    const lock = InstanceLock.acquire(root, "run");
    try {
      return await start({ lock, space });
    } catch (error) {
      lock.release();
      throw error;
    }
  } catch (error) {
    // The disk filled between the probe and a write of the start (status.json, the store, the lock's label).
    throw isDiskFullError(error) ? space.startError(error) : error;
  }
}
