import { isDeepStrictEqual } from "node:util";
import type { SourceConfig } from "../config/config-schema.ts";
import type { Clock } from "../core/clock.ts";
import { formatDuration } from "../core/duration.ts";
import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Notifier } from "../core/notifier.ts";
import { spawnTask, type TaskHandle } from "../core/task.ts";
import type { Backlog, DeviceStatus, LateRows, Source, SourceProgress } from "../sources/source.ts";
import { backlogUnit } from "../sources/source-kinds.ts";
import type { CursorValue, Store } from "../store/store.ts";

export { formatDuration } from "../core/duration.ts";

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
  /** A catch-up in progress (first read of a large log or table), or null. */
  readonly backlog: BacklogStatus | null;
  /** Database id cursors: ids missing below the cursor, looked for or given up; null for other sources. */
  readonly lateRows: LateRows | null;
}

export interface BacklogStatus extends Backlog {
  /** Over the last minute of progress; null until two reports a second apart exist. */
  readonly ratePerSec: number | null;
  readonly etaSeconds: number | null;
}

/** Progress reports of one catch-up, thinned to one per second, over the last minute: the rate is recent. */
class BacklogTracker {
  readonly #samples: Array<{ at: number; done: number }> = [];
  current: Backlog;
  readonly startedAt: number;
  lastLoggedAt: number;

  constructor(backlog: Backlog, now: number) {
    this.current = backlog;
    this.startedAt = now;
    this.lastLoggedAt = now;
    this.#samples.push({ at: now, done: backlog.done });
  }

  update(backlog: Backlog, now: number): void {
    // A smaller done means a new catch-up (log re-read from the start): the old samples say nothing about it.
    if (backlog.done < this.current.done) this.#samples.length = 0;
    this.current = backlog;
    const last = this.#samples.at(-1);
    if (!last || now - last.at >= 1000) this.#samples.push({ at: now, done: backlog.done });
    else this.#samples[this.#samples.length - 1] = { at: last.at, done: backlog.done };
    while (this.#samples.length > 2 && now - (this.#samples[0]?.at ?? now) > 60_000) this.#samples.shift();
  }

  status(now: number): BacklogStatus {
    const first = this.#samples[0];
    const span = first ? now - first.at : 0;
    const rate = first && span >= 1000 ? ((this.current.done - first.done) * 1000) / span : null;
    const remaining = Math.max(0, this.current.total - this.current.done);
    return {
      ...this.current,
      ratePerSec: rate === null ? null : Math.round(rate * 10) / 10,
      etaSeconds: rate && rate > 0 ? Math.ceil(remaining / rate) : null,
    };
  }
}

/**
 * Whether sources may read now. `paused`: the cloud is unreachable and the policy is pause. `throttled`: the
 * outbox holds more than its limit, so reading further ahead would only grow the backlog on disk.
 */
export interface ActivityGate {
  blockedBy(): "paused" | "throttled" | null;
  waitOpen(signal: AbortSignal): Promise<void>;
}

/** What the supervisor counts as its workers run; status/'s ConnectorMetrics implements it. */
export interface WorkerMetrics {
  read(sourceId: string, n: number): void;
  emitted(sourceId: string, enqueued: number, duplicates: number, quarantined: number): void;
  pollDuration(sourceId: string, seconds: number): void;
  error(sourceId: string, code: string): void;
}

export interface SupervisorOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly gate: ActivityGate;
  readonly createSource: (config: SourceConfig) => Source;
  /** Woken after every committed emit, so the shipper need not poll the outbox. */
  readonly outboxChanged: Notifier;
  readonly metrics?: WorkerMetrics;
}

/** A catch-up is logged in the foreground this often, so a long first read shows it is moving. */
const PROGRESS_LOG_EVERY_MS = 15_000;

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
  backlog: BacklogTracker | null;
  lateRows: LateRows | null;
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
      backlog: null,
      lateRows: null,
      done: Promise.resolve(),
    };
    const metrics = this.#o.metrics;
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
          metrics?.read(config.id, punches.length + quarantined.length);
          metrics?.emitted(config.id, result.enqueued, result.duplicates, result.quarantined);
          worker.emitted += result.enqueued;
          worker.duplicates += result.duplicates;
          worker.quarantined += result.quarantined;
          if (result.quarantined > 0)
            logger.warn("Rows quarantined.", { count: result.quarantined, reasons: result.quarantinedKinds });
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
          if (update.lastPollAt !== undefined) {
            worker.lastPollAt = update.lastPollAt;
            metrics?.pollDuration(config.id, (clock.now() - update.lastPollAt) / 1000);
          }
          if (update.backlog !== undefined) this.#backlog(worker, update.backlog, logger);
          if (update.lastPunchTime !== undefined) worker.lastPunchTime = update.lastPunchTime;
          if (update.device !== undefined) worker.device = update.device;
          if (update.lateRows !== undefined) worker.lateRows = update.lateRows;
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
        // A full disk is the connector's state, not this source's fault: it waits at the gate like a paused one.
        worker.state = d.code === "STORE_FULL" ? "paused" : "backoff";
        worker.restarts++;
        worker.lastError = { code: d.code, message: d.message, at: new Date(clock.now()).toISOString() };
        metrics?.error(config.id, d.code);
      },
    });
    worker.done = task.done;
    this.#workers.set(config.id, worker);
  }

  #backlog(worker: Worker, backlog: Backlog | null, logger: Logger): void {
    const now = this.#o.clock.now();
    const unit = backlogUnit(worker.config.kind);
    if (backlog === null || backlog.done >= backlog.total) {
      const ended = worker.backlog;
      worker.backlog = null;
      if (ended && now - ended.startedAt >= PROGRESS_LOG_EVERY_MS)
        logger.info(`Caught up after ${Math.round((now - ended.startedAt) / 1000)} s.`, {
          [unit]: ended.current.total,
        });
      return;
    }
    if (!worker.backlog) worker.backlog = new BacklogTracker(backlog, now);
    else worker.backlog.update(backlog, now);
    const tracker = worker.backlog;
    if (now - tracker.lastLoggedAt < PROGRESS_LOG_EVERY_MS) return;
    tracker.lastLoggedAt = now;
    logger.info(`Catching up: ${formatProgress(tracker.status(now), unit)}.`, {
      done: backlog.done,
      total: backlog.total,
    });
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
      backlog: w.backlog ? w.backlog.status(this.#o.clock.now()) : null,
      lateRows: w.lateRows,
    }));
  }

  /** For tests and status: identity of the running worker, which changes only when it is restarted. */
  workerStartedAt(sourceId: string): number | undefined {
    return this.#workers.get(sourceId)?.startedAt;
  }
}

/** "12,000 of 100,000 records, 2,400/s, about 37 s left": for the log, `bioapi status` and the page. */
export function formatProgress(b: BacklogStatus, unit: string): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const pct = b.total > 0 ? ` (${Math.floor((b.done * 100) / b.total)}%)` : "";
  const rate = b.ratePerSec === null ? "" : `, ${n(Math.round(b.ratePerSec))}/s`;
  const eta = b.etaSeconds === null ? "" : `, about ${formatDuration(b.etaSeconds * 1000)} left`;
  return `${n(b.done)} of ${n(b.total)} ${unit}${pct}${rate}${eta}`;
}
