import { describeError, EXIT_STORE_FULL } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { ServiceStateMachine, type ServiceStatusReport } from "./service-state.ts";

/**
 * The Service Control Manager as seen from the service process. The koffi backend calls advapi32; tests use a fake
 * that plays the SCM's part (ServiceMain, then control codes) and records every reported status.
 */
export interface ScmPort {
  /**
   * StartServiceCtrlDispatcher: blocks (off the JS thread) until the service reports STOPPED. Calls `main` when the
   * SCM starts the service and `control` for each control code; `control` returns the HandlerEx result.
   */
  dispatch(name: string, handlers: { main(): void; control(code: number): number }): Promise<void>;
  setStatus(report: ServiceStatusReport): void;
}

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
}

/**
 * Runs the connector (or the monitor) under the SCM: START_PENDING with checkpoints while it starts, RUNNING, then
 * STOP_PENDING on stop/shutdown and STOPPED with the exit code. Resolves with the process exit code once the
 * dispatcher has returned.
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
  const report = (r: ServiceStatusReport | null) => {
    if (r) scm.setStatus(r);
  };
  const tick = () => {
    clearInterval(ticker);
    ticker = setInterval(() => report(machine.progress()), options.checkpointEveryMs ?? 2_000);
  };
  const finish = (code: number) => {
    clearInterval(ticker);
    exitCode = code;
    // The last status call: after STOPPED the SCM may end the process at any moment.
    report(machine.stopped(code));
  };
  const stop = async () => {
    tick();
    try {
      await service?.stop();
      finish(0);
    } catch (error) {
      logger.error("The service did not stop cleanly.", { error });
      finish(1);
    }
  };

  const main = () => {
    report(machine.starting());
    tick();
    options
      .start()
      .then((running) => {
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
  return exitCode;
}
