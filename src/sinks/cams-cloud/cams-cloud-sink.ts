import type { Clock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import { clause } from "../../core/sentence.ts";
import {
  type CloudClient,
  type CloudResponse,
  cloudErrorText,
  isTransportFailure,
  retryAfterMs,
} from "../../link/cloud-client.ts";
import type { OutboxEntry } from "../../store/store.ts";
import type { Sink, SinkOutcome, SinkRejection } from "../sink.ts";

export interface CamsCloudSinkOptions {
  readonly client: CloudClient;
  readonly clock: Clock;
  readonly timeoutMs: () => number;
  readonly gzip: () => boolean;
}

interface PunchResult {
  readonly id: string;
  readonly status: "accepted" | "duplicate" | "rejected";
  readonly reason?: string;
  readonly permanent?: boolean;
}

/** POST /v1/nodes/{id}/punches (docs/protocol.md): gzip JSON batches, per-id results. */
export class CamsCloudSink implements Sink {
  readonly name = "cams-cloud";
  readonly #o: CamsCloudSinkOptions;

  constructor(options: CamsCloudSinkOptions) {
    this.#o = options;
  }

  async send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome> {
    const { client } = this.#o;
    // Outbox bodies are already JSON: splice them instead of parsing and re-serialising every punch.
    const body = `{"punches":[${batch.map((e) => e.body).join(",")}]}`;
    let response: CloudResponse;
    try {
      response = await client.request({
        method: "POST",
        path: client.nodePath("punches"),
        rawJson: body,
        gzip: this.#o.gzip(),
        timeoutMs: this.#o.timeoutMs(),
        signal,
      });
    } catch (error) {
      // The caller's abort and bugs are not answers; everything the client names (no answer, a redirect, a forged
      // or oversized answer) is a failed attempt.
      if (signal.aborted || !(error instanceof BioError)) throw error;
      return { kind: "failed", error, lostConnectivity: isTransportFailure(error) };
    }
    return this.#outcome(batch, response);
  }

  #outcome(batch: readonly OutboxEntry[], response: CloudResponse): SinkOutcome {
    if (response.status === 429 || response.status === 503) {
      return { kind: "retry-after", ms: retryAfterMs(response.headers, this.#o.clock.now()) ?? 5000 };
    }
    if (response.status >= 500) {
      const error = new BioError(
        "CLOUD_UNAVAILABLE",
        `The cloud failed to take punches: ${clause(cloudErrorText(response))}.`,
        { context: { httpStatus: response.status } },
      );
      return { kind: "failed", error, lostConnectivity: false };
    }
    if (response.status === 401 || response.status === 403) {
      const error = new BioError(
        "CLOUD_AUTH",
        `The cloud refused this node's signature: ${clause(cloudErrorText(response))}.`,
        {
          hint: "Check the host clock (within 5 minutes of real time) and that the node secret is current (bioapi enroll).",
        },
      );
      return { kind: "failed", error, lostConnectivity: false };
    }
    if (response.status === 413) {
      const error = new BioError(
        "CLOUD_TOO_LARGE",
        `The cloud found a batch of ${batch.length} too large: ${clause(cloudErrorText(response))}.`,
        { context: { httpStatus: 413 } },
      );
      return { kind: "too-large", error };
    }
    if (response.status !== 200) {
      // A refusal of the whole batch is about the request (a proxy, a wrong URL, a cloud bug), not one punch:
      // retry with backoff and never quarantine for it.
      const error = new BioError(
        "CLOUD_REJECTED",
        `The cloud refused a batch of ${batch.length}: ${clause(cloudErrorText(response))}.`,
        {
          context: { httpStatus: response.status },
          hint: "Check the cloud URL and any proxy between here and the cloud; the punches stay in the outbox.",
        },
      );
      return { kind: "batch-refused", error };
    }
    let results: PunchResult[];
    try {
      results = (JSON.parse(response.body.toString("utf8")) as { results: PunchResult[] }).results;
      if (!Array.isArray(results)) throw new TypeError("results is not an array");
    } catch (cause) {
      const error = new BioError("CLOUD_PROTOCOL", "The cloud's punch response has no results array.", { cause });
      return { kind: "failed", error, lostConnectivity: false };
    }
    const acked: string[] = [];
    const rejected: SinkRejection[] = [];
    for (const r of results) {
      if (r.status === "accepted" || r.status === "duplicate") acked.push(r.id);
      else if (r.status === "rejected")
        rejected.push({ id: r.id, reason: r.reason ?? "rejected by the cloud", permanent: r.permanent !== false });
    }
    return { kind: "delivered", acked, rejected };
  }
}
