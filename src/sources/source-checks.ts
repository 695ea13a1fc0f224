import type { SourceConfig } from "../config/config-schema.ts";
import type { Finding } from "../core/check.ts";
import { checkDatabase } from "./database/database-check.ts";
import type { RunningSource, SourceCheck } from "./source-check.ts";
import { checkTerminal } from "./zk/zk-check.ts";

type SourceChecks = { readonly [K in SourceConfig["kind"]]: SourceCheck<Extract<SourceConfig, { kind: K }>> };

/** Each source kind's health check: a new kind brings its check with one line here (the compiler asks for it). */
export const SOURCE_CHECKS: SourceChecks = {
  zk: checkTerminal,
  database: checkDatabase,
};

/** Checks one source with its kind's check. */
export function checkSource(
  config: SourceConfig,
  running: RunningSource | undefined,
  signal: AbortSignal,
): Promise<Finding[]> {
  const check = SOURCE_CHECKS[config.kind] as SourceCheck<SourceConfig>;
  return check({ config, running }, signal);
}
