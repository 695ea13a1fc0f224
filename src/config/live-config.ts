import { type ConnectorConfig, connectorConfigSchema } from "./config-schema.ts";

/** Before any config arrives: no sources, every default. */
export const DEFAULT_CONFIG: ConnectorConfig = connectorConfigSchema.parse({ schemaVersion: 1, sources: [] });

/**
 * The config the connector runs now. Parts read `current` on every use, so a new version reaches them without a
 * restart; the few that must act on a change (workers, connectivity, heartbeat, redaction) subscribe, and are told
 * in the order they subscribed.
 */
export class LiveConfig {
  #config: ConnectorConfig;
  #received = false;
  readonly #listeners: Array<(config: ConnectorConfig) => void> = [];

  constructor(initial: ConnectorConfig = DEFAULT_CONFIG) {
    this.#config = initial;
  }

  get current(): ConnectorConfig {
    return this.#config;
  }

  /** False until a config (cached or fetched) has been set: until then the defaults run, with no sources. */
  get received(): boolean {
    return this.#received;
  }

  set(config: ConnectorConfig): void {
    this.#config = config;
    this.#received = true;
    for (const listener of [...this.#listeners]) listener(config);
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: (config: ConnectorConfig) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }
}
