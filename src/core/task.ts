import { sleep } from "./abort.ts";
import { Backoff } from "./backoff.ts";
import { isAbortError } from "./errors.ts";
import type { Logger } from "./logger.ts";

export interface TaskHandle {
  readonly name: string;
  /** Settles when the task has ended for good (signal aborted). Never rejects. */
  readonly done: Promise<void>;
}

export interface SpawnTaskOptions {
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly restartInitialMs?: number;
  readonly restartMaxMs?: number;
  readonly onError?: (error: unknown) => void;
}

/**
 * The only way a background loop is started. It logs a failure, restarts the loop with backoff, and ends when the
 * loop returns or the signal aborts, so no promise floats and no loop dies silently.
 */
export function spawnTask(
  name: string,
  loop: (signal: AbortSignal) => Promise<void>,
  options: SpawnTaskOptions,
): TaskHandle {
  const { logger, signal } = options;
  const backoff = new Backoff({ initialMs: options.restartInitialMs ?? 500, maxMs: options.restartMaxMs ?? 30_000 });
  const run = async () => {
    while (!signal.aborted) {
      const startedAt = Date.now();
      try {
        // A loop that returns has finished its work; only a failure restarts it.
        await loop(signal);
        return;
      } catch (error) {
        if (signal.aborted && isAbortError(error)) return;
        if (signal.aborted) return;
        options.onError?.(error);
        // A loop that ran healthy for a minute before failing starts its backoff afresh.
        if (Date.now() - startedAt > 60_000) backoff.reset();
        const delay = backoff.next();
        logger.error(`Task ${name} failed; restarting.`, { error, restartInMs: delay });
        try {
          await sleep(delay, signal);
        } catch {
          return;
        }
      }
    }
  };
  return { name, done: run() };
}
