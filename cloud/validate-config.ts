import { readFileSync } from "node:fs";
import { z } from "zod";

export interface ConfigIssue {
  /** Dotted path with [index] for arrays, `(root)` for the document itself. */
  readonly path: string;
  readonly message: string;
}

export class ConfigInvalidError extends Error {
  override readonly name = "ConfigInvalidError";
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(
      `configuration is invalid (docs/config.schema.json):\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`,
    );
    this.issues = issues;
  }
}

let compiled: z.ZodType | undefined;

/** Set by the single-executable build, which carries the schema file inside (see scripts/package.ts). */
declare const __BIOAPI_EMBEDDED__: Readonly<Record<string, string>> | undefined;

/** The schema is the published contract, so it is read from docs/ rather than shared with src/. */
function schema(): z.ZodType {
  if (compiled === undefined) {
    const text =
      typeof __BIOAPI_EMBEDDED__ === "object" && __BIOAPI_EMBEDDED__["config.schema.json"]
        ? __BIOAPI_EMBEDDED__["config.schema.json"]
        : readFileSync(new URL("../docs/config.schema.json", import.meta.url), "utf8");
    compiled = z.fromJSONSchema(JSON.parse(text));
  }
  return compiled;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

interface RawIssue {
  readonly code?: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly errors?: readonly (readonly RawIssue[])[];
}

/**
 * A source is one of several kinds (a `oneOf` in the schema), and a failed union only says "Invalid input". The
 * branch whose `kind` matched is the one the author meant, so its issues are reported instead, with full paths.
 */
function flatten(issue: RawIssue, prefix: readonly PropertyKey[]): ConfigIssue[] {
  const at = [...prefix, ...issue.path];
  if (issue.code === "invalid_union" && issue.errors && issue.errors.length > 0) {
    const meant = issue.errors.filter((branch) => !branch.some((i) => i.path.length === 1 && i.path[0] === "kind"));
    if (meant.length === 1 && meant[0]) return meant[0].flatMap((i) => flatten(i, at));
    if (meant.length === 0) return [{ path: formatPath([...at, "kind"]), message: "is not one of the known kinds" }];
  }
  return [{ path: formatPath(at), message: issue.message }];
}

/** Every issue with its path; empty when the config is valid. */
export function validateConfig(config: unknown): ConfigIssue[] {
  const result = schema().safeParse(config);
  if (result.success) return [];
  return result.error.issues.flatMap((issue) => flatten(issue as RawIssue, []));
}
