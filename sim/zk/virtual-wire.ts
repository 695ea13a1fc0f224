/** Bandwidth and one-way delay applied to every byte the simulator sends or receives. */
export interface LinkOptions {
  readonly bandwidthBitsPerSec: number;
  readonly latencyMs: number;
}

interface Pending {
  readonly dueAt: number;
  readonly bytes: number;
  readonly deliver: () => void;
}

/**
 * One direction of a simulated link. Each send occupies the wire for bytes·8/bandwidth after the
 * wire is free, then arrives latencyMs later. Deliveries are planned on an absolute time line and a
 * firing timer delivers everything already due, so 1 ms timer granularity does not pile up into a
 * slower link than configured.
 */
export class VirtualWire {
  readonly #msPerByte: number;
  readonly #latencyMs: number;
  #wireFreeAt = 0;
  readonly #queue: Pending[] = [];
  #head = 0;
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #drainWaiters: { readonly below: number; readonly resolve: () => void }[] = [];

  constructor(link: LinkOptions) {
    this.#msPerByte = link.bandwidthBitsPerSec > 0 ? 8000 / link.bandwidthBitsPerSec : 0;
    this.#latencyMs = Math.max(0, link.latencyMs);
  }

  /** Bytes accepted but not yet delivered. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  send(bytes: number, deliver: () => void): void {
    if (this.#closed) return;
    const now = performance.now();
    const start = Math.max(now, this.#wireFreeAt);
    this.#wireFreeAt = start + bytes * this.#msPerByte;
    this.#queue.push({ dueAt: this.#wireFreeAt + this.#latencyMs, bytes, deliver });
    this.#queuedBytes += bytes;
    if (this.#queue.length - this.#head === 1) this.#arm();
  }

  /** Resolves once fewer than `bytes` are queued; lets a sender keep memory bounded on a slow link. */
  whenBelow(bytes: number): Promise<void> {
    if (this.#queuedBytes < bytes || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push({ below: bytes, resolve }));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#queue.length = 0;
    this.#head = 0;
    this.#queuedBytes = 0;
    for (const w of this.#drainWaiters.splice(0)) w.resolve();
  }

  #arm(): void {
    const next = this.#queue[this.#head];
    if (!next) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, next.dueAt - performance.now()));
  }

  #flush(): void {
    this.#timer = undefined;
    // Half a millisecond of slack: a timer never fires early by more than its granularity.
    const now = performance.now() + 0.5;
    while (!this.#closed) {
      const item = this.#queue[this.#head];
      if (!item || item.dueAt > now) break;
      this.#head++;
      this.#queuedBytes -= item.bytes;
      item.deliver();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    for (let i = this.#drainWaiters.length - 1; i >= 0; i--) {
      const w = this.#drainWaiters[i];
      if (w && this.#queuedBytes < w.below) {
        this.#drainWaiters.splice(i, 1);
        w.resolve();
      }
    }
    if (!this.#closed) this.#arm();
  }
}
