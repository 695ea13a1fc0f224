import type { Transport } from "./zk-device.ts";

/** One packet as the device received it, logged the moment it was framed. */
export interface ReceivedCommand {
  readonly command: number;
  readonly transport: Transport;
  /** performance.now() at receipt, before stalls, silence or the virtual wire's delay. */
  readonly at: number;
  readonly data: Buffer;
}

/** Keeps the last `limit` received packets, oldest first, in a ring so a long run stays bounded. */
export class ReceivedLog {
  readonly #limit: number;
  readonly #ring: ReceivedCommand[] = [];
  #next = 0;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  add(entry: ReceivedCommand): void {
    if (this.#ring.length < this.#limit) this.#ring.push(entry);
    else this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#limit;
  }

  entries(): ReceivedCommand[] {
    if (this.#ring.length < this.#limit) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }
}
