import { sleep } from "./abort.ts";
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
}

/** Waits for `work` until `deadline`: a part that ignores its abort must not hold the stop past its bound. */
export async function within(work: Promise<unknown>, deadline: number, clock: Clock): Promise<boolean> {
  let late = false;
  const timeout = sleep(Math.max(100, deadline - clock.now())).then(() => {
    late = true;
  });
  await Promise.race([work.then(() => undefined), timeout]);
  return !late;
}

/** A part that is one background loop, started through spawnTask (logged, restarted with backoff) and aborted by stop. */
export function loopPart(
  name: string,
  loop: (signal: AbortSignal) => Promise<void>,
  options: { readonly logger: Logger; readonly clock: Clock },
): Part {
  const controller = new AbortController();
  let task: TaskHandle | undefined;
  return {
    name,
    start(signal) {
      const both = AbortSignal.any([signal, controller.signal]);
      task = spawnTask(name, loop, { logger: options.logger.child(name), signal: both });
    },
    async stop(deadline) {
      controller.abort(new DOMException(`${name} stopping`, "AbortError"));
      if (task) await within(task.done, deadline, options.clock);
      return undefined;
    },
  };
}

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

  /** True when no part reported unfinished work. */
  async stop(boundMs: number): Promise<boolean> {
    const deadline = this.#clock.now() + boundMs;
    let clean = true;
    for (const part of this.#started.splice(0).reverse()) {
      if ((await part.stop(deadline)) === false) clean = false;
    }
    this.#controller.abort(new DOMException("connector stopped", "AbortError"));
    return clean;
  }
}
