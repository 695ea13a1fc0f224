import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { waitFor } from "./wait-for.ts";

export const MOSQUITTO = "/usr/sbin/mosquitto";
export const MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd";

/**
 * Why a Mosquitto test cannot run here, or undefined when it can. Under CI a missing broker is a failure, not a skip:
 * the test then runs and fails on it.
 */
export function mosquittoMissing(): string | undefined {
  if (existsSync(MOSQUITTO) || process.env.CI) return undefined;
  const why = `SKIPPED: ${MOSQUITTO} is not installed (apt-get install mosquitto mosquitto-clients)`;
  process.stderr.write(`${why}\n`);
  return why;
}

/** The machine's own broker at 127.0.0.1:1883 answers, or why the test skips (never under CI). */
export async function systemBrokerMissing(): Promise<string | undefined> {
  const up = await new Promise<boolean>((resolve) => {
    const socket = connect(1883, "127.0.0.1");
    socket.setTimeout(2000, () => socket.destroy());
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("close", () => resolve(false));
  });
  if (up || process.env.CI) return undefined;
  const why = "SKIPPED: no MQTT broker at 127.0.0.1:1883 (start one: mosquitto -d -c /etc/mosquitto/mosquitto.conf)";
  process.stderr.write(`${why}\n`);
  return why;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Mosquitto extends AsyncDisposable {
  readonly port: number;
  readonly log: string;
  /** The running broker's pid (to SIGSTOP it, say), or undefined while it is stopped. */
  readonly pid: number | undefined;
  /** Stops the broker (SIGTERM saves its persistence file; SIGKILL does not). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port, with the same config and persistence. */
  start(): Promise<void>;
}

/** Its own Mosquitto on a free port, config lines beside the listener, everything kept under `dir`. */
export async function startMosquitto(dir: string, lines: readonly string[] = [], port?: number): Promise<Mosquitto> {
  const chosen = port ?? (await freePort());
  const conf = join(dir, "mosquitto.conf");
  const log = join(dir, "mosquitto.log");
  const asRoot = process.getuid?.() === 0;
  await writeFile(
    conf,
    [
      // Run as root it would switch to the mosquitto user, which cannot read the test's private files.
      ...(asRoot ? ["user root"] : []),
      "persistence true",
      `persistence_location ${dir}/`,
      `log_dest file ${log}`,
      "log_type all",
      ...(lines.some((l) => l.startsWith("listener")) ? [] : [`listener ${chosen} 127.0.0.1`]),
      ...lines.map((l) => l.replaceAll("{port}", String(chosen))),
      "",
    ].join("\n"),
  );
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child = proc;
    await waitFor(
      `mosquitto on port ${chosen}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`mosquitto exited ${proc.exitCode}: ${stderr}`);
        return await canConnect(chosen);
      },
      10_000,
      50,
    );
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    await exited;
  };
  await start();
  return {
    port: chosen,
    log,
    get pid() {
      return child?.exitCode === null ? child.pid : undefined;
    },
    stop,
    start,
    [Symbol.asyncDispose]: () => stop("SIGKILL"),
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A Mosquitto password file holding one user. */
export function passwordFile(path: string, user: string, password: string): void {
  execFileSync(MOSQUITTO_PASSWD, ["-b", "-c", path, user, password], { stdio: "ignore" });
}
