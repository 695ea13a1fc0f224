import type { Clock } from "./clock.ts";
import type { Logger } from "./logger.ts";
import { spawnTask, type TaskHandle } from "./task.ts";

/**
 * One part of a running connector, in the spirit of zigbee2mqtt's extensions: started once, in its place in one
 * ordered list, and stopped once, in reverse. `start` returns when the part is up (a loop it runs keeps running
 * under `signal`); `stop` returns by `deadline` (epoch ms) whatever the part's work is doing, and answers `false`
 * only when it had to leave work unfinished.
 */
export interface Part {
  readonly name: string;
  start(signal: AbortSignal): Promise<void> | void;
  stop(deadline: number): Promise<boolean | undefined> | boolean | undefined;
  /**
   * Told, once a part above it has stopped, that its own stop is coming: a loop aborts now, so every loop below
   * winds down together instead of one after another.
   */
  abort?(): void;
}

/** Waits for `work` until `deadline`: a part that ignores its abort must not hold the stop past its bound. */
export async function within(work: Promise<unknown>, deadline: number, clock: Clock): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - clock.now()));
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A part that is one background loop, started through spawnTask (logged, restarted with backoff) and aborted by stop. */
export function loopPart(
  name: string,
  loop: (signal: AbortSignal) => Promise<void>,
  options: { readonly logger: Logger; readonly clock: Clock },
): Part {
  const controller = new AbortController();
  let task: TaskHandle | undefined;
  const abort = () => controller.abort(new DOMException(`${name} stopping`, "AbortError"));
  return {
    name,
    start(signal) {
      const both = AbortSignal.any([signal, controller.signal]);
      task = spawnTask(name, loop, { logger: options.logger.child(name), signal: both });
    },
    abort,
    async stop(deadline) {
      abort();
      if (task) await within(task.done, deadline, options.clock);
      return undefined;
    },
  };
}

/** What the parts below the first still get to wind down when the first took the whole bound. */
const GRACE_MS = 100;

/**
 * The parts of one connector in start order. A start that fails stops what had started, in reverse, and rethrows;
 * a stop runs every part's stop in reverse within one bound, each given what is left of it.
 */
export class Parts {
  readonly #parts: readonly Part[];
  readonly #clock: Clock;
  readonly #controller = new AbortController();
  readonly #started: Part[] = [];

  constructor(parts: readonly Part[], clock: Clock) {
    this.#parts = parts;
    this.#clock = clock;
  }

  /** `rollbackMs` bounds the stop of what had started when a later part fails to start. */
  async start(rollbackMs = 10_000): Promise<void> {
    try {
      for (const part of this.#parts) {
        // A part whose start throws has cleaned up after itself; only the ones that are up get a stop.
        await part.start(this.#controller.signal);
        this.#started.push(part);
      }
    } catch (error) {
      await this.stop(rollbackMs);
      throw error;
    }
  }

  /**
   * True when no part reported unfinished work. The first part to stop (the workers) may take the whole bound; the
   * parts below it are then aborted together and still get GRACE_MS to end what they were in.
   */
  async stop(boundMs: number): Promise<boolean> {
    const deadline = this.#clock.now() + boundMs;
    let floor = Number.NEGATIVE_INFINITY;
    let clean = true;
    const parts = this.#started.splice(0).reverse();
    for (const [i, part] of parts.entries()) {
      if ((await part.stop(Math.max(deadline, floor))) === false) clean = false;
      if (i > 0) continue;
      floor = this.#clock.now() + GRACE_MS;
      for (const below of parts.slice(1)) below.abort?.();
    }
    this.#controller.abort(new DOMException("connector stopped", "AbortError"));
    return clean;
  }
}
