import type { Clock } from "../core/clock.ts";
import { BioError, describeError, isAbortError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import { clause } from "../core/sentence.ts";
import { type CloudClient, cloudErrorText, isTransportFailure } from "../link/cloud-client.ts";
import type { NodeKeys } from "../link/node-keys.ts";
import type { Store } from "../store/store.ts";
import { decryptEnvelope, parseEnvelope, sealCache } from "./config-envelope.ts";
import { issueSentence } from "./config-rules.ts";
import { type ConnectorConfig, parseConfig } from "./config-schema.ts";
import { openCachedConfig } from "./open-cached-config.ts";

export interface AppliedConfig {
  readonly version: number;
  readonly config: ConnectorConfig;
}

export type FetchOutcome = "applied" | "unchanged" | "no-config" | "rejected";

export interface ConfigChannelStatus {
  readonly version: number | null;
  readonly appliedAt: string | null;
  readonly lastFetchAt: string | null;
  readonly lastError: { code: string; message: string } | null;
}

export interface ConfigChannelOptions {
  readonly client: CloudClient;
  readonly keys: NodeKeys;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onApply: (applied: AppliedConfig) => void;
  readonly requestTimeoutMs?: number;
  /** Told when the cloud could not be reached at all: evidence for the connectivity monitor. */
  readonly onUnreachable?: (error: unknown) => void;
}

/**
 * Keeps the running config in step with the cloud: fetch with ETag, decrypt, validate, apply only a newer
 * version, cache it encrypted. Anything wrong with a new version is reported and the last good config keeps running.
 */
export class ConfigChannel {
  readonly #o: ConfigChannelOptions;
  readonly #wake = new Notifier();
  #current: AppliedConfig | undefined;
  #appliedAt: number | null = null;
  #lastFetchAt: number | null = null;
  #lastError: { code: string; message: string } | null = null;
  #lastLogged = "";

  constructor(options: ConfigChannelOptions) {
    this.#o = options;
  }

  get current(): AppliedConfig | undefined {
    return this.#current;
  }

  status(): ConfigChannelStatus {
    return {
      version: this.#current?.version ?? null,
      appliedAt: this.#appliedAt ? new Date(this.#appliedAt).toISOString() : null,
      lastFetchAt: this.#lastFetchAt ? new Date(this.#lastFetchAt).toISOString() : null,
      lastError: this.#lastError,
    };
  }

  /** Starts from the cached last good config, so the connector works offline from the first second. */
  loadCached(): AppliedConfig | undefined {
    const cached = openCachedConfig(this.#o.store, this.#o.keys.local, this.#o.client.nodeId);
    if (cached.state === "none") return undefined;
    try {
      if (cached.state === "unreadable") throw cached.error;
      const parsed = cached.parsed;
      if (!parsed.ok)
        throw new BioError("CONFIG_INVALID", `Cached config is invalid: ${issueSentence(parsed.issues)}.`);
      this.#current = { version: cached.version, config: parsed.config };
      this.#appliedAt = cached.appliedAt;
      this.#o.logger.info("Started from the cached config.", { version: cached.version });
      this.#o.onApply(this.#current);
      return this.#current;
    } catch (error) {
      this.#o.logger.warn("The cached config cannot be used; waiting for the cloud.", { error });
      return undefined;
    }
  }

  /** Ask for a fetch now (e.g. connectivity came back). */
  poke(): void {
    this.#wake.notify();
  }

  async fetchOnce(signal?: AbortSignal): Promise<FetchOutcome> {
    const { client, logger } = this.#o;
    const headers: Record<string, string> = {};
    if (this.#current) headers["if-none-match"] = `"${this.#current.version}"`;
    const response = await client.request({
      method: "GET",
      path: client.nodePath("config"),
      headers,
      timeoutMs: this.#o.requestTimeoutMs ?? 15_000,
      signal,
    });
    this.#lastFetchAt = this.#o.clock.now();
    if (response.status === 304) {
      this.#lastError = null;
      return "unchanged";
    }
    if (response.status === 404) {
      this.#report(
        new BioError("CONFIG_FETCH", "The cloud holds no config for this node yet.", {
          hint: "Set one: bioapi cloud config set NODE FILE.",
        }),
      );
      return "no-config";
    }
    if (response.status === 401 || response.status === 403) {
      throw new BioError("CLOUD_AUTH", `The cloud refused this node's signature (${cloudErrorText(response)}).`, {
        hint: "Check the host clock (timestamps must be within 5 minutes) and that the node secret is current (bioapi enroll).",
      });
    }
    if (response.status === 429 || response.status >= 500) {
      throw new BioError("CLOUD_UNAVAILABLE", `The cloud failed to serve the config: ${cloudErrorText(response)}.`, {
        context: { httpStatus: response.status },
        hint: "The cloud is unreachable or failing right now; the fetch is retried by itself, and the last good config keeps running.",
      });
    }
    if (response.status !== 200) {
      throw new BioError("CONFIG_FETCH", `Config fetch failed: ${clause(cloudErrorText(response))}.`);
    }
    try {
      const envelope = parseEnvelope(response.body);
      const current = this.#current?.version ?? 0;
      if (envelope.version <= current) {
        throw new BioError(
          "CONFIG_STALE",
          `The cloud offered config version ${envelope.version}, not newer than the running ${current}.`,
          {
            hint: "Publish the change as a new version; older versions are never applied.",
          },
        );
      }
      const raw = decryptEnvelope(this.#o.keys.config, client.nodeId, envelope);
      const parsed = parseConfig(raw);
      if (!parsed.ok) {
        throw new BioError(
          "CONFIG_INVALID",
          `Config version ${envelope.version} is invalid: ${issueSentence(parsed.issues)}.`,
          {
            hint: "Fix the config in the cloud and publish a new version; the last good config keeps running.",
          },
        );
      }
      const applied: AppliedConfig = { version: envelope.version, config: parsed.config };
      const sealed = sealCache(this.#o.keys.local, client.nodeId, applied.version, raw);
      this.#o.store.saveConfig({ version: applied.version, ...sealed });
      this.#current = applied;
      this.#appliedAt = this.#o.clock.now();
      this.#lastError = null;
      this.#lastLogged = "";
      logger.info("Applied a new config.", { version: applied.version, sources: parsed.config.sources.length });
      this.#o.onApply(applied);
      return "applied";
    } catch (error) {
      if (error instanceof BioError && error.code !== "CLOUD_PROTOCOL") {
        this.#report(error);
        return "rejected";
      }
      throw error;
    }
  }

  #report(error: BioError): void {
    this.#lastError = { code: error.code, message: error.message };
    // The same rejected version comes back every poll: say it once, keep it in status.
    if (this.#lastLogged !== error.message) {
      this.#lastLogged = error.message;
      this.#o.logger.warn("Config not applied; the last good config keeps running.", { error });
    }
  }

  /** The polling loop; started through spawnTask. */
  async run(signal: AbortSignal, intervalMs: () => number, isOnline: () => boolean): Promise<void> {
    while (!signal.aborted) {
      if (isOnline()) {
        try {
          await this.fetchOnce(signal);
        } catch (error) {
          if (isAbortError(error) && signal.aborted) return;
          // Only a transport failure is evidence of lost connectivity; a cloud answering 5xx is still there.
          if (isTransportFailure(error)) this.#o.onUnreachable?.(error);
          const d = describeError(error);
          this.#lastError = { code: d.code, message: d.message };
          if (this.#lastLogged !== d.message) {
            this.#lastLogged = d.message;
            this.#o.logger.warn("Config fetch failed; will retry.", { error });
          }
        }
      }
      await this.#wake.wait(intervalMs(), signal);
    }
  }
}
