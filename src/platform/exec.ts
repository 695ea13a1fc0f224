import { execFile } from "node:child_process";
import { BioError } from "../core/errors.ts";

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Written to the child's stdin: the only way a secret may reach a child process (never argv). */
  readonly input?: Uint8Array | string;
  readonly encoding?: "utf8" | "latin1";
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Runs an OS tool (sc.exe, reg.exe, systemctl, systemd-creds ...). A non-zero exit is a result, not an exception:
 * the callers map exit codes, because those tools localise their messages. A missing tool or a timeout throws.
 */
export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export const execTool: Exec = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      {
        timeout: options.timeoutMs ?? 30_000,
        ...(options.signal ? { signal: options.signal } : {}),
        encoding: options.encoding ?? "utf8",
        maxBuffer: 4 * 1024 * 1024,
        windowsHide: true,
        ...(options.env ? { env: options.env } : {}),
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          const e = error as NodeJS.ErrnoException & { killed?: boolean };
          if (e.code === "ENOENT") {
            reject(new BioError("USAGE", `${file} was not found on this machine.`, { cause: error }));
          } else if (e.name === "AbortError" || options.signal?.aborted) {
            reject(new BioError("ABORTED", `${file} ${args[0] ?? ""} was cancelled.`, { cause: error }));
          } else if (e.killed) {
            reject(
              new BioError(
                "TIMEOUT",
                `${file} ${args[0] ?? ""} did not finish within ${options.timeoutMs ?? 30_000} ms.`,
                {
                  cause: error,
                },
              ),
            );
          } else reject(error);
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    // A child that exits before reading its input (blocked by policy, bad arguments) must fail by its exit code,
    // not by an unhandled EPIPE on our side.
    child.stdin?.on("error", () => undefined);
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
