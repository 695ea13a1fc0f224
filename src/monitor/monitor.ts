import { sleep } from "../core/abort.ts";
import type { Clock } from "../core/clock.ts";
import { BioError, describeError, EXIT_STORE_FULL } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { EVENT_IDS, type EventLog } from "../platform/event-log.ts";
import { type HealthLocator, probeHealth } from "../status/health-channel.ts";
import {
  type MonitorAction,
  type MonitorRecord,
  type MonitorState,
  readIntent,
  readMonitorRecord,
  writeMonitorRecord,
} from "./monitor-state.ts";
import { RestartPolicy, type RestartPolicyOptions } from "./restart-policy.ts";
import type { ServiceController } from "./service-controller.ts";

/**
 * How the service managers report the connector's EX_TEMPFAIL: "exit code 75" (a process), "exit-code (status 75)"
 * (systemd), "service exit code 75" (the Windows SCM).
 */
const TEMPORARY_EXIT = new RegExp(`(?:exit code|status) ${EXIT_STORE_FULL}\\)?$`);

export interface MonitorOptions {
  readonly dataDir: string;
  /** Where the connector's health channel is, checked to be served by the connector itself. */
  readonly health: HealthLocator;
  readonly controller: ServiceController;
  readonly logger: Logger;
  readonly eventLog: EventLog;
  readonly clock: Clock;
  readonly policy: RestartPolicyOptions;
  /** Between checks. */
  readonly intervalMs: number;
  /** One health request; a frozen connector never answers. */
  readonly probeTimeoutMs: number;
  /** Consecutive failed checks (no answer, or no progress) before the connector counts as hung or stalled. */
  readonly strikes: number;
  /** After a start, failed probes are not held against the connector for this long (store, config, sources). */
  readonly startGraceMs: number;
  /**
   * Longer than this seen "starting" or "stopping" without a break, each check is a strike as for a hang. Above the
   * Windows host's own deadlines (120 s start, 45 s stop): this catches a connector too stuck to keep them.
   */
  readonly pendingDeadlineMs?: number;
}

export const DEFAULT_PENDING_DEADLINE_MS = 150_000;

/**
 * The companion watchdog. The service manager restarts a connector that exits; the monitor also sees one that hangs
 * (the health channel does not answer) or stalls (it answers but no work moves), restarts it with backoff, stops
 * trying after a crash loop, and never restarts a connector that an administrator stopped. Everything it does is
 * written to `monitor.json` (shown by `bioapi status`) and logged.
 */
export class Monitor {
  readonly #o: MonitorOptions;
  readonly #policy: RestartPolicy;
  #state: MonitorState = "starting";
  #message = "starting";
  #startedAt: number | null = null;
  #strikes = 0;
  #restartsTotal = 0;
  #lastHealthyAt: number | null = null;
  #lastProbe: MonitorRecord["lastProbe"] = null;
  #pid: number | null = null;
  #actions: MonitorAction[] = [];
  #gaveUpAt: number | null = null;
  #startedOnce = false;
  /** The pending state the connector is in and since when the monitor has seen it there without a break. */
  #pending: { readonly state: "starting" | "stopping"; readonly since: number } | null = null;

  private constructor(options: MonitorOptions, previous: MonitorRecord | undefined) {
    this.#o = options;
    // A monitor restart must not forget a crash loop in progress.
    this.#policy = new RestartPolicy(options.policy, options.clock, previous?.history);
    this.#restartsTotal = previous?.restartsTotal ?? 0;
    this.#actions = [...(previous?.actions ?? [])];
    if (previous?.state === "gave-up") {
      this.#state = "gave-up";
      this.#message = previous.message;
      this.#gaveUpAt = Date.parse(previous.updatedAt);
    }
  }

  static async create(options: MonitorOptions): Promise<Monitor> {
    return new Monitor(options, await readMonitorRecord(options.dataDir));
  }

  get state(): MonitorState {
    return this.#state;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { logger } = this.#o;
    logger.info("Monitor started.", { manager: this.#o.controller.kind });
    while (!signal.aborted) {
      try {
        await this.#tick(signal);
      } catch (error) {
        if (signal.aborted) break;
        logger.warn("Monitor check failed; trying again.", { error: describeError(error) });
      }
      await this.#save();
      await sleep(this.#o.intervalMs, signal).catch(() => undefined);
    }
    this.#set("stopped", "the monitor stopped");
    await this.#save();
  }

  #set(state: MonitorState, message: string): void {
    this.#state = state;
    this.#message = message;
  }

  #act(action: MonitorAction["action"], reason: string): void {
    this.#actions.push({ at: new Date(this.#o.clock.now()).toISOString(), action, reason });
    if (this.#actions.length > 20) this.#actions.shift();
  }

  async #tick(signal: AbortSignal): Promise<void> {
    const { controller, logger } = this.#o;
    const intent = await readIntent(this.#o.dataDir);
    if (intent?.desired === "stopped" || this.#state === "gave-up") {
      // Not watched: a pending state seen before does not run on through this pause.
      this.#pending = null;
    }
    if (intent?.desired === "stopped") {
      if (this.#state !== "stopped-by-admin") {
        logger.info("The connector was stopped by an administrator; leaving it stopped.", { by: intent.by });
        this.#act("left-stopped", `service stop at ${intent.at}`);
      }
      this.#set("stopped-by-admin", `stopped by an administrator at ${intent.at}; start it with: bioapi service start`);
      return;
    }
    if (this.#state === "gave-up") {
      // Only an administrator's start (a newer intent) re-arms the monitor after a crash loop.
      if (!intent || !this.#gaveUpAt || Date.parse(intent.at) <= this.#gaveUpAt) return;
      this.#policy.reset();
      this.#gaveUpAt = null;
      this.#set("supervising", "re-armed by an administrator's start");
    }

    const snap = await controller.query(signal);
    this.#pid = snap.pid;
    if (snap.state === "starting" || snap.state === "stopping") {
      await this.#whilePending(signal, snap.state);
      return;
    }
    this.#pending = null;
    if (snap.state === "stopped") {
      if (!this.#startedOnce && controller.kind === "process") {
        this.#startedOnce = true;
        await this.#start(signal, "initial start");
        return;
      }
      if (snap.stoppedCleanly) {
        if (this.#state !== "stopped-by-admin") {
          logger.info("The connector stopped cleanly (an orderly stop); leaving it stopped.");
          this.#act("left-stopped", "orderly stop (exit 0)");
        }
        this.#set("stopped-by-admin", "the connector stopped in an orderly way; start it with: bioapi service start");
        return;
      }
      const temporary = snap.exit !== null && TEMPORARY_EXIT.test(snap.exit);
      await this.#failure(
        signal,
        temporary
          ? `the connector could not start: the data disk is full (STORE_FULL, ${snap.exit})`
          : `the connector exited (${snap.exit ?? "unknown reason"})`,
        false,
        temporary,
      );
      return;
    }

    // Running.
    this.#startedOnce = true;
    if (this.#state === "stopped-by-admin" || this.#state === "starting") this.#set("supervising", "watching");
    const now = this.#o.clock.now();
    const inGrace = this.#startedAt !== null && now - this.#startedAt < this.#o.startGraceMs;
    let problem: string | null = null;
    try {
      const target = await this.#o.health.locate(snap.pid);
      if ("problem" in target) throw new BioError("SERVICE", target.problem);
      const report = await probeHealth(target.path, this.#o.probeTimeoutMs, signal);
      // A second line of defence for the window between the server check and the request (two connections).
      if (target.pid !== undefined && report.pid !== target.pid) {
        throw new BioError(
          "SERVICE",
          `the health channel answered for process ${report.pid}, not the connector (pid ${target.pid})`,
        );
      }
      this.#lastProbe = { responsive: true, progressing: report.progress.progressing, reason: report.progress.reason };
      if (!report.progress.progressing) problem = `stalled: ${report.progress.reason}`;
    } catch (error) {
      this.#lastProbe = { responsive: false, progressing: false, reason: describeError(error).message };
      problem = `unresponsive: ${describeError(error).message}`;
    }
    if (!problem) {
      this.#strikes = 0;
      this.#lastHealthyAt = now;
      this.#policy.onHealthy();
      this.#set("supervising", "the connector is responsive and making progress");
      return;
    }
    if (inGrace) return;
    this.#strikes++;
    logger.warn("Connector check failed.", { problem, strike: this.#strikes, of: this.#o.strikes });
    if (this.#strikes >= this.#o.strikes) await this.#failure(signal, `${problem} (${this.#strikes} checks)`, true);
  }

  /**
   * A start or stop takes a while, and a pending service cannot be probed; but one that stays pending is as stuck as
   * a hung one, and a checkpoint that keeps advancing (the SCM's notion of progress) does not prove otherwise.
   */
  async #whilePending(signal: AbortSignal, state: "starting" | "stopping"): Promise<void> {
    const now = this.#o.clock.now();
    if (this.#pending?.state !== state) this.#pending = { state, since: now };
    const forMs = now - this.#pending.since;
    if (forMs <= (this.#o.pendingDeadlineMs ?? DEFAULT_PENDING_DEADLINE_MS)) {
      this.#strikes = 0;
      return;
    }
    const problem = `stuck in ${state === "starting" ? "start" : "stop"}-pending for ${Math.round(forMs / 1000)} s`;
    this.#strikes++;
    this.#o.logger.warn("Connector check failed.", { problem, strike: this.#strikes, of: this.#o.strikes });
    this.#set("supervising", `${problem} (strike ${this.#strikes} of ${this.#o.strikes})`);
    if (this.#strikes >= this.#o.strikes) await this.#failure(signal, `${problem} (${this.#strikes} checks)`, true);
  }

  async #failure(signal: AbortSignal, reason: string, running: boolean, temporary = false): Promise<void> {
    const { controller, logger, eventLog } = this.#o;
    this.#strikes = 0;
    // Whatever state the connector comes back in, its time there is counted afresh.
    this.#pending = null;
    const decision = temporary ? this.#policy.onTemporaryFailure() : this.#policy.onFailure();
    if (decision.action === "give-up") {
      if (running) await controller.kill(signal).catch(() => undefined);
      const minutes = Math.round(decision.windowMs / 60_000);
      const message = `gave up after ${decision.restarts} restarts in ${minutes} min; last failure: ${reason}. Fix the cause (see the connector's log), then run: bioapi service start`;
      this.#gaveUpAt = this.#o.clock.now();
      this.#set("gave-up", message);
      this.#act("give-up", reason);
      logger.error(`Monitor gave up restarting the connector: ${message}`, {
        lastOutput: controller.lastOutput().at(-1),
      });
      await eventLog.write("error", `Cams Bio API monitor: ${message}`, EVENT_IDS.monitorGaveUp);
      return;
    }
    this.#set("restarting", `restarting in ${Math.round(decision.delayMs / 100) / 10} s: ${reason}`);
    await this.#save();
    logger.warn("Restarting the connector.", { reason, delayMs: decision.delayMs, attempt: decision.attempt });
    if (running) {
      this.#act("kill", reason);
      await controller.kill(signal);
    }
    await sleep(decision.delayMs, signal);
    this.#restartsTotal++;
    this.#act("restart", reason);
    await eventLog.write(
      "warning",
      `Cams Bio API monitor restarted the connector: ${reason}`,
      EVENT_IDS.monitorRestart,
    );
    await this.#start(signal, reason);
  }

  async #start(signal: AbortSignal, reason: string): Promise<void> {
    if (reason === "initial start") this.#act("start", reason);
    await this.#o.controller.start(signal);
    this.#startedAt = this.#o.clock.now();
    this.#pid = (await this.#o.controller.query(signal)).pid;
    this.#set("supervising", `started (${reason}); waiting for the first health answer`);
  }

  async #save(): Promise<void> {
    const record: MonitorRecord = {
      state: this.#state,
      message: this.#message,
      updatedAt: new Date(this.#o.clock.now()).toISOString(),
      monitorPid: process.pid,
      manager: this.#o.controller.kind,
      connectorPid: this.#pid,
      lastHealthyAt: this.#lastHealthyAt ? new Date(this.#lastHealthyAt).toISOString() : null,
      lastProbe: this.#lastProbe,
      restartsTotal: this.#restartsTotal,
      history: this.#policy.history,
      actions: this.#actions,
      lastConnectorOutput: this.#o.controller.lastOutput(),
    };
    await writeMonitorRecord(this.#o.dataDir, record).catch((error: unknown) =>
      this.#o.logger.warn("Could not write monitor.json.", { error: describeError(error) }),
    );
  }
}
