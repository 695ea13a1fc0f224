import type { Clock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import { retryAfterMs } from "../../link/cloud-client.ts";
import type { OutboxEntry } from "../../store/store.ts";
import { answerText, type HttpAnswer, httpExchange, isNoAnswer } from "../http-exchange.ts";
import type { Sink, SinkDetails, SinkOutcome, SinkRejection } from "../sink.ts";
import { signWebhook, webhookId, webhookKey } from "./webhook-signature.ts";

export interface WebhookSinkOptions {
  readonly url: string;
  readonly secret: string;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly timeoutMs: () => number;
}

/** Without a Retry-After, a 429 or 503 waits this long (or the backoff, whichever is longer). */
const DEFAULT_RETRY_AFTER_MS = 5000;

/**
 * The body of a delivery: `{"type":"punches","nodeId":…,"punches":[<Punch>…]}`, each punch as the connector keeps
 * it, its `id` included. The doctor's probe is the same with `"type":"ping"` and no punches.
 */
export function webhookBody(type: "punches" | "ping", nodeId: string, punchBodies: readonly string[]): string {
  // Outbox bodies are already JSON: spliced, not parsed and serialised again.
  return `{"type":"${type}","nodeId":${JSON.stringify(nodeId)},"punches":[${punchBodies.join(",")}]}`;
}

export interface SignedRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A signed POST per Standard Webhooks: webhook-id, webhook-timestamp (this attempt's) and webhook-signature. */
export function signedRequest(
  target: Pick<WebhookSinkOptions, "url" | "headers" | "clock">,
  key: Buffer,
  id: string,
  body: string,
): SignedRequest {
  const timestamp = Math.floor(target.clock.now() / 1000);
  return {
    url: target.url,
    headers: {
      ...target.headers,
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhook(key, id, timestamp, body),
    },
    body,
  };
}

interface PunchResult {
  readonly id?: unknown;
  readonly status?: unknown;
  readonly reason?: unknown;
}

/**
 * JSON batches signed per the Standard Webhooks convention. A 2xx settles the batch: all of it, or, when the answer
 * carries `{"results":[{"id","status":"accepted"|"duplicate"|"rejected","reason"}]}`, each punch it names (accepted
 * and duplicate leave the outbox, rejected goes to quarantine, a punch it does not name is sent again).
 */
export class WebhookSink implements Sink {
  readonly name = "webhook";
  readonly #o: WebhookSinkOptions;
  readonly #key: Buffer | BioError;
  readonly #secrets: readonly string[];
  readonly #target: string;

  constructor(options: WebhookSinkOptions) {
    this.#o = options;
    this.#key = webhookKey(options.secret);
    this.#secrets = [options.secret, ...Object.values(options.headers ?? {})].filter((s) => s.length > 0);
    const url = new URL(options.url);
    this.#target = `The webhook ${url.origin}${url.pathname}`;
  }

  details(): SinkDetails {
    const url = new URL(this.#o.url);
    return { url: `${url.origin}${url.pathname}` };
  }

  async send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome> {
    if (this.#key instanceof BioError) return { kind: "failed", error: this.#key, lostConnectivity: false };
    const id = webhookId(batch.map((e) => e.id));
    const request = signedRequest(
      this.#o,
      this.#key,
      id,
      webhookBody(
        "punches",
        this.#o.nodeId,
        batch.map((e) => e.body),
      ),
    );
    let answer: HttpAnswer;
    try {
      answer = await httpExchange({ method: "POST", ...request, timeoutMs: this.#o.timeoutMs(), signal }, this.#target);
    } catch (error) {
      if (signal.aborted || !(error instanceof BioError)) throw error;
      return { kind: "failed", error, lostConnectivity: isNoAnswer(error) };
    }
    return this.#outcome(batch, answer);
  }

  #outcome(batch: readonly OutboxEntry[], answer: HttpAnswer): SinkOutcome {
    const { status } = answer;
    if (status >= 200 && status < 300) return settle(batch, answer.text);
    // Scrubbed whole before it is cut short: a receiver may echo the request's headers in its error page.
    const said = answerText({ ...answer, text: this.#scrub(answer.text) });
    const context = { httpStatus: status };
    if (status === 429 || status === 503) {
      return { kind: "retry-after", ms: retryAfterMs(answer.headers, this.#o.clock.now()) ?? DEFAULT_RETRY_AFTER_MS };
    }
    if (status === 413) {
      const error = new BioError(
        "SINK_REJECTED",
        `${this.#target} found a batch of ${batch.length} too large: ${said}.`,
        {
          context,
        },
      );
      return { kind: "too-large", error };
    }
    if (status === 401 || status === 403) {
      const error = new BioError("SINK_AUTH", `${this.#target} refused the signed delivery: ${said}.`, {
        context,
        hint: "The likely fix is the secret: set the sink's secret to the receiver's whsec_… signing secret. Check too that this machine's clock is within 5 minutes of real time, and any extra headers the receiver expects.",
      });
      return { kind: "failed", error, lostConnectivity: false };
    }
    if (status >= 500) {
      const error = new BioError("SINK_UNAVAILABLE", `${this.#target} failed to take a batch: ${said}.`, { context });
      return { kind: "failed", error, lostConnectivity: false };
    }
    if (status >= 300 && status < 400) {
      const error = new BioError("SINK_PROTOCOL", `${this.#target} redirected the delivery: ${said}.`, {
        context,
        hint: "Set the URL to the address it redirects to; deliveries are not sent on to another address.",
      });
      return { kind: "failed", error, lostConnectivity: false };
    }
    const error = new BioError("SINK_REJECTED", `${this.#target} refused a batch of ${batch.length}: ${said}.`, {
      context,
      hint: "Check the webhook URL and any proxy in front of it; the punches stay in the outbox.",
    });
    return { kind: "batch-refused", error };
  }

  #scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join("[redacted]");
    return out;
  }
}

/** A 2xx: per-punch results where the answer has them, the whole batch delivered where it has none. */
function settle(batch: readonly OutboxEntry[], text: string): SinkOutcome {
  let results: unknown;
  try {
    results = (JSON.parse(text) as { results?: unknown } | null)?.results;
  } catch {
    results = undefined;
  }
  if (!Array.isArray(results)) return { kind: "delivered", acked: batch.map((e) => e.id), rejected: [] };
  const inBatch = new Set(batch.map((e) => e.id));
  const settled = new Set<string>();
  const acked: string[] = [];
  const rejected: SinkRejection[] = [];
  for (const r of results as PunchResult[]) {
    if (typeof r?.id !== "string" || !inBatch.has(r.id) || settled.has(r.id)) continue;
    if (r.status === "accepted" || r.status === "duplicate") acked.push(r.id);
    else if (r.status === "rejected") {
      const reason = typeof r.reason === "string" && r.reason ? r.reason.slice(0, 500) : "rejected by the webhook";
      rejected.push({ id: r.id, reason, permanent: true });
    } else continue;
    settled.add(r.id);
  }
  return { kind: "delivered", acked, rejected };
}
