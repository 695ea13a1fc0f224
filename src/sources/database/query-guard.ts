import { BioError } from "../../core/errors.ts";
import type { QueryOptions } from "./sql-client.ts";

/**
 * Settles with `work`, or rejects as soon as the signal aborts or the timeout passes, after calling `cancel` (which
 * tells the server to stop and drops the connection). The driver's own promise is left to settle on its own; its
 * rejection is swallowed so it cannot surface as an unhandled rejection.
 */
export function guardQuery<T>(
  work: Promise<T>,
  options: QueryOptions,
  cancel: () => void,
  describe: () => string,
): Promise<T> {
  if (options.signal.aborted) {
    cancel();
    work.catch(() => undefined);
    return Promise.reject(options.signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
    };
    const stop = (error: unknown) => {
      if (settled) return;
      finish();
      cancel();
      reject(error);
    };
    const onAbort = () => stop(options.signal.reason);
    const timer = setTimeout(
      () =>
        stop(
          new BioError("DB_QUERY", `${describe()} took longer than ${options.timeoutMs} ms and was cancelled.`, {
            hint: "Check that the index the preset expects exists (bioapi doctor names it), or raise queryTimeoutMs.",
          }),
        ),
      options.timeoutMs,
    );
    options.signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        if (settled) return;
        finish();
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        finish();
        reject(error);
      },
    );
  });
}

/** How long `close()` waits for a pool to end before it gives up on connections still out (they are dropped). */
export const CLOSE_TIMEOUT_MS = 5000;

/** Resolves when `ending` settles or after `ms`, whichever is first: a pool's end() must not hold a stop for ever. */
export async function within(ending: Promise<unknown>, ms = CLOSE_TIMEOUT_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    ending.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref?.();
    }),
  ]);
  clearTimeout(timer);
}
