import type { SourceConfig } from "../config/config-schema.ts";
import { DatabaseSource } from "./database/database-source.ts";
import { openSqlClient } from "./database/open-client.ts";
import type { Source } from "./source.ts";
import { ZkSource } from "./zk/zk-source.ts";

/** What every source of one connector shares across the restarts of its worker. */
export interface SourceShared {
  /** What a source should say once per connector (a password sent without TLS), remembered across its restarts. */
  readonly warned: Set<string>;
}

type SourceMakers = {
  readonly [K in SourceConfig["kind"]]: (config: Extract<SourceConfig, { kind: K }>, shared: SourceShared) => Source;
};

/** One line per source kind: a new kind adds its folder, its config schema and its line here. */
const SOURCE_KINDS: SourceMakers = {
  database: (config, shared) => new DatabaseSource({ config, connect: openSqlClient, warned: shared.warned }),
  zk: (config) => new ZkSource(config),
};

/** Makes the sources of one connector. The supervisor makes a new source for every start of a worker. */
export function sourceFactory(): (config: SourceConfig) => Source {
  const shared: SourceShared = { warned: new Set<string>() };
  return (config) => (SOURCE_KINDS[config.kind] as (c: SourceConfig, s: SourceShared) => Source)(config, shared);
}
