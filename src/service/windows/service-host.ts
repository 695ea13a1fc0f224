import { describeError, EXIT_STORE_FULL } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { ScmPort, ServiceStatusReport } from "../../platform/windows/scm-port.ts";
import { ServiceStateMachine } from "./service-state.ts";

export interface RunningService {
  stop(): Promise<void>;
  /** Settles when the service ends by itself (a fatal error), with the exit code to report. */
  readonly ended: Promise<number>;
}

export interface ServiceHostOptions {
  readonly name: string;
  readonly scm: ScmPort;
  readonly logger: Logger;
  readonly start: () => Promise<RunningService>;
  readonly startWaitHintMs?: number;
  readonly stopWaitHintMs?: number;
  /** How often a pending state re-reports with a bigger checkpoint. */
  readonly checkpointEveryMs?: number;
  /**
   * The longest a start may take; past it the service reports STOPPED with {@link EXIT_START_DEADLINE}. Larger than
   * the start wait hint: the hint is the gap between checkpoints, this bounds the whole start.
   */
  readonly startDeadlineMs?: number;
  /** The longest a stop may take; past it the service reports STOPPED with {@link EXIT_STOP_DEADLINE}. */
  readonly stopDeadlineMs?: number;
}

/**
 * Service-specific exit codes of a start or stop that overran its deadline. Outside the sysexits range (64-78) and
 * apart from 1, 2 and 70, so that `sc query` and the monitor's log tell a hang in a pending state from a crash.
 */
export const EXIT_START_DEADLINE = 80;
export const EXIT_STOP_DEADLINE = 81;

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Runs the connector (or the monitor) under the SCM: START_PENDING with checkpoints while it starts, RUNNING, then
 * STOP_PENDING on stop/shutdown and STOPPED with the exit code. Resolves with the process exit code once the
 * dispatcher has returned.
 *
 * The checkpoint ticker runs on a timer, so on its own it would keep a start or stop that never settles pending for
 * ever: the SCM sees progress, the monitor sees a pending state. Each phase therefore races a deadline; the first
 * outcome reports STOPPED and the later one is ignored (a late-started service is stopped again).
 */
export async function hostWindowsService(options: ServiceHostOptions): Promise<number> {
  const { scm, logger } = options;
  const machine = new ServiceStateMachine({
    startWaitHintMs: options.startWaitHintMs ?? 60_000,
    stopWaitHintMs: options.stopWaitHintMs ?? 30_000,
  });
  let exitCode = 0;
  let service: RunningService | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let finished = false;
  const report = (r: ServiceStatusReport | null) => {
    if (r) scm.setStatus(r);
  };
  const tick = () => {
    clearInterval(ticker);
    ticker = setInterval(() => report(machine.progress()), options.checkpointEveryMs ?? 2_000);
  };
  const finish = (code: number) => {
    // The first outcome wins: a start or stop that settles after its deadline must not report again.
    if (finished) return;
    finished = true;
    clearInterval(ticker);
    clearTimeout(deadline);
    exitCode = code;
    // The last status call: after STOPPED the SCM may end the process at any moment.
    report(machine.stopped(code));
  };
  const race = (phase: "starting" | "stopping", ms: number, code: number) => {
    clearTimeout(deadline);
    deadline = setTimeout(() => {
      logger.error(
        `The service did not finish ${phase} within ${seconds(ms)}; reporting it stopped (service-specific exit code ${code}) so that the SCM's recovery actions and the monitor take over.`,
        { service: options.name, phase, deadlineMs: ms },
      );
      finish(code);
    }, ms);
  };
  const stop = async () => {
    tick();
    race("stopping", options.stopDeadlineMs ?? 45_000, EXIT_STOP_DEADLINE);
    try {
      await service?.stop();
      finish(0);
    } catch (error) {
      if (!finished) logger.error("The service did not stop cleanly.", { error });
      finish(1);
    }
  };

  const main = () => {
    report(machine.starting());
    tick();
    race("starting", options.startDeadlineMs ?? 120_000, EXIT_START_DEADLINE);
    options
      .start()
      .then((running) => {
        if (finished) {
          // STOPPED is already reported and the process is on its way out: a service left running would be
          // invisible to the SCM.
          logger.warn("The service finished starting after its deadline; stopping it again.", {
            service: options.name,
          });
          return running.stop().catch((error: unknown) => {
            logger.error("The late-started service did not stop cleanly.", { error: describeError(error) });
          });
        }
        clearTimeout(deadline);
        service = running;
        const { reports, stopNow } = machine.running();
        clearInterval(ticker);
        for (const r of reports) report(r);
        logger.info("Windows service running.", { service: options.name });
        running.ended.then(
          (code) => {
            if (!machine.stopRequested) {
              logger.error("The service ended on its own; the SCM's recovery actions take over.", { code });
              finish(code === 0 ? 1 : code);
            }
          },
          () => undefined,
        );
        if (stopNow) return stop();
        return undefined;
      })
      .catch((error: unknown) => {
        const d = describeError(error);
        if (finished) {
          logger.warn("The service failed to start after its deadline.", { error: d });
          return;
        }
        logger.error("The service failed to start.", { error: d });
        // A full data disk passes by itself: the monitor reads this code and keeps restarting without giving up.
        finish(d.code === "STORE_FULL" ? EXIT_STORE_FULL : 2);
      });
  };

  const control = (code: number) => {
    const outcome = machine.control(code);
    report(outcome.report);
    if (outcome.action === "stop") {
      logger.info("Stop requested by the Service Control Manager.", { control: code });
      void stop();
    }
    return outcome.result;
  };

  await scm.dispatch(options.name, { main, control });
  clearInterval(ticker);
  clearTimeout(deadline);
  return exitCode;
}
