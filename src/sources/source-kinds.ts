import type { SourceConfig } from "../config/config-schema.ts";
import type { Finding } from "../core/check.ts";
import { DatabaseSource } from "./database/database-source.ts";
import { openSqlClient } from "./database/open-client.ts";
import type { Source } from "./source.ts";
import type { RunningSource, SourceCheck } from "./source-check.ts";
import { ZkSource } from "./zk/zk-source.ts";

/** What every source of one connector shares across the restarts of its worker. */
export interface SourceShared {
  /** What a source should say once per connector (a password sent without TLS), remembered across its restarts. */
  readonly warned: Set<string>;
}

/** Everything the connector needs to know of one kind of source. */
export interface SourceKind<C extends SourceConfig> {
  /** The source for one start of its worker: the supervisor makes a new one for every start. */
  readonly create: (config: C, shared: SourceShared) => Source;
  /**
   * Its `bioapi doctor` check: reads the source as its worker would, collects nothing. Loaded when called, so a
   * running connector does not carry the doctor's code (every module costs memory in the type stripper).
   */
  readonly check: SourceCheck<C>;
  /** What its backlog counts, in status and in the log. */
  readonly unit: "records" | "rows";
  /** The secrets its config carries: redacted from every log line, status text and error once it is applied. */
  readonly secrets: (config: C) => readonly string[];
}

type SourceKinds = { readonly [K in SourceConfig["kind"]]: SourceKind<Extract<SourceConfig, { kind: K }>> };

/**
 * One entry per source kind. A new kind adds its folder, its config schema and its entry here; the type is keyed by
 * every kind of the config's union, so the compiler refuses a kind without one.
 */
export const SOURCE_KINDS: SourceKinds = {
  database: {
    create: (config, shared) => new DatabaseSource({ config, connect: openSqlClient, warned: shared.warned }),
    check: async (target, signal) => (await import("./database/database-check.ts")).checkDatabase(target, signal),
    unit: "rows",
    secrets: ({ connection }) => ("password" in connection && connection.password ? [connection.password] : []),
  },
  zk: {
    create: (config) => new ZkSource(config),
    check: async (target, signal) => (await import("./zk/zk-check.ts")).checkTerminal(target, signal),
    unit: "records",
    secrets: () => [],
  },
};

function kindOf(config: SourceConfig): SourceKind<SourceConfig> {
  // The mapped type ties each kind to its config; indexing by a union loses that tie, which the entry restores.
  return SOURCE_KINDS[config.kind] as SourceKind<SourceConfig>;
}

/** Makes the sources of one connector, sharing what must outlive one worker's start. */
export function sourceFactory(): (config: SourceConfig) => Source {
  const shared: SourceShared = { warned: new Set<string>() };
  return (config) => kindOf(config).create(config, shared);
}

/** Checks one source with its kind's check. */
export function checkSource(
  config: SourceConfig,
  running: RunningSource | undefined,
  signal: AbortSignal,
): Promise<Finding[]> {
  return kindOf(config).check({ config, running }, signal);
}

/** A kind read back from a status answer is only a string: one this build does not know counts rows. */
export function backlogUnit(kind: string): "records" | "rows" {
  return Object.hasOwn(SOURCE_KINDS, kind) ? SOURCE_KINDS[kind as SourceConfig["kind"]].unit : "rows";
}

/** Every secret the config's sources carry. */
export function sourceSecrets(sources: readonly SourceConfig[]): string[] {
  return sources.flatMap((config) => [...kindOf(config).secrets(config)]);
}
