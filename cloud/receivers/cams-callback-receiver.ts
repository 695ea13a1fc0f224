/**
 * A receiver of the Cams Web API real-time punch callback, written from the public description of the format, the
 * way a Cams consumer reads it:
 * - https://nialabs.in/docs/punch-log-callback: POST to the callback URL with `stgid` appended to its query; the body
 *   `{"RealTime":{"OperationID","PunchLog":{"Type","InputType","UserId","LogTime","Temperature"},"AuthToken","Time"}}`,
 *   LogTime like "2020-09-17 07:48:22 GMT +0530"; the answer `{"status":"done"}` (or "ok") with 200 or 201, anything
 *   else making the sender retry with backoff.
 * - https://docs.navari.co.ke/cams-biometric/api-endpoint-reference (navari_cams_biometric): SerialNumber and
 *   LabelName beside OperationID; the AuthToken checked inside the body; errors answered as 200
 *   `{"status":"error","message":…}` (an invalid token, invalid JSON).
 * - https://docs.navari.co.ke/cams-biometric/punch-types-log-types: Type values CheckIn, CheckOut, BreakOut, BreakIn,
 *   OverTimeIn, OverTimeOut (MealIn, MealOut); InputType values Fingerprint, Face, Palm, Card, Password.
 *
 * It dedupes by OperationID, counts, checks that each user's LogTimes arrive non-decreasing and never two at once,
 * and takes faults (fail, slow, a wrong answer body, an echo of the request, down) so tests can drive it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { readBody } from "../read-body.ts";

export interface ReceivedCamsPunch {
  readonly operationId: string;
  readonly stgid: string | null;
  readonly serialNumber: string;
  readonly labelName: string;
  readonly type: string;
  readonly inputType: string;
  readonly userId: string;
  readonly logTime: string;
  /** LogTime as an instant. */
  readonly logTimeMs: number;
  readonly temperature: string;
  readonly time: string;
}

type CamsFault =
  | { readonly kind: "status"; readonly status: number; readonly retryAfterSeconds?: number }
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "body"; readonly status: number; readonly body: string }
  | { readonly kind: "echo" };

export interface CamsCallbackReceiverOptions {
  /** The AuthToken this receiver expects; absent: any. */
  readonly authToken?: string;
  readonly port?: number;
  readonly path?: string;
}

const LOG_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT ([+-])(\d{2})(\d{2})$/;

export function parseCamsLogTime(text: string): number | undefined {
  const m = LOG_TIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, , oh, om] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetMin = (m[7] === "-" ? -1 : 1) * (oh * 60 + om);
  return Date.UTC(y, mo - 1, d, h, mi, s) - offsetMin * 60_000;
}

export class CamsCallbackReceiver {
  readonly punches = new Map<string, ReceivedCamsPunch>();
  /** OperationIDs in the order they were first taken. */
  readonly order: string[] = [];
  /** Broken promises about order: a user's LogTime going back, or two of one user's punches in flight at once. */
  readonly orderViolations: string[] = [];
  /** Every request's raw body, as it came. */
  readonly bodies: string[] = [];
  requests = 0;
  duplicates = 0;
  /** Answers other than done: faults and refusals. */
  refused = 0;
  readonly #options: CamsCallbackReceiverOptions;
  readonly #faults: { fault: CamsFault; left: number }[] = [];
  readonly #lastLogTime = new Map<string, number>();
  readonly #inFlight = new Map<string, number>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #port = 0;

  private constructor(options: CamsCallbackReceiverOptions) {
    this.#options = options;
  }

  static async start(options: CamsCallbackReceiverOptions = {}): Promise<CamsCallbackReceiver> {
    const receiver = new CamsCallbackReceiver(options);
    await receiver.up(options.port ?? 0);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}${this.#options.path ?? "/cams/callback"}`;
  }

  /** The next `times` requests get `status` (500 by default), with a Retry-After when given. */
  fail(times: number, status = 500, retryAfterSeconds?: number): void {
    const fault: CamsFault =
      retryAfterSeconds === undefined ? { kind: "status", status } : { kind: "status", status, retryAfterSeconds };
    this.#faults.push({ fault, left: times });
  }

  /** The next `times` requests are taken as usual, but answered only after `delayMs` (an answer that comes late). */
  slow(times: number, delayMs: number): void {
    this.#faults.push({ fault: { kind: "slow", delayMs }, left: times });
  }

  /** The next `times` requests are answered with this body instead of being taken. */
  answer(times: number, body = '{"status":"error","message":"Invalid auth token"}', status = 200): void {
    this.#faults.push({ fault: { kind: "body", status, body }, left: times });
  }

  /** The next `times` requests get a 400 that echoes the token and the request body, as a careless error page does. */
  echo(times: number): void {
    this.#faults.push({ fault: { kind: "echo" }, left: times });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Closes the server: connections are cut and new ones refused, until `up`. */
  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again, on the same port once it has one. */
  async up(port = this.#port): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
      });
    });
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  close(): Promise<void> {
    return this.down();
  }

  #take(): CamsFault | undefined {
    const entry = this.#faults[0];
    if (!entry) return undefined;
    entry.left -= 1;
    if (entry.left <= 0) this.#faults.shift();
    return entry.fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://receiver");
    if (req.method !== "POST") {
      // A callback endpoint takes punches only; this is what a GET from a doctor sees.
      res.writeHead(405, { allow: "POST", "content-type": "application/json" }).end('{"status":"error"}');
      return;
    }
    const raw = (await readBody(req, 1024 * 1024)).toString("utf8");
    this.requests += 1;
    this.bodies.push(raw);
    const fault = this.#take();
    if (fault?.kind === "status") {
      this.refused += 1;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
      res.writeHead(fault.status, headers).end('{"status":"error","message":"injected"}');
      return;
    }
    if (fault?.kind === "body") {
      this.refused += 1;
      res.writeHead(fault.status, { "content-type": "application/json" }).end(fault.body);
      return;
    }
    if (fault?.kind === "echo") {
      this.refused += 1;
      let token: unknown;
      try {
        token = (JSON.parse(raw) as { RealTime?: { AuthToken?: unknown } }).RealTime?.AuthToken;
      } catch {}
      res.writeHead(400, { "content-type": "text/plain" }).end(`Bad request (AuthToken ${String(token)}): ${raw}`);
      return;
    }
    const refuse = (message: string) => {
      this.refused += 1;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "error", message }));
    };
    let realTime: Record<string, unknown>;
    try {
      realTime = (JSON.parse(raw) as { RealTime: Record<string, unknown> }).RealTime;
      if (typeof realTime !== "object" || realTime === null) throw new Error("no RealTime");
    } catch {
      refuse("Invalid JSON");
      return;
    }
    const log = (realTime.PunchLog ?? {}) as Record<string, unknown>;
    if (this.#options.authToken !== undefined && realTime.AuthToken !== this.#options.authToken) {
      refuse("Invalid auth token");
      return;
    }
    const logTime = String(log.LogTime ?? "");
    const logTimeMs = parseCamsLogTime(logTime);
    const operationId = realTime.OperationID;
    if (typeof operationId !== "string" || operationId === "" || logTimeMs === undefined || !log.UserId) {
      refuse("Missing OperationID, UserId or LogTime");
      return;
    }
    const punch: ReceivedCamsPunch = {
      operationId,
      stgid: url.searchParams.get("stgid"),
      serialNumber: String(realTime.SerialNumber ?? ""),
      labelName: String(realTime.LabelName ?? ""),
      type: String(log.Type ?? ""),
      inputType: String(log.InputType ?? ""),
      userId: String(log.UserId),
      logTime,
      logTimeMs,
      temperature: String(log.Temperature ?? ""),
      time: String(realTime.Time ?? ""),
    };
    const user = `${punch.stgid ?? punch.serialNumber}/${punch.userId}`;
    if (this.punches.has(operationId)) {
      // A retry of what was taken but whose answer was lost (a timeout): acknowledged again, kept once.
      this.duplicates += 1;
    } else {
      if ((this.#inFlight.get(user) ?? 0) > 0) this.orderViolations.push(`${user}: two punches in flight at once`);
      const last = this.#lastLogTime.get(user);
      if (last !== undefined && logTimeMs < last) {
        this.orderViolations.push(`${user}: ${logTime} arrived after a later punch`);
      }
      this.#lastLogTime.set(user, Math.max(last ?? logTimeMs, logTimeMs));
      this.punches.set(operationId, punch);
      this.order.push(operationId);
    }
    // Taken, then answered late (slow) or on the next turn: a sender that overlaps one user's requests is caught.
    this.#inFlight.set(user, (this.#inFlight.get(user) ?? 0) + 1);
    const delayMs = fault?.kind === "slow" ? fault.delayMs : 0;
    await new Promise((r) => (delayMs > 0 ? setTimeout(r, delayMs) : setImmediate(r)));
    this.#inFlight.set(user, (this.#inFlight.get(user) ?? 1) - 1);
    if (!res.destroyed) res.writeHead(200, { "content-type": "application/json" }).end('{"status":"done"}');
  }
}
