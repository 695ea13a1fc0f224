import type { CamsCallbackSinkConfig } from "../../config/sink-schema.ts";
import type { Finding } from "../../core/check.ts";
import { BioError, describeError } from "../../core/errors.ts";
import { answerText, httpExchange } from "../http-exchange.ts";

const CHECK_TIMEOUT_MS = 10_000;

/** What of sink-kinds' SinkCheckTarget the check reads (importing that type would close a circle with the entry). */
interface CheckTarget {
  readonly config: CamsCallbackSinkConfig;
  readonly nodeId: string;
}

/**
 * Reachable: one GET of the callback URL. The Cams callback is a POST of a punch, so a GET creates nothing at the
 * receiver, and any HTTP answer (405 included, from an endpoint that takes only POST) proves the URL answers. The
 * AuthToken is checked by the receiver only inside a punch's body: nothing short of sending a punch proves it, and
 * the doctor sends none.
 */
export async function checkCamsCallback(target: CheckTarget, signal: AbortSignal): Promise<Finding[]> {
  const { config } = target;
  const url = new URL(config.url);
  const subject = `sink ${config.id} (cams-callback)`;
  const secrets = [config.authToken ?? "", ...Object.values(config.headers ?? {})].filter((s) => s.length > 0);
  const scrub = (text: string) => secrets.reduce((out, s) => out.split(s).join("[redacted]"), text);
  const findings: Finding[] = [];
  try {
    const answer = await httpExchange(
      { method: "GET", url: config.url, timeoutMs: CHECK_TIMEOUT_MS, signal, ...headersOf(config) },
      `The Cams callback ${url.origin}${url.pathname}`,
    );
    const said = answerText({ ...answer, text: scrub(answer.text) });
    if (answer.status >= 300 && answer.status < 400) {
      findings.push({
        subject,
        check: "reachable",
        status: "warn",
        detail: `a GET was redirected (${said}); punches are not sent on to another address`,
        fix: "Set the URL to the address the redirect points at (often https:// instead of http://).",
      });
    } else if (answer.status >= 500) {
      findings.push({
        subject,
        check: "reachable",
        status: "warn",
        detail: `it answers, but a GET got ${said}`,
        fix: "The receiver is up but failing; check its logs. Punches wait in the outbox until it acknowledges them.",
      });
    } else {
      findings.push({ subject, check: "reachable", status: "ok", detail: `a GET got ${said}` });
    }
  } catch (error) {
    if (signal.aborted || !(error instanceof BioError)) throw error;
    findings.push({
      subject,
      check: "reachable",
      status: "fail",
      detail: scrub(describeError(error).message),
      fix: "Check the URL, and that this machine reaches it (DNS, firewall, proxy).",
    });
    return findings;
  }
  findings.push(
    config.authToken
      ? {
          subject,
          check: "auth token",
          status: "ok",
          detail:
            "set, but not proven: the receiver checks it only inside a punch, and the doctor sends none. A wrong token shows as punches not acknowledged, with the receiver's words, in status.",
        }
      : {
          subject,
          check: "auth token",
          status: "warn",
          detail: "none set: every callback carries an empty AuthToken",
          fix: "Set authToken to the token the receiver expects, unless it checks none.",
        },
  );
  return findings;
}

function headersOf(config: CamsCallbackSinkConfig): { headers?: Record<string, string> } {
  return config.headers ? { headers: { ...config.headers } } : {};
}
