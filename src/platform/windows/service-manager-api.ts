import { BioError } from "../../core/errors.ts";

/**
 * The Service Control Manager as the installer, the CLI and the monitor use it: OpenService, QueryServiceStatusEx,
 * StartService, ControlService, CreateService, ChangeServiceConfig2 and DeleteService. The koffi backend calls
 * advapi32 (koffi-service-manager-api.ts); tests use the memory backend, and one contract suite runs against it.
 * sc.exe was used before: its text is translated on non-English Windows, and Wine's lacks `queryex` and
 * `failureflag`, so the monitor's restarts under a service manager had never run anywhere.
 */
export interface ServiceManagerApi {
  readonly name: "advapi32" | "memory";
  /** Throws SERVICE with win32 1060 when the service is not installed. */
  query(service: string): Promise<ServiceQuery>;
  /** "already-running" when the SCM says ERROR_SERVICE_ALREADY_RUNNING. */
  start(service: string): Promise<"started" | "already-running">;
  /** Asks for a stop; "not-active" when it was not running. Does not wait for STOPPED. */
  stop(service: string): Promise<"stopping" | "not-active">;
  create(definition: ServiceDefinition): Promise<void>;
  /**
   * Restart actions, their reset period, and the failure flag: a stop with an error code also counts. The flag is
   * "unsupported" where the SCM does not know that setting (ERROR_INVALID_LEVEL: Wine; every Windows since Vista
   * has it).
   */
  setRecovery(service: string, recovery: Recovery): Promise<{ readonly failureFlag: "set" | "unsupported" }>;
  /** "absent" when it was not installed. */
  delete(service: string): Promise<"deleted" | "absent">;
}

export interface ServiceDefinition {
  readonly name: string;
  readonly displayName: string;
  readonly description: string;
  /** The full command line the SCM runs: quoted executable plus arguments. */
  readonly binPath: string;
  /** "LocalSystem", or a virtual account such as "NT SERVICE\\CamsBioApi". */
  readonly account: string;
  readonly recovery: Recovery;
}

export interface Recovery {
  /** Restart delays for the 1st, 2nd and later failures. */
  readonly restartDelaysMs: readonly number[];
  /** Seconds without a failure after which the SCM's failure count starts again. */
  readonly resetFailuresAfterSec: number;
}

export type ServiceState = "stopped" | "start-pending" | "stop-pending" | "running" | "paused" | "unknown";

export interface ServiceQuery {
  readonly state: ServiceState;
  readonly pid: number | null;
  readonly win32ExitCode: number;
  readonly serviceExitCode: number;
}

/** SERVICE_STATUS_PROCESS.dwCurrentState. */
export const SERVICE_STATES: Readonly<Record<number, ServiceState>> = {
  1: "stopped",
  2: "start-pending",
  3: "stop-pending",
  4: "running",
  5: "start-pending", // CONTINUE_PENDING
  6: "stop-pending", // PAUSE_PENDING
  7: "paused",
};

export const WIN32 = {
  ACCESS_DENIED: 5,
  INVALID_NAME: 123,
  INVALID_LEVEL: 124,
  SERVICE_REQUEST_TIMEOUT: 1053,
  SERVICE_ALREADY_RUNNING: 1056,
  SERVICE_DISABLED: 1058,
  SERVICE_DOES_NOT_EXIST: 1060,
  SERVICE_CANNOT_ACCEPT_CTRL: 1061,
  SERVICE_NOT_ACTIVE: 1062,
  FAILED_SERVICE_CONTROLLER_CONNECT: 1063,
  PROCESS_ABORTED: 1067,
  SERVICE_MARKED_FOR_DELETE: 1072,
  SERVICE_EXISTS: 1073,
  DUPLICATE_SERVICE_NAME: 1078,
} as const;

/** Quotes the executable the way the SCM needs it: an unquoted path with spaces is a known privilege-escalation bug. */
export function binPath(executable: string, args: readonly string[]): string {
  const quote = (s: string) => (/[\s"]/.test(s) ? `"${s.replace(/"/g, '\\"')}"` : s);
  return [`"${executable}"`, ...args.map(quote)].join(" ");
}

/**
 * A failed SCM call as an error that names the fix. Told apart by the Win32 code, which is the same in every display
 * language; the code travels in `context.win32` for callers that accept "already so" answers.
 */
export function serviceError(call: string, service: string, code: number): BioError {
  const hint =
    code === WIN32.ACCESS_DENIED
      ? "Run the command from an elevated prompt (Run as administrator); the monitor must run as LocalSystem."
      : code === WIN32.SERVICE_DOES_NOT_EXIST
        ? "Install it first: bioapi service install"
        : code === WIN32.SERVICE_EXISTS || code === WIN32.DUPLICATE_SERVICE_NAME
          ? "It is already installed; uninstall it first (bioapi service uninstall) to change its settings."
          : code === WIN32.SERVICE_MARKED_FOR_DELETE
            ? "Close the Services console and any other tool holding the service open, or reboot, then retry."
            : code === WIN32.SERVICE_DISABLED
              ? "It is disabled: set its start type back to Automatic (Delayed Start) in services.msc."
              : code === WIN32.SERVICE_REQUEST_TIMEOUT
                ? "The service did not report to the SCM in time; see its log (logs\\connector.log) for why it did not start."
                : "See the Windows Event Log (System) for the Service Control Manager's reason.";
  return new BioError("SERVICE", `${call} for service ${service} failed with Windows error ${code}.`, {
    hint,
    context: { win32: code, call, service },
  });
}

/** The Win32 code of an error from {@link serviceError}, or undefined for any other error. */
export function win32CodeOf(error: unknown): number | undefined {
  if (!(error instanceof BioError) || error.code !== "SERVICE") return undefined;
  const code = error.context?.win32;
  return typeof code === "number" ? code : undefined;
}

/** One line for a dry run: the calls a definition becomes, so an operator can see what install will do. */
export function describeCreate(d: ServiceDefinition): string[] {
  return [
    `CreateServiceW ${d.name} "${d.displayName}" own-process auto-start as ${d.account}: ${d.binPath}`,
    `ChangeServiceConfig2W ${d.name} DELAYED_AUTO_START_INFO true`,
    `ChangeServiceConfig2W ${d.name} DESCRIPTION "${d.description}"`,
  ];
}

export function describeRecovery(service: string, r: Recovery): string[] {
  return [
    `ChangeServiceConfig2W ${service} FAILURE_ACTIONS reset=${r.resetFailuresAfterSec}s ${r.restartDelaysMs.map((ms) => `restart/${ms}`).join("/")}`,
    `ChangeServiceConfig2W ${service} FAILURE_ACTIONS_FLAG true`,
  ];
}
