import type { ErpnextSinkConfig } from "../../config/sink-schema.ts";
import type { Clock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import type { Punch } from "../../core/punch.ts";
import { clause } from "../../core/sentence.ts";
import { retryAfterMs } from "../../link/cloud-client.ts";
import type { OutboxEntry } from "../../store/store.ts";
import { type HttpAnswer, httpExchange, isNoAnswer } from "../http-exchange.ts";
import { outboxPunch } from "../outbox-punch.ts";
import { type PunchResult, sendEach } from "../send-each.ts";
import type { Sink, SinkDetails, SinkOutcome } from "../sink.ts";
import { frappeError, frappeMessage } from "./frappe-answer.ts";

/** The whitelisted method per app: Frappe HR moved it out of ERPNext in v14 (frappe/hrms). */
export const ERPNEXT_METHODS = {
  hrms: "hrms.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field",
  erpnext: "erpnext.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field",
} as const;

/**
 * The words of Frappe's own messages the sink acts on (hrms employee_checkin.py, hrms.hr.utils; the same words in
 * ERPNext v13). The biometric-attendance-sync-tool keys on the same three.
 */
const DUPLICATE = "already has a log with the same timestamp";
const NO_METHOD = "Failed to get method";

/** A 429 or a maintenance-mode 503 without Retry-After: wait this long, as the cams-cloud sink does. */
const DEFAULT_RETRY_AFTER_MS = 5000;

export interface ErpnextSinkOptions {
  readonly clock: Clock;
  readonly timeoutMs: () => number;
}

/** The site's address for messages: never the whole URL, which could carry credentials of its own. */
export function erpnextHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the ERPNext site";
  }
}

export function erpnextMethodUrl(config: ErpnextSinkConfig, method: string): string {
  return `${config.url.replace(/\/+$/, "")}/api/method/${method}`;
}

export function erpnextHeaders(config: ErpnextSinkConfig): Record<string, string> {
  return {
    authorization: `token ${config.apiKey}:${config.apiSecret}`,
    // Frappe answers an exception as JSON only when asked to; otherwise a desk HTML page comes back.
    accept: "application/json",
    "content-type": "application/json",
  };
}

export function authError(config: ErpnextSinkConfig, answer: HttpAnswer): BioError {
  const said = frappeError(answer);
  const why = [said.excType, said.message].filter(Boolean).join(": ") || "no reason given";
  return new BioError(
    "SINK_AUTH",
    `ERPNext at ${erpnextHost(config.url)} refused the API key (${answer.status} ${clause(why)})`,
    {
      context: { httpStatus: answer.status },
      hint: "Check the sink's apiKey and apiSecret (ERPNext: the user's settings, API Access, Generate Keys; generating again replaces the secret) and that this user may create Employee Checkin.",
    },
  );
}

/**
 * ERPNext / Frappe HR Employee Checkin, one punch per call of add_log_based_on_employee_field.
 *
 * `timestamp` is the terminal's wall time, naive ("YYYY-MM-DD HH:MM:SS"): ERPNext keeps Datetime fields naive, read in
 * the site's time zone, and the method takes the string as it is (get_datetime, microseconds dropped). That is what
 * frappe's own biometric-attendance-sync-tool sends, so check-ins it made earlier dedupe against ours, and a terminal
 * shows the same time as the check-in. Converting to the site's zone would need System Settings access the API user
 * rarely has; a site in another zone than its terminals gets the terminals' clock, as with every other integration.
 *
 * Identity is ERPNext's own: it refuses a second log of one employee at one time (and, since Frappe HR 14, one log
 * type), so a re-send is answered "already has a log" and counted as delivered.
 */
export class ErpnextSink implements Sink {
  readonly name = "erpnext";
  readonly #config: ErpnextSinkConfig;
  readonly #o: ErpnextSinkOptions;
  readonly #url: string;
  readonly #counts = { created: 0, duplicates: 0, skipped: 0, rejected: 0 };
  #lastError: string | null = null;

  constructor(config: ErpnextSinkConfig, options: ErpnextSinkOptions) {
    this.#config = config;
    this.#o = options;
    this.#url = erpnextMethodUrl(config, ERPNEXT_METHODS[config.method]);
  }

  send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome> {
    return sendEach(batch, { concurrency: this.#config.concurrency }, (entry, s) => this.#sendOne(entry, s), signal);
  }

  details(): SinkDetails {
    return { method: this.#config.method, ...this.#counts, lastError: this.#lastError };
  }

  async #sendOne(entry: OutboxEntry, signal: AbortSignal): Promise<PunchResult> {
    const read = outboxPunch(entry);
    if (!read.ok) return this.#rejected(read.reason);
    const { punch, local } = read;
    const logType = this.#config.logTypes[punch.state] ?? this.#config.logTypes.other;
    if (logType === "skip") {
      this.#counts.skipped += 1;
      return { kind: "delivered" };
    }
    const body = {
      employee_field_value: punch.userId,
      timestamp: local,
      device_id: this.#config.deviceIds?.[punch.deviceSerial] ?? punch.deviceSerial,
      employee_fieldname: this.#config.employeeField,
      ...(logType === "none" ? {} : { log_type: logType }),
    };
    let answer: HttpAnswer;
    try {
      answer = await httpExchange(
        {
          method: "POST",
          url: this.#url,
          headers: erpnextHeaders(this.#config),
          body: JSON.stringify(body),
          timeoutMs: this.#o.timeoutMs(),
          signal,
        },
        `ERPNext at ${erpnextHost(this.#config.url)}`,
      );
    } catch (error) {
      if (signal.aborted || !(error instanceof BioError)) throw error;
      return this.#retry(error, isNoAnswer(error));
    }
    return this.#judge(answer, punch);
  }

  #judge(answer: HttpAnswer, punch: Punch): PunchResult {
    const host = erpnextHost(this.#config.url);
    const { status } = answer;
    if (status === 200) {
      const doc = frappeMessage(answer) as { name?: unknown } | undefined;
      if (typeof doc === "object" && doc !== null && typeof doc.name === "string") {
        this.#counts.created += 1;
        this.#lastError = null;
        return { kind: "delivered" };
      }
      // A portal or a proxy page can answer 200 too: only a check-in document proves ERPNext took the punch.
      return this.#retry(
        new BioError("SINK_PROTOCOL", `${host} answered 200 without an Employee Checkin.`, {
          context: { httpStatus: 200 },
          hint: "Check the sink's url: it must be the ERPNext site itself, not a login portal or proxy page.",
        }),
      );
    }
    if (status === 401 || status === 403) return this.#retry(authError(this.#config, answer));
    if (status === 429 || status === 503) {
      const ms = retryAfterMs(answer.headers, this.#o.clock.now()) ?? DEFAULT_RETRY_AFTER_MS;
      const error = new BioError("SINK_UNAVAILABLE", `ERPNext at ${host} asked to slow down (${status}).`, {
        context: { httpStatus: status },
      });
      return { ...this.#retry(error), retryAfterMs: ms };
    }
    if (status >= 500) {
      const said = frappeError(answer);
      const why = [said.excType, said.message].filter(Boolean).join(": ") || answer.text.slice(0, 100) || "no reason";
      return this.#retry(
        new BioError("SINK_UNAVAILABLE", `ERPNext at ${host} failed to take a check-in (${status} ${clause(why)}).`, {
          context: { httpStatus: status },
        }),
      );
    }
    if (status >= 300 && status < 400) {
      const location = answer.headers.get("location") ?? "nowhere";
      return this.#retry(
        new BioError("SINK_REJECTED", `ERPNext at ${host} redirected the call (${status} to ${location}).`, {
          context: { httpStatus: status },
          hint: "Set the sink's url to the address it redirects to (usually https://).",
        }),
      );
    }
    const said = frappeError(answer);
    if (said.message.includes(DUPLICATE)) {
      this.#counts.duplicates += 1;
      this.#lastError = null;
      return { kind: "delivered" };
    }
    if (said.message.includes(NO_METHOD) || status === 404) {
      const other = this.#config.method === "hrms" ? "erpnext" : "hrms";
      return this.#retry(
        new BioError(
          "SINK_REJECTED",
          `ERPNext at ${host} has no ${ERPNEXT_METHODS[this.#config.method]} (${status} ${clause(said.message || "not found")}).`,
          {
            context: { httpStatus: status },
            hint: `Check the sink's url, and its method: "${other}" is for ${other === "hrms" ? "sites with Frappe HR (ERPNext 14 and later)" : "ERPNext 13 and older"}.`,
          },
        ),
      );
    }
    if (status === 417) {
      // A ValidationError is about this check-in (no such employee, an inactive one, a shift that wants a log type):
      // sending it again gets the same answer, and it must not hold back that user's later punches.
      return this.#rejected(
        `ERPNext refused the check-in of user ${punch.userId}: ${said.message || said.excType || "ValidationError"}`,
      );
    }
    return this.#retry(
      new BioError(
        "SINK_REJECTED",
        `ERPNext at ${host} refused the call (${status} ${clause(said.message || said.excType || "no reason")}).`,
        {
          context: { httpStatus: status },
          hint: "Check the sink's url and any proxy between here and ERPNext; the punches stay in the outbox.",
        },
      ),
    );
  }

  #rejected(reason: string): PunchResult {
    this.#counts.rejected += 1;
    return { kind: "rejected", reason };
  }

  #retry(error: BioError, noAnswer = false): Extract<PunchResult, { kind: "retry" }> {
    this.#lastError = error.message;
    return { kind: "retry", error, noAnswer };
  }
}
