/**
 * The Windows service status protocol as a pure state machine: what to report to the SCM (SetServiceStatus) as the
 * connector starts, runs and stops, and what a control code means. The koffi host only moves these reports across
 * the FFI boundary, so all the rules are tested on Linux.
 */

import type { ServiceStatusReport } from "../../platform/windows/scm-port.ts";

export const SERVICE_STATE = { STOPPED: 1, START_PENDING: 2, STOP_PENDING: 3, RUNNING: 4 } as const;
export const SERVICE_CONTROL = { STOP: 1, INTERROGATE: 4, SHUTDOWN: 5, PRESHUTDOWN: 0x0f } as const;
export const SERVICE_ACCEPT = { STOP: 0x1, SHUTDOWN: 0x4, PRESHUTDOWN: 0x100 } as const;
export const SERVICE_WIN32_OWN_PROCESS = 0x10;
export const NO_ERROR = 0;
export const ERROR_CALL_NOT_IMPLEMENTED = 120;
/** With this Win32 code the SCM reads the service's own exit code from dwServiceSpecificExitCode. */
export const ERROR_SERVICE_SPECIFIC_ERROR = 1066;

export type ControlOutcome =
  /** Begin a graceful stop now; report the returned STOP_PENDING first. */
  | { readonly action: "stop"; readonly report: ServiceStatusReport; readonly result: number }
  /** Only re-report the current status (INTERROGATE, or a repeated stop). */
  | { readonly action: "report"; readonly report: ServiceStatusReport; readonly result: number }
  /** Remember the stop and act on it once running (a stop that arrives mid-start). */
  | { readonly action: "deferred"; readonly report: ServiceStatusReport; readonly result: number };

export interface ServiceStateOptions {
  /** How long the SCM should wait between checkpoints while starting (opening the store, decrypting the config). */
  readonly startWaitHintMs: number;
  /** The graceful stop bound plus a margin; past it the SCM may consider the service hung. */
  readonly stopWaitHintMs: number;
}

export class ServiceStateMachine {
  readonly #o: ServiceStateOptions;
  #state: number = SERVICE_STATE.STOPPED;
  #checkPoint = 0;
  #stopRequested = false;
  #exit = { win32: NO_ERROR, specific: 0 };

  constructor(options: ServiceStateOptions) {
    this.#o = options;
  }

  get state(): number {
    return this.#state;
  }

  get stopRequested(): boolean {
    return this.#stopRequested;
  }

  #report(waitHintMs = 0): ServiceStatusReport {
    const accepting = this.#state === SERVICE_STATE.RUNNING;
    return {
      serviceType: SERVICE_WIN32_OWN_PROCESS,
      currentState: this.#state,
      // A pending state accepts no controls: the SCM queues them, and a stop mid-start is handled by `running()`.
      controlsAccepted: accepting ? SERVICE_ACCEPT.STOP | SERVICE_ACCEPT.SHUTDOWN | SERVICE_ACCEPT.PRESHUTDOWN : 0,
      win32ExitCode: this.#exit.win32,
      serviceSpecificExitCode: this.#exit.specific,
      checkPoint: this.#checkPoint,
      waitHintMs,
    };
  }

  /** ServiceMain was called: tell the SCM within its first timeout that start-up is under way. */
  starting(): ServiceStatusReport {
    this.#state = SERVICE_STATE.START_PENDING;
    this.#checkPoint = 1;
    return this.#report(this.#o.startWaitHintMs);
  }

  /** Start-up or shutdown is still moving: a growing checkpoint keeps the SCM from declaring it hung. */
  progress(): ServiceStatusReport | null {
    if (this.#state !== SERVICE_STATE.START_PENDING && this.#state !== SERVICE_STATE.STOP_PENDING) return null;
    this.#checkPoint++;
    return this.#report(this.#state === SERVICE_STATE.START_PENDING ? this.#o.startWaitHintMs : this.#o.stopWaitHintMs);
  }

  /** The connector is up. Returns the reports to send, in order; a stop received mid-start follows at once. */
  running(): { reports: ServiceStatusReport[]; stopNow: boolean } {
    if (this.#state !== SERVICE_STATE.START_PENDING) return { reports: [], stopNow: false };
    this.#state = SERVICE_STATE.RUNNING;
    this.#checkPoint = 0;
    const reports = [this.#report()];
    if (this.#stopRequested) {
      this.#state = SERVICE_STATE.STOP_PENDING;
      this.#checkPoint = 1;
      reports.push(this.#report(this.#o.stopWaitHintMs));
    }
    return { reports, stopNow: this.#stopRequested };
  }

  /** HandlerEx: a control code from the SCM. */
  control(code: number): ControlOutcome {
    switch (code) {
      case SERVICE_CONTROL.STOP:
      case SERVICE_CONTROL.SHUTDOWN:
      case SERVICE_CONTROL.PRESHUTDOWN: {
        if (this.#state === SERVICE_STATE.RUNNING) {
          this.#stopRequested = true;
          this.#state = SERVICE_STATE.STOP_PENDING;
          this.#checkPoint = 1;
          return { action: "stop", report: this.#report(this.#o.stopWaitHintMs), result: NO_ERROR };
        }
        if (this.#state === SERVICE_STATE.START_PENDING) {
          this.#stopRequested = true;
          return { action: "deferred", report: this.#report(this.#o.startWaitHintMs), result: NO_ERROR };
        }
        return { action: "report", report: this.#report(this.#o.stopWaitHintMs), result: NO_ERROR };
      }
      case SERVICE_CONTROL.INTERROGATE:
        return { action: "report", report: this.#report(), result: NO_ERROR };
      default:
        return { action: "report", report: this.#report(), result: ERROR_CALL_NOT_IMPLEMENTED };
    }
  }

  /**
   * The connector ended. Exit code 0 is a clean stop; anything else is reported as a service-specific error, which
   * (with `sc failureflag 1`) makes the SCM run its recovery actions even though the process reported STOPPED.
   */
  stopped(exitCode: number): ServiceStatusReport {
    this.#state = SERVICE_STATE.STOPPED;
    this.#checkPoint = 0;
    this.#exit =
      exitCode === 0 ? { win32: NO_ERROR, specific: 0 } : { win32: ERROR_SERVICE_SPECIFIC_ERROR, specific: exitCode };
    return this.#report();
  }
}
