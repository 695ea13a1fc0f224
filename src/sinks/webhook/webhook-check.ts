import type { WebhookSinkConfig } from "../../config/sink-schema.ts";
import type { Finding } from "../../core/check.ts";
import { systemClock } from "../../core/clock.ts";
import { BioError, describeError } from "../../core/errors.ts";
import { answerText, httpExchange } from "../http-exchange.ts";
import { webhookKey } from "./webhook-signature.ts";
import { signedRequest, webhookBody } from "./webhook-sink.ts";

const CHECK_TIMEOUT_MS = 10_000;

/** What of sink-kinds' SinkCheckTarget the check reads (importing that type would close a circle with the entry). */
interface CheckTarget {
  readonly config: WebhookSinkConfig;
  readonly nodeId: string;
}

/**
 * The secret's shape, then one signed `ping` (the delivery body with `"type":"ping"` and no punches): a 2xx proves
 * the URL, the secret and this machine's clock at once, and carries no punch. Its webhook id is fresh each time, so
 * a receiver that dedupes by id never mistakes it for a batch.
 */
export async function checkWebhook(target: CheckTarget, signal: AbortSignal): Promise<Finding[]> {
  const { config } = target;
  const url = new URL(config.url);
  const subject = `sink ${config.id} (webhook)`;
  const secrets = [config.secret, ...Object.values(config.headers ?? {})].filter((s) => s.length > 0);
  const scrub = (text: string) => secrets.reduce((out, s) => out.split(s).join("[redacted]"), text);
  const key = webhookKey(config.secret);
  if (key instanceof BioError) {
    return [{ subject, check: "secret", status: "fail", detail: key.message, ...(key.hint ? { fix: key.hint } : {}) }];
  }
  const id = `msg_ping_${Date.now().toString(36)}`;
  const request = signedRequest(
    { url: config.url, headers: config.headers, clock: systemClock },
    key,
    id,
    webhookBody("ping", target.nodeId, []),
  );
  try {
    const answer = await httpExchange(
      { method: "POST", ...request, timeoutMs: CHECK_TIMEOUT_MS, signal },
      `The webhook ${url.origin}${url.pathname}`,
    );
    const said = answerText({ ...answer, text: scrub(answer.text) });
    const reachable: Finding = { subject, check: "reachable", status: "ok", detail: `a signed ping got ${said}` };
    if (answer.status >= 200 && answer.status < 300) {
      return [reachable, { subject, check: "signature", status: "ok", detail: "the receiver took a signed ping" }];
    }
    if (answer.status === 401 || answer.status === 403) {
      return [
        reachable,
        {
          subject,
          check: "signature",
          status: "fail",
          detail: `the receiver refused a signed ping: ${said}`,
          fix: "Set the sink's secret to the receiver's whsec_… signing secret, and check this machine's clock (within 5 minutes).",
        },
      ];
    }
    return [
      {
        subject,
        check: "reachable",
        status: "warn",
        detail: `a signed ping got ${said}; the secret is not proven`,
        fix:
          answer.status >= 300 && answer.status < 400
            ? "Set the URL to the address it redirects to."
            : "Check the URL and the receiver's logs; a receiver should answer a ping with 2xx.",
      },
    ];
  } catch (error) {
    if (signal.aborted || !(error instanceof BioError)) throw error;
    return [
      {
        subject,
        check: "reachable",
        status: "fail",
        detail: scrub(describeError(error).message),
        fix: "Check the URL, and that this machine reaches it (DNS, firewall, proxy).",
      },
    ];
  }
}
