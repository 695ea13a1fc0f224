import type { ErpnextSinkConfig } from "../../config/sink-schema.ts";
import type { Finding } from "../../core/check.ts";
import { describeError } from "../../core/errors.ts";
import { answerText, type HttpAnswer, httpExchange } from "../http-exchange.ts";
import { authError, ERPNEXT_METHODS, erpnextHeaders, erpnextHost, erpnextMethodUrl } from "./erpnext-sink.ts";
import { frappeError, frappeMessage } from "./frappe-answer.ts";

const CHECK_TIMEOUT_MS = 10_000;

/**
 * Reachable and authenticated (frappe.auth.get_logged_user, which only reads the session), then whether the method
 * exists: called with empty arguments it refuses before it looks anything up ("'employee_field_value' and
 * 'timestamp' are required"), and a POST that fails is rolled back, so nothing is written; a missing method answers
 * "Failed to get method for command …" instead.
 */
export async function checkErpnext(
  target: { readonly config: ErpnextSinkConfig },
  signal: AbortSignal,
): Promise<Finding[]> {
  const { config } = target;
  const subject = `sink ${config.id} (erpnext)`;
  const findings: Finding[] = [];
  const call = (method: "GET" | "POST", name: string, body?: string): Promise<HttpAnswer> =>
    httpExchange(
      {
        method,
        url: erpnextMethodUrl(config, name),
        headers: erpnextHeaders(config),
        ...(body === undefined ? {} : { body }),
        timeoutMs: config.requestTimeoutMs ?? CHECK_TIMEOUT_MS,
        signal,
      },
      `ERPNext at ${erpnextHost(config.url)}`,
    );

  let who: HttpAnswer;
  try {
    who = await call("GET", "frappe.auth.get_logged_user");
  } catch (error) {
    if (signal.aborted) throw error;
    findings.push({
      subject,
      check: "reachable",
      status: "fail",
      detail: describeError(error).message,
      fix: "Check the sink's url and outbound HTTPS from this machine to the site (proxy, firewall, DNS).",
    });
    return findings;
  }
  findings.push({
    subject,
    check: "reachable",
    status: "ok",
    detail: `${erpnextHost(config.url)} answered ${who.status}`,
  });
  if (who.status === 401 || who.status === 403) {
    const error = authError(config, who);
    findings.push({ subject, check: "authenticated", status: "fail", detail: error.message, fix: error.hint ?? "" });
    return findings;
  }
  const user = frappeMessage(who);
  if (who.status !== 200 || typeof user !== "string") {
    findings.push({
      subject,
      check: "authenticated",
      status: "fail",
      detail: `frappe.auth.get_logged_user answered ${answerText(who)}`,
      fix: "Check that the sink's url is the ERPNext site itself (not a portal or proxy page).",
    });
    return findings;
  }
  findings.push({ subject, check: "authenticated", status: "ok", detail: `as ${user}` });

  const method = ERPNEXT_METHODS[config.method];
  let probe: HttpAnswer;
  try {
    probe = await call("POST", method, JSON.stringify({ employee_field_value: "", timestamp: "" }));
  } catch (error) {
    if (signal.aborted) throw error;
    findings.push({ subject, check: "method", status: "warn", detail: describeError(error).message });
    return findings;
  }
  const said = frappeError(probe);
  if (probe.status === 417 && /required/i.test(said.message)) {
    findings.push({ subject, check: "method", status: "ok", detail: `${method} exists` });
  } else if (probe.status === 404 || said.message.includes("Failed to get method")) {
    const other = config.method === "hrms" ? "erpnext" : "hrms";
    findings.push({
      subject,
      check: "method",
      status: "fail",
      detail: `${method} is not on this site (${probe.status} ${said.message || "not found"})`,
      fix: `Set the sink's method to "${other}"${other === "hrms" ? " (Frappe HR, ERPNext 14 and later)" : " (ERPNext 13 and older)"}, or install Frappe HR on the site.`,
    });
  } else if (probe.status === 403) {
    findings.push({
      subject,
      check: "method",
      status: "fail",
      detail: `the user may not call ${method} (${said.message || "403"})`,
      fix: "Give the API user a role that may create Employee Checkin (HR User, or a custom role).",
    });
  } else {
    findings.push({
      subject,
      check: "method",
      status: "warn",
      detail: `an empty call of ${method} answered ${probe.status} ${said.message || said.excType || ""}`.trimEnd(),
    });
  }
  return findings;
}
