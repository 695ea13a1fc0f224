import type { ConfigChannel } from "../config/config-channel.ts";
import type { ConnectorConfig } from "../config/config-schema.ts";
import type { Clock } from "../core/clock.ts";
import type { Redactor } from "../core/logger.ts";
import { VERSION } from "../core/version.ts";
import type { Connectivity } from "../link/connectivity.ts";
import type { Deliveries } from "../shipper/deliveries.ts";
import type { ShipperStatus } from "../shipper/shipper.ts";
import type { DiskSpace } from "../store/disk-space.ts";
import type { Store } from "../store/store.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import { attention, type SourceLimits } from "./attention.ts";
import type { ConnectorMetrics } from "./metrics.ts";
import type { ConnectorStatus } from "./status-api.ts";

/** Who is reporting: fixed for the life of the process. */
export interface StatusIdentity {
  readonly nodeId: string;
  readonly startedAt: number;
  readonly clock: Clock;
  readonly redactor: Redactor;
  readonly config: () => ConnectorConfig;
}

/** The parts whose state the status shows, each read through the little it needs. */
export interface StatusReaders {
  readonly store: Pick<Store, "outboxStats" | "quarantineCount">;
  readonly channel: Pick<ConfigChannel, "status">;
  readonly deliveries: Pick<Deliveries, "status">;
  readonly connectivity: Pick<Connectivity, "state" | "history">;
  readonly space: Pick<DiskSpace, "status">;
  readonly supervisor: Pick<Supervisor, "status">;
  readonly metrics: Pick<ConnectorMetrics, "perMinute">;
}

type StatusSnapshotOptions = StatusIdentity & StatusReaders;

const mb = (n: number) => Math.round(n / 1048576);

/** Before a config has named the sinks, nothing delivers. */
const IDLE: ShipperStatus = {
  delivered: 0,
  quarantined: 0,
  lastDeliveryAt: null,
  lastError: null,
  retryAt: null,
  unsaved: 0,
};

/**
 * The one status of a running connector, read fresh for the page, the status API, the heartbeat and the monitor.
 * It goes beyond this machine, so every error text passes the redactor as log lines do, whatever produced it.
 */
export class StatusSnapshot {
  readonly #o: StatusSnapshotOptions;
  readonly #deliveredBySource = new Map<string, number>();

  constructor(identity: StatusIdentity, readers: StatusReaders) {
    this.#o = { ...identity, ...readers };
  }

  /** Told by the shipper, per source id, how many punches the cloud acknowledged. */
  countDelivered(bySource: ReadonlyMap<string, number>): void {
    for (const [id, n] of bySource) this.#deliveredBySource.set(id, (this.#deliveredBySource.get(id) ?? 0) + n);
  }

  current(): ConnectorStatus {
    const now = this.#o.clock.now();
    const base = this.#base(now);
    const limits = new Map<string, SourceLimits>(
      this.#o.config().sources.map((c) => [
        c.id,
        {
          pollIntervalMs: c.pollIntervalMs,
          maxClockDriftMs: c.kind === "zk" ? c.maxClockDriftMs : undefined,
          timezone: c.timezone,
        },
      ]),
    );
    return { ...base, attention: attention(base, limits, now) };
  }

  #base(now: number): Omit<ConnectorStatus, "attention"> {
    const o = this.#o;
    const outbox = o.store.outboxStats();
    const mem = process.memoryUsage();
    const scrub = (text: string) => o.redactor.scrub(text);
    const scrubError = <E extends { message: string } | null>(e: E): E => (e ? { ...e, message: scrub(e.message) } : e);
    const config = o.channel.status();
    // A sink's details are its kind's words (an answer it quoted, say): scrubbed like every other text.
    const sinks = o.deliveries.status().map((sink) => ({
      ...sink,
      lastError: scrubError(sink.lastError),
      details: Object.fromEntries(
        Object.entries(sink.details).map(([k, v]) => [k, typeof v === "string" ? scrub(v) : v]),
      ),
    }));
    const shipper: ShipperStatus = sinks[0] ?? IDLE;
    return {
      version: VERSION,
      nodeId: o.nodeId,
      pid: process.pid,
      startedAt: new Date(o.startedAt).toISOString(),
      memory: { rssMb: mb(mem.rss), heapUsedMb: mb(mem.heapUsed), externalMb: mb(mem.external) },
      connectivity: {
        state: o.connectivity.state,
        policy: o.config().connectivity.policy,
        history: o.connectivity.history().map((c) => ({ ...c, reason: scrub(c.reason) })),
      },
      config: { ...config, lastError: scrubError(config.lastError) },
      outbox: {
        depth: outbox.depth,
        oldestUnsentAgeMs: outbox.oldestEnqueuedAt === null ? null : Math.max(0, now - outbox.oldestEnqueuedAt),
        quarantined: o.store.quarantineCount(),
      },
      shipper: {
        delivered: shipper.delivered,
        quarantined: shipper.quarantined,
        lastDeliveryAt: shipper.lastDeliveryAt,
        lastError: shipper.lastError,
        retryAt: shipper.retryAt,
        unsaved: shipper.unsaved,
      },
      sinks,
      disk: o.space.status(),
      sources: o.supervisor.status().map((w) => ({
        ...w,
        lastError: scrubError(w.lastError),
        delivered: this.#deliveredBySource.get(w.sourceId) ?? 0,
        lagMs: w.lastPollAt ? Math.max(0, now - Date.parse(w.lastPollAt)) : null,
      })),
      throughput: o.metrics.perMinute(),
    };
  }
}
