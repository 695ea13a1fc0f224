import { ConfigChannel } from "../config/config-channel.ts";
import { cachedConfig, configPoller } from "../config/config-poller.ts";
import { configuredSinks } from "../config/config-schema.ts";
import { LiveConfig } from "../config/live-config.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import type { Logger, Redactor } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import { loopPart, type Part, Parts } from "../core/part.ts";
import { VERSION } from "../core/version.ts";
import { CloudLink } from "../link/cloud-link.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { loadEnrollment } from "../secrets/enrollment.ts";
import type { SecretStore } from "../secrets/secret-store.ts";
import { Deliveries } from "../shipper/deliveries.ts";
import { sinkFactory, sinkOneBatchAtATime, sinkSecrets } from "../sinks/sink-kinds.ts";
import { sourceFactory, sourceSecrets } from "../sources/source-kinds.ts";
import { HealthEndpoint } from "../status/health-endpoint.ts";
import { heartbeatBody } from "../status/heartbeat-body.ts";
import { ConnectorMetrics } from "../status/metrics.ts";
import type { ConnectorStatus } from "../status/status-api.ts";
import { StatusEndpoint } from "../status/status-endpoint.ts";
import { StatusSnapshot } from "../status/status-snapshot.ts";
import { journalRoom, pruneDelivered } from "../store/delivered-retention.ts";
import type { DiskSpace } from "../store/disk-space.ts";
import { holdDataDir } from "../store/hold-data-dir.ts";
import type { InstanceLock } from "../store/instance-lock.ts";
import { OutboxGate } from "../store/outbox-gate.ts";
import { Store } from "../store/store.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import { Workers } from "../supervisor/workers.ts";
import { type DataDirLayout, ensureDataDir } from "./data-dir.ts";

export interface ConnectorOptions {
  readonly dataDir: string;
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly clock?: Clock;
  readonly statusHost?: string;
  /** 0: the OS picks a free port; the URL is written to `<dataDir>/status.json`. */
  readonly statusPort?: number;
  /** Windows service: narrows the health pipe's access list once it exists (see HealthChannelOptions.restrict). */
  readonly restrictHealthChannel?: (path: string) => Promise<void>;
}

/**
 * The composition root: wires the parts of one connector and runs them as one ordered list, started in order and
 * stopped in reverse within a bound. It holds no logic of its own; each part's lives in its folder.
 */
export class Connector {
  readonly #wired: Wired;
  readonly #logger: Logger;
  #stopped = false;

  private constructor(wired: Wired, logger: Logger) {
    this.#wired = wired;
    this.#logger = logger;
  }

  static async start(options: ConnectorOptions): Promise<Connector> {
    const layout = ensureDataDir(options.dataDir);
    const clock = options.clock ?? systemClock;
    return holdDataDir(layout.root, { clock, logger: options.logger }, async ({ lock, space }) => {
      const wired = await wire(options, layout, lock, space);
      // A start that fails stops what had started, without "Connector stopped.": the caller reports why.
      await wired.parts.start();
      options.logger.info("Connector started.", { version: VERSION, nodeId: wired.nodeId, status: wired.endpoint.url });
      return new Connector(wired, options.logger);
    });
  }

  get statusUrl(): string {
    return this.#wired.endpoint.url;
  }

  /** For tests that watch workers restart on a config change. */
  get supervisor(): Supervisor {
    return this.#wired.supervisor;
  }

  status(): ConnectorStatus {
    return this.#wired.snapshot.current();
  }

  /**
   * Graceful stop within `boundMs`: sources stop (an emit in progress commits first: it is one synchronous
   * transaction), background loops end, the status endpoint closes, the store closes last.
   */
  async stop(boundMs = 10_000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const clean = await this.#wired.parts.stop(boundMs);
    this.#logger.info("Connector stopped.", { clean });
  }
}

type Wired = Awaited<ReturnType<typeof wire>>;

async function wire(options: ConnectorOptions, layout: DataDirLayout, lock: InstanceLock, space: DiskSpace) {
  const clock = options.clock ?? systemClock;
  const { logger, redactor } = options;
  const { nodeId, nodeSecret, cloudUrl } = await loadEnrollment(options.secrets);
  redactor.add(nodeSecret);
  const keys = deriveNodeKeys(nodeSecret);
  const journal = journalRoom(layout.root, clock);
  const store = Store.open(layout.store, { clock, space, journal });
  const live = new LiveConfig();
  const config = () => live.current;
  const outboxChanged = new Notifier();
  const metrics = new ConnectorMetrics({ now: () => clock.now() });
  const startedAt = clock.now();
  const status = () => snapshot.current();

  const link = new CloudLink({
    baseUrl: cloudUrl,
    nodeId,
    keys,
    clock,
    logger,
    connectivity: () => config().connectivity,
    heartbeatIntervalMs: () => config().heartbeatIntervalMs,
    heartbeatBody: () => heartbeatBody(status()),
    onOnline: () => channel.poke(),
  });
  const { client, connectivity } = link;
  const supervisor = new Supervisor({
    store,
    clock,
    logger: logger.child("supervisor"),
    gate: new OutboxGate({
      depth: () => store.depth,
      space,
      connectivity,
      limits: () => ({ policy: config().connectivity.policy, ...config().outbox }),
    }),
    createSource: sourceFactory(),
    outboxChanged,
    metrics,
  });
  const channel = new ConfigChannel({
    client,
    keys,
    store,
    clock,
    logger: logger.child("config"),
    onApply: (applied) => live.set(applied.config),
    onUnreachable: (error) => connectivity.reportFailure(error),
  });
  const deliveries = new Deliveries({
    store,
    space,
    live,
    connectivity,
    clock,
    logger,
    wake: outboxChanged,
    createSink: sinkFactory({
      nodeId,
      client,
      clock,
      logger,
      shipper: () => config().shipper,
      heartbeat: () => heartbeatBody(status()),
    }),
    oneBatchAtATime: sinkOneBatchAtATime,
    onSettled: (settled) => {
      metrics.settled(settled);
      if (settled.first) snapshot.countDelivered(settled.delivered);
    },
  });
  const snapshot = new StatusSnapshot(
    { nodeId, startedAt, clock, redactor, config },
    { store, channel, connectivity, space, supervisor, deliveries, metrics },
  );
  const endpoint = new StatusEndpoint({
    host: options.statusHost ?? "127.0.0.1",
    port: options.statusPort ?? 0,
    statusFile: layout.statusFile,
    startedAt,
    status,
    metrics,
    logger,
  });
  // Told in this order on every new config: secrets are redacted before any part can log them.
  live.subscribe((next) => {
    for (const secret of sourceSecrets(next.sources)) redactor.add(secret);
    for (const secret of sinkSecrets(configuredSinks(next))) redactor.add(secret);
    link.configChanged();
  });

  const loop = (name: string, run: (signal: AbortSignal) => Promise<void>) => loopPart(name, run, { logger, clock });
  const restrict = options.restrictHealthChannel;
  const parts: Part[] = [
    { name: "lock", start: () => undefined, stop: () => void lock.release() },
    { name: "store", start: () => undefined, stop: () => void store.close() },
    cachedConfig(channel),
    endpoint,
    new HealthEndpoint({ dataDir: options.dataDir, startedAt, status, logger, ...(restrict ? { restrict } : {}) }),
    loop("disk", (s) => space.run(s)),
    ...link.parts(),
    configPoller(channel, { config, isOnline: () => connectivity.isOnline, logger, clock }),
    deliveries,
    loop("prune", pruneDelivered(store, logger, journal)),
    new Workers({ supervisor, live, logger, clock }),
  ];
  return { nodeId, parts: new Parts(parts, clock), snapshot, endpoint, supervisor };
}
