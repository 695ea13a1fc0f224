import { type ChildProcess, spawn } from "node:child_process";
import { BioError } from "../core/errors.ts";
import type { Exec } from "../platform/exec.ts";
import type { ServiceManagerApi } from "../platform/windows/service-manager-api.ts";

/** What the service manager says about the connector service. */
export interface ServiceSnapshot {
  readonly state: "running" | "starting" | "stopping" | "stopped";
  readonly pid: number | null;
  /**
   * For a stopped service, whether it stopped on purpose: an orderly stop (exit 0, `sc stop`, `systemctl stop`)
   * is an administrator's decision the monitor must respect; a crash is not.
   */
  readonly stoppedCleanly: boolean;
  /** How it ended, for the record ("exit code 1", "signal SIGKILL", "Windows error 1067"). */
  readonly exit: string | null;
}

/** The monitor's hands: ask the service manager, start the service, end a hung one. */
export interface ServiceController {
  readonly kind: "process" | "systemd" | "windows";
  query(signal?: AbortSignal): Promise<ServiceSnapshot>;
  start(signal?: AbortSignal): Promise<void>;
  /** Ends a hung or stalled connector at once: it cannot be trusted to handle a graceful stop. */
  kill(signal?: AbortSignal): Promise<void>;
  /** The connector's last output lines, when the controller sees them (process mode). */
  lastOutput(): readonly string[];
  /** The monitor is stopping: in process mode the child goes with it (gracefully). */
  close(): Promise<void>;
}

/**
 * Process mode: the monitor itself starts the connector as its child. For hosts without a service manager
 * (containers, development) and for the end-to-end tests, which exercise the same monitor logic with real processes.
 */
export class ChildProcessController implements ServiceController {
  readonly kind = "process";
  readonly #command: readonly string[];
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #last: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly #tail: string[] = [];

  constructor(command: readonly string[]) {
    this.#command = command;
  }

  async query(): Promise<ServiceSnapshot> {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) {
      return { state: "running", pid: this.#child.pid ?? null, stoppedCleanly: false, exit: null };
    }
    const last = this.#last;
    return {
      state: "stopped",
      pid: null,
      stoppedCleanly: last !== null && last.code === 0,
      exit: last ? (last.signal ? `signal ${last.signal}` : `exit code ${last.code}`) : null,
    };
  }

  async start(): Promise<void> {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) return;
    const [file, ...args] = this.#command;
    if (!file) throw new BioError("USAGE", "No connector command to start.");
    const child = spawn(file, args, { stdio: ["ignore", "inherit", "pipe"], windowsHide: true });
    this.#child = child;
    this.#last = null;
    child.stderr?.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        this.#tail.push(line.slice(0, 500));
        if (this.#tail.length > 5) this.#tail.shift();
      }
    });
    this.#exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#last = { code, signal };
        resolve();
      });
      child.once("error", (error) => {
        this.#tail.push(`could not start: ${error.message}`);
        this.#last = { code: 127, signal: null };
        resolve();
      });
    });
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await this.#exited;
  }

  lastOutput(): readonly string[] {
    return [...this.#tail];
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Parses `systemctl show -p ActiveState,SubState,Result,MainPID,ExecMainCode,ExecMainStatus`. */
export function parseSystemctlShow(stdout: string): ServiceSnapshot {
  const f = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) f.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const active = f.get("ActiveState") ?? "unknown";
  const pid = Number(f.get("MainPID") ?? 0) || null;
  const result = f.get("Result") ?? "success";
  const state =
    active === "active" || active === "reloading"
      ? "running"
      : active === "activating"
        ? "starting"
        : active === "deactivating"
          ? "stopping"
          : "stopped";
  return {
    state,
    pid: state === "stopped" ? null : pid,
    // inactive + success: stopped by `systemctl stop` (or a clean exit); failed: a crash, watchdog or start limit.
    stoppedCleanly: active === "inactive" && result === "success",
    exit: state === "stopped" && result !== "success" ? `${result} (status ${f.get("ExecMainStatus") ?? "?"})` : null,
  };
}

export class SystemdController implements ServiceController {
  readonly kind = "systemd";
  readonly #unit: string;
  readonly #exec: Exec;

  constructor(unit: string, exec: Exec) {
    this.#unit = unit;
    this.#exec = exec;
  }

  async #systemctl(args: string[], signal?: AbortSignal): Promise<string> {
    const r = await this.#exec("systemctl", args, { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    if (r.code !== 0) {
      throw new BioError("SERVICE", `systemctl ${args[0]} ${this.#unit} failed (exit ${r.code}).`, {
        hint: "The monitor runs as root so that it may start and restart the connector; see journalctl -u cams-bioapi.",
        context: { stderr: r.stderr.trim().slice(0, 300) },
      });
    }
    return r.stdout;
  }

  async query(signal?: AbortSignal): Promise<ServiceSnapshot> {
    return parseSystemctlShow(
      await this.#systemctl(
        ["show", this.#unit, "-p", "ActiveState,SubState,Result,MainPID,ExecMainCode,ExecMainStatus"],
        signal,
      ),
    );
  }

  async start(signal?: AbortSignal): Promise<void> {
    // reset-failed clears the start limit, which would otherwise refuse the start after a crash loop.
    await this.#systemctl(["reset-failed", this.#unit], signal).catch(() => undefined);
    await this.#systemctl(["start", "--no-block", this.#unit], signal);
  }

  async kill(signal?: AbortSignal): Promise<void> {
    await this.#systemctl(["kill", "--signal=SIGKILL", this.#unit], signal);
  }

  lastOutput(): readonly string[] {
    return [];
  }

  async close(): Promise<void> {}
}

export class WindowsServiceController implements ServiceController {
  readonly kind = "windows";
  readonly #name: string;
  readonly #exec: Exec;
  readonly #scm: ServiceManagerApi;

  constructor(name: string, scm: ServiceManagerApi, exec: Exec) {
    this.#name = name;
    this.#scm = scm;
    this.#exec = exec;
  }

  async query(): Promise<ServiceSnapshot> {
    const q = await this.#scm.query(this.#name);
    const state =
      q.state === "running" || q.state === "paused"
        ? "running"
        : q.state === "start-pending"
          ? "starting"
          : q.state === "stop-pending"
            ? "stopping"
            : "stopped";
    const clean = q.win32ExitCode === 0 && q.serviceExitCode === 0;
    return {
      state,
      pid: q.pid,
      stoppedCleanly: state === "stopped" && clean,
      exit:
        state !== "stopped" || clean
          ? null
          : q.win32ExitCode === 1066
            ? `service exit code ${q.serviceExitCode}`
            : `Windows error ${q.win32ExitCode}`,
    };
  }

  async start(): Promise<void> {
    await this.#scm.start(this.#name);
  }

  async kill(signal?: AbortSignal): Promise<void> {
    const { pid } = await this.query();
    if (!pid) return;
    // A hung service ignores `sc stop`; the SCM counts the termination as a failure and runs its recovery actions.
    const r = await this.#exec("taskkill.exe", ["/F", "/PID", String(pid)], {
      timeoutMs: 30_000,
      ...(signal ? { signal } : {}),
    });
    if (r.code !== 0 && r.code !== 128) {
      throw new BioError("SERVICE", `taskkill could not end the connector (pid ${pid}, exit ${r.code}).`, {
        hint: "The monitor must run as LocalSystem (the installer's default).",
      });
    }
  }

  lastOutput(): readonly string[] {
    return [];
  }

  async close(): Promise<void> {}
}
