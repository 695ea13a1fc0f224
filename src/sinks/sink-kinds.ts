import type { ShipperConfig } from "../config/config-schema.ts";
import type { SinkConfig } from "../config/sink-schema.ts";
import type { Check, Finding } from "../core/check.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import type { CloudClient } from "../link/cloud-client.ts";
import { AdmsRelaySink } from "./adms-relay/adms-relay-sink.ts";
import { CamsCallbackSink } from "./cams-callback/cams-callback-sink.ts";
import { CamsCloudSink } from "./cams-cloud/cams-cloud-sink.ts";
import { ErpnextSink } from "./erpnext/erpnext-sink.ts";
import { brokerAddress } from "./mqtt/mqtt-options.ts";
import { MqttSink } from "./mqtt/mqtt-sink.ts";
import type { Sink, SinkMemory } from "./sink.ts";
import { WebhookSink } from "./webhook/webhook-sink.ts";

/** What a sink may use from the connector it runs in. */
export interface SinkContext {
  readonly nodeId: string;
  /** The enrolled cloud's client: only the cams-cloud sink talks to it. */
  readonly client: CloudClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The live `shipper` section; a sink's own fields (requestTimeoutMs...) override it. */
  readonly shipper: () => ShipperConfig;
  readonly memory: SinkMemory;
  /** The connector's heartbeat body (already redacted), for sinks that publish one (MQTT status topic). */
  readonly heartbeat: () => unknown;
}

/** What `bioapi doctor` gives a sink's check. */
export interface SinkCheckTarget<C extends SinkConfig> {
  readonly config: C;
  readonly nodeId: string;
  readonly client: CloudClient | undefined;
}

/** Reachable, authenticated, and a harmless probe where the protocol has one; it never delivers a punch. */
export type SinkCheck<C extends SinkConfig> = Check<SinkCheckTarget<C>>;

export interface SinkKind<C extends SinkConfig> {
  readonly create: (config: C, ctx: SinkContext) => Sink;
  /** Loaded when called, so a running connector does not carry the doctor's code. */
  readonly check?: SinkCheck<C>;
  /** The secrets its config carries: redacted from every log line, status text and error once it is applied. */
  readonly secrets: (config: C) => readonly string[];
  /**
   * One batch at a time (maxInFlight 1): a sink that sends punches one by one (sendEach) keeps each user's order
   * within a batch, and only one batch travelling keeps it across batches.
   */
  readonly oneBatchAtATime?: boolean;
}

type SinkKinds = { readonly [K in SinkConfig["kind"]]: SinkKind<Extract<SinkConfig, { kind: K }>> };

/**
 * One entry per sink kind: a kind in the config schema (config/sink-schema.ts) without one here does not compile.
 */
export const SINK_KINDS: SinkKinds = {
  "cams-cloud": {
    create: (config, ctx) =>
      new CamsCloudSink({
        client: ctx.client,
        clock: ctx.clock,
        timeoutMs: () => config.requestTimeoutMs ?? ctx.shipper().requestTimeoutMs,
        gzip: () => ctx.shipper().gzip,
      }),
    secrets: () => [],
  },
  "adms-relay": {
    create: (config, ctx) =>
      new AdmsRelaySink(config, {
        clock: ctx.clock,
        logger: ctx.logger,
        memory: ctx.memory,
        timeoutMs: () => config.requestTimeoutMs ?? ctx.shipper().requestTimeoutMs,
      }),
    check: async (target, signal) => (await import("./adms-relay/adms-relay-check.ts")).checkAdmsRelay(target, signal),
    secrets: () => [],
    // Servers store and compare each terminal's Stamp: one upload per serial travelling keeps them in order.
    oneBatchAtATime: true,
  },
  erpnext: {
    create: (config, ctx) =>
      new ErpnextSink(config, {
        clock: ctx.clock,
        timeoutMs: () => config.requestTimeoutMs ?? ctx.shipper().requestTimeoutMs,
      }),
    check: async (target, signal) => (await import("./erpnext/erpnext-check.ts")).checkErpnext(target, signal),
    // The key alone opens nothing, but with the secret it is the credential: both are kept out of every text.
    secrets: (config) => [config.apiSecret, config.apiKey],
  },
  mqtt: {
    create: (config, ctx) =>
      new MqttSink({
        config,
        nodeId: ctx.nodeId,
        clock: ctx.clock,
        logger: ctx.logger,
        timeoutMs: () => config.requestTimeoutMs ?? ctx.shipper().requestTimeoutMs,
        maxBackoffMs: () => config.maxBackoffMs ?? ctx.shipper().maxBackoffMs,
        heartbeat: ctx.heartbeat,
      }),
    check: async (target, signal) => (await import("./mqtt/mqtt-check.ts")).checkMqtt(target, signal),
    secrets: (config) =>
      [config.password, config.tls?.key, brokerAddress(config).password].filter((s): s is string => s !== undefined),
    // Each batch's publishes go out in outbox order on one connection; two batches at once would interleave them.
    oneBatchAtATime: true,
  },
  "cams-callback": {
    create: (config, ctx) =>
      new CamsCallbackSink({
        url: config.url,
        authToken: config.authToken,
        labels: config.labels,
        headers: config.headers,
        concurrency: config.concurrency,
        clock: ctx.clock,
        timeoutMs: () => config.requestTimeoutMs ?? ctx.shipper().requestTimeoutMs,
      }),
    check: async (target, signal) =>
      (await import("./cams-callback/cams-callback-check.ts")).checkCamsCallback(target, signal),
    secrets: (config) => [...(config.authToken ? [config.authToken] : []), ...Object.values(config.headers ?? {})],
    oneBatchAtATime: true,
  },
  webhook: {
    create: (config, ctx) =>
      new WebhookSink({
        url: config.url,
        secret: config.secret,
        headers: config.headers,
        nodeId: ctx.nodeId,
        clock: ctx.clock,
        timeoutMs: () => config.requestTimeoutMs ?? ctx.shipper().requestTimeoutMs,
      }),
    check: async (target, signal) => (await import("./webhook/webhook-check.ts")).checkWebhook(target, signal),
    secrets: (config) => [config.secret, ...Object.values(config.headers ?? {})],
  },
};

function kindOf(config: SinkConfig): SinkKind<SinkConfig> {
  return SINK_KINDS[config.kind] as SinkKind<SinkConfig>;
}

export function createSink(config: SinkConfig, ctx: SinkContext): Sink {
  return kindOf(config).create(config, ctx);
}

/** Makes the sinks of one connector: each gets what they share, its own memory and a logger named after it. */
export function sinkFactory(shared: Omit<SinkContext, "memory">): (config: SinkConfig, memory: SinkMemory) => Sink {
  return (config, memory) =>
    createSink(config, { ...shared, memory, logger: shared.logger.child(`sink:${config.id}`) });
}

/** A sink through its kind's doctor check; the Cams cloud's is the cloud check doctor runs first. */
export async function checkSink(
  config: SinkConfig,
  target: Omit<SinkCheckTarget<SinkConfig>, "config">,
  signal: AbortSignal,
): Promise<Finding[]> {
  const subject = `sink ${config.id} (${config.kind})`;
  if (config.kind === "cams-cloud")
    return [{ subject, check: "cloud", status: "ok", detail: "the enrolled cloud: see its checks above" }];
  const check = kindOf(config).check;
  if (!check)
    return [{ subject, check: "probe", status: "warn", detail: `a ${config.kind} sink has no doctor check yet` }];
  return check({ ...target, config }, signal);
}

export function sinkOneBatchAtATime(config: SinkConfig): boolean {
  return kindOf(config).oneBatchAtATime === true;
}

export function sinkSecrets(sinks: readonly SinkConfig[]): string[] {
  return sinks.flatMap((sink) => [...kindOf(sink).secrets(sink)]);
}
