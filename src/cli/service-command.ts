import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { win32 } from "node:path";
import { parseArgs } from "node:util";
import { dataDirLayout } from "../app/data-dir.ts";
import { BioError, describeError } from "../core/errors.ts";
import { formatMonitorRecord, readMonitorRecord, writeIntent } from "../monitor/monitor-state.ts";
import { type Exec, execTool } from "../platform/exec.ts";
import { selfCommand } from "../platform/self.ts";
import { DATA_DIR_SDDL, type FileSecurityApi, prepareDataDir } from "../platform/windows/file-security-api.ts";
import { KoffiFileSecurityApi } from "../platform/windows/koffi-file-security-api.ts";
import { type ServiceManagerApi, WIN32, win32CodeOf } from "../platform/windows/service-manager-api.ts";
import { WINDOWS_SECRETS_KEY } from "../secrets/open-secret-store.ts";
import { CREDENTIAL_NAME, CREDSTORE_PATH } from "../secrets/systemd-creds-protector.ts";
import {
  installSystemd,
  notRunningError,
  type SystemdHost,
  systemdRunning,
  uninstallSystemd,
} from "../service/linux/install.ts";
import { CONNECTOR_UNIT, MONITOR_UNIT, STATE_DIR } from "../service/linux/units.ts";
import {
  isScmStep,
  type Step,
  WINDOWS_DATA_DIR,
  windowsInstallPlan,
  windowsUninstallPlan,
} from "../service/windows/install.ts";
import { CONNECTOR_SERVICE, MONITOR_SERVICE } from "../service/windows/service-names.ts";
import { readHealthRecord } from "../status/health-channel.ts";
import { InstanceLock } from "../store/instance-lock.ts";
import { type CliIo, usageError } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { SERVICE, SERVICE_ACTIONS } from "./commands.ts";

export const SERVICE_USAGE = renderHelp(SERVICE);

function defaultManager(): "systemd" | "windows" {
  return process.platform === "win32" ? "windows" : "systemd";
}

/** The SCM's API, bound on first use: Linux and dry runs never load native code. */
export type ScmProvider = () => Promise<ServiceManagerApi>;

const koffiScmApi: ScmProvider = async () => {
  const { KoffiServiceManagerApi } = await import("../platform/windows/koffi-service-manager-api.ts");
  return new KoffiServiceManagerApi();
};

async function runSteps(
  exec: Exec,
  steps: readonly Step[],
  io: CliIo,
  dryRun: boolean,
  scm: ScmProvider = koffiScmApi,
): Promise<void> {
  for (const step of steps) {
    if (isScmStep(step)) {
      if (dryRun) for (const call of step.calls) io.out(`${call}    # ${step.why}`);
      else {
        const note = await step.run(await scm());
        if (note) io.err(`warning: ${note}`);
      }
      continue;
    }
    if (dryRun) {
      io.out(`${step.file} ${step.args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ")}    # ${step.why}`);
      continue;
    }
    const r = await exec(step.file, step.args, { timeoutMs: 60_000, ...(step.input ? { input: step.input } : {}) });
    if (r.code !== 0 && !step.accept?.includes(r.code)) {
      // The tool's own words, since nothing else shows them: "see the output above" pointed at nothing.
      const said = (r.stderr.trim() || r.stdout.trim()).split("\n")[0]?.slice(0, 300);
      throw new BioError(
        "SERVICE",
        `${step.file} ${step.args[0] ?? ""} failed (exit ${r.code}) while: ${step.why}${said ? `: ${said}` : ""}.`,
        {
          hint:
            process.platform === "win32"
              ? "Run from an elevated prompt (Run as administrator)."
              : "Run as root (sudo) if you are not.",
          context: { output: (r.stdout + r.stderr).trim().slice(0, 300) },
        },
      );
    }
  }
}

export async function serviceCommand(
  argv: string[],
  io: CliIo,
  exec: Exec = execTool,
  host: Partial<SystemdHost> = {},
  scm: ScmProvider = koffiScmApi,
  fileSecurity: FileSecurityApi = new KoffiFileSecurityApi(),
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: optionsOf(SERVICE),
    allowPositionals: true,
    strict: true,
  });
  const action = positionals[0];
  if (values.help || !action) {
    const one = action === undefined ? undefined : SERVICE_ACTIONS[action];
    io.out(one ? renderHelp(one) : SERVICE_USAGE);
    return action || values.help ? 0 : 2;
  }
  const manager = values.manager ?? defaultManager();
  if (!["systemd", "windows", "process"].includes(manager)) {
    throw usageError(`--manager must be systemd, windows or process, not "${manager}".`);
  }
  if (!SERVICE_ACTIONS[action]) throw usageError(`Unknown service action "${action}".\n${SERVICE_USAGE}`);
  const dataDir = values["data-dir"] ?? (manager === "windows" ? WINDOWS_DATA_DIR : STATE_DIR);
  const dryRun = values["dry-run"];
  const by = `bioapi service ${action} (pid ${process.pid})`;

  // Starting before enrolling would only fail later, inside the service, with a file error.
  if (action === "start" && !dryRun && !existsSync(dataDir)) {
    throw new BioError("NOT_ENROLLED", `Not enrolled: ${dataDir} does not exist.`, {
      hint: `Enroll first: sudo bioapi enroll --data-dir ${dataDir} --cloud-url URL --node-id UUID --secret-file FILE.`,
    });
  }
  const systemd: SystemdHost = {
    systemdRunning,
    unitDir: values["unit-dir"],
    credential: { name: CREDENTIAL_NAME, path: CREDSTORE_PATH },
    command: selfCommand(),
    ...host,
  };

  switch (`${manager}:${action}`) {
    case "windows:install":
      // Before any step: a folder someone else owns is refused before anything is created or changed.
      if (dryRun)
        io.out(`owner check, then ${dataDir} owner Administrators, ${DATA_DIR_SDDL} down the tree    # data directory`);
      else
        await prepareDataDir(fileSecurity, dataDir, {
          parent: (dir) => mkdir(win32.dirname(dir), { recursive: true }),
          inside: (dir) => mkdir(win32.join(dir, "logs"), { recursive: true }),
        });
      await runSteps(exec, windowsInstallPlan(selfCommand(), dataDir, WINDOWS_SECRETS_KEY), io, dryRun, scm);
      io.out(
        `Installed ${CONNECTOR_SERVICE} and ${MONITOR_SERVICE}. Next: bioapi enroll ... then bioapi service start.`,
      );
      return 0;
    case "windows:uninstall":
      await runSteps(exec, windowsUninstallPlan(), io, dryRun, scm);
      io.out(`Removed both services. Data in ${dataDir} and secrets under HKLM\\SOFTWARE\\CamsBioApi are kept.`);
      return 0;
    case "windows:start":
      if (!dryRun) await writeIntent(dataDir, "running", by);
      for (const name of [CONNECTOR_SERVICE, MONITOR_SERVICE])
        if (dryRun) io.out(`StartServiceW ${name}`);
        else await (await scm()).start(name);
      return 0;
    case "windows:stop":
      if (!dryRun) await writeIntent(dataDir, "stopped", by);
      if (dryRun) io.out(`ControlService ${CONNECTOR_SERVICE} STOP`);
      else await (await scm()).stop(CONNECTOR_SERVICE);
      return 0;
    case "windows:status": {
      const api = await scm();
      for (const name of [CONNECTOR_SERVICE, MONITOR_SERVICE]) {
        const q = await api.query(name).catch((error: unknown) => {
          if (win32CodeOf(error) === WIN32.SERVICE_DOES_NOT_EXIST) return undefined;
          throw error;
        });
        io.out(q ? `${name}: ${q.state}${q.pid ? ` (pid ${q.pid})` : ""}` : `${name}: not installed`);
      }
      await printHealthPipe(dataDir, io);
      await printMonitor(dataDir, io);
      return 0;
    }
    case "systemd:install": {
      const run = (steps: readonly Step[]) => runSteps(exec, steps, io, dryRun);
      const { credential } = await installSystemd(systemd, exec, run, io.out, dryRun);
      io.out(
        `${dryRun ? "Would install" : "Installed"} ${CONNECTOR_UNIT} and ${MONITOR_UNIT} (secrets key: ${credential ? "systemd-creds" : "0600 key file"}). Next: sudo bioapi enroll --data-dir ${dataDir} ... then sudo bioapi service start.`,
      );
      return 0;
    }
    case "systemd:uninstall": {
      const note = await uninstallSystemd(systemd, (steps) => runSteps(exec, steps, io, dryRun), dryRun);
      io.out(`Removed both units.${note} ${dataDir}, the logs and ${CREDSTORE_PATH} are kept.`);
      return 0;
    }
    case "systemd:start":
      if (!dryRun) await writeIntent(dataDir, "running", by);
      await runSteps(
        exec,
        [{ file: "systemctl", args: ["start", CONNECTOR_UNIT, MONITOR_UNIT], why: "start" }],
        io,
        dryRun,
      );
      return 0;
    case "systemd:stop":
      if (!dryRun) await writeIntent(dataDir, "stopped", by);
      await runSteps(exec, [{ file: "systemctl", args: ["stop", CONNECTOR_UNIT], why: "stop" }], io, dryRun);
      return 0;
    case "systemd:status": {
      if (!systemd.systemdRunning()) throw notRunningError("there are no units to show");
      const r = await exec("systemctl", ["is-active", CONNECTOR_UNIT, MONITOR_UNIT]).catch(() => undefined);
      const states = r?.stdout.trim().split("\n") ?? [];
      io.out(`${CONNECTOR_UNIT}: ${states[0] ?? "unknown"}\n${MONITOR_UNIT}: ${states[1] ?? "unknown"}`);
      await printMonitor(dataDir, io);
      return 0;
    }
    case "process:start": {
      // The monitor would start a connector that exits at once on the lock, over and over: say it here instead.
      const holder = existsSync(dataDir) ? InstanceLock.probe(dataDir) : null;
      if (holder) {
        throw new BioError(
          "DATA_DIR_IN_USE",
          `A connector already runs on ${dataDir}${holder.pid === null ? "" : ` (pid ${holder.pid})`}; nothing was started.`,
          { hint: "Stop it first (bioapi service stop, or end that process), then start the service." },
        );
      }
      await writeIntent(dataDir, "running", by);
      io.out("Intent recorded: running. The monitor (bioapi monitor --manager process) starts the connector.");
      return 0;
    }
    case "process:stop": {
      await writeIntent(dataDir, "stopped", by);
      const endpoint = await readFile(dataDirLayout(dataDir).statusFile, "utf8").catch(() => undefined);
      const pid = endpoint ? (JSON.parse(endpoint) as { pid?: number }).pid : undefined;
      if (pid) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // Already gone: the intent alone keeps the monitor from starting it again.
        }
      }
      io.out(`Intent recorded: stopped${pid ? `; sent SIGTERM to the connector (pid ${pid})` : ""}.`);
      return 0;
    }
    case "process:status":
      await printMonitor(dataDir, io);
      return 0;
    default:
      throw usageError(`bioapi service ${action} is not available with --manager ${manager}.`);
  }
}

async function printMonitor(dataDir: string, io: CliIo): Promise<void> {
  const record = await readMonitorRecord(dataDir);
  io.out(record ? formatMonitorRecord(record) : "monitor: no record yet (is the monitor service running?)");
}

/** Who serves the connector's health pipe and who may open it: what the monitor checks before each probe. */
async function printHealthPipe(dataDir: string, io: CliIo): Promise<void> {
  const record = await readHealthRecord(dataDir);
  if (!record) return;
  const { pipeAccess, pipeServerPid } = await import("../platform/windows/koffi-pipe-guard.ts");
  try {
    const server = await pipeServerPid(record.path);
    const who = server === record.pid ? "the connector" : `NOT the connector (pid ${record.pid})`;
    io.out(`health channel: ${record.path} served by pid ${server} (${who}); access ${await pipeAccess(record.path)}`);
  } catch (error) {
    io.out(`health channel: ${record.path}: ${describeError(error).message}`);
  }
}
