export const ROUTES = ["health", "config", "punches", "status", "other"] as const;
export type Route = (typeof ROUTES)[number];

export interface Fault {
  readonly route: Exclude<Route, "other"> | "any";
  /** Answer with this status instead of handling the request. */
  readonly status?: number;
  /** Adds a Retry-After header (seconds) to the injected status. */
  readonly retryAfterSeconds?: number;
  /** Wait this long before answering; without `status` the request is then handled normally. */
  readonly delayMs?: number;
  /** The injected status comes from something in front of the cloud (a proxy): no response MAC. */
  readonly unsigned?: boolean;
  /** How many matching requests this fault applies to. */
  readonly times: number;
}

export interface ActiveFault {
  readonly status: number | undefined;
  readonly unsigned: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly delayMs: number;
}

/** Faults are consumed first-in first-out, each by the next `times` requests on its route. */
export class FaultInjector {
  readonly #queue: { fault: Fault; left: number }[] = [];

  inject(fault: Fault): void {
    if (!Number.isInteger(fault.times) || fault.times < 1) throw new Error("fault.times must be a positive integer");
    if (fault.status === undefined && fault.delayMs === undefined) {
      throw new Error("a fault needs a status, a delayMs, or both");
    }
    this.#queue.push({ fault, left: fault.times });
  }

  clear(): void {
    this.#queue.length = 0;
  }

  get pending(): number {
    return this.#queue.reduce((sum, entry) => sum + entry.left, 0);
  }

  take(route: Route): ActiveFault | undefined {
    const index = this.#queue.findIndex((e) => e.fault.route === "any" || e.fault.route === route);
    const entry = this.#queue[index];
    if (entry === undefined) return undefined;
    entry.left -= 1;
    if (entry.left === 0) this.#queue.splice(index, 1);
    return {
      status: entry.fault.status,
      unsigned: entry.fault.unsigned === true,
      retryAfterSeconds: entry.fault.retryAfterSeconds,
      delayMs: entry.fault.delayMs ?? 0,
    };
  }
}
