import type { OutboxEntry } from "../store/store.ts";

export interface SinkRejection {
  readonly id: string;
  readonly reason: string;
  /** Permanent: retrying cannot help; the punch goes to quarantine. */
  readonly permanent: boolean;
}

export interface SinkResult {
  /** Accepted or already known (duplicate): both mean the cloud has it. */
  readonly acked: readonly string[];
  readonly rejected: readonly SinkRejection[];
  /** The sink asked us to slow down (429/503 Retry-After). */
  readonly retryAfterMs?: number;
}

/**
 * Delivers a batch. Transport failures and 5xx throw a retriable BioError (evidence of lost connectivity); a
 * batch the receiver refuses as a whole throws a non-retriable BioError with code CLOUD_REJECTED.
 */
export interface Sink {
  readonly name: string;
  send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkResult>;
}
