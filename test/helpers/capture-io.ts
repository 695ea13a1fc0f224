import { PassThrough } from "node:stream";
import type { CliIo } from "../../src/cli/cli-io.ts";

/** A CliIo that keeps what a command prints, stdout and stderr in order, for assertions. */
export function captureIo(): CliIo & { text(): string; stdout: string[]; stderr: string[] } {
  const lines: string[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    out: (t) => {
      lines.push(t);
      stdout.push(t);
    },
    err: (t) => {
      lines.push(t);
      stderr.push(t);
    },
    stdin: new PassThrough(),
    env: {},
    text: () => lines.join("\n"),
    stdout,
    stderr,
  };
}
