import type { Store } from "../store/store.ts";
import { openCache } from "./config-envelope.ts";
import { type ConfigParseResult, parseConfig } from "./config-schema.ts";

/**
 * The store's cached config, opened: none was ever applied; it does not decrypt (another node secret, a damaged
 * file); or it decrypts, with its JSON and what the schema makes of it. A failure to read the store itself throws.
 */
export type CachedConfigOutcome =
  | { readonly state: "none" }
  | { readonly state: "unreadable"; readonly version: number; readonly error: unknown }
  | {
      readonly state: "opened";
      readonly version: number;
      readonly appliedAt: number;
      readonly raw: unknown;
      readonly parsed: ConfigParseResult;
    };

/** The last good config as the connector cached it, sealed with the node's local-storage key. */
export function openCachedConfig(
  store: Pick<Store, "cachedConfig">,
  localKey: Uint8Array,
  nodeId: string,
): CachedConfigOutcome {
  const cached = store.cachedConfig();
  if (!cached) return { state: "none" };
  let raw: unknown;
  try {
    raw = openCache(localKey, nodeId, cached.version, cached.iv, cached.ciphertext);
  } catch (error) {
    return { state: "unreadable", version: cached.version, error };
  }
  return { state: "opened", version: cached.version, appliedAt: cached.appliedAt, raw, parsed: parseConfig(raw) };
}
