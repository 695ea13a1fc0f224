/**
 * An ADMS (ZKTeco PUSH 2.x, "iclock") server for tests over loopback: the terminal side's counterpart.
 *
 * Written from the protocol's public description, not from the relay: ZKTeco "PUSH SDK HTTP Protocol V3.2.0"
 * (a copy in the public repo nguyentien4106/ZKTecoADMS), the "Attendance PUSH Communication Protocol" listings, and
 * the public servers kittiu/thai_zkt (push_protocol_2.py) and saifulcoder/adms-server-ZKTeco (iclockController.php),
 * as summarised in the project's research notes (db-and-push.md §3):
 * - `GET /iclock/cdata?SN=…&options=all&pushver=…` → `GET OPTION FROM: <SN>` and `key=value` lines: `ATTLOGStamp`
 *   (the last Stamp this server took from the terminal, 0 for none), `OPERLOGStamp`, `ErrorDelay`, `Delay`,
 *   `TransTimes`, `TransInterval`, `TransFlag`, `Realtime`, `TimeZone`, `Encrypt`, `ServerVer`.
 * - `POST /iclock/cdata?SN=…&table=ATTLOG&Stamp=…` → one punch a line, TAB-separated (PIN, "YYYY-MM-DD hh:mm:ss",
 *   status, verify, workcode, reserved…), LF or CRLF; the answer `OK: <n>` counts the lines taken. Taken means stored
 *   or already held: terminals replay their history, so ingest is idempotent on (SN, PIN, time, status). Other tables
 *   get `OK`, or the terminal would retry them forever.
 * - `GET /iclock/getrequest?SN=…` → `OK`, or queued commands as `C:<id>:<command>` lines.
 * - `POST /iclock/devicecmd?SN=…`, body `ID=<id>&Return=<code>&CMD=<cmd>` (a line per result) → `OK`.
 * - Paths may end in `.aspx`; query parameters come in any order.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface AdmsServerOptions {
  readonly port?: number;
  /** The Delay (seconds between getrequest polls) the handshake announces. */
  readonly delaySeconds?: number;
}

export interface AdmsRow {
  readonly sn: string;
  readonly pin: string;
  readonly time: string;
  readonly status: string;
  readonly verify: string;
  readonly workcode: string;
  /** Every field of the line as it came. */
  readonly fields: readonly string[];
}

export interface AdmsRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface CommandResult {
  readonly sn: string;
  readonly id: string;
  readonly returnCode: string;
  readonly cmd: string;
}

type Fault =
  | { kind: "status"; status: number; left: number }
  | { kind: "after-commit"; left: number }
  | { kind: "slow"; ms: number; left: number }
  | { kind: "short"; take: number; left: number };

const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

export class AdmsServer {
  readonly #o: AdmsServerOptions;
  readonly #server: Server;
  readonly #rows = new Map<string, AdmsRow>();
  readonly #stamps = new Map<string, string>();
  readonly #queued = new Map<string, { id: string; command: string }[]>();
  readonly #results: CommandResult[] = [];
  readonly #requests: AdmsRequest[] = [];
  readonly #faults: Fault[] = [];
  #devicecmdFailures = 0;
  #nextCommandId = 1000;
  #port: number;
  #listening = false;

  constructor(options: AdmsServerOptions = {}) {
    this.#o = options;
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

  /** Every punch held, once each, in arrival order. */
  get rows(): readonly AdmsRow[] {
    return [...this.#rows.values()];
  }

  get requests(): readonly AdmsRequest[] {
    return this.#requests;
  }

  get results(): readonly CommandResult[] {
    return this.#results;
  }

  /** The last ATTLOG Stamp taken from a terminal, which the next handshake echoes as ATTLOGStamp. */
  stamp(sn: string): string | undefined {
    return this.#stamps.get(sn);
  }

  /** Queues a command for the terminal's next getrequest; returns its id. */
  queueCommand(sn: string, command: string): string {
    const id = String(this.#nextCommandId++);
    const list = this.#queued.get(sn) ?? [];
    list.push({ id, command });
    this.#queued.set(sn, list);
    return id;
  }

  /** The next `times` ATTLOG uploads answer `status` and store nothing. */
  failNext(times: number, status = 500): void {
    this.#faults.push({ kind: "status", status, left: times });
  }

  /** The next `times` ATTLOG uploads are stored, then answered 500: the acknowledgement is lost. */
  failAfterCommit(times: number): void {
    this.#faults.push({ kind: "after-commit", left: times });
  }

  /** The next `times` command results (devicecmd) are answered 500 and not recorded. */
  failResultsNext(times: number): void {
    this.#devicecmdFailures += times;
  }

  slowNext(times: number, ms: number): void {
    this.#faults.push({ kind: "slow", ms, left: times });
  }

  /** The next `times` ATTLOG uploads take only their first `take` lines and answer `OK: <take>` (0: none). */
  shortNext(times: number, take: number): void {
    this.#faults.push({ kind: "short", take, left: times });
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

  /** Down: listener and connections closed; the data stays and listen() brings it back on the same port. */
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

  #take(): Fault | undefined {
    const fault = this.#faults[0];
    if (fault === undefined) return undefined;
    fault.left -= 1;
    if (fault.left <= 0) this.#faults.shift();
    return fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://adms");
    const body = await readAll(req);
    const path = url.pathname.replace(/\.(aspx|php)$/, "");
    const query = Object.fromEntries(url.searchParams);
    this.#requests.push({ method: req.method ?? "", path, query, body });
    const sn = query.SN ?? "";
    if (path === "/iclock/cdata" && req.method === "GET") {
      if (!sn) return text(res, 400, "SN required");
      if (query.options !== "all") return text(res, 200, "OK");
      return text(res, 200, this.#options(sn));
    }
    if (path === "/iclock/cdata" && req.method === "POST") {
      if ((query.table ?? "").toUpperCase() !== "ATTLOG") return text(res, 200, "OK");
      return this.#attlog(sn, query.Stamp, body, res);
    }
    if (path === "/iclock/getrequest") {
      const queued = this.#queued.get(sn) ?? [];
      this.#queued.delete(sn);
      return text(res, 200, queued.length === 0 ? "OK" : queued.map((c) => `C:${c.id}:${c.command}\n`).join(""));
    }
    if (path === "/iclock/devicecmd" && req.method === "POST") {
      if (this.#devicecmdFailures > 0) {
        this.#devicecmdFailures -= 1;
        return text(res, 500, "Internal Server Error");
      }
      for (const line of body.split(/\r?\n/)) {
        if (line.trim() === "") continue;
        const fields = new URLSearchParams(line);
        this.#results.push({
          sn,
          id: fields.get("ID") ?? "",
          returnCode: fields.get("Return") ?? "",
          cmd: fields.get("CMD") ?? "",
        });
      }
      return text(res, 200, "OK");
    }
    return text(res, 404, "Not Found");
  }

  #options(sn: string): string {
    return [
      `GET OPTION FROM: ${sn}`,
      `ATTLOGStamp=${this.#stamps.get(sn) ?? "0"}`,
      "OPERLOGStamp=9999",
      "ATTPHOTOStamp=None",
      "ErrorDelay=30",
      `Delay=${this.#o.delaySeconds ?? 10}`,
      "TransTimes=00:00;14:05",
      "TransInterval=1",
      "TransFlag=TransData AttLog\tOpLog",
      "TimeZone=3",
      "Realtime=1",
      "Encrypt=None",
      "ServerVer=2.4.1",
      "",
    ].join("\n");
  }

  async #attlog(sn: string, stamp: string | undefined, body: string, res: ServerResponse): Promise<void> {
    const fault = this.#take();
    if (fault?.kind === "slow") await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === "status") return text(res, fault.status, "Internal Server Error");
    const lines = body.split(/\r?\n/).filter((l) => l.trim() !== "");
    const limit = fault?.kind === "short" ? fault.take : lines.length;
    let taken = 0;
    for (const line of lines.slice(0, limit)) {
      const fields = line.split("\t");
      const [pin = "", time = "", status = "0", verify = "0", workcode = "0"] = fields;
      if (!pin || !TIME.test(time)) break;
      const key = `${sn}\t${pin}\t${time}\t${status}`;
      if (!this.#rows.has(key)) this.#rows.set(key, { sn, pin, time, status, verify, workcode, fields });
      taken += 1;
    }
    if (taken > 0 && stamp !== undefined) this.#stamps.set(sn, stamp);
    if (fault?.kind === "after-commit") return text(res, 500, "Internal Server Error");
    return text(res, 200, `OK: ${taken}`);
  }
}

export async function startAdmsServer(options: AdmsServerOptions = {}): Promise<AdmsServer> {
  const server = new AdmsServer(options);
  await server.listen();
  return server;
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) }).end(body);
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > 4 * 1024 * 1024) req.destroy(new Error("body too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
