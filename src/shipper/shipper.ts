import type { ShipperConfig } from "../config/config-schema.ts";
import { sleep } from "../core/abort.ts";
import { Backoff } from "../core/backoff.ts";
import type { Clock } from "../core/clock.ts";
import { type BioError, describeError, isAbortError, isDiskFullError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Notifier } from "../core/notifier.ts";
import type { Connectivity } from "../link/connectivity.ts";
import type { Sink, SinkOutcome } from "../sinks/sink.ts";
import type { DiskSpace } from "../store/disk-space.ts";
import type { SinkLane } from "../store/sink-lanes.ts";
import type { OutboxEntry } from "../store/store.ts";

/** A Retry-After beyond this is treated as this: a misconfigured proxy must not park delivery for days. */
const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** What the shipper does with the store: read its sink's lane in order, and settle what the sink answered. */
export type Outbox = Pick<SinkLane, "peek" | "ack" | "quarantineOutbox" | "recordAttempt">;

/**
 * What the shipper asks of the way to its receiver: the Cams cloud's link is `Connectivity` (its failures are
 * evidence of lost internet); a receiver on the LAN is always worth trying, see `ALWAYS_REACHABLE`.
 */
export type Reach = Pick<Connectivity, "isOnline" | "waitOnline" | "waitChange" | "reportSuccess" | "reportFailure">;

/** For sinks other than the Cams cloud: their failures are their own, never evidence that the internet is gone. */
export const ALWAYS_REACHABLE: Reach = {
  isOnline: true,
  waitOnline: async () => undefined,
  waitChange: (ms, signal) => sleep(ms, signal),
  reportSuccess: () => undefined,
  reportFailure: () => undefined,
};

/** How the shipper names its receiver in status and logs. */
export interface ShipperTarget {
  /** "the cloud", "sink erp (erpnext)". */
  readonly words: string;
  /** The lastError codes of a receiver that asked to wait, and of punches it left unsettled. */
  readonly busyCode: string;
  readonly retryCode: string;
}

const CLOUD_TARGET: ShipperTarget = { words: "the cloud", busyCode: "CLOUD_BUSY", retryCode: "CLOUD_RETRY" };

export interface ShipperOptions {
  readonly store: Outbox;
  /** The data disk: while it is full nothing is sent, because no acknowledgement could be committed. */
  readonly space: Pick<DiskSpace, "isFull" | "waitRoom">;
  readonly sink: Sink;
  readonly connectivity: Reach;
  /** Default: the Cams cloud. */
  readonly target?: ShipperTarget;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: () => ShipperConfig;
  /** Notified by emit() so a new punch does not wait for a poll tick. */
  readonly wake: Notifier;
  readonly random?: () => number;
  /** First retry delay; tests shorten it. */
  readonly backoffInitialMs?: number;
  /** Told, per source id, how many punches the cloud acknowledged and how many it rejected for good. */
  readonly onSettled?: (delivered: ReadonlyMap<string, number>, rejected: ReadonlyMap<string, number>) => void;
}

function countBySource(batch: readonly OutboxEntry[], ids: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of batch) if (ids.has(e.id)) out.set(e.sourceId, (out.get(e.sourceId) ?? 0) + 1);
  return out;
}

export interface ShipperStatus {
  readonly delivered: number;
  readonly quarantined: number;
  readonly lastDeliveryAt: string | null;
  readonly lastError: { code: string; message: string } | null;
  readonly retryAt: string | null;
  /** Punches the cloud acknowledged whose acknowledgement waits in memory for room on the data disk. */
  readonly unsaved: number;
}

/**
 * Drains the outbox in order: batches by size and linger, acknowledges per id, quarantines permanent rejections,
 * and backs off with jitter (never sooner than Retry-After). It decides on the sink's outcome (SinkOutcome), never on
 * error codes. A batch too large for the cloud is halved until it fits, and a single punch still too large is
 * quarantined, so no single record blocks the queue; a batch refused as a whole is retried and never quarantined,
 * since that refusal is about the request, not a punch.
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
  /**
   * What the cloud settled but the full disk would not let us commit: acknowledged ids, and permanent rejections
   * with their reason. Kept until there is room, so a batch the cloud already has is never sent again for it.
   */
  readonly #unsavedAcks = new Set<string>();
  readonly #unsavedRejections = new Map<string, string>();

  get #target(): ShipperTarget {
    return this.#o.target ?? CLOUD_TARGET;
  }

  constructor(options: ShipperOptions) {
    this.#o = options;
    // The ceiling is re-read from the live config before every delay (#nextBackoff).
    this.#backoff = new Backoff({
      initialMs: options.backoffInitialMs ?? 500,
      maxMs: 60_000,
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
      unsaved: this.#unsavedAcks.size + this.#unsavedRejections.size,
    };
  }

  /**
   * Up to `maxInFlight` batches travel at once, each taken in outbox order after the previous one, so the cloud
   * ingests one batch while we prepare or acknowledge the next. After any failure the in-flight batches settle and
   * reading restarts from the oldest unacknowledged punch (a retry may land after newer batches; ids make that safe).
   */
  async run(signal: AbortSignal): Promise<void> {
    const { store, connectivity, wake, clock, space } = this.#o;
    const inflight = new Set<Promise<void>>();
    let after = 0;
    let dirty = false;
    let failure: unknown;
    try {
      while (!signal.aborted) {
        if (failure !== undefined) throw failure;
        if (space.isFull || this.#hasUnsaved()) {
          // Nothing more goes out: every answer would be one more acknowledgement we cannot commit.
          await Promise.allSettled([...inflight]);
          await this.#commitUnsaved(signal);
          after = 0;
          dirty = false;
          continue;
        }
        await connectivity.waitOnline(signal);
        const config = this.#o.config();
        if (dirty) {
          await Promise.allSettled([...inflight]);
          after = 0;
          dirty = false;
          continue;
        }
        // While a refused batch is being narrowed down, one request at a time: newer batches must not reset it.
        const maxInFlight = this.#limit === undefined ? config.maxInFlight : 1;
        if (inflight.size >= maxInFlight) {
          await Promise.race(inflight);
          continue;
        }
        const size = Math.min(this.#limit ?? config.batchSize, config.batchSize);
        let batch = store.peek(size, after);
        if (batch.length === 0) {
          await (inflight.size > 0 ? Promise.race([...inflight, wake.wait(1000, signal)]) : wake.wait(1000, signal));
          continue;
        }
        // Clamped: a wall clock stepped backwards must not turn the linger into hours.
        const age = clock.now() - (batch[0]?.enqueuedAt ?? clock.now());
        const lingerLeft = Math.min(config.lingerMs, Math.max(0, config.lingerMs - age));
        if (inflight.size === 0 && batch.length < size && lingerLeft > 0) {
          await sleep(lingerLeft, signal);
          batch = store.peek(size, after);
        }
        after = batch.at(-1)?.seq ?? after;
        const delivery: Promise<void> = this.#deliver(batch, signal)
          .then(
            (clean) => {
              if (!clean) dirty = true;
            },
            (error: unknown) => {
              // The store failed under us (disk, closed): end the loop so spawnTask logs and restarts it.
              dirty = true;
              if (!signal.aborted) failure = error;
            },
          )
          .finally(() => inflight.delete(delivery));
        inflight.add(delivery);
      }
    } finally {
      await Promise.allSettled([...inflight]);
      // A loop restarted after a failure keeps what it holds; only a stop must try to put it on disk.
      if (signal.aborted) this.#saveOnStop();
    }
  }

  #hasUnsaved(): boolean {
    return this.#unsavedAcks.size > 0 || this.#unsavedRejections.size > 0;
  }

  /** Commits the answers held in memory once the disk has room; waits (and keeps them) while it has none. */
  async #commitUnsaved(signal: AbortSignal): Promise<void> {
    const { space, logger } = this.#o;
    if (space.isFull) {
      this.#lastError = {
        code: "STORE_FULL",
        message: "The data disk is full: delivery is held until there is room.",
      };
    }
    while (!signal.aborted) {
      await space.waitRoom(signal);
      if (this.#trySaveUnsaved()) break;
      // Refused while the disk state says there is room (a store not wired to it): never spin.
      if (!space.isFull) await sleep(this.#nextBackoff(), signal);
    }
    if (this.#lastError?.code === "STORE_FULL") this.#lastError = null;
    logger.debug("Delivery resumes: the data disk has room.");
  }

  /** True when nothing is left in memory; false when the disk refused again (it is full again). */
  #trySaveUnsaved(): boolean {
    const { store } = this.#o;
    try {
      if (this.#unsavedAcks.size > 0) {
        store.ack([...this.#unsavedAcks]);
        this.#unsavedAcks.clear();
      }
      if (this.#unsavedRejections.size > 0) {
        store.quarantineOutbox([...this.#unsavedRejections].map(([id, reason]) => ({ id, reason })));
        this.#unsavedRejections.clear();
      }
      return true;
    } catch (error) {
      if (!isDiskFullError(error)) throw error;
      return false;
    }
  }

  /** A stop while answers wait in memory: one last try, else say what the next start will send again. */
  #saveOnStop(): void {
    if (!this.#hasUnsaved()) return;
    const held = this.#unsavedAcks.size + this.#unsavedRejections.size;
    let saved = false;
    try {
      saved = this.#trySaveUnsaved();
    } catch (error) {
      this.#o.logger.warn("Acknowledgements could not be committed at stop.", { error });
    }
    if (!saved)
      this.#o.logger.warn(
        `${held} acknowledged punches could not be committed (the data disk is full); the next start sends them again and the cloud counts each once.`,
        { unsaved: held },
      );
  }

  /**
   * Commits what the cloud settled. On a full disk the answers stay in memory (they are committed when there is
   * room) and false is returned: the loop then holds delivery instead of sending the same punches again.
   */
  #settle(acked: readonly string[], permanent: ReadonlyArray<{ id: string; reason: string }>): boolean {
    const { store } = this.#o;
    let saved = true;
    try {
      store.ack(acked);
    } catch (error) {
      if (!isDiskFullError(error)) throw error;
      for (const id of acked) this.#unsavedAcks.add(id);
      saved = false;
    }
    try {
      store.quarantineOutbox(permanent);
    } catch (error) {
      if (!isDiskFullError(error)) throw error;
      for (const r of permanent) this.#unsavedRejections.set(r.id, r.reason);
      saved = false;
    }
    return saved;
  }

  /** Counts a failed attempt for status; on a full disk the count is skipped, it is not worth holding delivery. */
  #recordAttempt(batch: readonly OutboxEntry[]): void {
    try {
      this.#o.store.recordAttempt(batch.map((e) => e.id));
    } catch (error) {
      if (!isDiskFullError(error)) throw error;
    }
  }

  /** Sends one batch and settles it; false when something is left to retry (after the backoff has run). */
  async #deliver(batch: OutboxEntry[], signal: AbortSignal): Promise<boolean> {
    const { sink, connectivity } = this.#o;
    let outcome: SinkOutcome;
    const sendStarted = performance.now();
    try {
      outcome = await sink.send(batch, signal);
    } catch (error) {
      if (isAbortError(error) && signal.aborted) throw error;
      // A bug, not an answer: retried like a failed attempt, never taken for lost connectivity.
      return this.#failed(batch, error, false, signal);
    }
    switch (outcome.kind) {
      case "delivered":
        connectivity.reportSuccess();
        return this.#settlePerPunch(batch, outcome, sendStarted, signal);
      case "retry-after": {
        connectivity.reportSuccess();
        const retryAfter = Math.min(outcome.ms, MAX_RETRY_AFTER_MS);
        this.#lastError = {
          code: this.#target.busyCode,
          message: `${capital(this.#target.words)} asked to retry after ${Math.round(retryAfter / 1000)} s.`,
        };
        await this.#pause(Math.max(retryAfter, this.#nextBackoff()), signal, false);
        return false;
      }
      case "too-large":
        this.#attemptFailed(batch, outcome.error);
        await this.#isolate(batch, outcome.error, signal);
        return false;
      case "batch-refused":
        return this.#failed(batch, outcome.error, false, signal);
      case "failed":
        return this.#failed(batch, outcome.error, outcome.lostConnectivity, signal);
      default:
        throw new TypeError(`Unknown sink outcome: ${JSON.stringify(outcome satisfies never)}`);
    }
  }

  /** Settles what the receiver answered per punch; the rest of the batch waits out a backoff. */
  async #settlePerPunch(
    batch: OutboxEntry[],
    result: Extract<SinkOutcome, { kind: "delivered" }>,
    sendStarted: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { clock, logger } = this.#o;
    const sendMs = performance.now() - sendStarted;
    // Only ids of this batch settle it: a confused reply cannot acknowledge punches it was not sent.
    const ids = new Set(batch.map((e) => e.id));
    const acked = [...new Set(result.acked.filter((id) => ids.has(id)))];
    const ackedSet = new Set(acked);
    const permanent = result.rejected.filter((r) => r.permanent && ids.has(r.id) && !ackedSet.has(r.id));
    const saved = this.#settle(acked, permanent);
    logger.debug("Batch delivered.", {
      size: batch.length,
      acked: acked.length,
      sendMs: Math.round(sendMs),
      ackMs: Math.round(performance.now() - sendStarted - sendMs),
    });
    for (const r of permanent)
      logger.warn(`Punch rejected by ${this.#target.words}; moved to quarantine.`, { punchId: r.id, reason: r.reason });
    this.#delivered += acked.length;
    this.#quarantined += permanent.length;
    this.#o.onSettled?.(countBySource(batch, ackedSet), countBySource(batch, new Set(permanent.map((r) => r.id))));
    if (acked.length > 0) this.#lastDeliveryAt = clock.now();
    if (!saved) return false;
    const unsettled = batch.length - acked.length - new Set(permanent.map((r) => r.id)).size;
    if (unsettled > 0) {
      this.#lastError = {
        code: this.#target.retryCode,
        message: `${unsettled} punches not settled by ${this.#target.words}; retrying.`,
      };
      await this.#pause(this.#nextBackoff(), signal, false);
      return false;
    }
    this.#backoff.reset();
    this.#lastError = null;
    this.#retryAt = null;
    const configured = this.#o.config().batchSize;
    this.#limit =
      this.#limit !== undefined && this.#limit < configured ? Math.min(this.#limit * 2, configured) : undefined;
    return true;
  }

  /** What every failed attempt leaves: its error on the status page, and one more attempt on each punch. */
  #attemptFailed(batch: readonly OutboxEntry[], error: unknown): void {
    const d = describeError(error);
    this.#lastError = { code: d.code, message: d.message };
    this.#recordAttempt(batch);
  }

  /** Retries after a backoff; connectivity coming back cuts it short when the failure was lost connectivity. */
  async #failed(
    batch: OutboxEntry[],
    error: unknown,
    lostConnectivity: boolean,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { connectivity, logger } = this.#o;
    this.#attemptFailed(batch, error);
    if (lostConnectivity) connectivity.reportFailure(error);
    const wait = this.#nextBackoff();
    logger.warn("Delivery failed; will retry.", { error, retryInMs: wait, batch: batch.length });
    await this.#pause(wait, signal, lostConnectivity);
    return false;
  }

  #nextBackoff(): number {
    this.#backoff.maxMs = this.#o.config().maxBackoffMs;
    return this.#backoff.next();
  }

  /** The cloud found the batch too large: halve until it fits; a single punch too large goes to quarantine. */
  async #isolate(batch: OutboxEntry[], error: BioError, signal: AbortSignal): Promise<void> {
    const [first] = batch;
    if (batch.length === 1 && first) {
      this.#settle([], [{ id: first.id, reason: error.message }]);
      this.#quarantined++;
      this.#o.onSettled?.(new Map(), new Map([[first.sourceId, 1]]));
      this.#o.logger.warn(`Punch refused by ${this.#target.words}; moved to quarantine.`, { punchId: first.id, error });
      return;
    }
    this.#limit = Math.max(1, Math.floor(batch.length / 2));
    await this.#pause(this.#nextBackoff(), signal, false);
  }

  /**
   * Waits out a backoff on the monotonic clock. When `interruptible` (the failure was lost connectivity),
   * connectivity coming back cuts it short so the backlog drains as soon as the probe sees the cloud; a
   * Retry-After or a cloud-side error is never cut short.
   */
  async #pause(ms: number, signal: AbortSignal, interruptible: boolean): Promise<void> {
    const { clock, connectivity } = this.#o;
    const until = performance.now() + ms;
    this.#retryAt = clock.now() + ms;
    let sawOffline = !connectivity.isOnline;
    while (performance.now() < until && !signal.aborted) {
      await connectivity.waitChange(Math.max(1, until - performance.now()), signal);
      if (!connectivity.isOnline) sawOffline = true;
      else if (interruptible && sawOffline) break;
    }
  }
}

function capital(words: string): string {
  return words.charAt(0).toUpperCase() + words.slice(1);
}
