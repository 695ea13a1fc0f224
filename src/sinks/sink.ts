import type { BioError } from "../core/errors.ts";
import type { CursorValue, OutboxEntry } from "../store/store.ts";

export interface SinkRejection {
  readonly id: string;
  readonly reason: string;
  /** Permanent: retrying cannot help; the punch goes to quarantine. */
  readonly permanent: boolean;
}

/**
 * What became of one batch: every answer of the receiver, and every failure to get one, is one of these. The
 * shipper switches on `kind`; the BioError some variants carry is what status and logs show, never a decision.
 */
export type SinkOutcome =
  /**
   * The receiver answered per punch. Acked ids (accepted or already known: either way the receiver has them) leave
   * the outbox; permanent rejections go to quarantine; the rest of the batch is sent again after a backoff. One
   * batch can hold all three.
   */
  | {
      readonly kind: "delivered";
      readonly acked: readonly string[];
      readonly rejected: readonly SinkRejection[];
    }
  /**
   * The receiver asked us to slow down (429/503 with Retry-After). Nothing is settled; the batch is sent again after
   * `ms` (capped, so a misconfigured proxy cannot park delivery for days) or the backoff, whichever is longer. An
   * answer came back, so connectivity is fine.
   */
  | { readonly kind: "retry-after"; readonly ms: number }
  /**
   * The batch is too large for the receiver (413). The shipper halves the batch size until it fits; a single punch
   * still too large goes to quarantine with `error.message` as its reason.
   */
  | { readonly kind: "too-large"; readonly error: BioError }
  /**
   * The receiver refused the batch as a whole (a 4xx other than 413: a proxy, a wrong URL, a receiver's bug). That
   * is about the request, not a punch: nothing is quarantined, and the batch is retried with backoff.
   */
  | { readonly kind: "batch-refused"; readonly error: BioError }
  /**
   * The attempt failed for a reason outside the batch: no answer at all (transport failure, timeout), the receiver
   * failing (5xx), refusing this node's signature, or an answer that is not the receiver's. Retried with backoff.
   * `lostConnectivity` when no answer came back at all: only that is evidence of lost connectivity, so it is
   * reported to connectivity, and connectivity coming back cuts the backoff short.
   */
  | { readonly kind: "failed"; readonly error: BioError; readonly lostConnectivity: boolean };

/** Facts a sink adds to status, the page and the heartbeat: plain values, never a secret. */
export type SinkDetails = Readonly<Record<string, string | number | boolean | null>>;

/**
 * Delivers a batch. Only the caller's abort and bugs throw; every answer, and every failure to get one, is returned.
 * A batch holds punches in outbox order; a sink that sends one punch per request may send several at once, but
 * never two of one user at once, and never a user's later punch before an earlier one has been delivered.
 */
export interface Sink {
  readonly name: string;
  send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome>;
  /**
   * The sink's own background work while it runs (a broker connection and its status, ADMS heartbeats). Started
   * once through the connector's loop helper, which logs and restarts it if it throws; it ends when `signal` aborts.
   */
  run?(signal: AbortSignal): Promise<void>;
  /** Releases what it holds (connections, sessions); called once, after the last send and after run has ended. */
  close?(): Promise<void>;
  details?(): SinkDetails;
}

/** Small values a sink keeps across restarts in the store (ADMS stamps per serial), under its own id. */
export interface SinkMemory {
  get(key: string): CursorValue | undefined;
  put(key: string, value: CursorValue): void;
}
