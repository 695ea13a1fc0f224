import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { atomicWrite } from "../../core/atomic-write.ts";
import { BioError } from "../../core/errors.ts";
import type { Exec } from "../../platform/exec.ts";
import type { ExecStep } from "../exec-step.ts";
import { CONNECTOR_UNIT, connectorUnit, MONITOR_UNIT, monitorUnit, SERVICE_USER } from "./units.ts";

/** What `service install|uninstall|status` needs from the machine; tests pass their own. */
export interface SystemdHost {
  /** sd_booted(3): systemd is PID 1 when /run/systemd/system exists. */
  readonly systemdRunning: () => boolean;
  readonly unitDir: string;
  readonly credential: { readonly name: string; readonly path: string };
  /** The program the units start (selfCommand()). */
  readonly command: readonly string[];
  /** Which directory the units would hide a path in (hiddenFromUnits); tests whose checkout may sit in one pass theirs. */
  readonly hidden?: (path: string) => string | undefined;
}

export type RunSteps = (steps: readonly ExecStep[]) => Promise<void>;

export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

/** A unit's ExecStart under these is never found: ProtectHome=yes hides /home, /root, /run/user; PrivateTmp=yes /tmp. */
const HIDDEN = ["/tmp", "/var/tmp", "/home", "/root", "/run/user"];

export function hiddenFromUnits(path: string): string | undefined {
  const full = resolve(path);
  return HIDDEN.find((dir) => full === dir || full.startsWith(`${dir}/`));
}

export function notRunningError(what: string): BioError {
  return new BioError("SERVICE", `systemd is not running on this machine, so ${what}.`, {
    hint: "Use --manager process (the monitor then starts the connector itself), or run bioapi run in a supervisor of your own.",
  });
}

/**
 * The operations guide beside the program — the operator zip's docs/ next to the executable, or the repository's
 * docs/ next to bin/ — so the unit's Documentation= names a file that exists; undefined when there is none.
 */
export function installedGuide(command: readonly string[]): string | undefined {
  const program = command.length > 1 ? command[1] : command[0];
  if (!program) return undefined;
  const base = dirname(resolve(program));
  return [join(base, "docs", "operations.md"), join(base, "..", "docs", "operations.md")]
    .map((p) => resolve(p))
    .find((p) => existsSync(p));
}

/**
 * Installs both units. Everything it creates (unit files, the system user, the credential) is recorded and
 * removed again when a later step fails, so a failed install leaves the machine as it found it.
 */
export async function installSystemd(
  host: SystemdHost,
  exec: Exec,
  run: RunSteps,
  out: (line: string) => void,
  dryRun: boolean,
): Promise<{ credential: boolean }> {
  for (const path of host.command) {
    const hidden = (host.hidden ?? hiddenFromUnits)(path);
    if (hidden) {
      throw new BioError(
        "SERVICE",
        `Refusing to install: the units would start ${path}, but they hide ${hidden} (ProtectHome=yes, PrivateTmp=yes), so the service could never start. Nothing was written.`,
        {
          hint: "Copy the executable to a fixed place first (e.g. /opt/cams-bioapi/bioapi) and run the install from there.",
        },
      );
    }
  }
  // A dry run still shows the plan (a build machine rarely runs systemd), and says what a real install would do.
  if (!host.systemdRunning()) {
    if (!dryRun) throw notRunningError("its units could not be installed; nothing was written");
    out("# systemd is not running here: a real install would refuse (see --manager process).");
  }
  const undo: (() => Promise<unknown>)[] = [];
  const wrote: string[] = [];
  try {
    let credential: { name: string; path: string } | null = null;
    const creds = await exec("systemd-creds", ["--version"]).catch(() => ({ code: -1 }));
    if (creds.code === 0) {
      credential = { ...host.credential };
      if (!existsSync(host.credential.path)) {
        if (dryRun)
          out(`systemd-creds encrypt --name=${host.credential.name} --with-key=auto - ${host.credential.path}`);
        else {
          await mkdir(dirname(host.credential.path), { recursive: true, mode: 0o700 });
          undo.push(() => rm(host.credential.path, { force: true }));
          wrote.push(host.credential.path);
          const r = await exec(
            "systemd-creds",
            ["encrypt", `--name=${host.credential.name}`, "--with-key=auto", "-", host.credential.path],
            { input: randomBytes(32), timeoutMs: 30_000 },
          );
          if (r.code !== 0) throw new BioError("SERVICE", `systemd-creds encrypt failed: ${r.stderr.trim()}`);
        }
      }
    }
    const documentation = installedGuide(host.command);
    const options = { command: host.command, credential, ...(documentation ? { documentation } : {}) };
    const units = { [CONNECTOR_UNIT]: connectorUnit(options), [MONITOR_UNIT]: monitorUnit(options) };
    for (const [name, text] of Object.entries(units)) {
      const path = join(host.unitDir, name);
      if (dryRun) out(`# ${path}\n${text}`);
      else {
        undo.push(() => rm(path, { force: true }));
        wrote.push(path);
        // Whole or not at all: systemd may reload between our writes. 0644: systemd and `systemctl cat` read it.
        await atomicWrite(path, text, { mode: 0o644 });
      }
    }
    const user = dryRun ? { code: 0 } : await exec("id", ["-u", SERVICE_USER]).catch(() => ({ code: -1 }));
    if (user.code !== 0) {
      undo.push(() => exec("userdel", [SERVICE_USER]).catch(() => undefined));
      wrote.push(`the user ${SERVICE_USER}`);
      await run([
        {
          file: "useradd",
          args: [
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
          ],
          why: `system user ${SERVICE_USER}`,
        },
      ]);
    }
    await run([
      { file: "systemctl", args: ["daemon-reload"], why: "load the unit files" },
      { file: "systemctl", args: ["enable", CONNECTOR_UNIT, MONITOR_UNIT], why: "start at boot" },
    ]);
    return { credential: credential !== null };
  } catch (error) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    if (undo.length > 0) out(`The install failed; removed again what it wrote: ${wrote.join(", ")}.`);
    throw error;
  }
}

/** Removes both units; the unit files go even when systemctl cannot run, so nothing is left behind. */
export async function uninstallSystemd(host: SystemdHost, run: RunSteps, dryRun: boolean): Promise<string> {
  let note = "";
  if (host.systemdRunning()) {
    await run([
      {
        file: "systemctl",
        args: ["disable", "--now", MONITOR_UNIT, CONNECTOR_UNIT],
        accept: [1, 5],
        why: "stop and disable",
      },
    ]);
  } else note = " systemd is not running, so nothing was stopped.";
  if (!dryRun) for (const name of [CONNECTOR_UNIT, MONITOR_UNIT]) await rm(join(host.unitDir, name), { force: true });
  if (host.systemdRunning()) await run([{ file: "systemctl", args: ["daemon-reload"], why: "forget the unit files" }]);
  return note;
}
