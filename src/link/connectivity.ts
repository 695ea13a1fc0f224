import type { Clock } from "../core/clock.ts";
import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import type { CloudClient } from "./cloud-client.ts";

export const CONNECTIVITY_STATES = ["unknown", "online", "offline"] as const;
export type ConnectivityState = (typeof CONNECTIVITY_STATES)[number];

export interface ConnectivityChange {
  readonly state: ConnectivityState;
  readonly at: string;
  readonly reason: string;
}

/** What connectivity reads from the config on every use (config/'s `connectivity` section satisfies it). */
export interface ConnectivitySettings {
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly failuresBeforeOffline: number;
}

export interface ConnectivityOptions {
  readonly client: CloudClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: () => ConnectivitySettings;
}

const HISTORY = 50;

/**
 * Decides whether the cloud is reachable: probes /v1/health and takes the shipper's failures as evidence. A change
 * of state is logged once, not once per tick.
 */
export class Connectivity {
  readonly #o: ConnectivityOptions;
  readonly #changed = new Notifier();
  readonly #wake = new Notifier();
  readonly #history: ConnectivityChange[] = [];
  readonly #listeners = new Set<(state: ConnectivityState) => void>();
  #state: ConnectivityState = "unknown";
  #failures = 0;

  constructor(options: ConnectivityOptions) {
    this.#o = options;
  }

  get state(): ConnectivityState {
    return this.#state;
  }

  get isOnline(): boolean {
    return this.#state === "online";
  }

  history(): readonly ConnectivityChange[] {
    return this.#history;
  }

  reportSuccess(): void {
    this.#failures = 0;
    this.#set("online", "cloud answered");
  }

  /** Evidence of loss from any request (shipper, config fetch); a probe follows at once to confirm it. */
  reportFailure(error: unknown): void {
    this.#failures++;
    if (this.#failures >= this.#o.config().failuresBeforeOffline) this.#set("offline", describeError(error).message);
    else this.#wake.notify();
  }

  /** Probe now, e.g. because the probe interval changed with a new config. */
  poke(): void {
    this.#wake.notify();
  }

  #set(state: ConnectivityState, reason: string): void {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    const change = { state, at: new Date(this.#o.clock.now()).toISOString(), reason };
    this.#history.push(change);
    if (this.#history.length > HISTORY) this.#history.shift();
    if (state === "offline") this.#o.logger.warn("Cloud unreachable: pausing until it answers again.", { reason });
    else if (previous === "offline") this.#o.logger.info("Cloud reachable again: resuming.");
    else this.#o.logger.info("Cloud reachable.");
    this.#changed.notify();
    for (const listener of this.#listeners) listener(state);
  }

  /** Calls `listener` on every change of state; returns the unsubscribe function. */
  subscribe(listener: (state: ConnectivityState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when online. Rejects only on abort. */
  async waitOnline(signal: AbortSignal): Promise<void> {
    while (!this.isOnline) await this.#changed.wait(60_000, signal);
  }

  /** Resolves at the next state change or after `ms`. */
  waitChange(ms: number, signal: AbortSignal): Promise<void> {
    return this.#changed.wait(ms, signal);
  }

  async probe(signal: AbortSignal): Promise<void> {
    const { probeTimeoutMs } = this.#o.config();
    try {
      const response = await this.#o.client.request({
        method: "GET",
        path: "/v1/health",
        timeoutMs: probeTimeoutMs,
        signal,
        unsigned: true,
      });
      if (response.status === 200) this.reportSuccess();
      else this.reportFailure(new Error(`health answered ${response.status}`));
    } catch (error) {
      if (signal.aborted) throw error;
      this.reportFailure(error);
    }
  }

  /** The probe loop; started through spawnTask. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.probe(signal);
      const { probeIntervalMs } = this.#o.config();
      // A first failure is confirmed quickly, so a real loss pauses the workers within about one interval.
      const confirming = this.#failures > 0 && this.#state !== "offline";
      await this.#wake
        .wait(confirming ? Math.min(probeIntervalMs / 4, 500) : probeIntervalMs, signal)
        .catch(() => undefined);
    }
  }
}
