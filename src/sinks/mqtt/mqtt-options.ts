import type { IClientOptions } from "mqtt";
import type { MqttSinkConfig } from "../../config/sink-schema.ts";

const DEFAULT_PORT: Readonly<Record<string, number>> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/** The broker as messages and details name it: scheme, host and port, never the URL's user or password. */
export interface BrokerAddress {
  readonly protocol: "mqtt" | "mqtts" | "ws" | "wss";
  readonly host: string;
  readonly port: number;
  /** The WebSocket path and query (ws:// and wss:// only). */
  readonly path: string | undefined;
  readonly secure: boolean;
  /** host:port, for every message, detail and log line. */
  readonly where: string;
  /** A user and password written into the URL (mqtt://user:pass@host); the config's own fields win. */
  readonly username: string | undefined;
  readonly password: string | undefined;
}

export function brokerAddress(config: Pick<MqttSinkConfig, "url">): BrokerAddress {
  const url = new URL(config.url);
  const protocol = url.protocol.replace(/:$/, "").toLowerCase() as BrokerAddress["protocol"];
  const port = url.port ? Number(url.port) : (DEFAULT_PORT[protocol] ?? 1883);
  const ws = protocol === "ws" || protocol === "wss";
  return {
    protocol,
    // [::1] in a URL, ::1 for the socket.
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    path: ws ? `${url.pathname}${url.search}` : undefined,
    secure: protocol === "mqtts" || protocol === "wss",
    where: `${url.hostname}:${port}`,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
}

/** The default client id: stable per node and sink, so the broker keeps one session for it across restarts. */
export function mqttClientId(config: Pick<MqttSinkConfig, "clientId" | "id">, nodeId: string): string {
  return config.clientId ?? `cams-${nodeId}-${config.id}`;
}

export interface ClientOptionsInput {
  readonly config: MqttSinkConfig;
  readonly clientId: string;
  readonly connectTimeoutMs: number;
  /** false for the sink (a persistent session); true for doctor's probe, which must leave no session behind. */
  readonly clean: boolean;
  readonly will?: { readonly topic: string; readonly payload: string };
}

/**
 * mqtt.js options for one connection attempt, the broker's address among them: given a URL string, mqtt.js parses it
 * with the deprecated url.parse(), which prints a deprecation warning into the connector's output. reconnectPeriod 0:
 * the sink reconnects by itself, with backoff and a fresh client, so the library never re-sends a publish the sink
 * has already reported as failed.
 */
export function clientOptions(input: ClientOptionsInput): IClientOptions {
  const { config } = input;
  const broker = brokerAddress(config);
  const v5 = config.protocolVersion === 5;
  const username = config.username ?? broker.username;
  const password = config.password ?? broker.password;
  const options: IClientOptions = {
    protocol: broker.protocol,
    host: broker.host,
    port: broker.port,
    ...(broker.path !== undefined ? { path: broker.path } : {}),
    protocolVersion: config.protocolVersion,
    clientId: input.clientId,
    clean: input.clean,
    keepalive: config.keepaliveS,
    connectTimeout: input.connectTimeoutMs,
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(v5 ? { properties: { sessionExpiryInterval: input.clean ? 0 : config.sessionExpiryS } } : {}),
    ...(input.will
      ? { will: { topic: input.will.topic, payload: Buffer.from(input.will.payload), qos: 1, retain: true } }
      : {}),
  };
  // TLS fields only for a TLS URL: mqtt.js would otherwise turn mqtt:// into mqtts:// on its own when it sees a
  // client certificate, and the URL would no longer say what is spoken.
  if (broker.secure && config.tls) {
    const { ca, cert, key, serverName, verify } = config.tls;
    Object.assign(options, {
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(serverName ? { servername: serverName } : {}),
      rejectUnauthorized: verify,
    });
  }
  return options;
}
