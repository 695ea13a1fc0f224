import { withTimeout } from "../core/abort.ts";
import { BioError } from "../core/errors.ts";

/** A receiver's answer is a status and a few words; more than this is not one, and is never read whole. */
export const MAX_SINK_RESPONSE_BYTES = 1024 * 1024;

export interface HttpExchange {
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly maxResponseBytes?: number;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/**
 * One HTTP request from a sink to a receiver the customer runs: a timeout, the caller's cancellation, no redirects
 * followed (a 3xx is an answer the sink judges), and a capped answer. No answer at all is SINK_UNAVAILABLE with no
 * `httpStatus` in its context; the caller's abort is thrown as it came.
 */
export async function httpExchange(request: HttpExchange, target: string): Promise<HttpAnswer> {
  const limit = request.maxResponseBytes ?? MAX_SINK_RESPONSE_BYTES;
  const signal = withTimeout(request.signal, request.timeoutMs);
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      ...(request.headers ? { headers: request.headers } : {}),
      ...(request.body === undefined ? {} : { body: request.body }),
      redirect: "manual",
      signal,
    });
  } catch (error) {
    if (request.signal.aborted) throw request.signal.reason;
    throw noAnswer(target, request.timeoutMs, error);
  }
  try {
    return { status: response.status, headers: response.headers, text: await readCapped(response, limit, target) };
  } catch (error) {
    if (request.signal.aborted) throw request.signal.reason;
    if (error instanceof BioError) throw error;
    throw noAnswer(target, request.timeoutMs, error);
  }
}

/** Whether `error` says no answer came back at all (refused, reset, timed out). */
export function isNoAnswer(error: unknown): boolean {
  return error instanceof BioError && error.code === "SINK_UNAVAILABLE" && error.context.httpStatus === undefined;
}

function noAnswer(target: string, timeoutMs: number, error: unknown): BioError {
  const cause = error as { name?: string; cause?: { code?: string; message?: string }; message?: string };
  const timedOut = cause.name === "TimeoutError" || cause.name === "AbortError";
  const why = timedOut
    ? `no answer within ${timeoutMs} ms`
    : (cause.cause?.code ?? cause.cause?.message ?? cause.message ?? "no answer");
  return new BioError("SINK_UNAVAILABLE", `${target} did not answer (${why}).`, {
    cause: error,
    hint: "Check that the receiver is running and reachable from this machine (URL, port, firewall, proxy).",
  });
}

async function readCapped(response: Response, limit: number, target: string): Promise<string> {
  const tooLarge = () =>
    new BioError("SINK_PROTOCOL", `${target} answered with more than ${limit} bytes; the answer was not read.`, {
      context: { httpStatus: response.status },
      hint: "Something other than the receiver may be answering (a proxy or a portal page); check the URL.",
    });
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** The first words of an answer, for an error message: never the whole of a hostile body. */
export function answerText(answer: HttpAnswer): string {
  const text = answer.text.replace(/\s+/g, " ").trim().slice(0, 200);
  return text ? `${answer.status}: ${text}` : `${answer.status}`;
}
