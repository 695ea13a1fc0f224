import { posix } from "node:path";
import { FLOORS, INDEPENDENT_TREES, KIND_FOLDERS } from "./floors.ts";

/** One import the house does not allow, with the rule it breaks. */
export interface Violation {
  readonly from: string;
  readonly to: string;
  readonly rule:
    | "upward"
    | "same-floor"
    | "sibling-kind"
    | "other-os"
    | "outside-src"
    | "into-src"
    | "outside-tree"
    | "unknown-folder"
    | "unreadable"
    | "circle";
  readonly detail: string;
}

/**
 * Repository-relative posix paths → file text: src/'s product files (its tests stand outside the house), all of
 * cloud/ and sim/, and the test helpers they may share (those must not reach src/ either).
 */
export type SourceTree = ReadonlyMap<string, string>;

/** Script files: what an import can load as code. A URL to package.json or a schema is data, not an arrow. */
export const SCRIPT = /\.(ts|mts|cts|mjs|cjs|js)$/;

/**
 * The text with every comment blanked (strings and templates kept), so a comment inside an import's braces or a
 * commented-out import can neither hide an arrow nor invent one.
 */
export function withoutComments(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** A string literal: "…", '…' or a template without substitutions; the text is group 1, 2 or 3. */
const LITERAL = "(?:\"([^\"\\n]*)\"|'([^'\\n]*)'|`([^`$]*)`)";
const STATIC = new RegExp(
  `(?:^|[^\\w.$])(?:import|export)\\s*(?:type\\s+)?(?:[\\w*{}\\s,$]+?\\s+from\\s*)?${LITERAL}`,
  "g",
);
const DYNAMIC = /(?:^|[^\w.$])import\s*\(\s*([^)\s][^)]*?)\s*[,)]/g;
const ONLY_LITERAL = new RegExp(`^${LITERAL}$`);
const URL_OF = new RegExp(`new\\s+URL\\s*\\(\\s*${LITERAL}\\s*,\\s*import\\.meta\\.url`, "g");
const RESOLVE = new RegExp(`import\\.meta\\.resolve\\s*\\(\\s*${LITERAL}`, "g");
const REQUIRE = /(?:^|[^\w.$])(?:require|createRequire)\s*\(/g;

/** What a file imports: relative specifiers, and the loads the check cannot follow (so it refuses them). */
export interface FileImports {
  readonly specifiers: string[];
  /** `import(expr)` with a computed specifier, or require(): an arrow no reader can check. */
  readonly unreadable: string[];
}

const literal = (m: RegExpMatchArray): string | undefined => m[1] ?? m[2] ?? m[3];

/** The relative specifiers a file imports, static and dynamic, type-only included (a type still ties two floors). */
export function importsOf(text: string): string[] {
  return readImports(text).specifiers;
}

export function readImports(raw: string): FileImports {
  const text = withoutComments(raw);
  const specifiers: string[] = [];
  const unreadable: string[] = [];
  const keep = (spec: string | undefined) => {
    if (spec?.startsWith("./") || spec?.startsWith("../")) specifiers.push(spec);
  };
  for (const m of text.matchAll(STATIC)) keep(literal(m));
  for (const m of text.matchAll(DYNAMIC)) {
    const arg = m[1] ?? "";
    const lit = ONLY_LITERAL.exec(arg);
    if (lit) keep(literal(lit));
    else unreadable.push(`import(${arg})`);
  }
  for (const m of text.matchAll(URL_OF)) {
    const spec = literal(m);
    if (spec && SCRIPT.test(spec)) keep(spec);
  }
  for (const m of text.matchAll(RESOLVE)) keep(literal(m));
  for (const m of text.matchAll(REQUIRE)) unreadable.push(m[0].trim());
  return { specifiers, unreadable };
}

const floorOf = new Map<string, number>(FLOORS.flatMap((f) => f.folders.map((d) => [d, f.floor] as const)));

interface Place {
  readonly tree: string;
  /** For src/: the top folder (floor) and, in a kind folder, the kind. */
  readonly folder?: string;
  readonly kind?: string;
}

function placeOf(path: string): Place {
  const parts = path.split("/");
  const tree = parts[0] ?? "";
  if (tree !== "src") return { tree };
  const folder = parts.length > 2 ? parts[1] : undefined;
  const kind =
    folder && (KIND_FOLDERS as readonly string[]).includes(folder) && parts.length > 3 ? parts[2] : undefined;
  return { tree, ...(folder ? { folder } : {}), ...(kind ? { kind } : {}) };
}

/** Folders that only run on one operating system, wherever they sit (`platform/windows/`, `service/linux/`). */
const OS_FOLDERS = ["windows", "linux"] as const;
const osOf = (path: string) => OS_FOLDERS.find((os) => path.split("/").includes(os));

/** What the independent trees may share besides themselves: helpers that reach no product code. */
const SHARED_HELPERS = "test/helpers/";

function edgeViolation(from: string, to: string): Violation | undefined {
  const a = placeOf(from);
  const b = placeOf(to);
  const v = (rule: Violation["rule"], detail: string): Violation => ({ from, to, rule, detail });
  if ((INDEPENDENT_TREES as readonly string[]).includes(a.tree)) {
    if (b.tree === "src")
      return v("into-src", `${a.tree}/ shares no code with src/: it exists to check the product independently.`);
    if (b.tree !== a.tree && !to.startsWith(SHARED_HELPERS))
      return v("outside-tree", `${a.tree}/ imports only itself and ${SHARED_HELPERS} (which must not reach src/).`);
    return undefined;
  }
  if (a.tree !== "src") return undefined;
  const [osA, osB] = [osOf(from), osOf(to)];
  if (osA && osB && osA !== osB)
    return v("other-os", `code for ${osA} never loads code for ${osB}; share through a file that runs on both.`);
  if (b.tree !== "src") return v("outside-src", `src/ never imports ${b.tree}/.`);
  if (!a.folder || !b.folder) return v("unknown-folder", "every file of src/ sits in a floor's folder.");
  const fa = floorOf.get(a.folder);
  const fb = floorOf.get(b.folder);
  if (fa === undefined) return v("unknown-folder", `src/${a.folder}/ has no floor in scripts/layers/floors.ts.`);
  if (fb === undefined) return v("unknown-folder", `src/${b.folder}/ has no floor in scripts/layers/floors.ts.`);
  if (a.folder === b.folder) {
    if (a.kind && b.kind && a.kind !== b.kind)
      return v(
        "sibling-kind",
        `src/${a.folder}/${a.kind}/ may not use its sibling ${b.kind}/; share through src/${a.folder}/.`,
      );
    return undefined;
  }
  if (fb > fa) return v("upward", `${a.folder}/ (floor ${fa}) may not import ${b.folder}/ (floor ${fb}).`);
  if (fb === fa) return v("same-floor", `${a.folder}/ and ${b.folder}/ share floor ${fa} and never import each other.`);
  return undefined;
}

/** Every strongly connected group of two or more files (Tarjan), each reported once as a circle. */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) ?? 0, idx.get(w) ?? 0));
    }
    if (low.get(v) === idx.get(v)) {
      const group: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        on.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) out.push(group.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** The src/ files a helper reaches, directly or through other helpers: a way into src/ for cloud/ or sim/. */
function reachesSrc(start: string, edges: ReadonlyMap<string, readonly string[]>): string | undefined {
  const seen = new Set<string>();
  const pending = [start];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const to of edges.get(file) ?? []) {
      if (to.startsWith("src/")) return to;
      pending.push(to);
    }
  }
  return undefined;
}

/** Checks a tree against the floors: wrong-way arrows, loads no reader can follow, then circles among src/ files. */
export function checkImports(tree: SourceTree): Violation[] {
  const violations: Violation[] = [];
  const edges = new Map<string, string[]>();
  const unreadable = new Map<string, string[]>();
  for (const [from, text] of tree) {
    const found = readImports(text);
    edges.set(
      from,
      found.specifiers.map((spec) => posix.normalize(posix.join(posix.dirname(from), spec))),
    );
    unreadable.set(from, found.unreadable);
  }
  for (const [from, targets] of edges) {
    // Helpers are checked only as a way the independent trees could reach src/.
    if (from.startsWith(SHARED_HELPERS)) continue;
    const home = from.split("/")[0] ?? "";
    for (const to of targets) {
      const bad = edgeViolation(from, to);
      if (bad) violations.push(bad);
      const via = to.startsWith(SHARED_HELPERS) ? reachesSrc(to, edges) : undefined;
      if (via && (INDEPENDENT_TREES as readonly string[]).includes(home))
        violations.push({
          from,
          to,
          rule: "into-src",
          detail: `${to} reaches ${via}: ${home}/ shares no code with src/, not even through a helper.`,
        });
    }
    for (const load of unreadable.get(from) ?? [])
      violations.push({
        from,
        to: load,
        rule: "unreadable",
        detail: "a computed import() or require() hides its target from this check; import a literal path.",
      });
  }
  const graph = new Map(
    [...edges].filter(([f]) => f.startsWith("src/")).map(([f, t]) => [f, t.filter((x) => tree.has(x))]),
  );
  for (const group of circles(graph))
    violations.push({
      from: group[0] ?? "",
      to: group.slice(1).join(", "),
      rule: "circle",
      detail: `these files import each other in a circle: ${group.join(" → ")}.`,
    });
  return violations;
}
