import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, win32 } from "node:path";
import { parseArgs } from "node:util";
import { dataDirLayout, WINDOWS_SECRETS_KEY } from "../app/data-dir.ts";
import { BioError } from "../core/errors.ts";
import { formatMonitorRecord, readMonitorRecord, writeIntent } from "../monitor/monitor-state.ts";
import { CREDENTIAL_NAME, CREDSTORE_PATH } from "../secrets/systemd-creds-protector.ts";
import { type Exec, execTool } from "../service/exec.ts";
import { systemdInstallSteps, systemdUninstallSteps } from "../service/linux/install.ts";
import { CONNECTOR_UNIT, connectorUnit, MONITOR_UNIT, monitorUnit, STATE_DIR } from "../service/linux/units.ts";
import { selfCommand } from "../service/self.ts";
import { CONNECTOR_SERVICE, MONITOR_SERVICE } from "../service/windows/connector-service.ts";
import { type Step, WINDOWS_DATA_DIR, windowsInstallPlan, windowsUninstallPlan } from "../service/windows/install.ts";
import { parseQueryEx, runSc, sc, WIN32 } from "../service/windows/sc.ts";
import { type CliIo, usageError } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { SERVICE, SERVICE_ACTIONS } from "./commands.ts";

export const SERVICE_USAGE = renderHelp(SERVICE);

function defaultManager(): "systemd" | "windows" {
  return process.platform === "win32" ? "windows" : "systemd";
}

async function runSteps(exec: Exec, steps: readonly Step[], io: CliIo, dryRun: boolean): Promise<void> {
  for (const step of steps) {
    if (dryRun) {
      io.out(`${step.file} ${step.args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ")}    # ${step.why}`);
      continue;
    }
    const r = await exec(step.file, step.args, { timeoutMs: 60_000, ...(step.input ? { input: step.input } : {}) });
    if (r.code !== 0 && !step.accept?.includes(r.code)) {
      throw new BioError("SERVICE", `${step.file} ${step.args[0] ?? ""} failed (exit ${r.code}) while: ${step.why}.`, {
        hint:
          process.platform === "win32"
            ? "Run from an elevated prompt (Run as administrator)."
            : "Run as root (sudo). See the output above.",
        context: { output: (r.stdout + r.stderr).trim().slice(0, 300) },
      });
    }
  }
}

export async function serviceCommand(argv: string[], io: CliIo, exec: Exec = execTool): Promise<number> {
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

  switch (`${manager}:${action}`) {
    case "windows:install":
      if (!dryRun) await mkdir(win32.join(dataDir, "logs"), { recursive: true });
      await runSteps(exec, windowsInstallPlan(selfCommand(), dataDir, WINDOWS_SECRETS_KEY), io, dryRun);
      io.out(
        `Installed ${CONNECTOR_SERVICE} and ${MONITOR_SERVICE}. Next: bioapi enroll ... then bioapi service start.`,
      );
      return 0;
    case "windows:uninstall":
      await runSteps(exec, windowsUninstallPlan(), io, dryRun);
      io.out(`Removed both services. Data in ${dataDir} and secrets under HKLM\\SOFTWARE\\CamsBioApi are kept.`);
      return 0;
    case "windows:start":
      if (!dryRun) await writeIntent(dataDir, "running", by);
      for (const name of [CONNECTOR_SERVICE, MONITOR_SERVICE])
        if (dryRun) io.out(`sc.exe start ${name}`);
        else await runSc(exec, sc.start(name), { accept: [WIN32.SERVICE_ALREADY_RUNNING] });
      return 0;
    case "windows:stop":
      if (!dryRun) await writeIntent(dataDir, "stopped", by);
      if (dryRun) io.out(`sc.exe stop ${CONNECTOR_SERVICE}`);
      else await runSc(exec, sc.stop(CONNECTOR_SERVICE), { accept: [WIN32.SERVICE_NOT_ACTIVE] });
      return 0;
    case "windows:status": {
      for (const name of [CONNECTOR_SERVICE, MONITOR_SERVICE]) {
        const r = await runSc(exec, sc.queryEx(name), { accept: [WIN32.SERVICE_DOES_NOT_EXIST] });
        io.out(r.code !== 0 ? `${name}: not installed` : `${name}: ${parseQueryEx(r.stdout).state}`);
      }
      await printMonitor(dataDir, io);
      return 0;
    }
    case "systemd:install": {
      const unitDir = values["unit-dir"];
      let credential: { name: string; path: string } | null = null;
      const creds = await exec("systemd-creds", ["--version"]).catch(() => ({ code: -1 }));
      if (creds.code === 0) {
        credential = { name: CREDENTIAL_NAME, path: CREDSTORE_PATH };
        if (!existsSync(CREDSTORE_PATH)) {
          if (dryRun) io.out(`systemd-creds encrypt --name=${CREDENTIAL_NAME} --with-key=auto - ${CREDSTORE_PATH}`);
          else {
            await mkdir(join(CREDSTORE_PATH, ".."), { recursive: true, mode: 0o700 });
            const r = await exec(
              "systemd-creds",
              ["encrypt", `--name=${CREDENTIAL_NAME}`, "--with-key=auto", "-", CREDSTORE_PATH],
              { input: randomBytes(32), timeoutMs: 30_000 },
            );
            if (r.code !== 0) throw new BioError("SERVICE", `systemd-creds encrypt failed: ${r.stderr.trim()}`);
          }
        }
      }
      const units = {
        [CONNECTOR_UNIT]: connectorUnit({ command: selfCommand(), credential }),
        [MONITOR_UNIT]: monitorUnit({ command: selfCommand(), credential }),
      };
      for (const [name, text] of Object.entries(units)) {
        if (dryRun) io.out(`# ${join(unitDir, name)}\n${text}`);
        else await writeFile(join(unitDir, name), text, { mode: 0o644 });
      }
      await runSteps(exec, systemdInstallSteps(), io, dryRun);
      io.out(
        `Installed ${CONNECTOR_UNIT} and ${MONITOR_UNIT} (secrets key: ${credential ? "systemd-creds" : "0600 key file"}). Next: sudo bioapi enroll --data-dir ${dataDir} ... then sudo bioapi service start.`,
      );
      return 0;
    }
    case "systemd:uninstall":
      await runSteps(exec, systemdUninstallSteps(), io, dryRun);
      if (!dryRun) {
        for (const name of [CONNECTOR_UNIT, MONITOR_UNIT]) await rm(join(values["unit-dir"], name), { force: true });
      }
      io.out(`Removed both units. ${dataDir}, the logs and ${CREDSTORE_PATH} are kept.`);
      return 0;
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
      const r = await exec("systemctl", ["is-active", CONNECTOR_UNIT, MONITOR_UNIT]).catch(() => undefined);
      const states = r?.stdout.trim().split("\n") ?? [];
      io.out(`${CONNECTOR_UNIT}: ${states[0] ?? "unknown"}\n${MONITOR_UNIT}: ${states[1] ?? "unknown"}`);
      await printMonitor(dataDir, io);
      return 0;
    }
    case "process:start":
      await writeIntent(dataDir, "running", by);
      io.out("Intent recorded: running. The monitor (bioapi monitor --manager process) starts the connector.");
      return 0;
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
