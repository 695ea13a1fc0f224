import { readFileSync } from "node:fs";
import { z } from "zod";
import { type ConfigIssue, checkConfigRules, describeIssues, issueSentence, type RawIssue } from "./config-rules.ts";

export type { ConfigIssue } from "./config-rules.ts";

export class ConfigInvalidError extends Error {
  override readonly name = "ConfigInvalidError";
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(`configuration is invalid: ${issueSentence(issues)}`);
    this.issues = issues;
  }
}

let loaded: { readonly json: Record<string, unknown>; readonly zod: z.ZodType } | undefined;

/** Set by the single-executable build, which carries the schema file inside (see scripts/package.ts). */
declare const __BIOAPI_EMBEDDED__: Readonly<Record<string, string>> | undefined;

/**
 * The structure is the published contract, so it is read from docs/ rather than shared with src/; the rules JSON
 * Schema cannot state come from config-rules.ts, the checked copy of the connector's.
 */
function schema(): { readonly json: Record<string, unknown>; readonly zod: z.ZodType } {
  if (loaded === undefined) {
    const text =
      typeof __BIOAPI_EMBEDDED__ === "object" && __BIOAPI_EMBEDDED__["config.schema.json"]
        ? __BIOAPI_EMBEDDED__["config.schema.json"]
        : readFileSync(new URL("../docs/config.schema.json", import.meta.url), "utf8");
    const json = JSON.parse(text) as Record<string, unknown>;
    loaded = { json, zod: z.fromJSONSchema(json) };
  }
  return loaded;
}

/** Every issue with its path, worded as the connector words it; empty when the config is valid. */
export function validateConfig(config: unknown): ConfigIssue[] {
  const { json, zod } = schema();
  const result = zod.safeParse(config);
  if (!result.success) return describeIssues(result.error.issues as readonly RawIssue[], json, config);
  return checkConfigRules(result.data as Parameters<typeof checkConfigRules>[0]);
}
