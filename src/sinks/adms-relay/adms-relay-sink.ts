import type { AdmsRelaySinkConfig } from "../../config/sink-schema.ts";
import { sleep } from "../../core/abort.ts";
import type { Clock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { clause } from "../../core/sentence.ts";
import { retryAfterMs } from "../../link/cloud-client.ts";
import type { OutboxEntry } from "../../store/store.ts";
import { answerText, type HttpAnswer, httpExchange, isNoAnswer } from "../http-exchange.ts";
import { outboxPunch } from "../outbox-punch.ts";
import type { Sink, SinkDetails, SinkMemory, SinkOutcome, SinkRejection } from "../sink.ts";
import { type AdmsOptions, parseAdmsOptions, parseCommands } from "./adms-wire.ts";

export interface AdmsRelayOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly memory: SinkMemory;
  readonly timeoutMs: () => number;
}

/**
 * The device's answer to a command it cannot carry out: "unsupported" among the PUSH return codes (0 ok, negative a
 * device error, −1002 unsupported). The relay is no terminal: it holds no users, templates or log of its own.
 */
export const UNSUPPORTED = -1002;
const FAILED = -1;
/** Terminals poll one after the other in the field; a few at once keeps 500 serials' heartbeats within a period. */
const HEARTBEAT_CONCURRENCY = 4;
const DEFAULT_RETRY_AFTER_MS = 5000;
const SERIALS_KEY = "serials";

interface SerialState {
  /** The last Stamp the server took from us (ATTLOG), kept across restarts. */
  stamp: number;
  /** What the server's last handshake said ATTLOGStamp is. */
  serverStamp: string | null;
  /** This run has done the options handshake (a terminal does it once per boot, and after losing the server). */
  handshaken: boolean;
  options: AdmsOptions;
}

interface PendingResult {
  readonly serial: string;
  readonly id: string;
  readonly code: number;
  readonly cmd: string;
}

type SerialFailure = { readonly error: BioError; readonly noAnswer: boolean; readonly retryAfterMs?: number };

/**
 * Forwards punches to an ADMS server as a ZKTeco PUSH 2.x terminal would, posing as each terminal by its serial:
 * the options handshake, one ATTLOG upload per serial per batch, heartbeats on /iclock/getrequest, and an answer to
 * every command.
 *
 * - `OK: n` acknowledges the first n lines only; the rest are sent again. Servers count differently: some count the
 *   lines they parsed (a few even count a trailing empty line, so n can exceed the lines sent: all are taken), most
 *   count every line they hold after the upload. A server that counted only rows it did not have yet would answer a
 *   re-send `OK: 0`; that is reported as a failure, never taken as an acknowledgement. A bare `OK` takes all.
 * - Stamps: the Stamp of an upload is ours, per serial, increasing (Unix seconds, or one more than the last) and kept
 *   in the sink's memory, because servers store it and some compare it. The server's ATTLOGStamp does not decide
 *   what is sent: the outbox does, and the server dedupes on the punch itself, as it must for real terminals.
 * - Serials not in `serials` are not this sink's: they count as delivered here and are never announced.
 * - Commands: CHECK (re-read the options and upload what is new) is honoured with a new handshake. Everything else
 *   (INFO, DATA QUERY, user and template commands, REBOOT, CLEAR …) is answered −1002, unsupported: the relay has no
 *   users, log or settings of the terminal to report or change, and invents none.
 */
export class AdmsRelaySink implements Sink {
  readonly name = "adms-relay";
  readonly #config: AdmsRelaySinkConfig;
  readonly #o: AdmsRelayOptions;
  readonly #base: string;
  readonly #wanted: ReadonlySet<string> | undefined;
  readonly #serials: Set<string>;
  readonly #state = new Map<string, SerialState>();
  readonly #pending: PendingResult[] = [];
  readonly #counts = { linesSent: 0, linesAcked: 0, heartbeats: 0, commandsRefused: 0, commandsHonoured: 0 };
  #lastHeartbeatAt: string | null = null;
  #lastError: string | null = null;

  constructor(config: AdmsRelaySinkConfig, options: AdmsRelayOptions) {
    this.#config = config;
    this.#o = options;
    this.#base = config.url.replace(/\/+$/, "");
    this.#wanted = config.serials ? new Set(config.serials) : undefined;
    const known = options.memory.get(SERIALS_KEY);
    const remembered = Array.isArray(known) ? known.filter((s): s is string => typeof s === "string") : [];
    this.#serials = new Set(remembered.filter((s) => this.#wants(s)));
  }

  details(): SinkDetails {
    return {
      serials: this.#serials.size,
      ...this.#counts,
      pendingResults: this.#pending.length,
      lastHeartbeatAt: this.#lastHeartbeatAt,
      lastError: this.#lastError,
    };
  }

  async send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome> {
    const acked: string[] = [];
    const rejected: SinkRejection[] = [];
    const bySerial = new Map<string, { id: string; line: string }[]>();
    for (const entry of batch) {
      const read = outboxPunch(entry);
      if (!read.ok) {
        rejected.push({ id: entry.id, reason: read.reason, permanent: true });
        continue;
      }
      const { punch, local } = read;
      if (!this.#wants(punch.deviceSerial)) {
        acked.push(entry.id);
        continue;
      }
      const workCode = punch.workCode ?? "0";
      if (/[\t\r\n]/.test(punch.userId + workCode + punch.deviceSerial) || punch.deviceSerial === "") {
        rejected.push({
          id: entry.id,
          reason:
            "the user id, work code or serial holds a tab or line break, or the serial is empty: no ATTLOG line can carry it",
          permanent: true,
        });
        continue;
      }
      // 255 is the terminals' own "no state"; a state the source wrote as text has no code to send.
      const state = punch.stateCode >= 0 ? punch.stateCode : 255;
      const line = [punch.userId, local, state, punch.verifyCode ?? 0, workCode, 0, 0].join("\t");
      const lines = bySerial.get(punch.deviceSerial) ?? [];
      lines.push({ id: entry.id, line });
      bySerial.set(punch.deviceSerial, lines);
    }
    const failures: SerialFailure[] = [];
    for (const [serial, lines] of bySerial) {
      if (signal.aborted) throw signal.reason;
      this.#remember(serial);
      const result = await this.#upload(serial, lines, signal);
      acked.push(...result.acked);
      if (result.failure) {
        failures.push(result.failure);
        // The server itself is failing or gone: the other serials would cost a timeout each for the same answer.
        if (result.failure.noAnswer || (result.failure.error.context.httpStatus as number) >= 500) break;
      }
    }
    if (acked.length > 0 || rejected.length > 0 || failures.length === 0) return { kind: "delivered", acked, rejected };
    const asked = failures.map((f) => f.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    if (asked.length > 0) return { kind: "retry-after", ms: Math.max(...asked) };
    const [first] = failures as [SerialFailure];
    return { kind: "failed", error: first.error, lostConnectivity: failures.every((f) => f.noAnswer) };
  }

  /** Heartbeats for every terminal this sink has posed as, this run or an earlier one, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.heartbeat(signal);
      await sleep(this.#config.heartbeatIntervalMs, signal).catch(() => undefined);
    }
  }

  /** One round of heartbeats: each known serial polls getrequest and answers what it was asked. */
  async heartbeat(signal: AbortSignal): Promise<void> {
    const serials = [...this.#serials];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < serials.length && !signal.aborted) {
        const serial = serials[next++] as string;
        try {
          await this.#poll(serial, signal);
        } catch (error) {
          if (signal.aborted) return;
          if (!(error instanceof BioError)) throw error;
          this.#lastError = error.message;
          this.#o.logger.debug("adms heartbeat failed", { serial, code: error.code, message: error.message });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEARTBEAT_CONCURRENCY, serials.length) }, worker));
  }

  #wants(serial: string): boolean {
    return this.#wanted === undefined || this.#wanted.has(serial);
  }

  #remember(serial: string): void {
    if (this.#serials.has(serial)) return;
    this.#serials.add(serial);
    this.#o.memory.put(SERIALS_KEY, [...this.#serials]);
  }

  #stateOf(serial: string): SerialState {
    let state = this.#state.get(serial);
    if (!state) {
      const saved = this.#o.memory.get(`stamp:${serial}`) as { stamp?: unknown; serverStamp?: unknown } | undefined;
      state = {
        stamp: typeof saved?.stamp === "number" ? saved.stamp : 0,
        serverStamp: typeof saved?.serverStamp === "string" ? saved.serverStamp : null,
        handshaken: false,
        options: {},
      };
      this.#state.set(serial, state);
    }
    return state;
  }

  #save(serial: string, state: SerialState): void {
    this.#o.memory.put(`stamp:${serial}`, { stamp: state.stamp, serverStamp: state.serverStamp });
  }

  #request(method: "GET" | "POST", path: string, serial: string, extra: string, signal: AbortSignal, body?: string) {
    return httpExchange(
      {
        method,
        url: `${this.#base}${path}?SN=${encodeURIComponent(serial)}${extra}`,
        headers: { "content-type": "text/plain", "user-agent": "iClock Proxy/1.09" },
        ...(body === undefined ? {} : { body }),
        timeoutMs: this.#o.timeoutMs(),
        signal,
      },
      `The ADMS server at ${hostOf(this.#base)}`,
    );
  }

  /** The options handshake, as a terminal does it after boot; it proves the server takes this serial. */
  async handshake(serial: string, signal: AbortSignal): Promise<AdmsOptions> {
    const state = this.#stateOf(serial);
    const extra = `&options=all&pushver=${encodeURIComponent(this.#config.pushVersion)}&language=69`;
    const answer = await this.#request("GET", "/iclock/cdata", serial, extra, signal);
    const error = this.#answerError(answer, serial, "handshake");
    if (error) throw error;
    const options = parseAdmsOptions(answer.text);
    if (Object.keys(options).length === 0) {
      throw new BioError(
        "SINK_REJECTED",
        `The ADMS server did not register terminal ${serial}: its handshake answer holds no options (${answerText(answer)})`,
        {
          context: { httpStatus: answer.status },
          hint: "Register or authorise the serial on the server (BioTime: move the device out of the unauthorised area), or leave it out of the sink's serials.",
        },
      );
    }
    state.options = options;
    state.serverStamp = options.ATTLOGStamp ?? options.Stamp ?? null;
    state.handshaken = true;
    this.#save(serial, state);
    return options;
  }

  async #upload(
    serial: string,
    lines: readonly { id: string; line: string }[],
    signal: AbortSignal,
  ): Promise<{ acked: string[]; failure?: SerialFailure }> {
    const state = this.#stateOf(serial);
    try {
      if (!state.handshaken) await this.handshake(serial, signal);
      const stamp = Math.max(state.stamp + 1, Math.floor(this.#o.clock.now() / 1000));
      const body = lines.map((l) => `${l.line}\n`).join("");
      this.#counts.linesSent += lines.length;
      const answer = await this.#request("POST", "/iclock/cdata", serial, `&table=ATTLOG&Stamp=${stamp}`, signal, body);
      const error = this.#answerError(answer, serial, "upload");
      if (error) return { acked: [], failure: this.#failure(error, answer) };
      const ok = /^\s*OK(?:\s*:\s*(\d+))?/i.exec(answer.text);
      if (!ok) {
        const protocol = new BioError(
          "SINK_PROTOCOL",
          `The ADMS server answered an upload of terminal ${serial} without OK (${answerText(answer)})`,
          {
            context: { httpStatus: answer.status },
            hint: "Check that the sink's url is the ADMS server's own address.",
          },
        );
        return { acked: [], failure: this.#failure(protocol) };
      }
      const taken = ok[1] === undefined ? lines.length : Math.min(Number(ok[1]), lines.length);
      if (taken === 0) {
        const refused = new BioError(
          "SINK_REJECTED",
          `The ADMS server took none of ${lines.length} lines of terminal ${serial} (${answerText(answer)})`,
          {
            context: { httpStatus: answer.status },
            hint: "The server's own log says why; the punches stay in the outbox and are sent again.",
          },
        );
        return { acked: [], failure: this.#failure(refused) };
      }
      state.stamp = stamp;
      this.#save(serial, state);
      this.#counts.linesAcked += taken;
      this.#lastError = null;
      return { acked: lines.slice(0, taken).map((l) => l.id) };
    } catch (error) {
      if (signal.aborted || !(error instanceof BioError)) throw error;
      const noAnswer = isNoAnswer(error);
      // Lost the server: like a terminal, start over with the handshake once it answers again.
      if (noAnswer) for (const s of this.#state.values()) s.handshaken = false;
      return { acked: [], failure: this.#failure(error, undefined, noAnswer) };
    }
  }

  #failure(error: BioError, answer?: HttpAnswer, noAnswer = false): SerialFailure {
    this.#lastError = error.message;
    if (answer && (answer.status === 429 || answer.status === 503)) {
      return {
        error,
        noAnswer,
        retryAfterMs: retryAfterMs(answer.headers, this.#o.clock.now()) ?? DEFAULT_RETRY_AFTER_MS,
      };
    }
    return { error, noAnswer };
  }

  /** A non-200 answer as an error; undefined for 200. */
  #answerError(answer: HttpAnswer, serial: string, what: string): BioError | undefined {
    if (answer.status === 200) return undefined;
    const host = hostOf(this.#base);
    const said = clause(answerText(answer));
    if (answer.status >= 500 || answer.status === 429) {
      return new BioError(
        "SINK_UNAVAILABLE",
        `The ADMS server at ${host} failed the ${what} of terminal ${serial} (${said})`,
        {
          context: { httpStatus: answer.status },
        },
      );
    }
    if (answer.status === 401 || answer.status === 403) {
      return new BioError("SINK_AUTH", `The ADMS server at ${host} refused terminal ${serial} (${said})`, {
        context: { httpStatus: answer.status },
        hint: "Register or authorise the serial on the server, or leave it out of the sink's serials.",
      });
    }
    return new BioError(
      "SINK_REJECTED",
      `The ADMS server at ${host} refused the ${what} of terminal ${serial} (${said})`,
      {
        context: { httpStatus: answer.status },
        hint: "Check the sink's url: the server's base address, to which /iclock/... is added.",
      },
    );
  }

  async #poll(serial: string, signal: AbortSignal): Promise<void> {
    const state = this.#stateOf(serial);
    if (!state.handshaken) await this.handshake(serial, signal);
    await this.#flushResults(serial, signal);
    const answer = await this.#request("GET", "/iclock/getrequest", serial, "", signal);
    const error = this.#answerError(answer, serial, "heartbeat");
    if (error) throw error;
    this.#counts.heartbeats += 1;
    this.#lastHeartbeatAt = new Date(this.#o.clock.now()).toISOString();
    for (const command of parseCommands(answer.text)) {
      const word = command.command.split(/\s+/, 1)[0] ?? "";
      let code = UNSUPPORTED;
      if (word.toUpperCase() === "CHECK") {
        try {
          await this.handshake(serial, signal);
          code = 0;
        } catch (e) {
          if (signal.aborted || !(e instanceof BioError)) throw e;
          code = FAILED;
        }
      }
      if (code === 0) this.#counts.commandsHonoured += 1;
      else this.#counts.commandsRefused += 1;
      this.#o.logger.info("adms command answered", { serial, id: command.id, command: word, returnCode: code });
      this.#pending.push({ serial, id: command.id, code, cmd: word });
    }
    await this.#flushResults(serial, signal);
  }

  /** Every command gets its answer: one that could not be posted is posted on the next heartbeat. */
  async #flushResults(serial: string, signal: AbortSignal): Promise<void> {
    for (const result of this.#pending.filter((p) => p.serial === serial)) {
      const body = `ID=${result.id}&Return=${result.code}&CMD=${result.cmd}`;
      const answer = await this.#request("POST", "/iclock/devicecmd", serial, "", signal, body);
      const error = this.#answerError(answer, serial, "command result");
      if (error) throw error;
      this.#pending.splice(this.#pending.indexOf(result), 1);
    }
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "its url";
  }
}
