/**
 * A subscriber that counts punch ids exactly, to judge an MQTT publisher from the outside. It shares no code with
 * src/: it is a plain MQTT.js client, written from the OASIS MQTT Version 5.0 standard (3.3 PUBLISH and its User
 * Property 3.3.2.3.7; 3.8 SUBSCRIBE; 4.3.2 QoS 1 "at least once", which allows duplicates, so they are counted rather
 * than refused; 3.1.2.5 and 3.1.3.2 Will Message, 3.3.1.3 RETAIN) and MQTT.js's README (connect, subscribe, the
 * 'message' event and its packet).
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

export interface MqttCounterOptions {
  readonly url: string;
  /** The filter punches arrive on, e.g. cams/node-1/punches/+. */
  readonly punches: string;
  /** A status topic (no wildcard): every message on it is kept, in order, with its retain flag. */
  readonly status?: string;
  /** A persistent session (clean false, 1 hour): messages published while this subscriber is away wait for it. */
  readonly persistent?: boolean;
  readonly clientId?: string;
  readonly client?: IClientOptions;
}

export interface StatusMessage {
  readonly body: Record<string, unknown>;
  readonly retained: boolean;
}

export class MqttCounter {
  /** Times each punch id arrived. */
  readonly ids = new Map<string, number>();
  readonly status: StatusMessage[] = [];
  /** Punches whose MQTT 5 user property punchId names the id in their body. */
  withPunchIdProperty = 0;
  messages = 0;
  readonly #client: MqttClient;

  private constructor(client: MqttClient, options: MqttCounterOptions) {
    this.#client = client;
    client.on("message", (topic, payload, packet) => {
      // An empty retained message clears the topic (3.3.1.3): nothing to count.
      if (payload.length === 0) return;
      if (topic === options.status) {
        this.status.push({ body: JSON.parse(payload.toString("utf8")), retained: packet.retain });
        return;
      }
      this.messages++;
      const id = (JSON.parse(payload.toString("utf8")) as { id: string }).id;
      this.ids.set(id, (this.ids.get(id) ?? 0) + 1);
      const property = packet.properties?.userProperties?.punchId;
      if (property === id) this.withPunchIdProperty++;
    });
  }

  static async start(options: MqttCounterOptions): Promise<MqttCounter> {
    const client = await mqtt.connectAsync(options.url, {
      protocolVersion: 5,
      clientId: options.clientId ?? `counter-${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
      clean: !options.persistent,
      reconnectPeriod: 200,
      connectTimeout: 5000,
      ...(options.persistent ? { properties: { sessionExpiryInterval: 3600 } } : {}),
      ...options.client,
    });
    client.on("error", () => {});
    const counter = new MqttCounter(client, options);
    const filters = [options.punches, ...(options.status ? [options.status] : [])];
    await client.subscribeAsync(filters, { qos: 1 });
    return counter;
  }

  get unique(): number {
    return this.ids.size;
  }

  /** Arrivals beyond the first of each id: what QoS 1 allows after a lost PUBACK. */
  get duplicates(): number {
    return this.messages - this.ids.size;
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true);
  }
}
