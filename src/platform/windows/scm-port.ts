/** What SetServiceStatus takes, field for field (SERVICE_STATUS). */
export interface ServiceStatusReport {
  readonly serviceType: number;
  readonly currentState: number;
  readonly controlsAccepted: number;
  readonly win32ExitCode: number;
  readonly serviceSpecificExitCode: number;
  readonly checkPoint: number;
  readonly waitHintMs: number;
}

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
