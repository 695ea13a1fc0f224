import type { HttpAnswer } from "../http-exchange.ts";

/**
 * What a Frappe site says about a failed call. For /api/method (API v1) Frappe answers an exception with the status
 * of its class (ValidationError and frappe.throw: 417, DoesNotExistError: 404, AuthenticationError: 401,
 * PermissionError: 403, anything unexpected: 500) and a JSON body: `exc_type` (the class name, always), `exception`
 * (the traceback's last line, only for system users where tracebacks are allowed) and `_server_messages`, a JSON
 * string holding a list of JSON strings, each a message dict whose `message` is what frappe.throw was given (HTML
 * allowed). API v2 puts `errors: [{type, message}]` instead; read too, as it costs nothing.
 */
export interface FrappeError {
  readonly excType: string | undefined;
  /** The server's own words, tags stripped; empty when the body carried none. */
  readonly message: string;
}

const MAX_MESSAGE = 300;

export function frappeError(answer: HttpAnswer): FrappeError {
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return { excType: undefined, message: "" };
  }
  if (typeof body !== "object" || body === null) return { excType: undefined, message: "" };
  const b = body as Record<string, unknown>;
  const v2 = Array.isArray(b.errors) ? (b.errors[0] as Record<string, unknown> | undefined) : undefined;
  const excType = str(b.exc_type) ?? str(v2?.type);
  const message =
    serverMessages(b._server_messages) ?? str(v2?.message) ?? exceptionText(str(b.exception)) ?? str(b.message) ?? "";
  return { excType, message: plain(message) };
}

/** The `message` of a 200 answer: what the whitelisted method returned. */
export function frappeMessage(answer: HttpAnswer): unknown {
  try {
    const body = JSON.parse(answer.text) as unknown;
    return typeof body === "object" && body !== null ? (body as { message?: unknown }).message : undefined;
  } catch {
    return undefined;
  }
}

function serverMessages(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  try {
    const list = JSON.parse(raw) as unknown;
    if (!Array.isArray(list)) return undefined;
    const texts = list
      .map((item) => {
        const parsed = typeof item === "string" ? (JSON.parse(item) as unknown) : item;
        if (typeof parsed === "string") return parsed;
        return str((parsed as { message?: unknown } | null)?.message);
      })
      .filter((t): t is string => t !== undefined && t !== "");
    return texts.length > 0 ? texts.join(" ") : undefined;
  } catch {
    return undefined;
  }
}

/** "frappe.exceptions.ValidationError: No Employee found…" → the words after the class. */
function exceptionText(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const match = /^[\w.]+(?:Error|Exception)[^:]*:\s*(.*)$/s.exec(text);
  return match?.[1] || text;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Frappe messages carry HTML (a desk link after "<Br>"); status and quarantine want one plain line. */
function plain(text: string): string {
  const flat = text
    .replace(/<br\s*\/?>/gi, " ")
    .replace(/<[^>]*>/g, "")
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE)}…` : flat;
}
