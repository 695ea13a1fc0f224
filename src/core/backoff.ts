export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor?: number;
  /** Random source in [0, 1); injectable so tests are deterministic. */
  readonly random?: () => number;
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so many workers that failed
 * together (a cloud outage) do not come back in lockstep, yet never retry instantly.
 */
export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #attempt = 0;
  /** The ceiling; settable because it comes from a config that may change while we back off. */
  maxMs: number;

  constructor(options: BackoffOptions) {
    this.#options = { factor: 2, random: Math.random, ...options };
    this.maxMs = options.maxMs;
  }

  get attempt(): number {
    return this.#attempt;
  }

  next(): number {
    const { initialMs, factor, random } = this.#options;
    const ceiling = Math.min(this.maxMs, initialMs * factor ** this.#attempt);
    this.#attempt++;
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
