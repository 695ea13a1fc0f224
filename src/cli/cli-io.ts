import { BioError } from "../core/errors.ts";

/** What a command needs from the outside world; tests pass their own. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  stdin: process.stdin,
  env: process.env,
};

export function usageError(message: string): BioError {
  return new BioError("USAGE", message);
}
