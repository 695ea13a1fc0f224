import type { AdmsRelaySinkConfig } from "../../config/sink-schema.ts";
import type { Finding } from "../../core/check.ts";
import { systemClock } from "../../core/clock.ts";
import { BioError, describeError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { httpExchange } from "../http-exchange.ts";
import { AdmsRelaySink } from "./adms-relay-sink.ts";

const CHECK_TIMEOUT_MS = 10_000;
const SHOWN_OPTIONS = [
  "ATTLOGStamp",
  "Stamp",
  "Delay",
  "TransInterval",
  "TransTimes",
  "Realtime",
  "ErrorDelay",
  "TimeZone",
];

/**
 * The options handshake for the first configured serial, which a terminal does at every boot: it uploads nothing.
 * Without `serials` there is no terminal to pose as (an unknown serial could be registered on the server), so only
 * reachability is tried.
 */
export async function checkAdmsRelay(
  target: { readonly config: AdmsRelaySinkConfig },
  signal: AbortSignal,
): Promise<Finding[]> {
  const { config } = target;
  const base = config.url.replace(/\/+$/, "");
  const subject = `sink ${config.id} (adms-relay)`;
  const timeoutMs = config.requestTimeoutMs ?? CHECK_TIMEOUT_MS;
  const serial = config.serials?.[0];
  if (serial === undefined) {
    try {
      const answer = await httpExchange(
        { method: "GET", url: `${base}/iclock/getrequest`, timeoutMs, signal },
        `The ADMS server at ${new URL(base).host}`,
      );
      return [
        { subject, check: "reachable", status: "ok", detail: `answered ${answer.status}` },
        {
          subject,
          check: "handshake",
          status: "warn",
          detail: "not tried: no serials configured, and posing as an unknown terminal could register it",
          fix: "List the terminals to forward in the sink's serials to have the handshake checked.",
        },
      ];
    } catch (error) {
      if (signal.aborted) throw error;
      return [{ subject, check: "reachable", status: "fail", detail: describeError(error).message, fix: reachFix }];
    }
  }
  // A throwaway memory: the doctor must not move the running sink's stamps.
  const sink = new AdmsRelaySink(config, {
    clock: systemClock,
    logger: silentLogger,
    memory: { get: () => undefined, put: () => undefined },
    timeoutMs: () => timeoutMs,
  });
  try {
    const options = await sink.handshake(serial, signal);
    const shown = SHOWN_OPTIONS.filter((k) => options[k] !== undefined).map((k) => `${k}=${options[k]}`);
    return [
      { subject, check: "reachable", status: "ok", detail: "answered the handshake" },
      {
        subject,
        check: "handshake",
        status: "ok",
        detail: `terminal ${serial}: ${shown.join(", ") || "options without stamps"}`,
      },
    ];
  } catch (error) {
    if (signal.aborted) throw error;
    const { message } = describeError(error);
    // An answer that refused the handshake proves the server reachable; no answer at all does not.
    if (!(error instanceof BioError) || error.context.httpStatus === undefined) {
      return [{ subject, check: "reachable", status: "fail", detail: message, fix: reachFix }];
    }
    return [
      { subject, check: "reachable", status: "ok", detail: `answered ${error.context.httpStatus}` },
      { subject, check: "handshake", status: "fail", detail: message, fix: error.hint ?? reachFix },
    ];
  }
}

const reachFix = "Check the sink's url (http://host:port of the ADMS server) and that this machine can reach it.";
