/**
 * The configuration rules that JSON Schema cannot state (time zones, duplicate source ids, preset against columns)
 * and the wording of every validation issue. The connector's zod schema calls these; the reference cloud runs a
 * checked copy of this file (cloud/config-rules.ts, written by `npm run schema`) over docs/config.schema.json, so
 * `cloud config set` refuses exactly what the connector would refuse, in the same sentence. This file imports
 * nothing, so the copy stands alone.
 */

export interface ConfigIssue {
  /** Dotted path with [index] for arrays, `(root)` for the document itself. */
  readonly path: string;
  readonly message: string;
}

/** Adds one issue at `path`, relative to the value being checked. */
export type AddIssue = (path: readonly PropertyKey[], message: string) => void;

export const TIME_ZONE_MESSAGE = "must be an IANA time zone such as Asia/Kolkata or UTC";

export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const REGIONS = ["Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"];

/**
 * The zone a wrong one most likely meant: the same city under another region (India/Kolkata), else a near
 * spelling. The city is tried under each region because Intl lists only canonical names (Asia/Calcutta).
 */
function nearestTimeZone(value: string): string {
  const city = value.split("/").at(-1) ?? "";
  const spelled = city.charAt(0).toUpperCase() + city.slice(1);
  const moved = REGIONS.map((r) => `${r}/${spelled}`).find((z) => z !== value && isTimeZone(z));
  return moved ?? nearest(value, Intl.supportedValuesOf("timeZone"));
}

export function checkTimeZone(value: string, add: AddIssue): void {
  if (isTimeZone(value)) return;
  const near = nearestTimeZone(value);
  add([], near ? `${TIME_ZONE_MESSAGE}; did you mean "${near}"?` : TIME_ZONE_MESSAGE);
}

interface FilterLike {
  readonly op: string;
  readonly value?: unknown;
}

export function checkFilterCondition(c: FilterLike, add: AddIssue): void {
  const list = c.op === "in" || c.op === "notIn";
  const none = c.op === "isNull" || c.op === "notNull";
  if (none && c.value !== undefined) add(["value"], `${c.op} takes no value`);
  if (!none && c.value === undefined) add(["value"], `${c.op} needs a value`);
  if (list && c.value !== undefined && !Array.isArray(c.value)) add(["value"], `${c.op} needs a list`);
  if (!list && Array.isArray(c.value)) add(["value"], `${c.op} takes one value, not a list`);
}

interface DatabaseSourceLike {
  readonly preset?: string | undefined;
  readonly table?: string | undefined;
  readonly columns?: unknown;
}

export function checkDatabaseSource(s: DatabaseSourceLike, add: AddIssue): void {
  const preset = s.preset ?? "generic";
  if (preset === "generic") {
    if (!s.table) add(["table"], "generic sources need a table");
    if (!s.columns) add(["columns"], "generic sources need columns");
  } else if (s.columns) {
    add(["columns"], `preset ${preset} fixes the columns; use preset generic to map your own`);
  }
  if (preset === "etimetracklite" && s.table) add(["table"], "etimetracklite reads DeviceLogs_<M>_<YYYY> by itself");
}

export function checkSourceIds(sources: readonly { readonly id: string }[], add: AddIssue): void {
  const seen = new Set<string>();
  sources.forEach((source, index) => {
    if (seen.has(source.id)) add(["sources", index, "id"], `duplicate source id "${source.id}"`);
    seen.add(source.id);
  });
}

/** Sink ids are unique (delivery state is kept under them), and there is one enrolled cloud to deliver to. */
export function checkSinks(sinks: readonly { readonly id: string; readonly kind?: string }[], add: AddIssue): void {
  const seen = new Set<string>();
  let clouds = 0;
  sinks.forEach((sink, index) => {
    if (seen.has(sink.id)) add(["sinks", index, "id"], `duplicate sink id "${sink.id}"`);
    seen.add(sink.id);
    if (sink.kind === "cams-cloud" && ++clouds > 1)
      add(["sinks", index, "kind"], "at most one cams-cloud sink: there is one enrolled cloud");
  });
}

interface ConfigLike {
  readonly sources?: readonly {
    readonly id: string;
    readonly kind?: string;
    readonly timezone?: string;
    readonly filter?: readonly FilterLike[];
    readonly preset?: string;
    readonly table?: string;
    readonly columns?: unknown;
  }[];
  readonly sinks?: readonly { readonly id: string; readonly kind?: string }[];
}

/**
 * Every rule over a config whose structure is already valid, in the order the connector's schema applies them;
 * what the cloud runs after docs/config.schema.json passed.
 */
export function checkConfigRules(config: ConfigLike): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at =
    (prefix: readonly PropertyKey[]): AddIssue =>
    (path, message) =>
      issues.push({ path: formatPath([...prefix, ...path]), message });
  const sources = config.sources ?? [];
  sources.forEach((source, i) => {
    if (source.timezone !== undefined) checkTimeZone(source.timezone, at(["sources", i, "timezone"]));
    if (source.kind !== "database") return;
    for (const [j, c] of (source.filter ?? []).entries()) checkFilterCondition(c, at(["sources", i, "filter", j]));
    checkDatabaseSource(source, at(["sources", i]));
  });
  checkSourceIds(sources, at([]));
  if (config.sinks) checkSinks(config.sinks, at([]));
  return issues;
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

/** The one line the connector logs and the cloud prints when it refuses: `path: message; path: message`. */
export function issueSentence(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join("; ");
}

/** The parts of a zod issue the wording needs; both zod's own schemas and z.fromJSONSchema produce these. */
export interface RawIssue {
  readonly code?: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly keys?: readonly string[];
  readonly errors?: readonly (readonly RawIssue[])[];
  readonly note?: string;
  readonly discriminator?: string;
}

type JsonSchema = { readonly [key: string]: unknown };

function branches(node: JsonSchema): readonly JsonSchema[] | undefined {
  const list = node.oneOf ?? node.anyOf;
  return Array.isArray(list) ? (list as JsonSchema[]) : undefined;
}

function properties(node: JsonSchema): Record<string, JsonSchema> {
  return (node.properties as Record<string, JsonSchema> | undefined) ?? {};
}

/** The property whose `const` tells the branches of a union apart (`kind`, `engine`), if there is one. */
function discriminatorOf(options: readonly JsonSchema[]): string | undefined {
  const first = options[0];
  if (!first) return undefined;
  return Object.keys(properties(first)).find((key) =>
    options.every((o) => properties(o)[key] !== undefined && properties(o)[key]?.const !== undefined),
  );
}

function child(value: unknown, key: PropertyKey): unknown {
  return typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
}

/** Picks the branch of a discriminated union that `value` names; the node itself when it is no such union. */
function resolve(node: JsonSchema, value: unknown): JsonSchema {
  const options = branches(node);
  if (!options) return node;
  const key = discriminatorOf(options);
  if (key === undefined) return node;
  const meant = options.find((o) => properties(o)[key]?.const === child(value, key));
  return meant ? resolve(meant, value) : node;
}

interface Located {
  readonly node: JsonSchema | undefined;
  readonly value: unknown;
}

function locate(schema: JsonSchema, input: unknown, path: readonly PropertyKey[]): Located {
  let node: JsonSchema | undefined = schema;
  let value = input;
  for (const key of path) {
    if (node === undefined) break;
    node = resolve(node, value);
    node = typeof key === "number" ? (node.items as JsonSchema | undefined) : properties(node)[String(key)];
    value = child(value, key);
  }
  return { node, value };
}

/**
 * Turns zod issues into issues that name the field, say what was expected and, for a misspelling, the nearest
 * known word. A union that fromJSONSchema could not tell apart (a `oneOf` of sources or connections) is narrowed
 * to the branch the input names by its discriminator, as the connector's discriminated unions do, so both ends
 * report the same field in the same words: the wording is taken from the JSON Schema, which both ends share.
 */
export function describeIssues(raw: readonly RawIssue[], schema: JsonSchema, input: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const push = (path: readonly PropertyKey[], message: string): void => {
    out.push({ path: formatPath(path), message });
  };
  const visit = (issue: RawIssue, prefix: readonly PropertyKey[]): void => {
    const at = [...prefix, ...issue.path];
    // zod's discriminated union points at the discriminator itself; the union is its parent.
    const union = issue.discriminator === undefined ? at : at.slice(0, -1);
    const { node, value } = locate(schema, input, union);
    if (issue.code === "invalid_union" && node) {
      const options = branches(node);
      const key = options ? discriminatorOf(options) : undefined;
      if (options && key !== undefined) {
        const named = child(value, key);
        const index = options.findIndex((o) => properties(o)[key]?.const === named);
        const branch = index >= 0 && issue.note === undefined ? issue.errors?.[index] : undefined;
        if (branch) {
          for (const inner of branch) visit(inner, at);
          return;
        }
        if (index < 0) {
          const allowed = options.map((o) => properties(o)[key]?.const);
          push([...union, key], mismatch({ enum: allowed }, named, key));
          return;
        }
      }
    }
    if (issue.code === "unrecognized_keys" && node) {
      const known = Object.keys(properties(resolve(node, value)));
      for (const key of issue.keys ?? []) push([...at, key], unknownKey(key, known));
      return;
    }
    push(at, wording(issue, node, value, at.at(-1)));
  };
  for (const issue of raw) visit(issue, []);
  return out;
}

const STRUCTURAL = new Set([
  "invalid_type",
  "invalid_value",
  "invalid_union",
  "too_small",
  "too_big",
  "invalid_format",
]);

function wording(issue: RawIssue, node: JsonSchema | undefined, value: unknown, key: PropertyKey | undefined): string {
  if (!node || !STRUCTURAL.has(issue.code ?? "")) return issue.message;
  // A message the schema carries for its field (`errorMessage`) says more than "must match pattern".
  if (issue.code === "invalid_format" && typeof node.errorMessage === "string") return node.errorMessage;
  if (value === undefined) return `is required: expected ${expected(node)}`;
  return mismatch(node, value, key);
}

function mismatch(node: JsonSchema, value: unknown, key: PropertyKey | undefined): string {
  const base = `expected ${expected(node)}, got ${shown(value, key)}`;
  const words = node.enum ?? (node.const === undefined ? branches(node)?.map((b) => b.const) : [node.const]);
  const near =
    typeof value === "string" && Array.isArray(words)
      ? nearest(
          value,
          words.filter((w) => typeof w === "string"),
        )
      : "";
  return near ? `${base}; did you mean "${near}"?` : base;
}

function unknownKey(key: string, known: readonly string[]): string {
  const near = nearest(key, known);
  return near ? `unknown key; did you mean \`${near}\`?` : `unknown key; known keys: ${known.join(", ")}`;
}

function range(node: JsonSchema, min: string, max: string, unit: string): string {
  const lo = node[min];
  const hi = node[max];
  if (typeof lo === "number" && typeof hi === "number") return ` from ${lo} to ${hi}${unit}`;
  if (typeof lo === "number" && lo > 0) return ` of at least ${lo}${unit}`;
  if (typeof hi === "number") return ` of at most ${hi}${unit}`;
  return "";
}

/** What the schema accepts at a field, in words: `a whole number from 1 to 65535`, `one of "tcp", "udp"`. */
function expected(node: JsonSchema): string {
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (Array.isArray(node.enum)) return `one of ${node.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  const options = branches(node);
  if (options) {
    if (options.every((o) => o.const !== undefined))
      return `one of ${options.map((o) => JSON.stringify(o.const)).join(", ")}`;
    return [...new Set(options.map(expected))].join(" or ");
  }
  switch (node.type) {
    case "integer":
      return `a whole number${range(node, "minimum", "maximum", "")}`;
    case "number":
      return `a number${range(node, "minimum", "maximum", "")}`;
    case "string":
      return `a string${range(node, "minLength", "maxLength", " characters")}`;
    case "boolean":
      return "true or false";
    case "array":
      return `a list${range(node, "minItems", "maxItems", " items")}`;
    case "object":
      return "an object";
    default:
      return "a valid value";
  }
}

/** The value as the operator wrote it, except where it may be a secret or is too long to help. */
function shown(value: unknown, key: PropertyKey | undefined): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `a list of ${value.length} items`;
  if (typeof value === "object") return "an object";
  if (typeof value !== "string") return String(value);
  if (/password|secret|token/i.test(String(key ?? ""))) return "a string";
  if (value === "") return "an empty string";
  return value.length <= 60 ? `the string ${JSON.stringify(value)}` : `a string of ${value.length} characters`;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/** The known word a misspelling most likely meant: close in edit distance, or equal but for case; else "". */
export function nearest(word: string, known: readonly string[]): string {
  let best = "";
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d =
      candidate.toLowerCase() === word.toLowerCase() ? 0 : distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance && d <= Math.max(1, Math.floor(candidate.length / 3))) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
