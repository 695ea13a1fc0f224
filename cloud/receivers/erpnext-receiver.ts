/**
 * A Frappe-like site that takes Employee Checkins the way ERPNext / Frappe HR does, for tests over loopback.
 *
 * Written from the public source, not from the sink:
 * - frappe/hrms `hrms/hr/doctype/employee_checkin/employee_checkin.py`: add_log_based_on_employee_field(employee_field_value,
 *   timestamp, device_id=None, log_type=None, skip_auto_attendance=0, employee_fieldname="attendance_device_id", …);
 *   "'employee_field_value' and 'timestamp' are required."; "No Employee found for the given employee field value.
 *   '{fieldname}': {value}"; validate_duplicate_log on (employee, time, log_type): "This employee already has a log
 *   with the same timestamp.<Br>{desk link}"; time = get_datetime(timestamp) without microseconds.
 * - frappe/erpnext v13 `erpnext/hr/doctype/employee_checkin/employee_checkin.py`: the same method under erpnext.hr…,
 *   duplicates on (employee, time) only.
 * - hrms.hr.utils.validate_active_employee: "Transactions cannot be created for an Inactive Employee {link}."
 * - frappe `handler.py` execute_cmd: "Failed to get method for command {cmd} with {error}" (frappe.throw, so 417).
 * - frappe `auth.py` validate_auth_via_api_keys: `Authorization: token key:secret` (or Basic base64(key:secret)); a
 *   wrong key or secret raises AuthenticationError (401); no credentials leave the Guest user, whom a non-guest
 *   method refuses with PermissionError (403).
 * - frappe `utils/response.py` report_error + make_logs (API v1): status from the exception class (ValidationError
 *   417), `exc_type` always, `exception` only where tracebacks are allowed, `_server_messages` = JSON of a list of
 *   JSON-encoded message dicts ({message, title, indicator, raise_exception}).
 * - frappe/biometric-attendance-sync-tool `erpnext_sync.py`: the client side of the same call.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const CHECKIN_METHOD = {
  hrms: "hrms.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field",
  erpnext: "erpnext.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field",
} as const;
export type FrappeApp = keyof typeof CHECKIN_METHOD;

export interface ReceiverEmployee {
  readonly name: string;
  readonly employee_name: string;
  readonly status?: "Active" | "Inactive" | "Left";
  /** Field values the method can look the employee up by: attendance_device_id and any custom field. */
  readonly fields: Readonly<Record<string, string>>;
}

export interface ErpnextReceiverOptions {
  readonly apiKey: string;
  readonly apiSecret: string;
  readonly user?: string;
  /** Which app carries the method: hrms (Frappe HR, v14+) or erpnext (v13 and older). */
  readonly app?: FrappeApp;
  readonly employees: readonly ReceiverEmployee[];
  /** The Employee fields that exist (an unknown employee_fieldname is a database error, as on a real site). */
  readonly employeeFields?: readonly string[];
  /** Add `exception` to error answers, as a site that allows tracebacks does for a system user. */
  readonly tracebacks?: boolean;
  readonly port?: number;
}

export interface StoredCheckin {
  readonly name: string;
  readonly employee: string;
  readonly employee_name: string;
  readonly time: string;
  readonly device_id: string | null;
  readonly log_type: string | null;
}

interface Fault {
  kind: "status" | "after-commit" | "slow" | "rate-limit";
  status: number;
  ms: number;
  left: number;
}

const FIELDS_DEFAULT = ["name", "employee_name", "attendance_device_id"];
const NAIVE_TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d{1,6})?$/;

export class ErpnextReceiver {
  readonly #o: ErpnextReceiverOptions;
  readonly #app: FrappeApp;
  readonly #server: Server;
  readonly #checkins: StoredCheckin[] = [];
  readonly #faults: Fault[] = [];
  readonly #calls: { method: string; args: Record<string, unknown> }[] = [];
  #port: number;
  #listening = false;

  constructor(options: ErpnextReceiverOptions) {
    this.#o = options;
    this.#app = options.app ?? "hrms";
    this.#port = options.port ?? 0;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Every check-in stored, in order. */
  get checkins(): readonly StoredCheckin[] {
    return this.#checkins;
  }

  /** Every call of the check-in method that got past authentication, with its arguments. */
  get calls(): readonly { method: string; args: Record<string, unknown> }[] {
    return this.#calls;
  }

  /** The next `times` check-in calls answer `status` without doing anything. */
  failNext(times: number, status = 500): void {
    this.#faults.push({ kind: "status", status, ms: 0, left: times });
  }

  /** The next `times` check-in calls store the check-in, then answer 500: the acknowledgement is lost. */
  failAfterCommit(times: number): void {
    this.#faults.push({ kind: "after-commit", status: 500, ms: 0, left: times });
  }

  /** The next `times` check-in calls wait `ms` before they are handled. */
  slowNext(times: number, ms: number): void {
    this.#faults.push({ kind: "slow", status: 0, ms, left: times });
  }

  /** The next `times` check-in calls answer 429 with Retry-After, as frappe.rate_limiter does. */
  rateLimitNext(times: number, retryAfterSeconds: number): void {
    this.#faults.push({ kind: "rate-limit", status: 429, ms: retryAfterSeconds * 1000, left: times });
  }

  async listen(): Promise<void> {
    if (this.#listening) return;
    await new Promise<void>((done, fail) => {
      this.#server.once("error", fail);
      this.#server.listen(this.#port, "127.0.0.1", () => {
        this.#server.off("error", fail);
        done();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#listening = true;
  }

  /** Down: the listener and every open connection close; the data stays, and listen() brings it back on its port. */
  async stop(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise<void>((done) => this.#server.close(() => done()));
    this.#server.closeAllConnections();
    await closed;
  }

  async close(): Promise<void> {
    await this.stop();
  }

  #takeFault(): Fault | undefined {
    const fault = this.#faults[0];
    if (fault === undefined) return undefined;
    fault.left -= 1;
    if (fault.left <= 0) this.#faults.shift();
    return fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://site");
    const raw = await readAll(req);
    const match = /^\/api\/method\/([\w.]+)$/.exec(url.pathname);
    if (!match) {
      res.writeHead(404, { "content-type": "text/html" }).end("<h1>Not Found</h1>");
      return;
    }
    const cmd = match[1] as string;
    const user = this.#authenticate(req.headers.authorization);
    if (user === "invalid") {
      this.#error(res, 401, "AuthenticationError", []);
      return;
    }
    if (user === "Guest") {
      this.#error(res, 403, "PermissionError", ["You are not permitted to access this resource."]);
      return;
    }
    if (cmd === "frappe.auth.get_logged_user") {
      json(res, 200, { message: user });
      return;
    }
    const args = { ...Object.fromEntries(url.searchParams), ...parseBody(req.headers["content-type"], raw) };
    const app = (Object.keys(CHECKIN_METHOD) as FrappeApp[]).find((a) => CHECKIN_METHOD[a] === cmd);
    if (app === undefined || app !== this.#app) {
      const module = cmd
        .split(".")
        .slice(0, app === "erpnext" ? 2 : 1)
        .join(".");
      this.#error(res, 417, "ValidationError", [
        `Failed to get method for command ${cmd} with No module named '${module}'`,
      ]);
      return;
    }
    this.#calls.push({ method: cmd, args });
    const fault = this.#takeFault();
    if (fault?.kind === "slow") await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === "status") {
      this.#error(res, fault.status, "InternalServerError", ["Injected failure"]);
      return;
    }
    if (fault?.kind === "rate-limit") {
      res.setHeader("retry-after", String(Math.ceil(fault.ms / 1000)));
      this.#error(res, 429, "TooManyRequestsError", ["You hit the rate limit because of too many requests."]);
      return;
    }
    const result = this.#addLog(args);
    if (fault?.kind === "after-commit" && "doc" in result) {
      this.#error(res, 500, "InternalServerError", ["Injected failure after commit"]);
      return;
    }
    if ("doc" in result) json(res, 200, { message: result.doc });
    else this.#error(res, result.status, result.excType, [result.message]);
  }

  #authenticate(header: string | undefined): string {
    if (!header) return "Guest";
    const [type, token = ""] = header.split(/\s+/, 2) as [string, string?];
    let pair: string;
    if (type.toLowerCase() === "token") pair = token;
    else if (type.toLowerCase() === "basic") pair = Buffer.from(token, "base64").toString("utf8");
    else return "Guest";
    const [key, secret] = pair.split(":");
    return key === this.#o.apiKey && secret === this.#o.apiSecret
      ? (this.#o.user ?? "checkins@example.com")
      : "invalid";
  }

  #addLog(
    args: Record<string, unknown>,
  ): { status: 200; doc: Record<string, unknown> } | { status: number; excType: string; message: string } {
    const value = str(args.employee_field_value);
    const timestamp = str(args.timestamp);
    const fieldname = str(args.employee_fieldname) || "attendance_device_id";
    if (!value || !timestamp) {
      return {
        status: 417,
        excType: "ValidationError",
        message: "'employee_field_value' and 'timestamp' are required.",
      };
    }
    const known = this.#o.employeeFields ?? FIELDS_DEFAULT;
    if (!known.includes(fieldname)) {
      return {
        status: 500,
        excType: "OperationalError",
        message: `(1054, "Unknown column '${fieldname}' in 'where clause'")`,
      };
    }
    const employee = this.#o.employees.find((e) => (fieldname === "name" ? e.name : e.fields[fieldname]) === value);
    if (employee === undefined) {
      return {
        status: 417,
        excType: "ValidationError",
        message: `No Employee found for the given employee field value. '${fieldname}': ${value}`,
      };
    }
    const time = NAIVE_TIME.exec(timestamp);
    if (!time) return { status: 500, excType: "ParserError", message: `Unknown string format: ${timestamp}` };
    const logType = str(args.log_type) || null;
    if (logType !== null && logType !== "IN" && logType !== "OUT") {
      return {
        status: 417,
        excType: "ValidationError",
        message: `Log Type cannot be "${logType}". It should be one of "", "IN", "OUT"`,
      };
    }
    if (employee.status === "Inactive") {
      return {
        status: 417,
        excType: "InactiveEmployeeStatusError",
        message: `Transactions cannot be created for an Inactive Employee ${link("employee", employee.name)}.`,
      };
    }
    const at = `${time[1]} ${time[2]}`;
    const duplicate = this.#checkins.find(
      (c) => c.employee === employee.name && c.time === at && (this.#app === "erpnext" || c.log_type === logType),
    );
    if (duplicate) {
      return {
        status: 417,
        excType: "ValidationError",
        message: `This employee already has a log with the same timestamp.<Br>${link("employee-checkin", duplicate.name)}`,
      };
    }
    const [year, month] = at.split("-") as [string, string];
    const doc: StoredCheckin = {
      name: `EMP-CKIN-${month}-${year}-${String(this.#checkins.length + 1).padStart(6, "0")}`,
      employee: employee.name,
      employee_name: employee.employee_name,
      time: at,
      device_id: str(args.device_id) || null,
      log_type: logType,
    };
    this.#checkins.push(doc);
    return { status: 200, doc: { doctype: "Employee Checkin", docstatus: 0, ...doc } };
  }

  #error(res: ServerResponse, status: number, excType: string, messages: readonly string[]): void {
    const body: Record<string, unknown> = { exc_type: excType };
    if (this.#o.tracebacks) body.exception = `frappe.exceptions.${excType}: ${messages[0] ?? ""}`;
    if (messages.length > 0) {
      body._server_messages = JSON.stringify(
        messages.map((message) =>
          JSON.stringify({
            message,
            title: "Message",
            indicator: "red",
            raise_exception: 1,
            __frappe_exc_id: randomUUID().replace(/-/g, ""),
          }),
        ),
      );
    }
    json(res, status, body);
  }
}

export async function startErpnextReceiver(options: ErpnextReceiverOptions): Promise<ErpnextReceiver> {
  const receiver = new ErpnextReceiver(options);
  await receiver.listen();
  return receiver;
}

function link(route: string, name: string): string {
  return `<a href="/app/${route}/${name}" target="_self">${name}</a>`;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

/** Frappe's make_form_dict: a JSON body when the content type says so, else the form fields. */
function parseBody(contentType: string | undefined, raw: string): Record<string, unknown> {
  if (raw === "") return {};
  if ((contentType ?? "").includes("application/json")) {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1024 * 1024) req.destroy(new Error("body too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
