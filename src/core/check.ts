/** How a check came out: ok, worth a look (warn), or in the way of collecting punches (fail). */
export type FindingStatus = "ok" | "warn" | "fail";

/** One line of a health report: what was checked, what was found, and for anything not ok, what to do. */
export interface Finding {
  readonly subject: string;
  readonly check: string;
  readonly status: FindingStatus;
  readonly detail: string;
  readonly fix?: string;
}

/**
 * A component's health check: it looks at one target (a source config, the cloud link) from this machine, sends and
 * writes nothing, and says everything it found as findings. It throws only when the signal aborts, so one broken
 * target never hides the findings of the others.
 */
export type Check<T> = (target: T, signal: AbortSignal) => Promise<Finding[]>;
