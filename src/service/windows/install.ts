import { win32 } from "node:path";
import { CONNECTOR_SERVICE, MONITOR_SERVICE } from "./connector-service.ts";
import { binPath, type ServiceDefinition, sc, WIN32 } from "./sc.ts";
import { POWERSHELL_ARGS, secureKeyScript } from "./secure-key-script.ts";

export interface Step {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string;
  /** Exit codes that mean "already so" (e.g. 1060 when deleting a service that is not there). */
  readonly accept?: readonly number[];
  readonly why: string;
}

export const WINDOWS_DATA_DIR = win32.join(process.env.ProgramData ?? "C:\\ProgramData", "CamsBioApi");

/**
 * LocalSystem for both services: DPAPI machine scope, the HKLM key and ProgramData all admit it, and the monitor
 * needs the right to start and end the connector. A virtual account (NT SERVICE\CamsBioApi) would be narrower; it
 * needs the key ACL, the data dir ACL and the connector's service DACL granted to it (see docs/operations.md).
 */
export const SERVICE_ACCOUNT = "LocalSystem";
export const RECOVERY_DELAYS_MS = [5_000, 30_000, 120_000] as const;

export function windowsServices(command: readonly string[], dataDir: string, registryKey: string) {
  const [exe = "bioapi.exe", ...prefix] = command;
  const logs = win32.join(dataDir, "logs");
  const connector: ServiceDefinition = {
    name: CONNECTOR_SERVICE,
    displayName: "Cams Bio API Service",
    description:
      "Collects attendance punches from biometric terminals and attendance databases and sends them to the Cams cloud.",
    binPath: binPath(exe, [...prefix, "run", "--service", "--data-dir", dataDir, "--log-dir", logs]),
    account: SERVICE_ACCOUNT,
    restartDelaysMs: RECOVERY_DELAYS_MS,
    resetFailuresAfterSec: 86_400,
  };
  const monitor: ServiceDefinition = {
    name: MONITOR_SERVICE,
    displayName: "Cams Bio API Service Monitor",
    description: "Restarts the Cams Bio API Service when it hangs or stalls; records what it did for bioapi status.",
    binPath: binPath(exe, [
      ...prefix,
      "monitor",
      "--service",
      "--manager",
      "windows",
      "--unit",
      CONNECTOR_SERVICE,
      "--data-dir",
      dataDir,
      "--log-dir",
      logs,
    ]),
    account: SERVICE_ACCOUNT,
    restartDelaysMs: RECOVERY_DELAYS_MS,
    resetFailuresAfterSec: 86_400,
  };
  return { connector, monitor, registryKey };
}

export function windowsInstallPlan(command: readonly string[], dataDir: string, registryKey: string): Step[] {
  const { connector, monitor } = windowsServices(command, dataDir, registryKey);
  const steps: Step[] = [
    {
      file: "icacls.exe",
      // By SID: *S-1-5-18 SYSTEM, *S-1-5-32-544 Administrators. Inheritance off, everything else removed.
      args: [dataDir, "/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F"],
      why: "data directory for SYSTEM and Administrators only",
    },
    {
      file: "powershell.exe",
      args: POWERSHELL_ARGS,
      input: secureKeyScript(registryKey),
      why: "registry key for the secrets, SYSTEM and Administrators only",
    },
  ];
  for (const d of [connector, monitor]) {
    steps.push(
      { file: "sc.exe", args: sc.create(d), why: `create ${d.name} (delayed auto-start, ${d.account})` },
      { file: "sc.exe", args: sc.description(d), why: "description" },
      { file: "sc.exe", args: sc.failure(d), why: "recovery: restart after 5 s, 30 s, then every 2 min" },
      { file: "sc.exe", args: sc.failureFlag(d.name), why: "recovery also on a stop with an error code" },
    );
  }
  return steps;
}

export function windowsUninstallPlan(): Step[] {
  const gone = [WIN32.SERVICE_DOES_NOT_EXIST, WIN32.SERVICE_NOT_ACTIVE];
  return [
    { file: "sc.exe", args: sc.stop(MONITOR_SERVICE), accept: gone, why: "stop the monitor first" },
    { file: "sc.exe", args: sc.stop(CONNECTOR_SERVICE), accept: gone, why: "stop the connector" },
    { file: "sc.exe", args: sc.delete(MONITOR_SERVICE), accept: [WIN32.SERVICE_DOES_NOT_EXIST], why: "remove" },
    { file: "sc.exe", args: sc.delete(CONNECTOR_SERVICE), accept: [WIN32.SERVICE_DOES_NOT_EXIST], why: "remove" },
  ];
}
