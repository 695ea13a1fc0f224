import type { ConnectorConfig } from "../config/config-schema.ts";
import type { LiveConfig } from "../config/live-config.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { type Part, within } from "../core/part.ts";
import type { Supervisor } from "./supervisor.ts";

/**
 * The supervisor as a part: it follows the live config (the cached one at start, each new version after), and
 * applies one version at a time: a second config arriving mid-restart waits for the first to settle.
 */
export class Workers implements Part {
  readonly name = "workers";
  readonly #supervisor: Supervisor;
  readonly #live: LiveConfig;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #applying: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(options: { supervisor: Supervisor; live: LiveConfig; logger: Logger; clock: Clock }) {
    this.#supervisor = options.supervisor;
    this.#live = options.live;
    this.#logger = options.logger;
    this.#clock = options.clock;
  }

  start(): void {
    this.#unsubscribe = this.#live.subscribe((config) => this.#apply(config.sources));
    if (this.#live.received) this.#apply(this.#live.current.sources);
  }

  #apply(sources: ConnectorConfig["sources"]): void {
    this.#applying = this.#applying
      .then(async () => {
        if (this.#stopped) return;
        await this.#supervisor.apply(sources);
      })
      .catch((error: unknown) => this.#logger.error("Applying the config failed.", { error }));
  }

  /** Sources stop first: an emit in progress commits (it is one synchronous transaction), the rest is abandoned. */
  async stop(deadline: number): Promise<boolean> {
    this.#stopped = true;
    this.#unsubscribe?.();
    const clean = await this.#supervisor.stop(Math.max(0, deadline - this.#clock.now()));
    // An apply waiting on a worker that ignores its abort must not hold the stop past its bound.
    await within(this.#applying, deadline, this.#clock);
    return clean;
  }
}
