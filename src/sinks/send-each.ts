import type { BioError } from "../core/errors.ts";
import type { OutboxEntry } from "../store/store.ts";
import type { SinkOutcome, SinkRejection } from "./sink.ts";

/** What became of one punch sent on its own. */
export type PunchResult =
  /** The receiver has it (accepted, or already known). */
  | { readonly kind: "delivered" }
  /** Refused for good (unknown employee, invalid data): the punch goes to this sink's quarantine. */
  | { readonly kind: "rejected"; readonly reason: string }
  /** Not taken this time: the punch, and that user's later punches, wait for the next attempt. */
  | {
      readonly kind: "retry";
      readonly error: BioError;
      /** No answer came at all. */
      readonly noAnswer: boolean;
      /** The receiver asked to slow down, for this long. */
      readonly retryAfterMs?: number;
    };

export interface SendEachOptions {
  readonly concurrency: number;
  /** Which punches must keep their order: one user's (on one terminal) by default. */
  readonly orderKey?: (entry: OutboxEntry) => string;
}

/**
 * Delivers a batch one punch per request, `concurrency` requests at once. Punches with one order key go one after
 * the other, in outbox order, and a user whose punch was not taken sends nothing more this time, so a receiver never
 * sees a later punch of a user before an earlier one. The first failure that is not the punch's own (no answer, a
 * 5xx, a Retry-After) stops new requests: a receiver that is down costs one request per lane, not one per punch.
 */
export async function sendEach(
  batch: readonly OutboxEntry[],
  options: SendEachOptions,
  sendOne: (entry: OutboxEntry, signal: AbortSignal) => Promise<PunchResult>,
  signal: AbortSignal,
): Promise<SinkOutcome> {
  const keyOf = options.orderKey ?? defaultOrderKey;
  const lanes = new Map<string, OutboxEntry[]>();
  for (const entry of batch) {
    const key = keyOf(entry);
    const lane = lanes.get(key);
    if (lane) lane.push(entry);
    else lanes.set(key, [entry]);
  }
  const queue = [...lanes.values()];
  const acked: string[] = [];
  const rejected: SinkRejection[] = [];
  const retries: Extract<PunchResult, { kind: "retry" }>[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (retries.length === 0 && next < queue.length) {
      const lane = queue[next++] as OutboxEntry[];
      for (const entry of lane) {
        if (signal.aborted) throw signal.reason;
        const result = await sendOne(entry, signal);
        if (result.kind === "delivered") acked.push(entry.id);
        else if (result.kind === "rejected") rejected.push({ id: entry.id, reason: result.reason, permanent: true });
        else {
          retries.push(result);
          break;
        }
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency, queue.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  if (acked.length > 0 || rejected.length > 0 || retries.length === 0) return { kind: "delivered", acked, rejected };
  const asked = retries.map((r) => r.retryAfterMs).filter((ms): ms is number => ms !== undefined);
  if (asked.length > 0) return { kind: "retry-after", ms: Math.max(...asked) };
  const [first] = retries as [Extract<PunchResult, { kind: "retry" }>];
  return { kind: "failed", error: first.error, lostConnectivity: retries.every((r) => r.noAnswer) };
}

/** Outbox bodies are punches; their serial and user are what orders them. */
function defaultOrderKey(entry: OutboxEntry): string {
  const punch = JSON.parse(entry.body) as { deviceSerial?: string; userId?: string };
  return `${punch.deviceSerial ?? ""}\u001f${punch.userId ?? ""}`;
}
