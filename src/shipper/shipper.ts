import type { ShipperConfig } from "../config/config-schema.ts";
import { type Notifier, sleep } from "../core/abort.ts";
import { Backoff } from "../core/backoff.ts";
import type { Clock } from "../core/clock.ts";
import { BioError, describeError, isAbortError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Sink } from "../sinks/sink.ts";
import type { OutboxEntry, Store } from "../store/store.ts";
import type { Connectivity } from "../supervisor/connectivity.ts";

export interface ShipperOptions {
  readonly store: Store;
  readonly sink: Sink;
  readonly connectivity: Connectivity;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: () => ShipperConfig;
  /** Notified by emit() so a new punch does not wait for a poll tick. */
  readonly wake: Notifier;
  readonly random?: () => number;
}

export interface ShipperStatus {
  readonly delivered: number;
  readonly quarantined: number;
  readonly lastDeliveryAt: string | null;
  readonly lastError: { code: string; message: string } | null;
  readonly retryAt: string | null;
}

/**
 * Drains the outbox in order: batches by size and linger, acknowledges per id, quarantines permanent rejections,
 * and backs off with jitter (never sooner than Retry-After). A batch refused as a whole is split until the one bad
 * punch is isolated and quarantined, so no single record blocks the queue.
 */
export class Shipper {
  readonly #o: ShipperOptions;
  readonly #backoff: Backoff;
  #delivered = 0;
  #quarantined = 0;
  #lastDeliveryAt: number | null = null;
  #lastError: { code: string; message: string } | null = null;
  #retryAt: number | null = null;
  /** Shrinks while isolating a poisoned batch; reset after a success. */
  #limit: number | undefined;

  constructor(options: ShipperOptions) {
    this.#o = options;
    this.#backoff = new Backoff({
      initialMs: 500,
      maxMs: options.config().maxBackoffMs,
      random: options.random ?? Math.random,
    });
  }

  status(): ShipperStatus {
    return {
      delivered: this.#delivered,
      quarantined: this.#quarantined,
      lastDeliveryAt: this.#lastDeliveryAt ? new Date(this.#lastDeliveryAt).toISOString() : null,
      lastError: this.#lastError,
      retryAt: this.#retryAt ? new Date(this.#retryAt).toISOString() : null,
    };
  }

  /**
   * Up to `maxInFlight` batches travel at once, each taken in outbox order after the previous one, so the cloud
   * ingests one batch while we prepare or acknowledge the next. After any failure the in-flight batches settle and
   * reading restarts from the oldest unacknowledged punch.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { store, connectivity, wake, clock } = this.#o;
    const inflight = new Set<Promise<void>>();
    let after = 0;
    let dirty = false;
    try {
      while (!signal.aborted) {
        await connectivity.waitOnline(signal);
        const config = this.#o.config();
        if (dirty) {
          await Promise.allSettled([...inflight]);
          after = 0;
          dirty = false;
          continue;
        }
        if (inflight.size >= config.maxInFlight) {
          await Promise.race(inflight);
          continue;
        }
        const size = Math.min(this.#limit ?? config.batchSize, config.batchSize);
        let batch = store.peek(size, after);
        if (batch.length === 0) {
          await (inflight.size > 0 ? Promise.race([...inflight, wake.wait(1000, signal)]) : wake.wait(1000, signal));
          continue;
        }
        const oldest = batch[0]?.enqueuedAt ?? clock.now();
        const lingerLeft = config.lingerMs - (clock.now() - oldest);
        if (inflight.size === 0 && batch.length < size && lingerLeft > 0) {
          await sleep(lingerLeft, signal);
          batch = store.peek(size, after);
        }
        after = batch.at(-1)?.seq ?? after;
        const delivery: Promise<void> = this.#deliver(batch, signal)
          .then((clean) => {
            if (!clean) dirty = true;
          })
          .finally(() => inflight.delete(delivery));
        inflight.add(delivery);
      }
    } finally {
      await Promise.allSettled([...inflight]);
    }
  }

  /** Sends one batch and settles it; false when something is left to retry (after the backoff has run). */
  async #deliver(batch: OutboxEntry[], signal: AbortSignal): Promise<boolean> {
    const { store, sink, connectivity, clock, logger } = this.#o;
    try {
      const sendStarted = performance.now();
      const result = await sink.send(batch, signal);
      const sendMs = performance.now() - sendStarted;
      connectivity.reportSuccess();
      store.ack(result.acked);
      logger.debug("Batch delivered.", {
        size: batch.length,
        acked: result.acked.length,
        sendMs: Math.round(sendMs),
        ackMs: Math.round(performance.now() - sendStarted - sendMs),
      });
      const permanent = result.rejected.filter((r) => r.permanent);
      store.quarantineOutbox(permanent);
      for (const r of permanent)
        logger.warn("Punch rejected by the cloud; moved to quarantine.", { punchId: r.id, reason: r.reason });
      this.#delivered += result.acked.length;
      this.#quarantined += permanent.length;
      if (result.acked.length > 0) this.#lastDeliveryAt = clock.now();
      const unsettled = batch.length - result.acked.length - permanent.length;
      if (result.retryAfterMs !== undefined || unsettled > 0) {
        const wait = Math.max(result.retryAfterMs ?? 0, this.#backoff.next());
        this.#lastError =
          result.retryAfterMs !== undefined
            ? {
                code: "CLOUD_BUSY",
                message: `The cloud asked to retry after ${Math.round(result.retryAfterMs / 1000)} s.`,
              }
            : { code: "CLOUD_RETRY", message: `${unsettled} punches not settled by the cloud; retrying.` };
        await this.#pause(wait, signal, result.retryAfterMs === undefined);
        return false;
      }
      this.#backoff.reset();
      this.#lastError = null;
      this.#retryAt = null;
      if (this.#limit !== undefined && this.#limit < this.#o.config().batchSize)
        this.#limit = Math.min(this.#limit * 2, this.#o.config().batchSize);
      else this.#limit = undefined;
      return true;
    } catch (error) {
      if (isAbortError(error) && signal.aborted) throw error;
      const d = describeError(error);
      this.#lastError = { code: d.code, message: d.message };
      store.recordAttempt(batch.map((e) => e.id));
      if (error instanceof BioError && error.code === "CLOUD_REJECTED") {
        await this.#isolate(batch, error, signal);
        return false;
      }
      if (error instanceof BioError && error.code === "CLOUD_UNAVAILABLE") connectivity.reportFailure(error);
      const wait = this.#backoff.next();
      logger.warn("Delivery failed; will retry.", { error, retryInMs: wait, batch: batch.length });
      await this.#pause(wait, signal, true);
      return false;
    }
  }

  /** The cloud refused the whole batch: halve until the refused punch stands alone, then quarantine it. */
  async #isolate(batch: OutboxEntry[], error: BioError, signal: AbortSignal): Promise<void> {
    const [first] = batch;
    if (batch.length === 1 && first) {
      this.#o.store.quarantineOutbox([{ id: first.id, reason: error.message }]);
      this.#quarantined++;
      this.#o.logger.warn("Punch refused by the cloud; moved to quarantine.", { punchId: first.id, error });
      return;
    }
    this.#limit = Math.max(1, Math.floor(batch.length / 2));
    await this.#pause(this.#backoff.next(), signal, false);
  }

  /**
   * Waits out a backoff. When `interruptible`, connectivity coming back cuts it short, so the backlog drains as soon
   * as the probe sees the cloud; a Retry-After is never cut short.
   */
  async #pause(ms: number, signal: AbortSignal, interruptible: boolean): Promise<void> {
    const { clock, connectivity } = this.#o;
    const until = clock.now() + ms;
    this.#retryAt = until;
    let sawOffline = !connectivity.isOnline;
    while (clock.now() < until && !signal.aborted) {
      await connectivity.waitChange(Math.max(1, until - clock.now()), signal);
      if (!connectivity.isOnline) sawOffline = true;
      else if (interruptible && sawOffline) break;
    }
  }
}
