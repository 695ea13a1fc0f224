import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "./wait-for.ts";

export const BIN = new URL("../../bin/bioapi.mjs", import.meta.url).pathname;

/** Runs the CLI on the pinned runtime; `input` goes to stdin. Never throws on a non-zero exit. */
export function runBioapi(
  args: readonly string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/**
 * `bioapi run` as a real child process on the pinned runtime, its output collected. Disposing it kills it: declared
 * with `await using` after the test's directory, a connector left by a failed assertion no longer kept its test file
 * (and so the whole suite) running while it wrote into a removed directory.
 */
export class ConnectorProcess implements AsyncDisposable {
  readonly child: ChildProcess;
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(dataDir: string, extraArgs: readonly string[] = [], nodeFlags: readonly string[] = []) {
    this.child = spawn(
      process.execPath,
      [...nodeFlags, BIN, "run", "--data-dir", dataDir, "--log-format", "json", ...extraArgs],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child.stdout?.on("data", (d: Buffer) => this.output.push(d.toString()));
    this.child.stderr?.on("data", (d: Buffer) => this.output.push(d.toString()));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  static async started(
    dataDir: string,
    extraArgs: readonly string[] = [],
    nodeFlags: readonly string[] = [],
  ): Promise<ConnectorProcess> {
    const p = new ConnectorProcess(dataDir, extraArgs, nodeFlags);
    // A failure deadline only: on two busy cores a start was seen taking 7 s.
    await waitFor(
      "the connector's status endpoint",
      () => existsSync(join(dataDir, "status.json")) || p.child.exitCode !== null,
      60_000,
    );
    if (p.child.exitCode !== null) throw new Error(`connector exited early:\n${p.output.join("")}`);
    return p;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill("SIGKILL");
  }
}
