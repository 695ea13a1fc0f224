import { setTimeout as sleep } from "node:timers/promises";
import type { IClientPublishOptions, IConnackPacket, IDisconnectPacket, MqttClient } from "mqtt";
import type { MqttSinkConfig } from "../../config/sink-schema.ts";
import type { Clock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { clause } from "../../core/sentence.ts";
import type { OutboxEntry } from "../../store/store.ts";
import type { Sink, SinkDetails, SinkOutcome, SinkRejection } from "../sink.ts";
import { connackError, pubackVerdict, transportError } from "./mqtt-errors.ts";
import { type BrokerAddress, brokerAddress, clientOptions, mqttClientId } from "./mqtt-options.ts";
import { TopicTemplate } from "./mqtt-topic.ts";

export interface MqttSinkOptions {
  readonly config: MqttSinkConfig;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Connect and PUBACK timeout: the sink's requestTimeoutMs, else the shipper's. */
  readonly timeoutMs: () => number;
  readonly maxBackoffMs: () => number;
  /** The connector's heartbeat body, published retained on statusTopic with `online: true`. */
  readonly heartbeat: () => unknown;
}

type ConnectFn = typeof import("mqtt").connect;

type PublishResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: BioError; readonly reasonCode?: number };

const FIRST_BACKOFF_MS = 1000;
/** Publishes awaiting PUBACK at once when the broker names no Receive Maximum (MQTT 3.1.1 has none). */
const MAX_WINDOW = 256;
/** A broker asking to slow down (PUBACK 0x97) with nothing acked: the batch waits this long. */
const QUOTA_PAUSE_MS = 5000;
/** Saying offline and disconnecting on stop waits at most this long, so a dead broker cannot hold up shutdown. */
const GOODBYE_MS = 5000;

/**
 * MQTT 5 or 3.1.1 to a broker: each punch one QoS 1 PUBLISH of its JSON on its own topic, delivered when its PUBACK
 * says so (an MQTT 5 reason code of 0x80 or more is not a delivery: mqtt-errors.ts says what each one becomes).
 *
 * run() owns the connection. Each attempt is a fresh mqtt.js client with the library's reconnect off: a publish whose
 * PUBACK did not come is reported failed and the shipper sends it again, so the library must not re-send it on its own
 * after a reconnect (that would only add a third copy). Duplicates at the broker are possible — a PUBACK lost with the
 * connection — and subscribers dedupe by the punch id, which is in the payload and, with MQTT 5, in the user property
 * `punchId`. A broker session persists (clean false, sessionExpiryS) under a stable client id.
 *
 * Publishes of one batch travel together, up to the broker's Receive Maximum, in outbox order on one connection, so
 * the broker sees each user's punches in order (MQTT 5 4.6). A punch that failed and is sent again can arrive after
 * a later one of the same user that did not fail: subscribers order by the punch's time, not by arrival.
 */
export class MqttSink implements Sink {
  readonly name = "mqtt";
  readonly #o: MqttSinkOptions;
  readonly #broker: BrokerAddress;
  readonly #clientId: string;
  readonly #topic: TopicTemplate;
  readonly #needsBody: boolean;
  readonly #statusTopic: string;
  readonly #v5: boolean;
  #link: Link | undefined;
  #lastError: BioError | undefined;
  #lastPubackAt: number | undefined;

  constructor(options: MqttSinkOptions) {
    this.#o = options;
    const { config, nodeId } = options;
    this.#broker = brokerAddress(config);
    this.#clientId = mqttClientId(config, nodeId);
    this.#topic = new TopicTemplate(config.topic);
    this.#needsBody = /\{(serial|userId)\}/.test(config.topic);
    this.#v5 = config.protocolVersion === 5;
    const status = new TopicTemplate(config.statusTopic).render({ nodeId });
    if ("problem" in status) {
      throw new BioError("CONFIG_INVALID", `Sink ${config.id}: the status topic cannot be made: ${status.problem}.`);
    }
    this.#statusTopic = status.topic;
  }

  async send(batch: readonly OutboxEntry[], signal: AbortSignal): Promise<SinkOutcome> {
    signal.throwIfAborted();
    const link = this.#link;
    if (!link || link.isClosed) return { kind: "failed", error: this.#notConnected(), lostConnectivity: false };
    const timeoutMs = this.#o.timeoutMs();
    const acked: string[] = [];
    const rejected: SinkRejection[] = [];
    let firstError: BioError | undefined;
    let slowDown = false;
    const settle = (entry: OutboxEntry, topic: string, result: PublishResult) => {
      if (result.ok) {
        acked.push(entry.id);
        return;
      }
      if (result.reasonCode === undefined) {
        firstError ??= result.error;
        rejected.push({ id: entry.id, reason: result.error.message, permanent: false });
        return;
      }
      const verdict = pubackVerdict(result.reasonCode, topic, this.#broker.where);
      if (verdict.kind === "permanent") {
        rejected.push({ id: entry.id, reason: verdict.reason, permanent: true });
        return;
      }
      if (verdict.kind === "slow-down") slowDown = true;
      firstError ??= verdict.error;
      rejected.push({ id: entry.id, reason: verdict.error.message, permanent: false });
    };
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let travelling = 0;
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      const pump = () => {
        while (next < batch.length && travelling < link.window) {
          const entry = batch[next++] as OutboxEntry;
          const prepared = this.#prepare(entry);
          if ("problem" in prepared) {
            rejected.push({ id: entry.id, reason: `The punch ${prepared.problem}.`, permanent: true });
            continue;
          }
          travelling++;
          void link.publish(prepared.topic, entry.body, prepared.options, timeoutMs).then((result) => {
            travelling--;
            if (result.ok) this.#lastPubackAt = this.#o.clock.now();
            settle(entry, prepared.topic, result);
            pump();
          });
        }
        if (next >= batch.length && travelling === 0) {
          signal.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      pump();
    });
    if (acked.length === 0 && !rejected.some((r) => r.permanent) && firstError) {
      if (slowDown) return { kind: "retry-after", ms: QUOTA_PAUSE_MS };
      return { kind: "failed", error: firstError, lostConnectivity: false };
    }
    return { kind: "delivered", acked, rejected };
  }

  async run(signal: AbortSignal): Promise<void> {
    // Loaded here, not at the top: a connector without an MQTT sink never loads the library.
    const { connect } = await import("mqtt");
    let delay = FIRST_BACKOFF_MS;
    while (!signal.aborted) {
      let connected = false;
      try {
        const link = await this.#connect(connect, signal);
        connected = true;
        await this.#serve(link, signal);
      } catch (error) {
        if (signal.aborted) break;
        this.#noteError(transportError(error, this.#broker.where));
      }
      if (signal.aborted) break;
      if (connected) delay = FIRST_BACKOFF_MS;
      try {
        // Jitter, so the sinks of many connectors do not all come back to a restarted broker in the same second.
        await sleep(delay * (0.75 + Math.random() / 2), undefined, { signal });
      } catch {
        break;
      }
      delay = Math.min(delay * 2, this.#o.maxBackoffMs());
    }
  }

  async close(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    link?.lose(this.#stopped());
    link?.client.end(true);
  }

  details(): SinkDetails {
    const link = this.#link?.isClosed ? undefined : this.#link;
    return {
      connected: link !== undefined,
      broker: this.#broker.where,
      protocolVersion: this.#o.config.protocolVersion,
      clientId: this.#clientId,
      sessionPresent: link?.sessionPresent ?? null,
      inFlight: link?.inFlight ?? 0,
      lastPubackAt: this.#lastPubackAt === undefined ? null : new Date(this.#lastPubackAt).toISOString(),
      lastError: link ? null : (this.#lastError?.message ?? null),
    };
  }

  #prepare(entry: OutboxEntry): { topic: string; options: IClientPublishOptions } | { problem: string } {
    let serial = "";
    let userId = "";
    if (this.#needsBody) {
      try {
        const punch = JSON.parse(entry.body) as { deviceSerial?: unknown; userId?: unknown };
        serial = String(punch.deviceSerial ?? "");
        userId = String(punch.userId ?? "");
      } catch {
        return { problem: "body is not JSON" };
      }
    }
    const rendered = this.#topic.render({ nodeId: this.#o.nodeId, serial, userId, sourceId: entry.sourceId });
    if ("problem" in rendered) return rendered;
    const options: IClientPublishOptions = this.#v5
      ? {
          qos: 1,
          properties: {
            payloadFormatIndicator: true,
            contentType: "application/json",
            userProperties: { punchId: entry.id },
          },
        }
      : { qos: 1 };
    return { topic: rendered.topic, options };
  }

  #connect(connect: ConnectFn, signal: AbortSignal): Promise<Link> {
    const { config } = this.#o;
    const where = this.#broker.where;
    const timeoutMs = this.#o.timeoutMs();
    const client = connect(
      clientOptions({
        config,
        clientId: this.#clientId,
        connectTimeoutMs: timeoutMs,
        clean: false,
        will: { topic: this.#statusTopic, payload: this.#offlineBody("connection lost") },
      }),
    );
    return new Promise<Link>((resolve, reject) => {
      let refusal: BioError | undefined;
      const timer = setTimeout(() => {
        fail(
          new BioError(
            "SINK_UNAVAILABLE",
            `The MQTT broker ${where} did not accept the connection within ${timeoutMs} ms.`,
            {
              hint: "Check that the url's scheme matches the listener (mqtts:// for a TLS port) and that nothing between here and the broker holds the connection.",
            },
          ),
        );
      }, timeoutMs);
      const onAbort = () => fail(signal.reason);
      const onError = (error: Error) => {
        const code = (error as { code?: unknown }).code;
        refusal =
          typeof code === "number" ? connackError(code, config.protocolVersion, where) : transportError(error, where);
      };
      const onClose = () =>
        fail(
          refusal ??
            new BioError("SINK_UNAVAILABLE", `The MQTT broker ${where} closed the connection before accepting it.`, {
              hint: "Check that the url's scheme matches the listener (mqtts:// for a TLS port, mqtt:// for a plain one).",
            }),
        );
      const onConnect = (connack: IConnackPacket) => {
        cleanup();
        resolve(new Link(client, connack, config.protocolVersion, where));
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        client.removeListener("error", onError);
        client.removeListener("close", onClose);
        client.removeListener("connect", onConnect);
      };
      const fail = (error: unknown) => {
        cleanup();
        // The library may still report the socket's end; a listener keeps that from being an unhandled 'error'.
        client.on("error", () => {});
        client.end(true);
        reject(error);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      client.on("error", onError);
      client.once("close", onClose);
      client.once("connect", onConnect);
    });
  }

  /** One connection's life: heartbeats until the broker goes away or the sink stops. */
  async #serve(link: Link, signal: AbortSignal): Promise<void> {
    this.#link = link;
    this.#lastError = undefined;
    this.#o.logger.info("Connected to the MQTT broker.", {
      broker: this.#broker.where,
      clientId: this.#clientId,
      sessionPresent: link.sessionPresent,
    });
    const timeoutMs = this.#o.timeoutMs();
    const beat = async () => {
      const result = await link.publish(this.#statusTopic, this.#onlineBody(), this.#statusOptions(), timeoutMs);
      if (!result.ok && !link.isClosed) {
        this.#o.logger.warn("The MQTT broker did not take the heartbeat.", { error: result.error.message });
      }
    };
    void beat();
    const timer = setInterval(() => void beat(), this.#o.config.statusIntervalMs);
    const onAbort = () => link.stop();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await link.ended;
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", onAbort);
    }
    if (signal.aborted) {
      await this.#goodbye(link);
      if (this.#link === link) this.#link = undefined;
      return;
    }
    if (this.#link === link) this.#link = undefined;
    throw (
      link.closeError ??
      new BioError("SINK_UNAVAILABLE", `The MQTT broker ${this.#broker.where} closed the connection.`)
    );
  }

  /** Stopping: say offline (retained, replacing the heartbeat) and disconnect cleanly, so no last-will is sent. */
  async #goodbye(link: Link): Promise<void> {
    const timeoutMs = Math.min(this.#o.timeoutMs(), GOODBYE_MS);
    const said = await link.publish(this.#statusTopic, this.#offlineBody("stopped"), this.#statusOptions(), timeoutMs);
    if (!said.ok) this.#o.logger.warn("Could not say offline to the MQTT broker.", { error: said.error.message });
    link.lose(this.#stopped());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        link.client.end(true);
        resolve();
      }, timeoutMs);
      link.client.end(false, { reasonCode: 0 }, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #statusOptions(): IClientPublishOptions {
    return this.#v5
      ? { qos: 1, retain: true, properties: { payloadFormatIndicator: true, contentType: "application/json" } }
      : { qos: 1, retain: true };
  }

  #onlineBody(): string {
    const heartbeat = this.#o.heartbeat();
    const body =
      heartbeat !== null && typeof heartbeat === "object" && !Array.isArray(heartbeat)
        ? { ...heartbeat, online: true }
        : { heartbeat, online: true };
    return JSON.stringify(body);
  }

  #offlineBody(reason: "connection lost" | "stopped"): string {
    const at = reason === "stopped" ? { at: new Date(this.#o.clock.now()).toISOString() } : {};
    return JSON.stringify({ nodeId: this.#o.nodeId, online: false, reason, ...at });
  }

  #noteError(error: BioError): void {
    if (this.#lastError?.message !== error.message) {
      this.#o.logger.warn("No connection to the MQTT broker.", { code: error.code, error: error.message });
    }
    this.#lastError = error;
  }

  #notConnected(): BioError {
    const last = this.#lastError;
    if (last) {
      return new BioError(
        last.code,
        `Not connected to the MQTT broker ${this.#broker.where}: ${clause(last.message)}.`,
        {
          context: last.context,
        },
      );
    }
    return new BioError("SINK_UNAVAILABLE", `Not connected to the MQTT broker ${this.#broker.where} yet.`, {
      hint: "The sink is connecting; the punches stay in the outbox.",
    });
  }

  #stopped(): BioError {
    return new BioError("SINK_UNAVAILABLE", `The MQTT sink to ${this.#broker.where} stopped.`);
  }
}

/**
 * One connection: its publishes awaiting PUBACK, each with its own timeout, all failed at once when the connection
 * goes, so no send waits for an answer that cannot come.
 */
class Link {
  readonly client: MqttClient;
  readonly sessionPresent: boolean;
  /** Publishes of one batch at once: the broker's Receive Maximum less one, kept for the heartbeat. */
  readonly window: number;
  readonly ended: Promise<void>;
  inFlight = 0;
  closeError: BioError | undefined;
  readonly #where: string;
  readonly #waiting = new Map<(result: PublishResult) => void, { deadline: number; timeoutMs: number }>();
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;
  #end!: () => void;

  constructor(client: MqttClient, connack: IConnackPacket, protocolVersion: 4 | 5, where: string) {
    this.client = client;
    this.#where = where;
    this.sessionPresent = connack.sessionPresent;
    const receiveMaximum = protocolVersion === 5 ? connack.properties?.receiveMaximum : undefined;
    this.window = receiveMaximum ? Math.max(1, Math.min(MAX_WINDOW, receiveMaximum - 1)) : MAX_WINDOW;
    this.ended = new Promise<void>((resolve) => {
      this.#end = resolve;
    });
    let reason: BioError | undefined;
    client.on("error", (error) => {
      reason = transportError(error, where);
    });
    client.on("disconnect", (packet: IDisconnectPacket) => {
      reason = disconnectError(packet, where);
    });
    client.once("close", () => {
      this.lose(
        reason ??
          new BioError("SINK_UNAVAILABLE", `The connection to the MQTT broker ${where} closed.`, {
            hint: "The sink reconnects by itself; see the broker's log if this repeats.",
          }),
      );
      client.end(true);
    });
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** The sink stops: ends the connection's life without failing it (the goodbye still publishes on it). */
  stop(): void {
    this.#end();
  }

  lose(error: BioError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closeError = error;
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    for (const finish of [...this.#waiting.keys()]) finish({ ok: false, error });
    this.#end();
  }

  /** Resolves on the PUBACK, a refusal, the timeout or the connection's end; never rejects. */
  publish(topic: string, payload: string, options: IClientPublishOptions, timeoutMs: number): Promise<PublishResult> {
    if (this.#closed) {
      return Promise.resolve({ ok: false, error: this.closeError as BioError });
    }
    return new Promise<PublishResult>((resolve) => {
      this.inFlight++;
      const finish = (result: PublishResult) => {
        if (!this.#waiting.delete(finish)) return;
        this.inFlight--;
        resolve(result);
      };
      this.#waiting.set(finish, { deadline: performance.now() + timeoutMs, timeoutMs });
      this.#watch();
      this.client.publish(topic, payload, options, (error) => {
        if (!error) return finish({ ok: true });
        const code = (error as { code?: unknown }).code;
        if (typeof code === "number") {
          return finish({ ok: false, error: new BioError("SINK_REJECTED", error.message), reasonCode: code });
        }
        finish({
          ok: false,
          error: new BioError(
            "SINK_UNAVAILABLE",
            `A publish to the MQTT broker ${this.#where} failed: ${clause(error.message)}.`,
          ),
        });
      });
    });
  }

  /**
   * One timer for every publish awaiting its PUBACK (at most the window, so a sweep is short), set for the earliest
   * deadline: a timer per publish costs more than the rest of the sink's work on a punch.
   */
  #watch(): void {
    if (this.#watchdog || this.#waiting.size === 0) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const { deadline } of this.#waiting.values()) earliest = Math.min(earliest, deadline);
    this.#watchdog = setTimeout(() => this.#sweep(), Math.max(0, earliest - performance.now()));
  }

  #sweep(): void {
    this.#watchdog = undefined;
    const now = performance.now();
    for (const [finish, { deadline, timeoutMs }] of this.#waiting) {
      if (deadline > now) continue;
      const error = new BioError(
        "SINK_UNAVAILABLE",
        `The MQTT broker ${this.#where} sent no PUBACK within ${timeoutMs} ms.`,
        {
          hint: "The sink drops this connection and makes a new one; the punches stay in the outbox.",
        },
      );
      finish({ ok: false, error });
      // A broker that stops acking while the socket stays up is not noticed by keepalive (the socket is never idle
      // while punches flow): a fresh connection is the way back.
      this.lose(error);
      this.client.end(true);
      return;
    }
    this.#watch();
  }
}

function disconnectError(packet: IDisconnectPacket, where: string): BioError {
  const code = packet.reasonCode ?? 0;
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  const text = packet.properties?.reasonString ? `: ${packet.properties.reasonString}` : "";
  if (code === 0x8e) {
    return new BioError(
      "SINK_REJECTED",
      `The MQTT broker ${where} ended the session: another client took it over (${hex})${text}.`,
      {
        hint: "Two connectors (or a connector and doctor) use one clientId: give each sink its own clientId.",
        context: { reasonCode: code },
      },
    );
  }
  return new BioError("SINK_UNAVAILABLE", `The MQTT broker ${where} disconnected this client (${hex})${text}.`, {
    hint: "See the broker's log for why; the sink reconnects by itself.",
    context: { reasonCode: code },
  });
}
