import type { DiskSpace } from "./disk-space.ts";

/** The outbox limits and the offline policy, as the config has them now. */
export interface OutboxLimits {
  readonly policy: "pause" | "buffer";
  /** Sources throttle at this depth while the cloud is reachable… */
  readonly highWater: number;
  /** …and at this one while it is not (policy `buffer`). */
  readonly maxDepth: number;
}

export interface OutboxGateOptions {
  readonly depth: () => number;
  readonly space: Pick<DiskSpace, "isFull">;
  /** link/'s Connectivity: `waitChange` settles on a change of state or after `ms`, whichever is first. */
  readonly connectivity: {
    readonly isOnline: boolean;
    waitChange(ms: number, signal: AbortSignal): Promise<void>;
  };
  readonly limits: () => OutboxLimits;
}

/**
 * Backpressure for every source: closed while the data disk is full (nothing read could be committed), while the
 * cloud is away under policy `pause`, and while the outbox is deeper than its limit. What is not read stays safe in
 * the device or database, below an unmoved cursor.
 */
export class OutboxGate {
  readonly #o: OutboxGateOptions;

  constructor(options: OutboxGateOptions) {
    this.#o = options;
  }

  blockedBy(): "paused" | "throttled" | null {
    const { space, connectivity, depth, limits } = this.#o;
    if (space.isFull) return "paused";
    const { policy, highWater, maxDepth } = limits();
    const isOnline = connectivity.isOnline;
    if (!isOnline && policy === "pause") return "paused";
    return depth() >= (isOnline ? highWater : maxDepth) ? "throttled" : null;
  }

  async waitOpen(signal: AbortSignal): Promise<void> {
    // Depth falls with every acknowledgement, so a short re-check beats wiring another notifier.
    while (this.blockedBy()) await this.#o.connectivity.waitChange(50, signal);
  }
}
