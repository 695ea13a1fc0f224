import { isDeepStrictEqual } from "node:util";
import type { SourceConfig } from "../config/config-schema.ts";
import type { Notifier } from "../core/abort.ts";
import type { Clock } from "../core/clock.ts";
import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { spawnTask, type TaskHandle } from "../core/task.ts";
import type { DeviceStatus, Source, SourceProgress } from "../sources/source.ts";
import type { CursorValue, Store } from "../store/store.ts";

export const WORKER_STATES = ["starting", "running", "paused", "throttled", "backoff", "stopped"] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

export interface WorkerStatus {
  readonly sourceId: string;
  readonly kind: string;
  readonly state: WorkerState;
  readonly startedAt: string;
  readonly restarts: number;
  readonly lastPollAt: string | null;
  readonly lastPunchTime: string | null;
  readonly emitted: number;
  readonly duplicates: number;
  readonly quarantined: number;
  readonly lastError: { code: string; message: string; at: string } | null;
  readonly cursor: Record<string, CursorValue>;
  readonly device: DeviceStatus | null;
}

/**
 * Whether sources may read now. `paused`: the cloud is unreachable and the policy is pause. `throttled`: the
 * outbox holds more than its limit, so reading further ahead would only grow the backlog on disk.
 */
export interface ActivityGate {
  blockedBy(): "paused" | "throttled" | null;
  waitOpen(signal: AbortSignal): Promise<void>;
}

export interface SupervisorOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly gate: ActivityGate;
  readonly createSource: (config: SourceConfig) => Source;
  /** Woken after every committed emit, so the shipper need not poll the outbox. */
  readonly outboxChanged: Notifier;
}

interface Worker {
  readonly config: SourceConfig;
  readonly controller: AbortController;
  /** Settles when the worker's task has ended. */
  done: Promise<void>;
  readonly startedAt: number;
  state: WorkerState;
  restarts: number;
  lastPollAt: number | null;
  lastPunchTime: string | null;
  device: DeviceStatus | null;
  emitted: number;
  duplicates: number;
  quarantined: number;
  lastError: { code: string; message: string; at: string } | null;
}

export interface ApplyResult {
  readonly started: string[];
  readonly restarted: string[];
  readonly stopped: string[];
  readonly unchanged: string[];
}

/**
 * One worker per source. A worker that throws is restarted with backoff and jitter; it never disturbs another.
 * Applying a config restarts only the workers whose config changed; the rest keep running with cursors intact.
 */
export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #workers = new Map<string, Worker>();
  #stopped = false;

  constructor(options: SupervisorOptions) {
    this.#o = options;
  }

  async apply(sources: readonly SourceConfig[]): Promise<ApplyResult> {
    if (this.#stopped) return { started: [], restarted: [], stopped: [], unchanged: [] };
    const wanted = new Map(sources.filter((s) => s.enabled).map((s) => [s.id, s]));
    const result: ApplyResult = { started: [], restarted: [], stopped: [], unchanged: [] };
    const stopping: Promise<void>[] = [];
    for (const [id, worker] of this.#workers) {
      const next = wanted.get(id);
      if (next && isDeepStrictEqual(next, worker.config)) {
        result.unchanged.push(id);
        wanted.delete(id);
        continue;
      }
      (next ? result.restarted : result.stopped).push(id);
      // The old worker stays listed (as stopping, then stopped) until it has ended, so status never loses a source
      // mid-restart; a removed source leaves the list once it has stopped.
      stopping.push(
        this.#stop(worker).then(() => {
          if (!next && this.#workers.get(id) === worker) this.#workers.delete(id);
        }),
      );
    }
    await Promise.all(stopping);
    // A stop that arrived while old workers were ending wins: start nothing the stop would not see.
    if (this.#stopped) return result;
    for (const config of sources) {
      if (!wanted.has(config.id)) continue;
      if (!result.restarted.includes(config.id)) result.started.push(config.id);
      this.#start(config);
    }
    this.#o.logger.info("Sources applied.", { ...result });
    return result;
  }

  #start(config: SourceConfig): void {
    const { store, clock, gate, outboxChanged } = this.#o;
    const logger = this.#o.logger.child(`source:${config.id}`);
    const controller = new AbortController();
    const signal = controller.signal;
    const worker: Worker = {
      config,
      controller,
      startedAt: clock.now(),
      state: "starting",
      restarts: 0,
      lastPollAt: null,
      lastPunchTime: null,
      device: null,
      emitted: 0,
      duplicates: 0,
      quarantined: 0,
      lastError: null,
      done: Promise.resolve(),
    };
    const runOnce = async (taskSignal: AbortSignal) => {
      worker.state = "running";
      const source = this.#o.createSource(config);
      await source.run({
        sourceId: config.id,
        cursors: store.cursors(config.id),
        signal: taskSignal,
        logger,
        clock,
        emit: async (punches, cursor, quarantined = []) => {
          taskSignal.throwIfAborted();
          const result = store.emit(config.id, punches, cursor, quarantined);
          worker.emitted += result.enqueued;
          worker.duplicates += result.duplicates;
          worker.quarantined += result.quarantined;
          if (result.quarantined > 0)
            logger.warn("Rows quarantined.", { count: result.quarantined, reason: quarantined[0]?.reason });
          if (result.enqueued > 0) outboxChanged.notify();
          return result;
        },
        waitUntilActive: async () => {
          const blocked = gate.blockedBy();
          if (!blocked) return;
          worker.state = blocked;
          await gate.waitOpen(taskSignal);
          worker.state = "running";
        },
        progress: (update: SourceProgress) => {
          if (update.lastPollAt !== undefined) worker.lastPollAt = update.lastPollAt;
          if (update.lastPunchTime !== undefined) worker.lastPunchTime = update.lastPunchTime;
          if (update.device !== undefined) worker.device = update.device;
          if (update.lastPollAt !== undefined) worker.lastError = null;
        },
      });
    };
    const task: TaskHandle = spawnTask(`source:${config.id}`, runOnce, {
      logger,
      signal,
      restartInitialMs: 1000,
      restartMaxMs: 60_000,
      onError: (error) => {
        const d = describeError(error);
        worker.state = "backoff";
        worker.restarts++;
        worker.lastError = { code: d.code, message: d.message, at: new Date(clock.now()).toISOString() };
      },
    });
    worker.done = task.done;
    this.#workers.set(config.id, worker);
  }

  async #stop(worker: Worker): Promise<void> {
    worker.controller.abort(new DOMException("source stopping", "AbortError"));
    await worker.done;
    worker.state = "stopped";
  }

  /** Stops every worker; resolves when all have ended or after `boundMs`, whichever is first. */
  async stop(boundMs = 10_000): Promise<boolean> {
    this.#stopped = true;
    const all = [...this.#workers.values()];
    this.#workers.clear();
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), boundMs);
    });
    const done = Promise.all(all.map((w) => this.#stop(w))).then(() => true as const);
    const clean = await Promise.race([done, bounded]);
    clearTimeout(timer);
    return clean;
  }

  status(): WorkerStatus[] {
    const cursors = new Map<string, Record<string, CursorValue>>();
    for (const c of this.#o.store.allCursors()) {
      if (c.key.startsWith("#")) continue; // bookkeeping, not a device
      const entry = cursors.get(c.sourceId) ?? {};
      entry[c.key] = c.value;
      cursors.set(c.sourceId, entry);
    }
    return [...this.#workers.values()].map((w) => ({
      sourceId: w.config.id,
      kind: w.config.kind,
      // A running worker with the gate closed starts no new poll: report it paused at once, not at its next tick.
      state: w.state === "running" ? (this.#o.gate.blockedBy() ?? "running") : w.state,
      startedAt: new Date(w.startedAt).toISOString(),
      restarts: w.restarts,
      lastPollAt: w.lastPollAt ? new Date(w.lastPollAt).toISOString() : null,
      lastPunchTime: w.lastPunchTime,
      emitted: w.emitted,
      duplicates: w.duplicates,
      quarantined: w.quarantined,
      lastError: w.lastError,
      cursor: cursors.get(w.config.id) ?? {},
      device: w.device,
    }));
  }

  /** For tests and status: identity of the running worker, which changes only when it is restarted. */
  workerStartedAt(sourceId: string): number | undefined {
    return this.#workers.get(sourceId)?.startedAt;
  }
}
