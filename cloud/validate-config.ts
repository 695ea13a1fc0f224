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

/** The schema is the published contract, so it is read from docs/ rather than shared with src/. */
function schema(): z.ZodType {
  if (compiled === undefined) {
    const text = readFileSync(new URL("../docs/config.schema.json", import.meta.url), "utf8");
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

/** Every issue with its path; empty when the config is valid. */
export function validateConfig(config: unknown): ConfigIssue[] {
  const result = schema().safeParse(config);
  if (result.success) return [];
  return result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}
