import type { ShipperConfig } from "../config/config-schema.ts";
import { configuredSinks } from "../config/config-schema.ts";
import type { LiveConfig } from "../config/live-config.ts";
import type { SinkConfig } from "../config/sink-schema.ts";
import type { Clock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Notifier } from "../core/notifier.ts";
import { type Part, within } from "../core/part.ts";
import { spawnTask, type TaskHandle } from "../core/task.ts";
import type { Connectivity } from "../link/connectivity.ts";
import type { Sink, SinkDetails, SinkMemory } from "../sinks/sink.ts";
import { DELIVERED_RETENTION_MS } from "../store/delivered-retention.ts";
import type { DiskSpace } from "../store/disk-space.ts";
import type { SinkLane } from "../store/sink-lanes.ts";
import type { Store } from "../store/store.ts";
import { ALWAYS_REACHABLE, Shipper, type ShipperStatus } from "./shipper.ts";

/** One sink as status, the page and the heartbeat show it. */
export interface SinkStatus extends ShipperStatus {
  readonly id: string;
  readonly kind: SinkConfig["kind"];
  /** Punches this sink has still to settle. */
  readonly backlog: number;
  readonly details: SinkDetails;
}

/** What one sink settled in one answer, per source id. */
export interface Settled {
  readonly sinkId: string;
  /** The config's first sink (the Cams cloud when it names none): what the sources' `delivered` counts. */
  readonly first: boolean;
  readonly delivered: ReadonlyMap<string, number>;
  readonly rejected: ReadonlyMap<string, number>;
}

export interface DeliveriesOptions {
  readonly store: Pick<Store, "lanes">;
  readonly space: Pick<DiskSpace, "isFull" | "waitRoom">;
  readonly live: LiveConfig;
  /** The Cams cloud's link: only the cams-cloud sink waits for it and reports to it. */
  readonly connectivity: Connectivity;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly wake: Notifier;
  readonly createSink: (config: SinkConfig, memory: SinkMemory) => Sink;
  readonly oneBatchAtATime: (config: SinkConfig) => boolean;
  readonly onSettled?: (settled: Settled) => void;
  readonly backoffInitialMs?: number;
}

interface Running {
  readonly config: SinkConfig;
  /** The config as text: a new version that changes it restarts this sink alone. */
  readonly key: string;
  readonly sink: Sink;
  readonly shipper: Shipper;
  readonly lane: SinkLane;
  readonly controller: AbortController;
  readonly tasks: TaskHandle[];
}

/**
 * One shipper per sink, following the live config: a sink added starts alone, a sink removed stops alone, a sink
 * whose settings changed restarts alone; the others keep delivering. Nothing is delivered until a config (cached or
 * fetched) has said which sinks there are, because a sink added later does not get the backlog from before it.
 */
export class Deliveries implements Part {
  readonly name = "deliveries";
  readonly #o: DeliveriesOptions;
  readonly #running = new Map<string, Running>();
  #applying: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | undefined;
  #stopped = false;
  #parent: AbortSignal | undefined;
  #first: string | undefined;

  constructor(options: DeliveriesOptions) {
    this.#o = options;
  }

  start(signal: AbortSignal): void {
    this.#parent = signal;
    this.#unsubscribe = this.#o.live.subscribe((config) => this.#apply(configuredSinks(config)));
    if (this.#o.live.received) this.#apply(configuredSinks(this.#o.live.current));
  }

  status(): SinkStatus[] {
    return [...this.#running.values()].map((r) => ({
      id: r.config.id,
      kind: r.config.kind,
      backlog: r.lane.backlog(),
      ...r.shipper.status(),
      details: r.sink.details?.() ?? {},
    }));
  }

  #apply(sinks: readonly SinkConfig[]): void {
    this.#applying = this.#applying
      .then(() => this.#sync(sinks))
      .catch((error: unknown) => this.#o.logger.error("Applying the sinks of the config failed.", { error }));
  }

  async #sync(sinks: readonly SinkConfig[]): Promise<void> {
    if (this.#stopped) return;
    const { store, logger } = this.#o;
    this.#first = sinks[0]?.id;
    const change = store.lanes.sync(
      sinks.map((s) => ({
        id: s.id,
        kind: s.kind,
        ...(s.backfillFrom === undefined ? {} : { backfillFrom: Date.parse(s.backfillFrom) }),
      })),
    );
    const wanted = new Map(sinks.map((s) => [s.id, s]));
    for (const [id, running] of this.#running) {
      const next = wanted.get(id);
      if (next && JSON.stringify(next) === running.key) continue;
      await this.#stopOne(running, this.#o.clock.now() + 10_000);
      this.#running.delete(id);
    }
    for (const id of change.removed) {
      logger.info(`Sink ${id} removed from the config; its delivery state is gone.`, {
        sink: id,
        released: change.released,
      });
    }
    if (change.released > 0)
      logger.warn(
        `${change.released} punches only removed sinks still wanted left the outbox undelivered; they are kept ${DELIVERED_RETENTION_MS / 86_400_000} days, and a sink added with backfillFrom gets them.`,
        { released: change.released },
      );
    for (const config of sinks) {
      if (this.#running.has(config.id)) continue;
      if (change.added.includes(config.id))
        logger.info(
          config.backfillFrom === undefined
            ? `Sink ${config.id} (${config.kind}) added: it delivers the punches collected from now on.`
            : `Sink ${config.id} (${config.kind}) added: it delivers from ${config.backfillFrom} on (${change.backfilled} punches back from the delivered journal).`,
          { sink: config.id },
        );
      this.#startOne(config);
    }
  }

  #startOne(config: SinkConfig): void {
    const { store, live, logger, clock } = this.#o;
    const lane = store.lanes.lane(config.id);
    const memory: SinkMemory = { get: (key) => lane.memoryGet(key), put: (key, value) => lane.memoryPut(key, value) };
    const sink = this.#make(config, memory);
    const cloud = config.kind === "cams-cloud";
    const oneAtATime = this.#o.oneBatchAtATime(config);
    const sinkLogger = logger.child(cloud ? "shipper" : `sink:${config.id}`);
    const shipperConfig = (): ShipperConfig => {
      const base = live.current.shipper;
      return {
        ...base,
        batchSize: config.batchSize ?? base.batchSize,
        maxInFlight: oneAtATime ? 1 : (config.maxInFlight ?? base.maxInFlight),
        requestTimeoutMs: config.requestTimeoutMs ?? base.requestTimeoutMs,
        maxBackoffMs: config.maxBackoffMs ?? base.maxBackoffMs,
      };
    };
    const shipper = new Shipper({
      store: lane,
      space: this.#o.space,
      sink,
      connectivity: cloud ? this.#o.connectivity : ALWAYS_REACHABLE,
      ...(cloud ? {} : { target: { words: `sink ${config.id}`, busyCode: "SINK_BUSY", retryCode: "SINK_RETRY" } }),
      clock,
      logger: sinkLogger,
      config: shipperConfig,
      wake: this.#o.wake,
      ...(this.#o.backoffInitialMs === undefined ? {} : { backoffInitialMs: this.#o.backoffInitialMs }),
      onSettled: (delivered, rejected) =>
        this.#o.onSettled?.({ sinkId: config.id, first: this.#first === config.id, delivered, rejected }),
    });
    const controller = new AbortController();
    const signal = this.#parent ? AbortSignal.any([this.#parent, controller.signal]) : controller.signal;
    const tasks = [spawnTask(`deliver:${config.id}`, (s) => shipper.run(s), { logger: sinkLogger, signal })];
    const run = sink.run?.bind(sink);
    if (run) tasks.push(spawnTask(`sink:${config.id}`, run, { logger: sinkLogger, signal }));
    this.#running.set(config.id, { config, key: JSON.stringify(config), sink, shipper, lane, controller, tasks });
  }

  /**
   * A sink that cannot be made (a setting only its kind can judge, a kind this build lacks) must not stop the others:
   * it stands in as a sink whose every attempt fails with that cause, so its punches wait and the page says why.
   */
  #make(config: SinkConfig, memory: SinkMemory): Sink {
    try {
      return this.#o.createSink(config, memory);
    } catch (cause) {
      const error =
        cause instanceof BioError
          ? cause
          : new BioError(
              "CONFIG_INVALID",
              `Sink ${config.id} (${config.kind}) cannot start: ${(cause as Error).message}`,
              {
                cause,
                hint: "Fix the sink in the config; its punches wait in the outbox meanwhile.",
              },
            );
      this.#o.logger.error(`Sink ${config.id} cannot start; its punches wait in the outbox.`, { error });
      return { name: config.kind, send: async () => ({ kind: "failed", error, lostConnectivity: false }) };
    }
  }

  async #stopOne(running: Running, deadline: number): Promise<boolean> {
    running.controller.abort(new DOMException(`sink ${running.config.id} stopping`, "AbortError"));
    const ended = await within(Promise.all(running.tasks.map((t) => t.done)), deadline, this.#o.clock);
    try {
      await within(running.sink.close?.() ?? Promise.resolve(), deadline, this.#o.clock);
    } catch (error) {
      this.#o.logger.warn(`Sink ${running.config.id} did not close cleanly.`, { error });
    }
    return ended;
  }

  abort(): void {
    for (const running of this.#running.values())
      running.controller.abort(new DOMException("connector stopping", "AbortError"));
  }

  async stop(deadline: number): Promise<boolean> {
    this.#stopped = true;
    this.#unsubscribe?.();
    await within(this.#applying, deadline, this.#o.clock);
    const results = await Promise.all([...this.#running.values()].map((r) => this.#stopOne(r, deadline)));
    this.#running.clear();
    return results.every(Boolean);
  }
}
