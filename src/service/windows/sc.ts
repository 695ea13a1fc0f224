import { BioError } from "../../core/errors.ts";
import type { Exec } from "../exec.ts";

/**
 * sc.exe: argument builders and the `queryex` parser. sc.exe wants "option=" and its value as two arguments
 * ("start=" "delayed-auto"); its exit code is the Win32 error, which is locale-independent, unlike its messages.
 */

export interface ServiceDefinition {
  readonly name: string;
  readonly displayName: string;
  readonly description: string;
  /** The full command line the SCM runs: quoted executable plus arguments. */
  readonly binPath: string;
  /** "LocalSystem", or a virtual account such as "NT SERVICE\\CamsBioApi". */
  readonly account: string;
  /** SCM recovery: restart delays for the 1st, 2nd and later failures. */
  readonly restartDelaysMs: readonly number[];
  /** Seconds without a failure after which the SCM's failure count starts again. */
  readonly resetFailuresAfterSec: number;
}

export const WIN32 = {
  ACCESS_DENIED: 5,
  SERVICE_ALREADY_RUNNING: 1056,
  SERVICE_DISABLED: 1058,
  SERVICE_DOES_NOT_EXIST: 1060,
  SERVICE_NOT_ACTIVE: 1062,
  SERVICE_MARKED_FOR_DELETE: 1072,
  SERVICE_EXISTS: 1073,
  PROCESS_ABORTED: 1067,
  FAILED_SERVICE_CONTROLLER_CONNECT: 1063,
} as const;

/** Quotes the executable the way the SCM needs it: an unquoted path with spaces is a known privilege-escalation bug. */
export function binPath(executable: string, args: readonly string[]): string {
  const quote = (s: string) => (/[\s"]/.test(s) ? `"${s.replace(/"/g, '\\"')}"` : s);
  return [`"${executable}"`, ...args.map(quote)].join(" ");
}

export const sc = {
  create: (d: ServiceDefinition): string[] => [
    "create",
    d.name,
    "binPath=",
    d.binPath,
    "start=",
    "delayed-auto",
    "obj=",
    d.account,
    "DisplayName=",
    d.displayName,
  ],
  description: (d: ServiceDefinition): string[] => ["description", d.name, d.description],
  failure: (d: ServiceDefinition): string[] => [
    "failure",
    d.name,
    "reset=",
    String(d.resetFailuresAfterSec),
    "actions=",
    d.restartDelaysMs.map((ms) => `restart/${ms}`).join("/"),
  ],
  /** Also counts "stopped with a non-zero exit code" as a failure, so a fatal error gets the recovery actions. */
  failureFlag: (name: string): string[] => ["failureflag", name, "1"],
  start: (name: string): string[] => ["start", name],
  stop: (name: string): string[] => ["stop", name],
  delete: (name: string): string[] => ["delete", name],
  queryEx: (name: string): string[] => ["queryex", name],
} as const;

export type ScState = "stopped" | "start-pending" | "stop-pending" | "running" | "paused" | "unknown";

const STATES: Record<number, ScState> = {
  1: "stopped",
  2: "start-pending",
  3: "stop-pending",
  4: "running",
  5: "start-pending", // CONTINUE_PENDING
  6: "stop-pending", // PAUSE_PENDING
  7: "paused",
};

export interface ScQuery {
  readonly state: ScState;
  readonly pid: number | null;
  readonly win32ExitCode: number;
  readonly serviceExitCode: number;
}

/** Parses `sc queryex NAME`. Keys are fixed ASCII words; only the numbers after them are read. */
export function parseQueryEx(stdout: string): ScQuery {
  const fields = new Map<string, string>();
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^\s*([A-Z_0-9]+)\s*:\s*(\S+)/.exec(line);
    if (m?.[1] && m[2]) fields.set(m[1], m[2]);
  }
  const state = Number(fields.get("STATE"));
  if (!Number.isInteger(state)) {
    throw new BioError("SERVICE", "sc queryex printed no STATE line.", { context: { output: stdout.slice(0, 200) } });
  }
  const pid = Number(fields.get("PID") ?? 0);
  return {
    state: STATES[state] ?? "unknown",
    pid: pid > 0 ? pid : null,
    win32ExitCode: Number(fields.get("WIN32_EXIT_CODE") ?? 0),
    serviceExitCode: Number(fields.get("SERVICE_EXIT_CODE") ?? 0),
  };
}

/** Turns an sc.exe exit code into an error that names the fix. */
export function scError(action: string, name: string, code: number, output: string): BioError {
  const hint =
    code === WIN32.ACCESS_DENIED
      ? "Run the command from an elevated prompt (Run as administrator)."
      : code === WIN32.SERVICE_DOES_NOT_EXIST
        ? "Install it first: bioapi service install"
        : code === WIN32.SERVICE_EXISTS
          ? "It is already installed; uninstall it first (bioapi service uninstall) to change its settings."
          : code === WIN32.SERVICE_MARKED_FOR_DELETE
            ? "Close the Services console and any sc.exe query, or reboot, then retry."
            : code === WIN32.SERVICE_DISABLED
              ? "It is disabled: set its start type back to Automatic (Delayed Start) in services.msc."
              : "See the Windows Event Log (System) for the Service Control Manager's reason.";
  return new BioError("SERVICE", `sc ${action} ${name} failed with Windows error ${code}.`, {
    hint,
    context: { code, output: output.trim().slice(0, 300) },
  });
}

/** Runs sc.exe; `accept` lists the Win32 codes that mean "already so" for this action. */
export async function runSc(
  exec: Exec,
  args: readonly string[],
  options: { accept?: readonly number[]; signal?: AbortSignal } = {},
): Promise<{ code: number; stdout: string }> {
  const result = await exec("sc.exe", args, {
    timeoutMs: 30_000,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.code !== 0 && !options.accept?.includes(result.code)) {
    throw scError(args[0] ?? "", args[1] ?? "", result.code, result.stdout + result.stderr);
  }
  return { code: result.code, stdout: result.stdout };
}
