import { win32 } from "node:path";
import {
  binPath,
  describeCreate,
  describeRecovery,
  type ServiceDefinition,
  type ServiceManagerApi,
  WIN32,
  win32CodeOf,
} from "../../platform/windows/service-manager-api.ts";
import type { ExecStep } from "../exec-step.ts";
import { POWERSHELL_ARGS, secureKeyScript } from "./secure-key-script.ts";
import { CONNECTOR_SERVICE, MONITOR_SERVICE } from "./service-names.ts";

/** Calls into the Service Control Manager's API; `calls` is what a dry run prints. */
export interface ScmStep {
  readonly calls: readonly string[];
  /** Resolves with a note for the operator when the step did less than asked (and that is not an error). */
  readonly run: (scm: ServiceManagerApi) => Promise<string | undefined>;
  readonly why: string;
}

export type { ExecStep };
export type Step = ExecStep | ScmStep;

export const isScmStep = (step: Step): step is ScmStep => "run" in step;

export const WINDOWS_DATA_DIR = win32.join(process.env.ProgramData ?? "C:\\ProgramData", "CamsBioApi");

/**
 * LocalSystem for both services: DPAPI machine scope, the HKLM key and ProgramData all admit it, and the monitor
 * needs the right to start and end the connector. A virtual account (NT SERVICE\CamsBioApi) would be narrower; it
 * needs the key ACL, the data dir ACL and the connector's service DACL granted to it (see docs/operations.md).
 */
export const SERVICE_ACCOUNT = "LocalSystem";
export const RECOVERY = { restartDelaysMs: [5_000, 30_000, 120_000], resetFailuresAfterSec: 86_400 } as const;

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
    recovery: RECOVERY,
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
    recovery: RECOVERY,
  };
  return { connector, monitor, registryKey };
}

/** The data directory is not a step: its owner is checked and set through Win32 calls (prepareDataDir). */
export function windowsInstallPlan(command: readonly string[], dataDir: string, registryKey: string): Step[] {
  const { connector, monitor } = windowsServices(command, dataDir, registryKey);
  const steps: Step[] = [
    {
      file: "powershell.exe",
      args: POWERSHELL_ARGS,
      input: secureKeyScript(registryKey),
      why: "registry key for the secrets, SYSTEM and Administrators only",
    },
  ];
  for (const d of [connector, monitor]) {
    steps.push(
      {
        calls: describeCreate(d),
        run: async (scm) => {
          await scm.create(d);
          return undefined;
        },
        why: `create ${d.name} (delayed auto-start, ${d.account})`,
      },
      {
        calls: describeRecovery(d.name, d.recovery),
        run: async (scm) =>
          (await scm.setRecovery(d.name, d.recovery)).failureFlag === "unsupported"
            ? `${d.name}: this service manager has no failure flag (ERROR_INVALID_LEVEL), so a stop with an error code runs no recovery action; the monitor still restarts the connector.`
            : undefined,
        why: "recovery: restart after 5 s, 30 s, then every 2 min, also on a stop with an error code",
      },
    );
  }
  return steps;
}

export function windowsUninstallPlan(): ScmStep[] {
  return [
    {
      calls: [`ControlService ${MONITOR_SERVICE} STOP`],
      run: (scm) => scm.stop(MONITOR_SERVICE).then(none, absent),
      why: "stop the monitor first",
    },
    {
      calls: [`ControlService ${CONNECTOR_SERVICE} STOP`],
      run: (scm) => scm.stop(CONNECTOR_SERVICE).then(none, absent),
      why: "stop the connector",
    },
    {
      calls: [`DeleteService ${MONITOR_SERVICE}`],
      run: (scm) => scm.delete(MONITOR_SERVICE).then(none),
      why: "remove",
    },
    {
      calls: [`DeleteService ${CONNECTOR_SERVICE}`],
      run: (scm) => scm.delete(CONNECTOR_SERVICE).then(none),
      why: "remove",
    },
  ];
}

const none = (): undefined => undefined;

/** Uninstalling what is not installed is already done. */
function absent(error: unknown): undefined {
  if (win32CodeOf(error) === WIN32.SERVICE_DOES_NOT_EXIST) return undefined;
  throw error;
}
