import type { Clock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import { retryAfterMs } from "../../link/cloud-client.ts";
import type { OutboxEntry } from "../../store/store.ts";
import { answerText, type HttpAnswer, httpExchange, isNoAnswer } from "../http-exchange.ts";
import { type PunchResult, sendEach } from "../send-each.ts";
import type { Sink, SinkDetails, SinkOutcome } from "../sink.ts";
import { type CamsRequest, camsCallbackUrl, encodeCamsPunch } from "./cams-callback-codec.ts";

export interface CamsCallbackSinkOptions {
  readonly url: string;
  readonly authToken?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly concurrency: number;
  readonly clock: Clock;
  readonly timeoutMs: () => number;
}

/**
 * The Cams Web API real-time callback: one punch per POST to the customer's URL, `stgid=<serial>` in its query.
 *
 * Taken means HTTP 200 or 201 with `{"status":"done"}` or `{"status":"ok"}`, the acknowledgement the Cams pages ask
 * of a callback. Everything else is "not taken yet" and is sent again with backoff, never quarantined: the protocol
 * has no way to say "this punch is wrong for good" (its consumers answer 200 done even for an unknown employee, and
 * a refused AuthToken comes back as 200 with status "error", which a fixed token must be able to cure). The only
 * punches this sink quarantines are ones it cannot encode (no offset on the time, a body that is not a punch).
 */
export class CamsCallbackSink implements Sink {
  readonly name = "cams-callback";
  readonly #o: CamsCallbackSinkOptions;
  readonly #urls = new Map<string, string>();
  readonly #secrets: readonly string[];
  readonly #target: string;

  constructor(options: CamsCallbackSinkOptions) {
    this.#o = options;
    this.#secrets = [options.authToken ?? "", ...Object.values(options.headers ?? {})].filter((s) => s.length > 0);
    const url = new URL(options.url);
    // The query may carry a key of the customer's: names show origin and path only.
    this.#target = `The Cams callback ${url.origin}${url.pathname}`;
  }

  send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome> {
    return sendEach(batch, { concurrency: this.#o.concurrency }, (entry, s) => this.#sendOne(entry, s), signal);
  }

  details(): SinkDetails {
    const url = new URL(this.#o.url);
    return { url: `${url.origin}${url.pathname}`, concurrency: this.#o.concurrency };
  }

  async #sendOne(entry: OutboxEntry, signal: AbortSignal): Promise<PunchResult> {
    let request: CamsRequest;
    try {
      request = encodeCamsPunch(entry.body, {
        authToken: this.#o.authToken ?? "",
        labels: this.#o.labels ?? {},
        nowMs: this.#o.clock.now(),
      });
    } catch (error) {
      if (!(error instanceof BioError)) throw error;
      return { kind: "rejected", reason: error.message };
    }
    let answer: HttpAnswer;
    try {
      answer = await httpExchange(
        {
          method: "POST",
          url: this.#urlFor(request.serial),
          headers: { ...this.#o.headers, "content-type": "application/json" },
          body: request.body,
          timeoutMs: this.#o.timeoutMs(),
          signal,
        },
        this.#target,
      );
    } catch (error) {
      if (signal.aborted || !(error instanceof BioError)) throw error;
      return { kind: "retry", error, noAnswer: isNoAnswer(error) };
    }
    return this.#judge(answer);
  }

  #urlFor(serial: string): string {
    let url = this.#urls.get(serial);
    if (url === undefined) {
      url = camsCallbackUrl(this.#o.url, serial);
      this.#urls.set(serial, url);
    }
    return url;
  }

  #judge(answer: HttpAnswer): PunchResult {
    const { status } = answer;
    if ((status === 200 || status === 201) && acknowledged(answer.text)) return { kind: "delivered" };
    // Scrubbed whole before it is cut short, so no tail of a token survives at the cut.
    const said = answerText({ ...answer, text: this.#scrub(answer.text) });
    const context = { httpStatus: status };
    if (status === 429 || status === 503) {
      const ms = retryAfterMs(answer.headers, this.#o.clock.now());
      const error = new BioError("SINK_UNAVAILABLE", `${this.#target} asked to slow down: ${said}.`, { context });
      return { kind: "retry", error, noAnswer: false, ...(ms === undefined ? {} : { retryAfterMs: ms }) };
    }
    if (status >= 500) {
      const error = new BioError("SINK_UNAVAILABLE", `${this.#target} failed to take a punch: ${said}.`, { context });
      return { kind: "retry", error, noAnswer: false };
    }
    if (status === 401 || status === 403) {
      const error = new BioError("SINK_AUTH", `${this.#target} refused the request: ${said}.`, {
        context,
        hint: "Check the sink's extra headers (an API gateway's key) and its authToken; the punches stay in the outbox.",
      });
      return { kind: "retry", error, noAnswer: false };
    }
    if (status === 200 || status === 201) {
      const error = new BioError("SINK_REJECTED", `${this.#target} did not acknowledge a punch: ${said}.`, {
        context,
        hint: 'A Cams callback acknowledges with {"status":"done"}; if it names the AuthToken, check the sink\'s authToken. The punch is sent again.',
      });
      return { kind: "retry", error, noAnswer: false };
    }
    const error = new BioError("SINK_REJECTED", `${this.#target} refused a punch: ${said}.`, {
      context,
      hint: "Check the callback URL and any proxy in front of it; the punches stay in the outbox.",
    });
    return { kind: "retry", error, noAnswer: false };
  }

  /** A receiver may echo the request back in its error page; the token must not travel on into status and logs. */
  #scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join("[redacted]");
    return out;
  }
}

function acknowledged(text: string): boolean {
  try {
    const status = (JSON.parse(text) as { status?: unknown } | null)?.status;
    return typeof status === "string" && /^(done|ok)$/i.test(status.trim());
  } catch {
    return false;
  }
}
