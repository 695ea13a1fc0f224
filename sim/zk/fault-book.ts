/** Faults a test can inject; each applies to the next `count` replies (default 1) unless noted. */
export type ZkFault =
  | { readonly kind: "drop-mid-transfer"; readonly count?: number }
  | { readonly kind: "stall"; readonly ms?: number }
  | { readonly kind: "garbage"; readonly count?: number }
  | { readonly kind: "split"; readonly count?: number }
  | { readonly kind: "merge"; readonly count?: number }
  | { readonly kind: "bad-checksum"; readonly count?: number }
  | { readonly kind: "clock-jump"; readonly ms: number }
  | { readonly kind: "reply-error"; readonly count?: number }
  /** Firmware that does not support a command: ACK_ERROR to every request with this code until clearFaults(). */
  | { readonly kind: "refuse-command"; readonly command: number }
  /**
   * A hung terminal: packets are still received (and logged) but nothing is answered or pushed until
   * clearFaults(). Unlike a stall, the swallowed requests are never answered later.
   */
  | { readonly kind: "silent" };

export const FAULT_KINDS = [
  "drop-mid-transfer",
  "stall",
  "garbage",
  "split",
  "merge",
  "bad-checksum",
  "clock-jump",
  "reply-error",
  "refuse-command",
  "silent",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Counted faults, i.e. those consumed one per reply. */
export type CountedFault = Exclude<FaultKind, "stall" | "clock-jump" | "refuse-command" | "silent">;

/**
 * Pending faults, shared by every connection of one simulator: whichever connection replies next
 * takes the fault, which is what a test with one client wants.
 */
export class FaultBook {
  readonly #remaining = new Map<CountedFault, number>();
  readonly #refused = new Set<number>();
  #isSilent = false;
  #stallUntil = 0;
  #stallTimer: NodeJS.Timeout | undefined;
  #stallWaiters: (() => void)[] = [];

  add(kind: CountedFault, count = 1): void {
    this.#remaining.set(kind, (this.#remaining.get(kind) ?? 0) + Math.max(1, count));
  }

  /** Consumes one occurrence of `kind`; true when the fault should apply now. */
  take(kind: CountedFault): boolean {
    const left = this.#remaining.get(kind) ?? 0;
    if (left <= 0) return false;
    if (left === 1) this.#remaining.delete(kind);
    else this.#remaining.set(kind, left - 1);
    return true;
  }

  /** Peeks without consuming; drop-mid-transfer waits for a bulk reply before it is taken. */
  has(kind: CountedFault): boolean {
    return (this.#remaining.get(kind) ?? 0) > 0;
  }

  /** Stops every reply until `ms` from now, or until clear() when ms is undefined. */
  stall(ms: number | undefined): void {
    this.#stallUntil = ms === undefined ? Number.POSITIVE_INFINITY : Math.max(this.#stallUntil, Date.now() + ms);
    clearTimeout(this.#stallTimer);
    if (Number.isFinite(this.#stallUntil)) {
      this.#stallTimer = setTimeout(() => this.#releaseStall(), Math.max(0, this.#stallUntil - Date.now()));
    }
  }

  get isStalled(): boolean {
    return Date.now() < this.#stallUntil;
  }

  /** Resolves when no stall is active. */
  whenNotStalled(): Promise<void> {
    if (!this.isStalled) return Promise.resolve();
    return new Promise((resolve) => this.#stallWaiters.push(resolve));
  }

  silence(): void {
    this.#isSilent = true;
  }

  get isSilent(): boolean {
    return this.#isSilent;
  }

  refuse(command: number): void {
    this.#refused.add(command);
  }

  refuses(command: number): boolean {
    return this.#refused.has(command);
  }

  clear(): void {
    this.#isSilent = false;
    this.#remaining.clear();
    this.#refused.clear();
    this.#releaseStall();
  }

  #releaseStall(): void {
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#stallUntil = 0;
    const waiters = this.#stallWaiters;
    this.#stallWaiters = [];
    for (const w of waiters) w();
  }
}
