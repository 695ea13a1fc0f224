import { isSingleExecutable } from "./native.ts";

let sea: boolean | undefined;

/** Must be awaited once at start-up (main does) so that selfCommand can answer synchronously. */
export async function detectSelf(): Promise<void> {
  sea = await isSingleExecutable();
}

/**
 * How to start this same program again: the single executable alone, or the pinned node with the entry script.
 * Used for the monitor's child and for the command lines written into service definitions.
 */
export function selfCommand(): string[] {
  if (sea) return [process.execPath];
  const script = process.argv[1];
  return script ? [process.execPath, script] : [process.execPath];
}
