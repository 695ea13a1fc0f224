import type { Clock } from "../core/clock.ts";

export interface RestartPolicyOptions {
  /** First delay before a restart; doubles per restart up to `maxDelayMs`. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Give up after this many restarts within `windowMs` (a crash loop). */
  readonly maxRestarts: number;
  readonly windowMs: number;
  /** This long running healthy forgets the backoff (the delay starts small again). */
  readonly resetAfterMs: number;
  /** Relative jitter, e.g. 0.2 for ±20 %, so several sites restarted by one outage do not come back in step. */
  readonly jitter?: number;
  readonly random?: () => number;
}

/** Kubernetes' crash-loop shape, tuned for a single always-on service. */
export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialDelayMs: 10_000,
  maxDelayMs: 5 * 60_000,
  maxRestarts: 5,
  windowMs: 30 * 60_000,
  resetAfterMs: 10 * 60_000,
  jitter: 0.2,
};

export type RestartDecision =
  | { readonly action: "restart"; readonly delayMs: number; readonly attempt: number }
  | { readonly action: "give-up"; readonly restarts: number; readonly windowMs: number };

/** What the policy remembers; persisted by the monitor so that its own restart does not forget a crash loop. */
export interface RestartHistory {
  readonly restarts: readonly number[];
  readonly attempt: number;
  readonly healthySince: number | null;
}

/**
 * Pure decision logic: when to restart and when to stop trying. Time comes from the injected clock, so the tests
 * walk through hours of crash loop in microseconds.
 */
export class RestartPolicy {
  readonly #o: Required<RestartPolicyOptions>;
  readonly #clock: Clock;
  #restarts: number[];
  #attempt: number;
  #healthySince: number | null;

  constructor(options: RestartPolicyOptions, clock: Clock, history?: RestartHistory) {
    this.#o = { jitter: 0, random: Math.random, ...options };
    this.#clock = clock;
    this.#restarts = [...(history?.restarts ?? [])];
    this.#attempt = history?.attempt ?? 0;
    this.#healthySince = history?.healthySince ?? null;
  }

  /** The service failed (exited, hung or stalled): restart after a delay, or give up on a crash loop. */
  onFailure(): RestartDecision {
    const now = this.#clock.now();
    this.#healthySince = null;
    this.#restarts = this.#restarts.filter((t) => now - t < this.#o.windowMs);
    if (this.#restarts.length >= this.#o.maxRestarts) {
      return { action: "give-up", restarts: this.#restarts.length, windowMs: this.#o.windowMs };
    }
    const base = Math.min(this.#o.maxDelayMs, this.#o.initialDelayMs * 2 ** this.#attempt);
    const jitter = 1 + this.#o.jitter * (2 * this.#o.random() - 1);
    this.#attempt++;
    this.#restarts.push(now);
    return { action: "restart", delayMs: Math.round(base * jitter), attempt: this.#attempt };
  }

  /**
   * The service could not start for a reason that passes by itself (the data disk is full): restart with the
   * backoff, but never give up on it, and do not let it count towards a crash loop.
   */
  onTemporaryFailure(): RestartDecision & { readonly action: "restart" } {
    this.#healthySince = null;
    const base = Math.min(this.#o.maxDelayMs, this.#o.initialDelayMs * 2 ** this.#attempt);
    const jitter = 1 + this.#o.jitter * (2 * this.#o.random() - 1);
    this.#attempt++;
    return { action: "restart", delayMs: Math.round(base * jitter), attempt: this.#attempt };
  }

  /** The service answered and made progress. After `resetAfterMs` of that, the backoff starts afresh. */
  onHealthy(): void {
    const now = this.#clock.now();
    this.#healthySince ??= now;
    if (now - this.#healthySince >= this.#o.resetAfterMs) this.#attempt = 0;
  }

  /** An administrator took over (stop, start): the next failure is judged on its own. */
  reset(): void {
    this.#restarts = [];
    this.#attempt = 0;
    this.#healthySince = null;
  }

  get history(): RestartHistory {
    return { restarts: [...this.#restarts], attempt: this.#attempt, healthySince: this.#healthySince };
  }
}
